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
        return {"oracle": {"mean": oracle, "se": 0.01, "n": 256}, "exact_edit": {"mean": exact, "se": 0.01, "n": 256},
                "lost_object": {"mean": lost, "se": 0.01, "n": 256}}
    assert bench.beyond_noise(change(0.03, 0.03, 0.02))  # lost +0.02 is within 2 SE
    assert not bench.beyond_noise(change(0.03, 0.03, 0.03))  # lost beyond 2 SE
    assert not bench.beyond_noise(change(0.03, 0.015, -0.05))  # exact within 2 SE
    assert not bench.beyond_noise(change(0.015, 0.03, -0.05))  # oracle within 2 SE
    assert not bench.beyond_noise(change(-0.03, 0.03, -0.05))


def test_one_prompt_has_no_standard_error_and_no_verdict(bench):
    change = bench.paired_change({"oracle": np.array([0.2]), "exact_edit": np.array([0.0]), "lost_object": np.array([0.0])},
                                 {"oracle": np.array([0.9]), "exact_edit": np.array([1.0]), "lost_object": np.array([0.0])})
    assert change["exact_edit"]["n"] == 1 and np.isnan(change["exact_edit"]["se"])
    assert bench.beyond_noise(change) is None


def test_train_measured_pairs_the_evaluation_before_training_with_the_one_after(bench):
    """A trainer whose evaluation samples are the unchanged sources before training and the exact targets after:
    every prompt becomes exactly right (+1 each, no spread), measured by the real oracle."""
    from editrl.world import Oracle, make_examples

    examples = make_examples(4, seed=0, split="test")

    class Trainer:
        trained = False

        def eval_samples(self):
            edits = [e.target if self.trained else e.source for e in examples]
            return [e.source for e in examples], [e.instruction for e in examples], edits

        def train(self):
            self.trained = True

    change, seconds = bench.train_measured(Trainer(), Oracle())
    assert change["exact_edit"]["mean"] == 1.0 and change["exact_edit"]["se"] == 0.0 and change["exact_edit"]["n"] == 4
    assert change["oracle"]["mean"] > 0.3 and seconds >= 0.0
