"""Preference data readers (each schema from a tiny fixture), pair construction and tie policies."""

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from editrl.errors import EditRLError
from editrl.reward.data import (
    DataSource,
    build_pairs,
    load_pair_images,
    read_editreward_data,
    read_jsonl,
    read_train_json,
    synthetic_comparisons,
)


def png(value: int, size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


# (if_a, vq_a, if_b, vq_b): strict a, strict b, complementary tie, identical tie
SCORES = [(4, 3, 2, 2), (1, 2, 3, 3), (4, 1, 1, 4), (2, 2, 2, 2)]


def editreward_table(image_cell):
    n = len(SCORES)
    return pa.table({
        "id": [f"r{i}" for i in range(n)],
        "instruction": [f"edit {i}" for i in range(n)],
        "source_img": [image_cell(10 + i) for i in range(n)],
        "left_output_image": [image_cell(100 + i) for i in range(n)],
        "right_output_image": [image_cell(200 + i) for i in range(n)],
        "left_instruction_following_score": [float(s[0]) for s in SCORES],
        "left_quality_aesthetic_score": [float(s[1]) for s in SCORES],
        "left_overall_score": [float(s[0] + s[1]) for s in SCORES],
        "right_instruction_following_score": [float(s[2]) for s in SCORES],
        "right_quality_aesthetic_score": [float(s[3]) for s in SCORES],
        "right_overall_score": [float(s[2] + s[3]) for s in SCORES],
        "vote_type": ["leftvote", "rightvote", "tievote", "tievote"],
        "left_model": ["m1"] * n, "right_model": ["m2"] * n,
    })


def check_editreward_pairs(rows):
    pairs, summary = build_pairs(rows, ties="disentangle")
    assert summary == dict(rows=4, bad_rows=0, strict_pairs=2, ties=2, ties_kept=0, ties_dropped=0,
                           ties_disentangled=1, ties_without_dimension_preference=1, pairs=4)
    by_id = {p.pair_id: p for p in pairs}
    source, chosen, rejected = load_pair_images(by_id["r0"])
    assert (source.getpixel((0, 0)), chosen.getpixel((0, 0)), rejected.getpixel((0, 0))) == (
        (10,) * 3, (100,) * 3, (200,) * 3)
    assert load_pair_images(by_id["r1"])[1].getpixel((0, 0)) == (201,) * 3  # right won row 1
    assert by_id["r1"].chosen_scores == (3.0, 3.0) and by_id["r1"].rejected_scores == (1.0, 2.0)
    a_b, b_a = by_id["r2#a>b"], by_id["r2#b>a"]
    assert a_b.chosen == b_a.rejected and a_b.rejected == b_a.chosen and a_b.label == b_a.label == 1.0
    assert a_b.kind == "disentangled"


def test_editreward_parquet_with_hf_image_dicts(tmp_path):
    table = editreward_table(lambda v: {"bytes": png(v), "path": None})
    pq.write_table(table, tmp_path / "train-0.parquet", row_group_size=2)
    check_editreward_pairs(list(read_editreward_data(tmp_path)))


def test_editreward_parquet_with_raw_bytes_and_arrow_stream(tmp_path):
    table = editreward_table(png)
    pq.write_table(table, tmp_path / "a.parquet")
    check_editreward_pairs(list(read_editreward_data(tmp_path / "a.parquet")))
    with pa.ipc.new_stream(str(tmp_path / "b.arrow"), table.schema) as writer:  # HF datasets cache format
        writer.write_table(table)
    check_editreward_pairs(list(read_editreward_data(tmp_path / "b.arrow")))


def test_editreward_with_relative_paths(tmp_path):
    (tmp_path / "img").mkdir()
    for v in list(range(10, 14)) + list(range(100, 104)) + list(range(200, 204)):
        (tmp_path / "img" / f"{v}.png").write_bytes(png(v))
    pq.write_table(editreward_table(lambda v: {"bytes": None, "path": f"img/{v}.png"}), tmp_path / "d.parquet")
    check_editreward_pairs(list(read_editreward_data(tmp_path / "d.parquet")))


def test_editreward_schema_error_names_missing_columns(tmp_path):
    pq.write_table(pa.table({"instruction": ["x"]}), tmp_path / "bad.parquet")
    with pytest.raises(EditRLError, match="missing columns.*source_img"):
        list(read_editreward_data(tmp_path / "bad.parquet"))


def test_official_train_json(tmp_path):
    for name, v in (("src", 1), ("good", 2), ("bad", 3)):
        (tmp_path / f"{name}.png").write_bytes(png(v))
    samples = [
        dict(path1="good.png", path2="bad.png", path_src="src.png", prompt="p0", model1_dim1_score=4,
             model1_dim2_score=3, model2_dim1_score=2, model2_dim2_score=3, model1_overall_score=7,
             model2_overall_score=5, tie_case=False),
        dict(path1="good.png", path2="bad.png", path_src="src.png", prompt="p1", model1_dim1_score=4,
             model1_dim2_score=2, model2_dim1_score=2, model2_dim2_score=4, model1_overall_score=6,
             model2_overall_score=6, tie_case=True),
        dict(path1="good.png", path2="bad.png", path_src="src.png", prompt="p2"),  # no scores: path1 wins
    ]
    (tmp_path / "train.json").write_text(json.dumps(samples))
    pairs, summary = build_pairs(read_train_json(tmp_path / "train.json"), ties="keep")
    assert summary["strict_pairs"] == 2 and summary["ties_kept"] == 1 and summary["pairs"] == 3
    assert [p.label for p in pairs] == [1.0, 0.5, 1.0]
    assert pairs[0].chosen == str(tmp_path / "good.png") and pairs[0].chosen_scores == (4.0, 3.0)
    assert pairs[2].chosen_scores is None and pairs[2].instruction == "p2"
    assert load_pair_images(pairs[0])[1].getpixel((0, 0)) == (2, 2, 2)


def test_jsonl_schema_and_bad_rows(tmp_path, caplog):
    for name, v in (("s", 1), ("a", 2), ("b", 3)):
        (tmp_path / f"{name}.png").write_bytes(png(v))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    good = dict(source="s.png", instruction="x", edit_a="a.png", edit_b="b.png", scores_a=[1, 2], scores_b=[3, 4])
    rows = [
        dict(good, id="ok"),
        dict(good, id="missing", edit_b="nope.png"),
        dict(good, id="unreadable", edit_a="broken.png"),
        dict(good, id="range", scores_a=[5, 2]),
        dict(good, id="empty", instruction=" "),
    ]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pairs, summary = build_pairs(read_jsonl(tmp_path / "d.jsonl"))
    assert [p.pair_id for p in pairs] == ["ok"] and pairs[0].chosen == str(tmp_path / "b.png")
    assert summary["bad_rows"] == 4 and summary["rows"] == 5
    for row_id in ("missing", "unreadable", "range", "empty"):
        assert f"row {row_id}" in caplog.text
    with pytest.raises(EditRLError, match="row missing: edit_b: no image file"):
        build_pairs(read_jsonl(tmp_path / "d.jsonl"), strict=True)


def test_tie_policies_counts():
    rows = synthetic_comparisons(200, seed=3, size=16)
    results = {t: build_pairs(rows, ties=t) for t in ("drop", "keep", "disentangle")}
    base = results["drop"][1]
    ties = base["ties"]
    assert ties > 10 and base["strict_pairs"] + ties == 200 and base["pairs"] == base["strict_pairs"]
    assert results["keep"][1]["pairs"] == base["strict_pairs"] + ties
    d = results["disentangle"][1]
    assert d["ties_disentangled"] + d["ties_without_dimension_preference"] == ties
    assert d["pairs"] == base["strict_pairs"] + 2 * d["ties_disentangled"]
    assert d["ties_disentangled"] > 0 and d["ties_without_dimension_preference"] > 0
    # disentangled pairs on synthetic rows really have complementary dimension scores
    for p in results["disentangle"][0]:
        if p.kind == "disentangled":
            diff = np.subtract(p.chosen_scores, p.rejected_scores)
            assert diff.min() < 0 < diff.max() and diff.sum() == 0


def test_synthetic_scores_follow_the_images():
    row = synthetic_comparisons(1, seed=1)[0]
    pairs, _ = build_pairs([row], ties="keep")
    for ref, scores in ((row.edit_a, row.scores_a), (row.edit_b, row.scores_b)):
        pixels = np.asarray(Image.open(io.BytesIO(ref)), dtype=float)
        source = np.asarray(Image.open(io.BytesIO(row.source)), dtype=float)
        brightness = pixels.mean() / source.mean()
        assert abs(scores[0] - (1 + min(3, np.floor(4 * (brightness - 0.25) / 0.75)))) <= 1
    assert synthetic_comparisons(3, seed=5)[2] == synthetic_comparisons(3, seed=5)[2]


def test_data_source_validation():
    with pytest.raises(EditRLError, match="format 'csv'"):
        DataSource(format="csv", path="x")
    with pytest.raises(EditRLError, match="needs a path"):
        DataSource(format="jsonl")
    assert len(list(DataSource(num_rows=10, limit=4).read())) == 4
