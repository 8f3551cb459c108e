"""The best-of-N benchmark's bookkeeping (selection from cached scores, the goal check) and a tiny run."""

from __future__ import annotations

import json
from argparse import Namespace

import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("best_of_n")


def test_summarise_selects_by_reward_and_checks_the_goal(bench):
    records = [
        {"reward_values": [0.1, 0.9, 0.5], "oracle": [0.2, 0.4, 0.8], "oracle_if": [0.5, 0.1, 0.3], "nfe_per_candidate": 4,
         "exact_edit": [0.0, 0.0, 1.0], "lost_object": [1.0, 0.0, 0.0],
         "halving": [{"spec": "3/0.5", "n": 3, "nfe": 6, "reward_calls": 5, "oracle": 0.8, "oracle_if": 0.3, "exact_edit": 1.0,
                      "lost_object": 0.0}]},
        {"reward_values": [0.7, 0.1, 0.2], "oracle": [0.6, 0.9, 0.1], "oracle_if": [0.2, 0.0, 0.7], "nfe_per_candidate": 4,
         "exact_edit": [0.0, 1.0, 0.0], "lost_object": [0.0, 0.0, 1.0],
         "halving": [{"spec": "3/0.5", "n": 3, "nfe": 6, "reward_calls": 5, "oracle": 0.6, "oracle_if": 0.2, "exact_edit": 0.0,
                      "lost_object": 0.0}]},
    ]
    rows = bench.summarise(records, Namespace(max_n=3, keep=0.5))
    by = {(r.get("method"), r.get("n")): r for r in rows if "method" in r}
    assert by[("single", 1)]["oracle_score"] == pytest.approx((0.2 + 0.6) / 2)
    assert by[("best_of_n", 2)]["oracle_score"] == pytest.approx((0.4 + 0.6) / 2)  # reward argmax of the first 2
    assert by[("oracle_best_of_n", 2)]["oracle_score"] == pytest.approx((0.4 + 0.9) / 2)  # the ceiling
    assert by[("best_of_n", 3)]["nfe"] == 12 and by[("halving", 3)]["nfe"] == 6
    # the second measures are those of the selected edit, not of the best one
    assert by[("single", 1)]["exact_edit"] == 0.0 and by[("single", 1)]["lost_object"] == 0.5
    assert by[("best_of_n", 2)]["lost_object"] == 0.0 and by[("oracle_best_of_n", 2)]["exact_edit"] == 0.5
    assert by[("best_of_n", 3)]["exact_edit"] == 0.0 and by[("oracle_best_of_n", 3)]["exact_edit"] == 1.0
    assert by[("halving", 3)]["exact_edit"] == 0.5
    # the oracle's instruction following of the selected edit, and the ceiling that ranks by it
    assert by[("best_of_n", 2)]["oracle_if"] == pytest.approx((0.1 + 0.2) / 2)
    assert by[("oracle_if_best_of_n", 3)]["oracle_if"] == pytest.approx((0.5 + 0.7) / 2)
    assert by[("oracle_if_best_of_n", 3)]["oracle_score"] == pytest.approx((0.2 + 0.1) / 2)  # its fused score, not the best
    assert by[("halving", 3)]["oracle_if"] == pytest.approx(0.25)
    # pairs with an exact candidate among the first n: the exact-edit ceiling of any reward
    assert [by[("best_of_n", n)]["exact_available"] for n in (2, 3)] == [0.5, 1.0] == [by[("oracle_best_of_n", n)]["exact_available"] for n in (2, 3)]
    assert by[("single", 1)]["exact_available"] == 0.0
    assert all("goal" not in r for r in rows)  # no best-of-8 at max_n = 3: no goal line


def test_parse_halving(bench):
    n, config = bench.parse_halving("16@0:4,2:1", 0.5)
    assert n == 16 and config.schedule(16, 8) == [(0, 4), (2, 1)]
    n, config = bench.parse_halving("8/0.5", 0.5)
    assert n == 8 and config.schedule(8, 8) == [(1, 4), (3, 2), (4, 1)]


def test_tiny_run_resumes(bench, flux_pipe, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "editor"
    flux_pipe.save_pretrained(folder)
    (folder / "editrl_editor.json").write_text(json.dumps({"resolution": 64, "default_steps": 4}))
    argv = ["best_of_n.py", "--editor", str(folder), "--reward", "oracle", "--n-pairs", "2", "--max-n", "8",
            "--halving", "8@0:2,1:1", "--pairs-file", str(tmp_path / "pairs.jsonl"), "--out", str(tmp_path / "out.jsonl"),
            "--plot", str(tmp_path / "plot.png"), "--device", "cpu"]
    monkeypatch.setattr("sys.argv", argv)
    bench.main()
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    goal = lines[-1]
    gap = lines[-2]
    assert set(gap["gap_closed"]) == {"oracle_score", "exact_edit"}
    assert set(gap["lost_object"]) == {"single", "best_of_8", "oracle_best_of_8", "oracle_if_best_of_8"}
    # step 0: 8 candidates, then 2 at step 1, then 1 for steps 2-3
    assert goal["best_of_8_nfe"] == 32 and goal["best_halving_within_half_nfe"]["nfe"] == 8 + 2 + 1 * 2
    assert (tmp_path / "plot.png").stat().st_size > 0
    pairs = (tmp_path / "pairs.jsonl").read_text()
    bench.main()  # everything cached: nothing recomputed, nothing appended
    assert (tmp_path / "pairs.jsonl").read_text() == pairs
    assert [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()][1:] == lines[1:]


def test_gap_closed_by_best_of_8_in_score_and_exact_edits(bench):
    # one pair, 8 candidates: one sample 0.2 (not exact); reward picks candidate 3 (0.6, not exact); the oracle's
    # best is candidate 7 (1.0, exact): best-of-8 closes (0.6 - 0.2) / (1.0 - 0.2) = 50% of the score gap, 0% of exact;
    # in instruction following: one sample 0.1, the pick 0.4, the best candidate 6 (0.7): (0.4 - 0.1) / (0.7 - 0.1) = 50%
    record = {"reward_values": [0, 0, 0, 9, 0, 0, 0, 1], "oracle": [0.2, 0.1, 0.1, 0.6, 0.1, 0.1, 0.1, 1.0],
              "oracle_if": [0.1, 0.0, 0.0, 0.4, 0.0, 0.0, 0.7, 0.6],
              "exact_edit": [0.0] * 7 + [1.0], "lost_object": [0.0, 0, 0, 1.0, 0, 0, 0, 0], "nfe_per_candidate": 2,
              "halving": []}
    rows = bench.summarise([record, dict(record)], Namespace(max_n=8, keep=0.5))
    gap = next(r for r in rows if "gap_closed" in r)
    assert gap["gap_closed"]["oracle_score"] == pytest.approx(0.5) and gap["gap_closed"]["exact_edit"] == 0.0
    assert gap["instruction_following_gap_closed"] == pytest.approx(0.5)
    assert gap["lost_object"] == {"single": 0.0, "best_of_8": 1.0, "oracle_best_of_8": 0.0, "oracle_if_best_of_8": 0.0} and not gap["met"]


def test_cached_pairs_are_not_reused_once_the_editor_or_reward_changes(bench):
    """The cache key names the editor's denoiser weights and the reward's identity: a retrained editor or reward under
    the same name (the shipped world models replaced) gets a new key; the same models keep it."""
    from types import SimpleNamespace

    import torch

    torch.manual_seed(0)
    editor = SimpleNamespace(transformer=torch.nn.Linear(4, 4))
    reward = SimpleNamespace(identity=lambda: {"class": "R", "weights": "w1"})
    args = Namespace(editor="world", model=None, reward="world", steps=None, max_n=8, halving=["8/0.5"], keep=0.5,
                     select="mean", seed=0)
    first = bench.settings_key(args, editor, reward)
    assert bench.settings_key(args, editor, reward) == first
    with torch.no_grad():
        editor.transformer.weight[0, 0] += 1.0
    assert bench.settings_key(args, editor, reward) != first
    with torch.no_grad():
        editor.transformer.weight[0, 0] -= 1.0
    assert bench.settings_key(args, editor, reward) == first
    assert bench.settings_key(args, editor, SimpleNamespace(identity=lambda: {"class": "R", "weights": "w2"})) != first
