import pytest
import torch

from editrl.errors import EditRLError
from editrl.rl.advantages import compute_advantages


def test_group_mode_by_hand():
    rewards = torch.tensor([1.0, 3.0, 10.0, 10.0, 0.0, 2.0, 4.0, 6.0])
    groups = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    adv = compute_advantages(rewards, groups, mode="group", eps=0.0)
    # group 0: mean 2, std 1 -> -1, +1; group 1: std 0 -> dropped; group 2: -1, +1; group 3: -1, +1
    torch.testing.assert_close(adv.values, torch.tensor([-1.0, 1.0, 0.0, 0.0, -1.0, 1.0, -1.0, 1.0]))
    assert adv.keep.tolist() == [True, True, False, False, True, True, True, True]
    torch.testing.assert_close(adv.group_std, torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]))


def test_batch_mode_uses_global_mean_and_std():
    rewards = torch.tensor([0.0, 2.0, 4.0, 6.0])
    groups = torch.tensor([0, 0, 1, 1])
    adv = compute_advantages(rewards, groups, mode="batch", eps=0.0)
    std = (torch.tensor([9.0, 1.0, 1.0, 9.0]).mean()).sqrt()  # population std around mean 3
    torch.testing.assert_close(adv.values, (rewards - 3.0) / std)


def test_clipping_and_eps():
    rewards = torch.tensor([0.0] * 99 + [1.0])
    groups = torch.zeros(100, dtype=torch.long)
    adv = compute_advantages(rewards, groups, clip=5.0)
    # the outlier's z-score is ~9.95 -> clipped to 5
    assert float(adv.values[-1]) == 5.0
    assert float(adv.values[0]) == pytest.approx(-0.1005, abs=1e-3)


def test_near_zero_std_groups_dropped_with_threshold():
    rewards = torch.tensor([0.50, 0.51, 0.0, 1.0])
    groups = torch.tensor([7, 7, 3, 3])  # arbitrary (non-contiguous) ids
    adv = compute_advantages(rewards, groups, min_group_std=0.05)
    assert adv.keep.tolist() == [False, False, True, True]
    assert adv.values[:2].tolist() == [0.0, 0.0]


def test_solved_groups_dropped_above_max_group_mean():
    rewards = torch.tensor([1.0, 0.8, 0.0, 1.0, 0.9, 1.0])
    groups = torch.tensor([0, 0, 1, 1, 2, 2])  # means 0.9, 0.5, 0.95
    adv = compute_advantages(rewards, groups, mode="group", eps=0.0, max_group_mean=0.9)
    assert adv.keep.tolist() == [True, True, True, True, False, False]  # a mean equal to the bound is kept
    assert adv.values[4:].tolist() == [0.0, 0.0]
    torch.testing.assert_close(adv.values[:4], torch.tensor([1.0, -1.0, -1.0, 1.0]))
    assert compute_advantages(rewards, groups, mode="group").keep.all()  # off by default


def test_bad_mode_and_shapes():
    with pytest.raises(EditRLError, match="mode"):
        compute_advantages(torch.zeros(2), torch.zeros(2), mode="token")
    with pytest.raises(EditRLError, match="group_ids"):
        compute_advantages(torch.zeros(2), torch.zeros(3))


def test_max_group_mean_must_be_finite(tmp_path):
    from toys import small_config

    from editrl.rl import GRPOConfig

    with pytest.raises(EditRLError, match="max_group_mean"):
        small_config(GRPOConfig, tmp_path, max_group_mean=float("nan")).validate()
