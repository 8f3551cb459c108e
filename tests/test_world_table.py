"""benchmarks/world_table.py: the rows come from the records, picks follow the reward, mismatched pairs refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "world_table.py"


def write_pairs(path: Path, rewards: list[list[float]], exact: list[list[float]]) -> str:
    lines = []
    for i, (r, e) in enumerate(zip(rewards, exact)):
        lines.append(json.dumps({"settings": "s", "pair": i, "reward_values": r, "oracle": [0.1 * x for x in e],
                                 "oracle_if": e, "exact_edit": e, "lost_object": [1.0 - x for x in e]}))
    lines.append(json.dumps({"settings": "s", "pair": 0, "halving": []}))  # a record of another search: ignored
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_rows_from_pairs_and_rl(tmp_path):
    exact = [[0, 0, 0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]]
    good = write_pairs(tmp_path / "good.jsonl", [[0, 0, 0, 0, 0, 0, 0, 5], [5, 0, 0, 0, 0, 0, 0, 0], [0] * 8], exact)
    bad = write_pairs(tmp_path / "bad.jsonl", [[0, 9, 0, 0, 0, 0, 0, 5], [0, 5, 0, 0, 0, 0, 0, 0], [0] * 8], exact)
    rl = tmp_path / "rl.jsonl"
    rl.write_text(json.dumps({"run": "grpo_learned", "images": 64, "oracle_after": 0.5, "seed": 1,
                              "exact_edit_curve": [[0, 0.2], [2, 0.3]], "lost_object_curve": [[0, 0.4], [2, 0.35]],
                              "config": {"rewards": {"world": 1.0}}, "group_reward_std": 0.01,
                              "paired_change": {m: {"mean": 0.1, "se": 0.05, "n": 3}
                                                for m in ("exact_edit", "lost_object", "oracle")}}) + "\n")
    done = run("--pairs", f"good={good}", "--pairs", f"bad={bad}", "--rl", str(rl))
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    by = {(r["method"], r["reward"]): r for r in rows}
    one = by[("one sample", "-")]
    assert one["exact_edit"]["mean"] == pytest.approx(1 / 3)  # the first candidate of each pair
    assert by[("best-of-8", "good")]["exact_edit"]["mean"] == pytest.approx(2 / 3)
    assert by[("best-of-8", "good")]["exact_edit"]["change"] == pytest.approx(1 / 3)
    assert by[("best-of-8", "bad")]["exact_edit"]["mean"] == pytest.approx(0.0)  # its argmax is never exact
    assert by[("best-of-8", "oracle (its score's ceiling)")]["exact_edit"]["mean"] == pytest.approx(2 / 3)
    grpo = by[("GRPO, seed 1", "world")]
    assert grpo["exact_edit"] == {"mean": 0.3, "change": 0.1, "change_se": 0.05} and grpo["seed"] == 1
    assert "| best-of-8 | `good` | 66.7 (+33.3 ± 33.3) |" in done.stdout


def test_files_of_other_pairs_are_refused(tmp_path):
    first = write_pairs(tmp_path / "a.jsonl", [[0] * 8] * 2, [[1, 0, 0, 0, 0, 0, 0, 0], [0] * 8])
    other = write_pairs(tmp_path / "b.jsonl", [[0] * 8] * 2, [[0] * 8, [0] * 8])
    done = run("--pairs", f"a={first}", "--pairs", f"b={other}")
    assert done.returncode != 0 and "not the same pairs" in done.stderr


def test_a_file_of_several_runs_names_one(tmp_path):
    exact = [[1, 0, 0, 0, 0, 0, 0, 0], [0] * 8]
    path = tmp_path / "two.jsonl"
    write_pairs(path, [[0, 0, 0, 0, 0, 0, 0, 1]] * 2, exact)
    first = path.read_text()
    write_pairs(path, [[1, 0, 0, 0, 0, 0, 0, 0]] * 2, exact)
    path.write_text(first + path.read_text().replace('"settings": "s"', '"settings": "t"'))  # a second run appended
    done = run("--pairs", f"r={path}")
    assert done.returncode != 0 and "2 runs" in done.stderr and "FILE@SETTINGS" in done.stderr
    rows = {}
    for settings in ("s", "t"):
        done = run("--pairs", f"r={path}@{settings}")
        assert done.returncode == 0, done.stderr
        rows[settings] = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")][-1]
    assert rows["s"]["exact_edit"]["mean"] == 0.0 and rows["t"]["exact_edit"]["mean"] == 0.5  # each run's own picks
