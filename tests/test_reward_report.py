"""benchmarks/reward_report.py: bench accuracy, best-of-8 lift in exact edits and hackability per reward."""

import json

import numpy as np
import pytest
import torch

from editrl.errors import EditRLError
from editrl.reward.output import RewardOutput


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("reward_report")


class Given:
    """Scores fixed in advance (the candidates' order)."""

    def __init__(self, scores):
        self.scores = torch.tensor(scores, dtype=torch.float32)

    def score(self, sources, instructions, edits, batch_size=None):
        s = self.scores[: len(edits)]
        return RewardOutput(mu=s[:, None], sigma=torch.zeros(len(s), 1), score=s, score_sigma=torch.zeros(len(s)))


def test_best_of_8_lift_is_the_pick_minus_the_mean_of_the_8_paired_per_prompt(bench):
    exact = np.zeros((3, 8))
    exact[0, [2, 5]] = 1  # prompt 0: the reward picks seed 5, exact; one sample is exact 2 times in 8
    exact[1, 0] = 1  # prompt 1: the reward picks seed 3, not exact
    exact[2, :] = 1  # prompt 2: every sample exact
    scores = np.zeros((3, 8))
    scores[0, 5], scores[1, 3], scores[2, 7] = 1, 1, 1
    candidates = {"sources": [None] * 24, "instructions": ["x"] * 24, "images": [None] * 24, "exact": exact}
    out = bench.best_of_8(Given(scores.ravel().tolist()), candidates, batch_size=8)
    lifts = np.array([1 - 2 / 8, 0 - 1 / 8, 0.0])
    assert out["exact_one_sample"] == pytest.approx((2 / 8 + 1 / 8 + 1) / 3)
    assert out["exact_best_of_8"] == pytest.approx(2 / 3)
    assert out["lift"] == pytest.approx(lifts.mean())
    assert out["lift_se"] == pytest.approx(lifts.std(ddof=1) / np.sqrt(3))
    assert out["prompts"] == 3


def test_benches_are_named_by_their_authors_and_the_editscore_one_is_refused(bench, tmp_path):
    assert bench.BENCHES["editreward-bench-tiger"][1] == "EditReward-Bench (TIGER-Lab, K-way)"
    (tmp_path / "b.parquet").write_bytes(b"")
    with pytest.raises(EditRLError, match=r"EditReward-Bench \(EditScore, 13 subtasks\) is not supported"):
        bench.parse_bench(f"{tmp_path / 'b.parquet'}:editreward-bench-editscore")
    with pytest.raises(EditRLError, match="expected FILE:NAME with NAME one of"):
        bench.parse_bench(f"{tmp_path / 'b.parquet'}:pairs")
    with pytest.raises(EditRLError, match="no such file"):
        bench.parse_bench(f"{tmp_path / 'nothing.parquet'}:aurora")


def test_the_report_on_the_oracle_and_a_reward_that_pays_for_deleting_objects(bench, tmp_path):
    from editrl.world.datasets import make_benchmark

    make_benchmark(tmp_path / "kway", n_groups=2)
    specs = ["oracle", "editrl.world.hackable:FewerObjectsReward"]
    doc = tmp_path / "report.md"
    result = bench.main([*specs, "--bench", f"{tmp_path / 'kway'}:editreward-bench-tiger", "--prompts", "3",
                         "--rl-images", "3", "--set", "group_size=2", "--set", "groups_per_step=1",
                         "--set", "batch_size=2", "--set", "num_steps=2", "--work", str(tmp_path / "work"),
                         "--doc", str(doc)])
    rows = result["rewards"]
    assert list(rows) == specs and result["candidates"] == 8
    for spec, row in rows.items():
        (b,) = row["benches"]
        assert b["bench"] == "EditReward-Bench (TIGER-Lab, K-way)"
        assert b["value"] == b["metrics"]["overall"]["group_accuracy"] and 0 <= b["value"] <= 1
        bo = row["best_of_8"]
        assert bo["lift"] == pytest.approx(bo["exact_best_of_8"] - bo["exact_one_sample"])
        assert bo["prompts"] == 3
        h = row["hackability"]
        assert h["images"] == 4 and h["iterations"] == 2  # 3 images asked, 2 per iteration
        assert h["lost_object_per_1000_images"] == pytest.approx(h["lost_object_change"] * 1000 / 4)
        assert h["lost_object_per_1000_images_se"] == pytest.approx(h["lost_object_se"] * 1000 / 4)
        assert h["prompts"] == 3
    # the same candidates for every reward; the oracle ranks an exact edit first whenever there is one
    assert rows["oracle"]["best_of_8"]["exact_one_sample"] == rows[specs[1]]["best_of_8"]["exact_one_sample"]
    assert rows["oracle"]["best_of_8"]["exact_best_of_8"] >= rows[specs[1]]["best_of_8"]["exact_best_of_8"]
    oracle_bench = rows["oracle"]["benches"][0]["metrics"]  # the world bench's exact columns are the oracle's scores
    assert oracle_bench["overall"]["group_accuracy"] == oracle_bench["ceiling"]["overall"]["group_accuracy"]
    table = bench.markdown(result).splitlines()
    assert len(table) == 2 + len(specs) and table[2].startswith("| `oracle` |")
    text = doc.read_text()
    assert "python benchmarks/reward_report.py oracle" in text and table[2] in text
    assert json.loads(text.split("```json\n")[1].split("\n```")[0]) == result
