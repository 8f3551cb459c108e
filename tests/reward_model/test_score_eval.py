"""Resumable table scoring, benchmark evaluation and the two CLI commands."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from editrl.cli import main
from editrl.errors import EditRLError
from editrl.images import load_image
from editrl.reward import RewardOutput
from editrl.reward.eval import evaluate, ranking_label
from editrl.reward.score import score_table
from editrl.tables import read_rows


class Brightness:
    """A hand-checkable reward: the mean pixel value of the edit in [0, 1] (both dimensions)."""

    def __init__(self, fail_after: int | None = None):
        self.calls, self.items, self.fail_after = 0, 0, fail_after

    def score(self, sources, instructions, edits, batch_size=None):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        self.items += len(edits)
        value = torch.tensor([np.asarray(load_image(e)).mean() / 255.0 for e in edits], dtype=torch.float32)
        mu = value[:, None].repeat(1, 2)
        zeros = torch.zeros_like(value)
        return RewardOutput(mu=mu, sigma=torch.zeros_like(mu), score=value, score_sigma=zeros)


def _png(level: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), level, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def table(tmp_path):
    """A JSONL table of 5 rows with image paths relative to it; edit i has brightness 40 * i."""
    for level in range(5):
        Image.fromarray(np.full((16, 16, 3), 40 * level, dtype=np.uint8)).save(tmp_path / f"e{level}.png")
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(tmp_path / "src.png")
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"id": f"r{i}", "source": "src.png", "instruction": f"edit {i}", "edit": f"e{i}.png"}) + "\n" for i in range(5)))
    return path


def test_score_table_resumes_without_rescoring_or_rewriting(table, tmp_path):
    out = tmp_path / "out" / "scores.parquet"
    killed = Brightness(fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        score_table(killed, list(read_rows(table)), out, chunk_size=2, progress=False)
    parts = sorted(p.name for p in (out.parent / "scores.parquet.parts").iterdir())
    assert parts == ["part-000000000.parquet", "part-000000002.parquet"] and not out.exists()
    resumed = Brightness()
    summary = score_table(resumed, list(read_rows(table)), out, chunk_size=2, progress=False)
    assert resumed.items == 1 and summary == {"rows": 5, "scored": 1, "skipped": 4, "out": str(out)}
    result = pq.read_table(out).to_pylist()
    assert [r["row"] for r in result] == [0, 1, 2, 3, 4] and [r["id"] for r in result] == ["r0", "r1", "r2", "r3", "r4"]
    assert [round(r["score"], 4) for r in result] == [round(40 * i / 255, 4) for i in range(5)]
    assert result[3]["edit"].endswith("e3.png") and "mu_visual_quality" in result[0]
    assert not (out.parent / "scores.parquet.parts").exists()
    before = out.stat().st_mtime_ns
    again = Brightness()
    assert score_table(again, list(read_rows(table)), out, progress=False)["scored"] == 0
    assert again.calls == 0 and out.stat().st_mtime_ns == before


def test_score_table_names_a_bad_row(table, tmp_path):
    rows = list(read_rows(table))
    rows[3]["edit"] = "missing.png"
    with pytest.raises(EditRLError, match=r"data.jsonl:4 \(id r3\) edit: no image file at '.*missing.png'$"):
        score_table(Brightness(), rows, tmp_path / "o.parquet", chunk_size=10, progress=False)
    with pytest.raises(EditRLError, match="no instruction column"):
        score_table(Brightness(), [{"source": _png(0), "edit": _png(1)}], tmp_path / "p.parquet", progress=False)


def _bench(tmp_path):
    """EditReward-Bench-style files: 2pair (group g1 strict, g2 tie) and 3pair (one group of 3 pairs)."""
    src = {"bytes": _png(0), "path": None}
    c = {level: {"bytes": _png(level), "path": None} for level in (10, 20, 30, 200)}
    two = [
        {"id": "g1_0", "instruction": "a", "source_image": src, "candidate_1": c[200], "candidate_2": c[10], "ranking": "A>B"},
        {"id": "g2_0", "instruction": "b", "source_image": src, "candidate_1": c[20], "candidate_2": c[30], "ranking": "A=B=Good"},
    ]
    three = [  # human order 30 > 20 > 10; the reward agrees on every pair
        {"id": "g3_0", "instruction": "c", "source_image": src, "candidate_1": c[30], "candidate_2": c[20], "ranking": "A>B"},
        {"id": "g3_1", "instruction": "c", "source_image": src, "candidate_1": c[10], "candidate_2": c[30], "ranking": "B>A"},
        {"id": "g3_2", "instruction": "c", "source_image": src, "candidate_1": c[20], "candidate_2": c[10], "ranking": "A>B"},
    ]
    folder = tmp_path / "bench"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(two), folder / "EditReward_Bench_2pair.parquet")
    pq.write_table(pa.Table.from_pylist(three), folder / "EditReward_Bench_3pair.parquet")
    return folder


def test_evaluate_editreward_bench(tmp_path):
    reward = Brightness()
    result = evaluate(reward, _bench(tmp_path), "editreward-bench", tmp_path / "pred.jsonl", progress=False)
    assert reward.items == 7  # 10 candidate cells, 2 + 2 + 3 distinct (instruction, edit) triples
    # K=2: eps = |20-30|/255 makes the tie right: both pairs and both groups correct
    assert result["k2"]["pairwise_accuracy"] == 1.0 and result["k2"]["group_accuracy"] == 1.0
    assert result["k3"]["group_accuracy"] == 1.0 and result["k3"]["groups"] == 1 and result["k3"]["pairs"] == 3
    assert result["overall"]["groups"] == 3 and result["overall"]["group_accuracy"] == 1.0
    predictions = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    assert len(predictions) == 5 and all(p["correct"] for p in predictions)
    assert predictions[0]["delta"] == pytest.approx(190 / 255, abs=1e-5)


def test_evaluate_pairs_and_pointwise(tmp_path):
    rows = [
        {"source": {"bytes": _png(0)}, "instruction": "x", "left_output": {"bytes": _png(50)}, "right_output": {"bytes": _png(10)}, "vote_type": "leftvote"},
        {"source": {"bytes": _png(0)}, "instruction": "x", "left_output": {"bytes": _png(10)}, "right_output": {"bytes": _png(90)}, "vote_type": "leftvote"},
        {"source": {"bytes": _png(0)}, "instruction": "y", "left_output": {"bytes": _png(60)}, "right_output": {"bytes": _png(61)}, "vote_type": "tie"},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "pairs.parquet")
    result = evaluate(Brightness(), tmp_path / "pairs.parquet", "pairs", None, progress=False)
    assert result["accuracy_without_ties"] == 0.5
    assert result["accuracy_with_ties"] == pytest.approx(2 / 3) and result["epsilon"] == pytest.approx(1 / 255, abs=1e-6)
    # ImagenHub style, paths relative to the JSONL: edit brightness 10/20/30 per model, humans agree (m1) or invert (m2)
    levels = [(10, "m1", 1), (20, "m1", 2), (30, "m1", 3), (10, "m2", 3), (20, "m2", 2), (30, "m2", 1)]
    for i, (level, _, _) in enumerate(levels):
        Image.fromarray(np.full((8, 8, 3), level, dtype=np.uint8)).save(tmp_path / f"p{i}.png")
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "s.png")
    (tmp_path / "points.jsonl").write_text("".join(
        json.dumps({"src": "s.png", "instruction": "z", "edit": f"p{i}.png", "model": m, "human_score": h}) + "\n"
        for i, (_, m, h) in enumerate(levels)))
    result = evaluate(Brightness(), tmp_path / "points.jsonl", "pointwise", None, progress=False)
    assert result["spearman_per_model"] == {"m1": pytest.approx(1.0), "m2": pytest.approx(-1.0)}
    assert result["spearman_average"] == pytest.approx(0.0)


def test_cli_score_and_eval_with_a_saved_model(reward, table, tmp_path, capsys):
    reward.save_pretrained(tmp_path / "rm")
    out = tmp_path / "scores.parquet"
    assert main(["reward", "score", "--data", str(table), "--out", str(out), "--reward", str(tmp_path / "rm"), "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 5 and summary["scored"] == 5
    expected = reward.score([load_image(table.parent / "src.png")] * 5, [f"edit {i}" for i in range(5)],
                            [table.parent / f"e{i}.png" for i in range(5)])
    assert np.allclose(pq.read_table(out).column("score").to_pylist(), expected.score.numpy(), atol=1e-5)
    bench = _bench(tmp_path)
    preds = tmp_path / "p.jsonl"
    assert main(["reward", "eval", "--bench", str(bench), "--format", "editreward-bench", "--reward", str(tmp_path / "rm"),
                 "--predictions", str(preds), "--device", "cpu"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) >= {"k2", "k3", "overall"} and len(preds.read_text().splitlines()) == 5
    assert main(["reward", "eval", "--bench", str(tmp_path / "nope"), "--format", "pairs", "--reward", str(tmp_path / "rm")]) == 2
    assert "nope" in capsys.readouterr().err


def test_ranking_strings_with_group_letters():
    assert ranking_label("A>B", "r") == 1 and ranking_label("B>A", "r") == -1 and ranking_label("A=B=Good", "r") == 0
    assert ranking_label("C>A", "r", "AvsC") == -1 and ranking_label("D>B", "r", "BvsD") == -1
    assert ranking_label("B>D", "r", "BvsD") == 1 and ranking_label("A=C", "r", "AvsC") == 0
    with pytest.raises(EditRLError, match="not understood"):
        ranking_label("better", "row 3")
