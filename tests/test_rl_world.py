"""benchmarks/rl_world.py: the paired change of the held-out measures and the RL goal judged with its noise."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("rl_world")


def test_paired_change_is_the_mean_and_standard_error_of_the_per_prompt_differences(bench):
    before = {"exact_edit": np.array([0.0, 1.0, 0.0, 0.0]), "oracle": np.array([0.2, 0.9, 0.4, 0.3])}
    after = {"exact_edit": np.array([1.0, 1.0, 0.0, 1.0]), "oracle": np.array([0.5, 0.8, 0.4, 0.7])}
    change = bench.paired_change(before, after)
    diff = np.array([0.3, -0.1, 0.0, 0.4])
    assert change["oracle"]["mean"] == pytest.approx(0.15)
    assert change["oracle"]["se"] == pytest.approx(diff.std(ddof=1) / 2)
    # paired: a shift shared by every prompt has no spread (unpaired, the two samples' spreads would add up)
    shifted = bench.paired_change(before, {k: v + 0.1 for k, v in before.items()})
    assert shifted["oracle"]["mean"] == pytest.approx(0.1) and shifted["oracle"]["se"] == pytest.approx(0.0)
    assert change["exact_edit"]["mean"] == pytest.approx(0.5)


def test_the_goal_needs_both_rises_beyond_2se_and_no_rise_of_lost_objects_beyond_2se(bench):
    def change(oracle, exact, lost):
        return {"oracle": {"mean": oracle, "se": 0.01}, "exact_edit": {"mean": exact, "se": 0.01},
                "lost_object": {"mean": lost, "se": 0.01}}
    assert bench.beyond_noise(change(0.03, 0.03, 0.02))  # lost +0.02 is within 2 SE
    assert not bench.beyond_noise(change(0.03, 0.03, 0.03))  # lost beyond 2 SE
    assert not bench.beyond_noise(change(0.03, 0.015, -0.05))  # exact within 2 SE
    assert not bench.beyond_noise(change(0.015, 0.03, -0.05))  # oracle within 2 SE
    assert not bench.beyond_noise(change(-0.03, 0.03, -0.05))
