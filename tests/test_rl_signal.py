"""benchmarks/rl_signal.py: the within-group figures follow the reward's order, and only mixed groups count."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SPEC = importlib.util.spec_from_file_location("rl_signal", Path(__file__).resolve().parents[1] / "benchmarks" / "rl_signal.py")
rl_signal = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(rl_signal)

EXACT = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 1], [1, 1, 1, 1]], dtype=float)
LOST = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=float)


def test_a_reward_that_ranks_exact_first_has_auc_one_and_its_reverse_zero():
    good = np.array([[3.0, 1, 2, 0], [0, 1, 2, 3], [5, 6, 1, 7], [4, 4, 4, 4]])
    record = rl_signal.signal({"good": good, "reversed": -good}, EXACT, LOST)
    assert record["good"]["auc_exact"] == 1.0 and record["reversed"]["auc_exact"] == 0.0
    assert record["good"]["groups"] == 2  # groups with no exact sample, or no wrong one, carry nothing about exactness
    assert record["good"]["top_pick_exact"] == pytest.approx(3 / 4)  # group 1 has no exact sample to pick
    assert record["mixed_groups"] == pytest.approx(2 / 4) and record["groups_with_an_exact_sample"] == pytest.approx(3 / 4)
    assert record["exact_edit"] == pytest.approx(8 / 16) and record["lost_object"] == pytest.approx(2 / 16)
    # the std within each group (population), averaged: not the std of the whole batch
    assert record["good"]["group_reward_std"] == pytest.approx(np.mean([np.std(g) for g in good]))
    # kept objects: group 0 ranks its lost sample (1.0) above one kept (0.0) once in three; group 1 ranks it last
    assert record["good"]["auc_kept_objects"] == pytest.approx(np.mean([2 / 3, 1.0]))


def test_ties_count_half_and_a_flat_reward_is_chance():
    flat = np.zeros((4, 4))
    record = rl_signal.signal({"flat": flat}, EXACT, LOST)
    assert record["flat"]["auc_exact"] == 0.5 and record["flat"]["group_reward_std"] == 0.0
    assert rl_signal.within_group_auc(np.array([[1.0, 1.0, 0.0]]), np.array([[1, 0, 0]])) == [0.75]


def test_each_dimension_of_a_reward_is_measured_beside_its_fused_score():
    import torch

    from editrl.reward.output import RewardOutput

    mu = torch.tensor([[1.0, -4.0], [2.0, 9.0], [3.0, 0.0], [4.0, 1.0]])
    out = RewardOutput(mu=mu, sigma=torch.ones(4, 2), score=mu.mean(1), score_sigma=torch.ones(4))
    values = rl_signal.reward_values("r", out, (2, 2))
    assert set(values) == {"r", "r:instruction_following", "r:visual_quality"}
    np.testing.assert_allclose(values["r:instruction_following"], [[1.0, 2.0], [3.0, 4.0]])  # column 0, not 1
    np.testing.assert_allclose(values["r"], [[-1.5, 5.5], [1.5, 2.5]])
    one = RewardOutput(mu=mu[:, :1], sigma=torch.ones(4, 1), score=mu[:, 0], score_sigma=torch.ones(4), dimensions=("s",))
    assert set(rl_signal.reward_values("o", one, (2, 2))) == {"o"}  # a single-dimension reward only once
