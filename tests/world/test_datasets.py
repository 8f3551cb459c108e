import io
import json

import pyarrow.parquet as pq
import pytest
from PIL import Image

from editrl.cli import main
from editrl.errors import EditRLError
from editrl.world import Oracle
from editrl.world.datasets import benchmark_rows, editor_candidates, preference_rows


def _img(cell):
    return Image.open(io.BytesIO(cell["bytes"])).convert("RGB")


def test_make_data_cli_writes_editreward_data_schema(tmp_path, capsys):
    assert main(["world", "make-data", "--out", str(tmp_path / "a"), "--n", "12", "--seed", "5"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"] == 12
    main(["world", "make-data", "--out", str(tmp_path / "b"), "--n", "12", "--seed", "5"])
    a, b = (tmp_path / "a" / "train.parquet").read_bytes(), (tmp_path / "b" / "train.parquet").read_bytes()
    assert a == b  # deterministic
    table = pq.read_table(tmp_path / "a" / "train.parquet")
    assert str(table.schema.field("source_img").type) == "struct<bytes: binary, path: string>"
    rows = table.to_pylist()
    assert len(rows) == 12
    for r in rows:
        for side in ("left", "right"):
            assert r[f"{side}_overall_score"] == r[f"{side}_instruction_following_score"] + r[f"{side}_quality_aesthetic_score"]
            assert 2 <= r[f"{side}_overall_score"] <= 8
        expected = "left" if r["left_overall_score"] > r["right_overall_score"] else "right" if r["left_overall_score"] < r["right_overall_score"] else "tie"
        assert r["vote_type"] == expected and r["left_model"] != r["right_model"]
        assert _img(r["left_output_image"]).size == (64, 64)
    # the stored images rescore to the stored oracle values
    r = rows[0]
    mu = Oracle().score([_img(r["source_img"])], [r["instruction"]], [_img(r["left_output_image"])]).mu[0]
    assert float(mu[0]) == pytest.approx(r["left_oracle_instruction_following"], abs=1e-6)


def test_benchmark_groups_share_id_prefix_and_rankings_are_consistent():
    rows = benchmark_rows(4, seed=1)
    for k, n_pairs in ((2, 1), (3, 3), (4, 6)):
        groups = {}
        for r in rows[k]:
            groups.setdefault(r["id"].split("_")[0], []).append(r)
            a, b = r["comparison_type"].split("vs")
            s1, s2 = r["score_1"], r["score_2"]
            assert r["ranking"] == (f"{a}>{b}" if s1 > s2 else f"{b}>{a}" if s2 > s1 else f"{a}={b}")
            assert r["model_1"] != r["model_2"]
        assert len(groups) == 4 and all(len(g) == n_pairs for g in groups.values())
    hard = [r for r in rows[4] if r["hard"]]
    easy = [r for r in rows[4] if not r["hard"]]
    def gap(rs):
        return sum(abs(r["oracle_1"] - r["oracle_2"]) for r in rs) / len(rs)
    assert hard and gap(hard) < gap(easy)


def test_editor_candidates_source():
    calls = []

    def editor(example, n, seed):
        calls.append(seed)
        return [example.target] * n

    rows = preference_rows(2, seed=0, edits=editor_candidates(editor, "tiny"))
    assert [r["left_model"] for r in rows] == ["tiny-0", "tiny-0"] and len(calls) == 2
    assert all(r["vote_type"] in ("left", "right", "tie") for r in rows)
    with pytest.raises(EditRLError, match="asked for 2"):
        preference_rows(1, edits=editor_candidates(lambda e, n, s: [e.target]))
