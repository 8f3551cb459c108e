"""Metrics on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from editrl.reward.metrics import (
    accuracy_without_ties,
    group_accuracy,
    kway_accuracy,
    rankdata,
    spearman,
    spearman_per_model,
    tie_calibrated_accuracy,
)

# the example in the official calc_accuracy.py: labels and score differences
LABELS = [1, -1, 0, 1, -1, 0, 1, -1, 0]
DELTAS = [0.8, 0.1, -0.4, 0.3, -0.3, -0.1, 0.3, -0.1, -0.1]


def test_accuracy_without_ties():
    # non-tied pairs 1, 2, 4, 5, 7, 8: only pair 2 has the wrong sign
    assert accuracy_without_ties(LABELS, DELTAS) == pytest.approx(5 / 6)
    assert accuracy_without_ties([1, -1], [0.0, -2.0]) == 0.5  # a zero difference is wrong
    assert math.isnan(accuracy_without_ties([0], [1.0]))


def test_tie_calibrated_accuracy_sweep():
    # eps=0: 5/9; eps=0.1: ties 6, 9 right, pair 8 lost -> 6/9; eps=0.3: 3/9; eps=0.4: 4/9; eps=0.8: 3/9
    acc, eps = tie_calibrated_accuracy(LABELS, DELTAS)
    assert acc == pytest.approx(6 / 9) and eps == pytest.approx(0.1)
    acc, eps = tie_calibrated_accuracy([1, -1, 1], [0.5, -0.2, 0.1])  # no human ties: no threshold helps
    assert acc == 1.0 and eps == 0.0
    acc, eps = tie_calibrated_accuracy([0, 0, 1], [0.0, 0.0, 1.0])  # exact zero differences are ties at eps=0
    assert acc == 1.0 and eps == 0.0


def test_group_accuracy_needs_all_pairs():
    groups = ["a", "a", "a", "b", "b", "b", "c"]
    labels = [1, 1, 1, 1, -1, 1, 0]
    deltas = [0.5, 0.2, 0.1, 0.5, 0.3, 0.1, 0.05]  # group b has one wrong pair; tie c is right at eps 0.1
    assert group_accuracy(groups, labels, deltas, epsilon=0.1) == (2, 3)
    assert group_accuracy(groups, labels, deltas, epsilon=None) == (1, 3)


def test_kway_accuracy_per_k_and_overall():
    ks = [2, 2, 3, 3, 3, 3, 3, 3]
    groups = ["p", "q", "r", "r", "r", "s", "s", "s"]
    labels = [1, 0, 1, 1, -1, 1, 1, 1]
    deltas = [1.0, 0.05, 0.4, 0.6, -0.2, 0.3, -0.1, 0.2]
    out = kway_accuracy(ks, groups, labels, deltas)
    # K=2: eps=0.05 makes the tie right and keeps the other pair: 2/2 pairs, 2/2 groups
    assert out["k2"]["pairwise_accuracy"] == 1.0 and out["k2"]["epsilon"] == pytest.approx(0.05)
    assert out["k2"]["group_accuracy"] == 1.0 and out["k2"]["groups"] == 2
    # K=3: group r all right, group s has one wrong sign
    assert out["k3"]["group_accuracy"] == 0.5 and out["k3"]["pairs"] == 6
    assert out["k3"]["pairwise_accuracy_without_ties"] == pytest.approx(5 / 6)
    assert out["overall"]["group_accuracy"] == pytest.approx(3 / 4) and out["overall"]["pairs"] == 8
    assert out["overall"]["pairwise_accuracy"] == pytest.approx(7 / 8)


def test_spearman_by_hand():
    assert rankdata([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 - 6 * 2 / (4 * 15)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(math.sqrt(0.9))  # average ranks for ties
    assert math.isnan(spearman([1, 1], [1, 2]))
    out = spearman_per_model(["m1"] * 4 + ["m2"] * 3 + ["m3"] * 2, [1, 2, 3, 4, 3, 2, 1, 5, 5], [1, 3, 2, 4, 1, 2, 3, 1, 2])
    assert out["per_model"] == {"m1": pytest.approx(0.8), "m2": pytest.approx(-1.0), "m3": None}
    assert out["average"] == pytest.approx(-0.1)
