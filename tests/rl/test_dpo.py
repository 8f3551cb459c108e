import json
import math

import pytest
import torch
from toys import Brightness, small_config

from editrl.errors import EditRLError
from editrl.rl import DPOConfig, DPOTrainer
from editrl.rl.dpo import flow_dpo_loss
from editrl.rl.lora import lora_state


def _log(trainer):
    return [json.loads(line) for line in trainer.log_path.read_text().splitlines()]


def test_flow_dpo_loss_by_hand():
    target_w, target_l = torch.zeros(1, 4, 2), torch.zeros(1, 4, 2)
    ref_w, ref_l = torch.full((1, 4, 2), 1.0), torch.full((1, 4, 2), 1.0)  # ref errors 1 and 1 -> d_ref = 0
    v_w, v_l = torch.full((1, 4, 2), 0.5), torch.full((1, 4, 2), 2.0)      # errors 0.25 and 4 -> d_theta = -3.75
    loss, st = flow_dpo_loss(v_w, v_l, ref_w, ref_l, target_w, target_l, beta=0.1)
    assert float(st["d_theta"]) == pytest.approx(-3.75) and float(st["d_ref"]) == 0.0
    assert float(loss) == pytest.approx(-math.log(1 / (1 + math.exp(-0.05 * 3.75))), rel=1e-6)
    assert float(st["accuracy"]) == 1.0
    # policy == reference: log 2, whatever the errors
    loss, _ = flow_dpo_loss(v_w, v_l, v_w, v_l, target_w, target_l, beta=100.0)
    assert float(loss) == pytest.approx(math.log(2))


def test_dpo_loss_gradient_pulls_towards_the_winner():
    target_w, target_l = torch.zeros(2, 3), torch.ones(2, 3)
    v = torch.full((2, 3), 0.5, requires_grad=True)  # same prediction used for winner and loser
    loss, _ = flow_dpo_loss(v, v.detach().clone().requires_grad_(), v.detach(), v.detach(), target_w, target_l, beta=10.0)
    loss.backward()
    assert (v.grad > 0).all()  # gradient descent moves the winner's prediction towards its target 0


def _trainer(editor, prompts, tmp_path, **overrides):
    cfg = small_config(DPOConfig, tmp_path, **overrides)
    return DPOTrainer(cfg, editor=editor, reward=Brightness(), train_prompts=prompts, eval_prompts=prompts)


def test_offline_dpo_learns_pairs_and_samples_from_the_frozen_policy(tiny_editor, prompts, tmp_path):
    trainer = _trainer(tiny_editor, prompts, tmp_path, num_iterations=4, ref_update_every=0)
    cond = trainer.encode(prompts)
    sigmas = tiny_editor.sigmas(4)
    with trainer.reference():
        before, _ = trainer.sample(cond, [1, 2], sigmas, trainer.config.noise_level)
    trainer.train()
    log = _log(trainer)
    assert log[0]["dpo_loss"] == pytest.approx(math.log(2), abs=1e-6)  # LoRA B = 0: policy == reference
    assert log[0]["pairs"] == 2 and log[0]["reward_margin"] > 0
    assert log[-1]["d_theta_minus_ref"] < 0  # the policy now fits winners better than losers, relative to the reference
    with trainer.reference():
        after, _ = trainer.sample(cond, [1, 2], sigmas, trainer.config.noise_level)
    assert torch.equal(before, after)  # offline pairs come from the initial policy whatever the LoRA
    assert any(not torch.equal(v, torch.zeros_like(v)) for k, v in lora_state(trainer.transformer).items() if "lora_B" in k)


def test_online_dpo_refreshes_the_reference(tiny_editor, prompts, tmp_path):
    trainer = _trainer(tiny_editor, prompts, tmp_path, num_iterations=3, ref_update_every=2)
    trainer.train()
    losses = [r["dpo_loss"] for r in _log(trainer)]
    # right after a refresh (iterations 1 and 3 start from ref == policy) the loss is exactly log 2
    assert losses[0] == pytest.approx(math.log(2), abs=1e-6) and losses[2] == pytest.approx(math.log(2), abs=1e-6)
    assert losses[1] != pytest.approx(math.log(2), abs=1e-4)
    current = lora_state(trainer.transformer)
    assert any(not torch.equal(current[k], trainer.ref_state[k]) for k in current)  # iteration 3 trained past the refresh after 2


def test_dpo_config_errors(tmp_path):
    with pytest.raises(EditRLError, match="beta"):
        small_config(DPOConfig, tmp_path, beta=0.0).validate()
