"""best_of_n ranking, selection rules, the pruned search's costs and faithfulness, and saved outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from editrl.errors import EditRLError
from editrl.sampler.best_of_n import best_of_n
from editrl.sampler.search import HalvingConfig, run_search
from editrl.sampler.selection import LEGACY_RULES, check_select, selection_values

N, STEPS = 6, 4


def test_full_best_of_n_ranks_by_reward(flux_editor, toy_reward, source):
    result = best_of_n(flux_editor, toy_reward, source, "make it brighter", n=N, seeds=range(10, 10 + N), num_steps=STEPS)
    assert [c.rank for c in result.candidates] == list(range(1, N + 1))
    assert sorted(c.seed for c in result.candidates) == list(range(10, 10 + N))
    assert result.nfe == N * STEPS and result.reward_calls == N and toy_reward.items == N
    rescored = toy_reward.score([source] * N, ["x"] * N, result.images).score.tolist()
    assert rescored == sorted(rescored, reverse=True)  # best first, by the reward of the returned images
    assert [c.record["score"] for c in result.candidates] == pytest.approx(rescored, abs=1e-6)
    assert all(c.nfe == STEPS and c.pruned_at is None for c in result.candidates)
    # a candidate is the editor's own sample for its seed alone
    alone = flux_editor.sample([source], "make it brighter", [result.best.seed], num_steps=STEPS).images[0]
    assert np.abs(np.asarray(alone, dtype=int) - np.asarray(result.best.image, dtype=int)).max() <= 1


@pytest.mark.parametrize("select", ["lcb", "instruction_following", "visual_quality", "if", "vq"])
def test_selection_rules(flux_editor, toy_reward, source, select):
    result = best_of_n(flux_editor, toy_reward, source, "make it red", n=4, num_steps=2, select=select, k=2.0)
    records = [c.record for c in result.candidates]
    expected = {
        "lcb": [r["score"] - 2.0 * r["score_sigma"] for r in records],
        "instruction_following": [r["mu_instruction_following"] for r in records],
        "visual_quality": [r["mu_visual_quality"] for r in records],
    }[LEGACY_RULES.get(select, select)]
    assert result.select == LEGACY_RULES.get(select, select)  # the old words still work, recorded by their new names
    assert [c.value for c in result.candidates] == pytest.approx(expected, abs=1e-6)
    assert expected == sorted(expected, reverse=True)


def test_selection_values_errors(toy_reward, source):
    out = toy_reward.score([source], ["x"], [source])
    with pytest.raises(EditRLError, match="select: expected one of fused, lcb, instruction_following, visual_quality, got 'max'"):
        selection_values(out, "max")
    with pytest.raises(EditRLError, match="select: expected one of fused, lcb, quality, got 'visual_quality'"):
        check_select("visual_quality", ("quality",))
    assert check_select("quality", None) == "quality" and check_select("mean") == "fused"
    out.dimensions = ("overall", "other")
    with pytest.raises(EditRLError, match="select: expected one of fused, lcb, overall, other, got 'visual_quality'"):
        selection_values(out, "vq")


def test_halving_schedule():
    assert HalvingConfig().schedule(8, 8) == [(1, 4), (3, 2), (4, 1)]
    assert HalvingConfig(horizon=1.0).schedule(8, 12) == [(4, 4), (8, 2), (11, 1)]
    assert HalvingConfig(min_survivors=2).schedule(8, 8) == [(2, 4), (4, 2)]
    assert HalvingConfig(prune_steps=[2, 5]).schedule(8, 8) == [(2, 4), (5, 2)]
    assert HalvingConfig(prune_steps=[0, 2], survivors=[4, 1]).schedule(16, 8) == [(0, 4), (2, 1)]
    assert HalvingConfig().schedule(8, 4) == [(1, 2), (2, 1)]  # rounds on the same step merge
    assert HalvingConfig().schedule(1, 8) == []
    with pytest.raises(EditRLError, match="keep"):
        HalvingConfig(keep=1.0).schedule(8, 8)
    with pytest.raises(EditRLError, match="prune_steps"):
        HalvingConfig(prune_steps=[9]).schedule(8, 8)
    with pytest.raises(EditRLError, match="survivors"):
        HalvingConfig(prune_steps=[0, 2], survivors=[1, 4]).schedule(8, 8)


def test_halving_costs_less_and_keeps_survivor_trajectories(flux_editor, toy_reward, source):
    seeds = list(range(8))
    cond = flux_editor.encode([source], ["make it brighter"]).repeat_interleave(8)
    config = HalvingConfig(min_survivors=2)  # 8 -> 4 (step 1) -> 2 (step 2) of 4 steps
    full = run_search(flux_editor, toy_reward, cond, seeds, num_steps=STEPS, search="full")
    pruned = run_search(flux_editor, toy_reward, cond, seeds, num_steps=STEPS, search="halving", halving=config)
    assert config.schedule(8, STEPS) == [(1, 4), (2, 2)]
    assert full.nfe == 8 * STEPS and full.reward_calls == 8
    assert pruned.nfe == 8 * 2 + 4 * 1 + 2 * 1 < full.nfe  # steps 0-1 for all, step 2 for 4, step 3 for 2
    assert pruned.reward_calls == 8 + 4 + 2
    assert sum(t.nfe for t in pruned.candidates) == pruned.nfe
    survivors = [t for t in pruned.candidates if t.pruned_at is None]
    assert len(survivors) == 2 and sorted(t.pruned_at for t in pruned.candidates if t.pruned_at is not None) == [1] * 4 + [2] * 2
    for t in survivors:  # pruning never changes a surviving candidate's trajectory
        torch.testing.assert_close(t.latents, full.candidates[t.index].latents, atol=1e-5, rtol=1e-5)
        assert t.value == pytest.approx(full.candidates[t.index].value, abs=1e-3)
    # the survivors are the best previews at step 1 (here with an exactly known ranking)
    first_round = sorted(pruned.candidates, key=lambda t: t.preview_values[0], reverse=True)
    assert {t.index for t in first_round[:4]} >= {t.index for t in survivors}


def test_halving_best_of_n_result(flux_editor, toy_reward, source):
    result = best_of_n(flux_editor, toy_reward, source, "make it brighter", n=4, num_steps=STEPS, search="halving")
    finished = [c for c in result.candidates if c.pruned_at is None]
    assert len(finished) == 1 and result.best is finished[0]
    assert result.nfe < 4 * STEPS and result.nfe == sum(c.nfe for c in result.candidates)
    pruned_steps = [c.pruned_at for c in result.candidates[1:]]
    assert pruned_steps == sorted(pruned_steps, reverse=True)  # later-pruned rank higher


def test_save_writes_every_file(flux_editor, toy_reward, source, tmp_path):
    result = best_of_n(flux_editor, toy_reward, source, "make it red", n=3, seeds=[5, 6, 7], num_steps=2)
    result.save(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["best.png", "candidate_00_seed5.png", "candidate_01_seed6.png", "candidate_02_seed7.png",
                     "contact_sheet.png", "scores.json"]
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["nfe"] == 3 * 2 and scores["best_seed"] == result.best.seed and scores["select"] == "fused"
    entry = scores["candidates"][0]
    assert {"seed", "rank", "score", "score_sigma", "mu_instruction_following", "sigma_visual_quality", "nfe", "file"} <= set(entry)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "best.png")), np.asarray(result.best.image))
    sheet = Image.open(tmp_path / "contact_sheet.png")
    assert sheet.width >= 3 * 160 and sheet.height > 160
    # the best tile (second cell, after the source) is framed in green
    from editrl.sampler.contact_sheet import BEST

    assert sheet.getpixel((172 + 2, 2)) == BEST


def test_bad_arguments(flux_editor, toy_reward, source):
    with pytest.raises(EditRLError, match="expected 3 seeds"):
        best_of_n(flux_editor, toy_reward, source, "x", n=3, seeds=[1])
    with pytest.raises(EditRLError, match="search: expected one of full, halving"):
        best_of_n(flux_editor, toy_reward, source, "x", n=2, search="beam", num_steps=1)
    with pytest.raises(EditRLError, match="instruction"):
        best_of_n(flux_editor, toy_reward, source, "  ", n=2)


def test_non_square_source_keeps_its_aspect_ratio_through_the_pruned_search(flux_editor, toy_reward, make_image):
    """Every candidate, pruned on an x0 preview or run to the end, comes out at the source's 2:1 working size,
    and the best is the editor's own sample of that source for its seed."""
    wide = make_image(8, size=(128, 64))
    result = best_of_n(flux_editor, toy_reward, wide, "make it brighter", n=4, num_steps=STEPS, search="halving")
    assert {c.image.size for c in result.candidates} == {(96, 48)}
    assert any(c.pruned_at is not None for c in result.candidates)
    alone = flux_editor.sample([wide], "make it brighter", [result.best.seed], num_steps=STEPS).images[0]
    assert np.abs(np.asarray(alone, dtype=int) - np.asarray(result.best.image, dtype=int)).max() <= 1
