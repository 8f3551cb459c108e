"""``editrl filter``: selection rules, resume without rescoring, outputs, and 2-process sharding."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from editrl.errors import EditRLError
from editrl.filter import FilterConfig, filter_dataset, select_rows
from editrl.world import Oracle, make_examples
from editrl.world.datasets import corrupted_candidates, png_cell
from editrl.world.oracle import OracleConfig

REPO = Path(__file__).resolve().parents[2]


class CountingOracle(Oracle):
    """The world oracle, counting the edits it scores; fails on call ``fail_on`` to simulate a crash."""

    def __init__(self, fail_on: int | None = None):
        super().__init__()
        self.calls = self.items = 0
        self.fail_on = fail_on

    def score(self, sources, instructions, edits, batch_size=None):
        self.calls += 1
        if self.calls == self.fail_on:
            raise KeyboardInterrupt("simulated kill")
        self.items += len(edits)
        return super().score(sources, instructions, edits, batch_size)


@pytest.fixture(scope="module")
def world_rows():
    """12 rows: 6 world examples x 2 corrupted edits each (oracle scores spread over [0, 1])."""
    rows = []
    for k, example in enumerate(make_examples(6, seed=3, split="train")):
        for name, edit in corrupted_candidates(example, 2, seed=k):
            rows.append({"id": f"{k}-{name}", "source": example.source, "instruction": example.instruction, "edit": edit})
    return rows


def write_jsonl(folder: Path, world_rows, several_sources: bool = False) -> Path:
    """The rows as images under ``folder/images`` and a JSONL table of their paths; with ``several_sources`` each
    row's source cell lists its source and then its edit."""
    (folder / "images").mkdir(parents=True)
    with open(folder / "edits.jsonl", "w") as handle:
        for i, row in enumerate(world_rows):
            row["source"].save(folder / "images" / f"{i}-src.png")
            row["edit"].save(folder / "images" / f"{i}-edit.png")
            source = [f"images/{i}-src.png", f"images/{i}-edit.png"] if several_sources else f"images/{i}-src.png"
            handle.write(json.dumps({"id": row["id"], "source": source, "instruction": row["instruction"],
                                     "edit": f"images/{i}-edit.png", "note": i}) + "\n")
    return folder / "edits.jsonl"


@pytest.fixture
def jsonl_data(tmp_path, world_rows):
    return write_jsonl(tmp_path / "data", world_rows)


def oracle_scores(world_rows) -> np.ndarray:
    out = Oracle().score([r["source"] for r in world_rows], [r["instruction"] for r in world_rows], [r["edit"] for r in world_rows])
    return out.score.numpy()


def test_select_rows_rules():
    scores = {
        "score": np.array([0.5, 0.9, 0.1, 0.9, 0.7, 0.3]),
        "mu_instruction_following": np.array([0.2, 0.8, 0.9, 0.7, 0.6, 0.1]),
        "mu_visual_quality": np.array([0.9, 0.2, 0.5, 0.8, 0.9, 0.4]),
    }
    assert select_rows(scores, top_k=3).kept == [1, 3, 4]  # the 0.9 tie keeps row order
    assert select_rows(scores, top_fraction=0.5).kept == [1, 3, 4]
    assert select_rows(scores, top_fraction=0.34).kept == [1, 3, 4]  # ceil(0.34 * 6) = 3
    assert select_rows(scores, top_fraction=1 / 3).kept == [1, 3]  # exactly 2
    assert select_rows(scores).kept == [1, 3, 4, 0, 5, 2]
    assert select_rows(scores, by="visual_quality", top_k=2).kept == [0, 4]
    assert select_rows(scores, by="instruction_following", top_k=1).kept == [2]
    sel = select_rows(scores, top_k=3, min_if=0.5, min_vq=0.5)  # rows 3, 4, 2 pass both
    assert sel.kept == [3, 4, 2] and sel.eligible == 3 and sel.threshold == 0.1
    assert select_rows(scores, top_k=0).threshold is None
    with pytest.raises(EditRLError, match="at most one"):
        select_rows(scores, top_k=1, top_fraction=0.5)
    with pytest.raises(EditRLError, match="--select"):
        select_rows(scores, by="overall")
    with pytest.raises(EditRLError, match="fraction"):
        select_rows(scores, top_fraction=1.5)
    with pytest.raises(EditRLError, match="gives no 'mu_visual_quality'"):
        select_rows({"score": scores["score"], "mu_instruction_following": scores["score"]}, min_vq=0.5)


def test_filter_through_the_reward_server(tmp_path, jsonl_data, world_rows):
    """`--reward http://...`: the same scores as in-process, through RemoteReward and a served oracle."""
    from editrl.reward.client import RemoteReward
    from editrl.reward.serve import ServeConfig, serve_in_thread

    with serve_in_thread(Oracle(), ServeConfig(port=0, max_batch=4)) as url:
        summary = filter_dataset(RemoteReward(url), FilterConfig(str(jsonl_data), str(tmp_path / "out"), top_k=3), url)
    np.testing.assert_array_equal(pq.read_table(tmp_path / "out" / "scores.parquet").column("score").to_numpy(),
                                  oracle_scores(world_rows))
    assert summary["kept"] == 3


def test_filter_jsonl_outputs(tmp_path, jsonl_data, world_rows):
    out = tmp_path / "out"
    summary = filter_dataset(CountingOracle(), FilterConfig(str(jsonl_data), str(out), top_k=4, chunk_size=5), "oracle")
    expected = oracle_scores(world_rows)
    best = sorted(range(len(expected)), key=lambda i: (-expected[i], i))[:4]
    kept = [json.loads(line) for line in open(out / "kept.jsonl")]
    assert [k["note"] for k in kept] == sorted(best)  # input order, original columns kept
    assert sorted(k["reward_rank"] for k in kept) == [1, 2, 3, 4]
    for k in kept:
        assert k["reward_score"] == pytest.approx(expected[k["note"]], abs=1e-6)
        assert os.path.isabs(k["source"]) and Image.open(k["edit"]).size == (64, 64)  # paths usable from anywhere
    table = pq.read_table(out / "scores.parquet")
    assert table.column("row").to_pylist() == list(range(12))
    np.testing.assert_allclose(table.column("score").to_numpy(), expected, atol=1e-6)
    assert summary["rows"] == 12 and summary["kept"] == 4 and summary["scored_now"] == 12
    assert summary["cut"] == pytest.approx(expected[best[-1]], abs=1e-6)
    histogram = np.asarray(Image.open(out / "histogram.png"))
    red = (histogram[..., 0] > 200) & (histogram[..., 1] < 60) & (histogram[..., 2] < 60)
    assert red.sum() > 100  # the cut line is drawn
    assert json.loads((out / "summary.json").read_text())["kept"] == 4


def test_killed_run_resumes_without_rescoring(tmp_path, jsonl_data, world_rows):
    out = tmp_path / "out"
    config = FilterConfig(str(jsonl_data), str(out), top_fraction=0.25, chunk_size=4)
    crashing = CountingOracle(fail_on=3)  # dies while scoring the third chunk of 4
    with pytest.raises(KeyboardInterrupt):
        filter_dataset(crashing, config, "oracle")
    assert crashing.items == 8
    resumed = CountingOracle()
    summary = filter_dataset(resumed, config, "oracle")
    assert resumed.items == 4 and summary["scored_now"] == 4  # only the rows the crash lost
    np.testing.assert_allclose(pq.read_table(out / "scores.parquet").column("score").to_numpy(), oracle_scores(world_rows), atol=1e-6)
    assert summary["kept"] == 3
    # a new cut over the same scores rescores nothing
    again = CountingOracle()
    assert filter_dataset(again, FilterConfig(str(jsonl_data), str(out), top_k=2, by="visual_quality"), "oracle")["kept"] == 2
    assert again.items == 0
    other = CountingOracle()
    other.config = OracleConfig(color_tolerance=20.0)  # another reward: its scores must not join these
    with pytest.raises(EditRLError, match=r"holds scores of another run \(the reward config changed \(color_tolerance: 30.0 -> 20.0\)\)"):
        filter_dataset(other, config, "oracle")
    assert other.items == 0


def test_filter_parquet_keeps_format_and_minimums(tmp_path, world_rows):
    path = tmp_path / "edits.parquet"
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist([
        {"id": r["id"], "source_img": png_cell(r["source"]), "instruction": r["instruction"], "edited_image": png_cell(r["edit"])}
        for r in world_rows
    ]), path)
    out = tmp_path / "out"
    summary = filter_dataset(Oracle(), FilterConfig(str(path), str(out), min_if=0.5, min_vq=0.5), "oracle")
    values = Oracle().score([r["source"] for r in world_rows], [r["instruction"] for r in world_rows], [r["edit"] for r in world_rows])
    passing = {world_rows[i]["id"] for i in range(12) if values.mu[i, 0] >= 0.5 and values.mu[i, 1] >= 0.5}
    kept = pq.read_table(out / "kept.parquet").to_pylist()
    assert {k["id"] for k in kept} == passing and summary["kept"] == summary["eligible"] == len(passing)
    assert 0 < len(passing) < 12
    assert isinstance(kept[0]["edited_image"]["bytes"], bytes)  # images stay embedded


def test_two_processes_keep_the_same_rows(tmp_path, jsonl_data):
    """`accelerate launch --multi_gpu --num_processes 2` (CPU ranks here) keeps exactly what one process keeps.

    (``accelerate launch --cpu`` starts a single process unless MPI is set up, so it cannot shard.)"""
    single = filter_dataset(Oracle(), FilterConfig(str(jsonl_data), str(tmp_path / "one"), top_k=5, chunk_size=3), "oracle")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    with socket.socket() as probe:  # a free port for the ranks' rendezvous
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--main_process_port", port,
               "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "editrl.cli", "filter", "--data", str(jsonl_data),
               "--out", str(tmp_path / "two"), "--reward", "oracle", "--top-k", "5", "--chunk-size", "3"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["processes"] == 2 and summary["scored_now"] == 12
    assert sorted(p.name for p in (tmp_path / "two" / "scores").glob("shard-*.parquet")) == [
        "shard-0-of-2.parquet", "shard-1-of-2.parquet"]
    one = [json.loads(line) for line in open(tmp_path / "one" / "kept.jsonl")]
    two = [json.loads(line) for line in open(tmp_path / "two" / "kept.jsonl")]
    assert one == two and len(one) == single["kept"] == 5
    assert pq.read_table(tmp_path / "one" / "scores.parquet").equals(pq.read_table(tmp_path / "two" / "scores.parquet"))


def test_rows_with_several_sources_are_scored_against_the_first(tmp_path, world_rows, caplog):
    """A row may list its sources: a reward of one source (the oracle) scores it against the first, says so once,
    and the kept rows keep the list with each path made absolute."""
    folder = tmp_path / "data"
    data = write_jsonl(folder, world_rows, several_sources=True)
    out = tmp_path / "out"
    filter_dataset(Oracle(), FilterConfig(str(data), str(out), top_k=3), "oracle")
    table = pq.read_table(out / "scores.parquet")
    np.testing.assert_allclose(table.column("score").to_numpy(), oracle_scores(world_rows), atol=1e-6)
    assert json.loads(table.column("source")[0].as_py()) == [str(folder / "images/0-src.png"), str(folder / "images/0-edit.png")]
    kept = [json.loads(line) for line in open(out / "kept.jsonl")]
    assert all(len(k["source"]) == 2 and all(os.path.isabs(p) for p in k["source"]) for k in kept)
    assert sum("scored against their first" in r.message for r in caplog.records) == 1
