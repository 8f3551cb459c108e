"""The adaptive search: its budget is never exceeded (1, 2 and 3 guidance branches), NFE is counted exactly, the
stop rule fires only on a confidently good candidate, candidates are reproducible from their seeds, scores.json
logs every decision, and the tiny Kontext and Qwen-Image-Edit builds run it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from editrl.errors import EditRLError
from editrl.reward.output import RewardOutput
from editrl.sampler.adaptive import AdaptiveConfig, round_cost, run_adaptive
from editrl.sampler.best_of_n import best_of_n
from editrl.sampler.editors.base import EditCondition, Editor, seed_generators

STEPS = 4


class CountingEditor(Editor):
    """A pure-torch editor with ``branches`` guidance branches that counts every denoiser row it evaluates
    (``calls``), so the search's NFE can be checked against what really ran."""

    name = "counting"

    def __init__(self, branches: int):
        self.branches, self.calls = branches, 0
        self.resolution, self.default_steps, self.default_guidance, self._warned = 16, STEPS, 1.0, set()

    def _encode(self, sources, instructions, guidance):
        return EditCondition(batched={"target": torch.full((len(sources), 4, 3), 0.5)}, shared={"guidance": guidance},
                             sources=list(sources), instructions=list(instructions))

    def step_nfe(self, cond):
        return self.branches

    def initial_noise(self, seeds, size=None):
        return torch.stack([torch.randn(4, 3, generator=g) for g in seed_generators(seeds)])

    def sigmas(self, num_steps=None, size=None):
        return torch.linspace(1.0, 0.0, int(num_steps or self.default_steps) + 1)

    def velocity(self, x, sigma, cond):
        self.calls += len(x) * self.branches
        return x - cond.batched["target"]

    def decode(self, x, size=None):
        pixels = (x.mean(dim=(1, 2)).sigmoid() * 255).round().to(torch.uint8).tolist()
        return [Image.new("RGB", (8, 8), (p, p, p)) for p in pixels]


class FixedReward:
    """Every edit gets the same fused score ``mu`` and sigma ``sigma``: the stop rule's input, controlled."""

    dimensions = ("instruction_following",)

    def __init__(self, mu: float, sigma: float):
        self.mu, self.sigma = mu, sigma

    def score(self, sources, instructions, edits, batch_size=None):
        mu, sigma = torch.full((len(edits), 1), self.mu), torch.full((len(edits), 1), self.sigma)
        return RewardOutput(mu, sigma, mu[:, 0], sigma[:, 0], self.dimensions)


def _search(editor, reward, **config):
    cond = editor.encode([Image.new("RGB", (16, 16))], ["make it red"])
    return run_adaptive(editor, reward, cond, 0, config=AdaptiveConfig(**config), progress=False)


def test_round_plan_and_cost():
    config = AdaptiveConfig()  # 8 seeds; 2 kept at step 0, 1 at step 2 of 8
    assert config.plan(8, 8) == [(0, 2), (2, 1)]
    assert round_cost(config.plan(8, 8), 8, 8, 1) == 8 + 2 * 2 + 1 * 5
    assert round_cost(config.plan(8, 8), 8, 8, 3) == 3 * 17  # every guidance branch counts
    assert config.plan(2, 8) == [(2, 1)] and round_cost([(2, 1)], 2, 8, 1) == 2 * 3 + 5  # nobody pruned at step 0
    assert config.plan(1, 8) == [] and round_cost([], 1, 8, 2) == 16  # one seed: a plain candidate
    assert AdaptiveConfig(prune_fraction=0.5, survivors=(4, 2)).plan(16, 4) == [(0, 4), (2, 2)]
    assert config.plan(8, 2) == [(0, 2)]  # no preview on the last step: its preview is the final image
    assert config.resolved_budget(8, 2) == 8 * 8 * 2  # default: best-of-8's cost


@pytest.mark.parametrize("branches", [1, 2, 3])
def test_budget_is_never_exceeded_and_nfe_is_what_ran(toy_reward, branches):
    full = STEPS * branches
    for budget in [full, full + 1, 2 * full - 1, 13 * branches, 37, 64, 100]:
        if budget < full:
            continue
        editor = CountingEditor(branches)
        result = _search(editor, toy_reward, budget=budget)
        assert result.nfe == editor.calls == sum(c.nfe for c in result.candidates) <= budget
        assert result.stopped_because == "budget"
        assert budget - result.nfe < full  # it stops only when not even one more candidate fits
        assert sum(r["nfe"] for r in result.rounds) == result.nfe
        assert [c.seed for c in result.candidates] == list(range(len(result.candidates)))  # fresh seeds every round
        assert [c.round for c in result.candidates] == [r["round"] for r in result.rounds for _ in r["seeds"]]


def test_budget_below_one_candidate_is_one_error(toy_reward):
    with pytest.raises(EditRLError, match=r"budget: 7 NFE is less than one candidate's full cost \(4 steps x 2 guidance "
                                          r"branches = 8 NFE\)"):
        _search(CountingEditor(2), toy_reward, budget=7)
    for bad, message in [(dict(stop="lcb"), "good: stop rule lcb needs"), (dict(stop="never"), "stop: expected one of"),
                         (dict(survivors=(1, 2)), "survivors"), (dict(round_size=0), "round_size"), (dict(z=-1), "z:")]:
        with pytest.raises(EditRLError, match=message):
            AdaptiveConfig(**bad)


@pytest.mark.parametrize("mu, sigma, z, stops", [
    (0.8, 0.1, 1.0, True),    # lower bound 0.7 >= 0.65: confidently good
    (0.8, 0.2, 1.0, False),   # the same score, less sure (bound 0.6): keep searching
    (0.8, 0.2, 0.0, True),    # z = 0: a plain score threshold, what a reward without sigma gets
    (0.6, 0.0, 1.0, False),   # sure, but not good enough
])
def test_stop_rule_fires_only_when_confidently_good(mu, sigma, z, stops):
    editor = CountingEditor(1)
    result = _search(editor, FixedReward(mu, sigma), budget=64, stop="lcb", good=0.65, z=z)
    if stops:
        assert result.stopped_because == "confident" and len(result.rounds) == 1 and result.nfe == 8 + 2 + 1 * 2
    else:
        assert result.stopped_because == "budget" and len(result.rounds) > 1 and 64 - result.nfe < STEPS
    spend = _search(CountingEditor(1), FixedReward(mu, sigma), budget=64, stop="budget")  # never stops early
    assert spend.stopped_because == "budget" and len(spend.rounds) > 1


def test_candidates_are_reproducible_and_scores_json_logs_the_search(flux_editor, toy_reward, source, tmp_path):
    result = best_of_n(flux_editor, toy_reward, source, "make it brighter", seeds=[5], num_steps=3, search="adaptive",
                       adaptive=AdaptiveConfig(budget=20, round_size=4, survivors=(2, 1)))
    # rounds of 4 seeds (4 + 2 + 1 = 7 NFE: all at step 0, 2 at step 1, 1 at step 2), 4 more, then the 6 NFE left
    # pay for 3 seeds (3 + 2 + 1)
    assert result.nfe == 20 == sum(c.nfe for c in result.candidates)
    assert [r["nfe"] for r in result.adaptive["rounds"]] == [7, 7, 6] and len(result.candidates) == 11
    assert sorted(c.seed for c in result.candidates) == list(range(5, 5 + len(result.candidates)))
    finished = [c for c in result.candidates if c.pruned_at is None]
    assert len(finished) == len(result.adaptive["rounds"]) and result.best in finished
    assert result.best.value == max(c.value for c in finished)
    images = flux_editor.sample([source], "make it brighter", [c.seed for c in finished], num_steps=3).images
    for candidate, alone in zip(finished, images):  # each finished candidate is its seed's own sample
        assert np.abs(np.asarray(alone, dtype=int) - np.asarray(candidate.image, dtype=int)).max() <= 1
    result.save(tmp_path)
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["search"] == "adaptive" and scores["nfe"] == result.nfe
    log = scores["adaptive"]
    assert log["budget"] == 20 and log["stopped_because"] == "budget" and log["nfe"] == result.nfe
    assert log["rounds"][0] == {"round": 0, "seeds": [5, 6, 7, 8], "pruned_at": [[0, 2], [1, 1]], "nfe": 4 + 2 + 1,
                                "best_seed": log["rounds"][0]["best_seed"], "best_value": log["rounds"][0]["best_value"]}
    assert scores["run"]["adaptive"]["budget"] == 20 and scores["run"]["seeds"] == sorted(c["seed"] for c in scores["candidates"])
    by_seed = {c["seed"]: c for c in scores["candidates"]}
    assert all(by_seed[s]["round"] == r["round"] for r in log["rounds"] for s in r["seeds"])
    pruned = [c for c in scores["candidates"] if c["pruned_at_step"] is not None]
    assert pruned and all(c["nfe"] == c["pruned_at_step"] + 1 for c in pruned)


def test_tiny_qwen_image_edit_runs_it_with_both_guidance_branches(toy_reward, source):
    from editrl.sampler.editors.qwen_image_edit import QwenImageEditEditor
    from editrl.tiny import tiny_qwen_image_edit

    editor = QwenImageEditEditor(tiny_qwen_image_edit(), resolution=32, default_steps=2, condition_resolution=32)
    result = best_of_n(editor, toy_reward, source, "make it brighter", search="adaptive",
                       adaptive=AdaptiveConfig(budget=13, round_size=4))
    # true CFG: 2 NFE per candidate and step; rounds of 4 seeds: 4 x 2 at step 0, then 2 x 2 -> 12 NFE; 1 left unspent
    assert result.nfe == 12 and result.adaptive["rounds"][0]["pruned_at"] == [[0, 2]]
    assert sum(c.pruned_at is None for c in result.candidates) == 2 and result.best.image.size == (32, 32)


# ----------------------------------------------------------------------------- the command line
def test_cli_adaptive_search_within_its_budget(editor_folder, tmp_path, capsys):
    from editrl.cli import main

    out = tmp_path / "run"
    code = main(["best-of-n", "--editor", str(editor_folder), "--reward", "oracle", "--search", "adaptive",
                 "--budget", "11", "--seed", "3", "--out", str(out), "--device", "cpu"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    # 2 steps: rounds of 8 seeds pruned to 2 on the step-0 preview cost 8 + 2 = 10 NFE; the 1 left pays for nobody
    assert summary["search"] == "adaptive" and summary["nfe"] == 10 and summary["n"] == 8
    scores = json.loads((out / "scores.json").read_text())
    assert scores["adaptive"]["stopped_because"] == "budget" and scores["adaptive"]["rounds"][0]["seeds"] == list(range(3, 11))
    assert sum(c["pruned_at_step"] is None for c in scores["candidates"]) == 2


@pytest.mark.parametrize("argv, message", [
    (["--search", "adaptive", "--budget", "1"], "budget: 1 NFE is less than one candidate's full cost (2 steps x 1 "
                                                "guidance branches = 2 NFE)"),
    (["--budget", "64"], "--budget: only with --search adaptive (--search full draws --n candidates)"),
    (["--search", "halving", "--good", "-0.1"], "--good: only with --search adaptive"),
])
def test_cli_adaptive_errors_are_one_line(editor_folder, tmp_path, argv, message, capsys):
    from editrl.cli import main

    assert main(["best-of-n", "--editor", str(editor_folder), "--reward", "oracle", "--out", str(tmp_path / "x"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


# ----------------------------------------------------------------------------- the benchmark
@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("best_of_n")


def test_benchmark_parses_adaptive_settings(bench):
    config = bench.parse_adaptive("96/-0.05@16:4,1")
    assert (config.budget, config.stop, config.good, config.round_size, tuple(config.survivors)) == (96, "lcb", -0.05, 16, (4, 1))
    config = bench.parse_adaptive("64")
    assert (config.budget, config.stop, config.good, config.round_size) == (64, "budget", None, 8)


def test_benchmark_adaptive_rows_pair_against_best_of_n(bench):
    # 16 candidates per pair; the reward picks candidate 0 among the first 8 and candidate 9 among 16
    def record(exact_0, exact_9, adaptive_exact, nfe):
        exact = [0.0] * 16
        exact[0], exact[9] = exact_0, exact_9
        return {"reward_values": [1.0] + [0.0] * 8 + [2.0] + [0.0] * 6, "exact_edit": exact, "nfe_per_candidate": 8,
                "adaptive": [{"spec": "64", "nfe": nfe, "reward_calls": 30, "rounds": 4, "stopped_because": "budget",
                              "oracle": 0.5, "oracle_if": 0.2, "exact_edit": adaptive_exact, "lost_object": 0.0}]}

    records = [record(0.0, 1.0, 1.0, 64), record(0.0, 0.0, 1.0, 60), record(1.0, 1.0, 0.0, 64), record(0.0, 0.0, 1.0, 64)]
    row, goal = bench.adaptive_rows(records)
    assert row["exact_edit"] == 0.75 and row["nfe"] == 63 and row["nfe_max"] == 64 and row["stopped_confident"] == 0
    # paired differences: against best-of-8 (exact 1/4) +1, +1, -1, +1; against best-of-16 (2/4) 0, +1, -1, +1
    assert row["exact_minus_best_of_8"]["mean"] == pytest.approx(0.5)
    assert row["exact_minus_best_of_8"]["se"] == pytest.approx(np.std([1, 1, -1, 1], ddof=1) / 2)
    assert row["exact_minus_best_of_16"]["mean"] == pytest.approx(0.25)
    assert goal["best_of_8_exact"] == 0.25 and goal["best_of_16_exact"] == 0.5 and goal["best_of_8_nfe"] == 64
    assert goal["met"] is False  # +0.5 but the paired SE is 0.5: not beyond 2 SE
    records += [record(0.0, 0.0, 1.0, 64) for _ in range(12)]
    assert bench.adaptive_rows(records)[-1]["met"] is True
    over = [dict(r, adaptive=[dict(r["adaptive"][0], nfe=70)]) for r in records]  # more NFE than best-of-8: not counted
    assert bench.adaptive_rows(over)[-1]["best_adaptive_within_best_of_8_nfe"] is None


def test_benchmark_tiny_adaptive_run_reuses_its_cache(bench, flux_pipe, tmp_path, monkeypatch):
    folder = tmp_path / "editor"
    flux_pipe.save_pretrained(folder)
    (folder / "editrl_editor.json").write_text(json.dumps({"resolution": 64, "default_steps": 2}))
    pairs = tmp_path / "pairs.jsonl"
    argv = ["best_of_n.py", "--editor", str(folder), "--reward", "oracle", "--n-pairs", "2", "--max-n", "16",
            "--halving", "8@0:2", "--adaptive", "20", "--pairs-file", str(pairs), "--out", str(tmp_path / "out.jsonl"),
            "--plot", str(tmp_path / "plot.png"), "--plot-metric", "exact_edit", "--device", "cpu"]
    monkeypatch.setattr("sys.argv", argv)
    bench.main()
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    (row,) = [r for r in lines if r.get("method") == "adaptive"]
    assert row["spec"] == "20" and row["nfe"] == 20 and row["n_pairs"] == 2  # two rounds of 10 (8 + 2)
    (goal,) = [r for r in lines if r.get("goal", "").startswith("adaptive search")]
    assert goal["best_of_8_nfe"] == 16 and goal["best_adaptive_within_best_of_8_nfe"] is None and not goal["met"]  # 20 > 16
    assert (tmp_path / "plot.png").stat().st_size > 0
    before = pairs.read_text().splitlines()
    monkeypatch.setattr("sys.argv", argv[:argv.index("20") + 1] + ["12"] + argv[argv.index("20") + 1:])
    bench.main()  # a second setting: only its runs are added, the cached ones are reused
    added = pairs.read_text().splitlines()[len(before):]
    assert [json.loads(line)["adaptive_spec"] for line in added] == ["12", "12"]
