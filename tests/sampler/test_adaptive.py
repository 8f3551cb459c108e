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
