"""The monitor catches what it once missed: GRPO in the world against a reward that pays for deleted objects.

The second shipped world reward learned "fewer objects look cleaner", GRPO taught the editor to delete
objects, and the monitor stayed silent because the old oracle's score rose too. With the fixed oracle as
the judge and its exact-edit / lost-object shares beside its score, such a run must be flagged."""

import json
from pathlib import Path

import pytest
import torch

from editrl.errors import EditRLError
from editrl.rl import GRPOConfig, GRPOTrainer, load_config
from editrl.world import Oracle, make_examples
from editrl.world.hackable import FewerObjectsReward
from editrl.world.scenes import render

GRPO_WORLD = Path(__file__).resolve().parents[2] / "configs" / "grpo" / "world.yaml"


def test_fewer_objects_reward_pays_for_deleting_and_the_oracle_measures_it():
    example = next(e for e in make_examples(50, seed=4, split="test") if len(e.target_scene.objects) >= 2)
    emptied = render(type(example.target_scene)(example.target_scene.background, ()))
    reward = FewerObjectsReward().score([example.source] * 2, [example.instruction] * 2, [example.target, emptied]).score
    assert reward[1] > reward[0]  # the hackable reward prefers deleting everything to the exact target
    measures = Oracle().measures([example.source] * 2, [example.instruction] * 2, [example.target, emptied])
    assert measures["exact_edit"].tolist() == [1.0, 0.0] and measures["lost_object"].tolist() == [0.0, 1.0]
    assert Oracle().score([example.source] * 2, [example.instruction] * 2, [example.target, emptied]).score[1] < 0.7


@pytest.mark.slow
def test_grpo_against_a_hackable_reward_is_flagged(tmp_path):
    torch.manual_seed(0)
    config = load_config(GRPOConfig, GRPO_WORLD, [
        "kl_beta=0", "ema_decay=0", "learning_rate=0.01", "group_size=8", "groups_per_step=2", "batch_size=16",
        "num_iterations=6", "eval_every=2", "eval_prompts=8", "world_train_examples=16", f"output_dir={tmp_path / 'run'}",
        "save_every=100",
    ])
    config.rewards = {"editrl.world.hackable:FewerObjectsReward": 1.0}
    trainer = GRPOTrainer(config)
    trainer.train()
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    evals = [r for r in log if "judge_score" in r]
    assert all({"exact_edit", "lost_object"} <= r.keys() for r in evals)
    # the policy learns to delete: the training reward rises, objects go missing, and the monitor says so
    train = [r["reward_mean"] for r in log if "reward_mean" in r]
    assert max(train[1:]) > train[0]
    flagged = [r for r in log if "hacking_warning" in r]
    assert flagged and any("lost_object" in r["hacking_warning"]["worse"] for r in flagged)
    first = flagged[0]
    assert first["lost_object"] > evals[0]["lost_object"] and first["hacking_warning"]["train_reward_slope"] > 0


def test_the_no_signal_control_scores_pixels_alone():
    """The same image scores the same whatever its source or instruction, other images differently, in [0, 1)."""
    from editrl.world.hackable import NoSignalReward

    examples = make_examples(6, seed=3, split="test")
    reward = NoSignalReward()
    first = reward.score([e.source for e in examples], [e.instruction for e in examples], [e.target for e in examples])
    swapped = reward.score([examples[0].source] * 6, ["Make the background black."] * 6, [e.target for e in examples])
    assert torch.equal(first.score, swapped.score) and torch.equal(first.mu, first.score[:, None].expand(-1, 2))
    assert len(set(first.score.tolist())) == 6 and bool(((first.score >= 0) & (first.score < 1)).all())
    with pytest.raises(EditRLError, match="one length, got 1, 1, 2"):
        reward.score([examples[0].source], [examples[0].instruction], [examples[0].target] * 2)
