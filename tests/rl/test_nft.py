import json

import pytest
import torch
from toys import Brightness, small_config

from editrl.errors import EditRLError
from editrl.rl import NFTConfig, NFTTrainer
from editrl.rl.lora import lora_state
from editrl.rl.nft import nft_loss, optimality


def _log(trainer):
    return [json.loads(line) for line in trainer.log_path.read_text().splitlines()]


def test_optimality_probability_by_hand():
    adv = torch.tensor([-7.0, -5.0, -2.5, 0.0, 1.0, 5.0, 9.0])
    torch.testing.assert_close(optimality(adv, 5.0), torch.tensor([0.0, 0.0, 0.25, 0.5, 0.6, 1.0, 1.0]))


def test_nft_loss_every_term_by_hand():
    # one sample, 2 latent dims; x0 = 0, t = 0.5, x_t = (1, -1)
    x0, x_t, t = torch.zeros(1, 1, 2), torch.tensor([[[1.0, -1.0]]]), torch.tensor([0.5])
    v, v_old, v_ref = torch.tensor([[[1.0, 1.0]]]), torch.tensor([[[3.0, -1.0]]]), torch.tensor([[[0.0, 2.0]]])
    beta, clip, r = 0.5, 5.0, torch.tensor([0.8])
    loss, st = nft_loss(v, v_old, x_t, x0, t, r, beta, clip, v_ref, kl_beta=0.1)
    pos_v = [beta * a + (1 - beta) * b for a, b in zip([1.0, 1.0], [3.0, -1.0])]  # (2, 0)
    neg_v = [(1 + beta) * b - beta * a for a, b in zip([1.0, 1.0], [3.0, -1.0])]  # (4, -2)

    def weighted(vel):
        err = [xt - 0.5 * vv for xt, vv in zip([1.0, -1.0], vel)]  # x0 prediction minus x0 (= 0)
        w = sum(abs(e) for e in err) / 2
        return sum(e * e for e in err) / 2 / w

    positive, negative = weighted(pos_v), weighted(neg_v)
    kl = ((1 - 0) ** 2 + (1 - 2) ** 2) / 2
    expected = clip * (0.8 * positive / beta + 0.2 * negative / beta) + 0.1 * kl
    assert float(st["positive"]) == pytest.approx(positive) and float(st["negative"]) == pytest.approx(negative)
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_nft_gradient_moves_towards_the_positive_policy():
    # r = 1: only the positive policy; its x0 prediction approaches x0 when v moves towards the target velocity
    x0, noise, t = torch.zeros(1, 1, 3), torch.ones(1, 1, 3), torch.tensor([0.5])
    x_t = (1 - t) * x0 + t * noise
    target = noise - x0
    v = torch.zeros(1, 1, 3, requires_grad=True)
    loss, _ = nft_loss(v, torch.zeros(1, 1, 3), x_t, x0, t, torch.ones(1), 1.0, 5.0)
    loss.backward()
    assert (v.grad * (target - v.detach()) < 0).all()  # descent direction -grad points to the target
    # r = 0: the negative policy (2 v_old - v) is pulled to x0, which pushes v away from the target
    v.grad = None
    loss, _ = nft_loss(v, torch.zeros(1, 1, 3), x_t, x0, t, torch.zeros(1), 1.0, 5.0)
    loss.backward()
    assert (v.grad * (target - v.detach()) > 0).all()


def _trainer(editor, prompts, tmp_path, **overrides):
    cfg = small_config(NFTConfig, tmp_path, **overrides)
    return NFTTrainer(cfg, editor=editor, reward=Brightness(), train_prompts=prompts, eval_prompts=prompts)


def test_nft_trains_from_deterministic_old_policy_rollouts(tiny_editor, prompts, tmp_path):
    trainer = _trainer(tiny_editor, prompts, tmp_path, num_iterations=3, old_decay_rate=0.3, old_decay_max=0.5)
    cond = trainer.step_groups(0)
    seeds = trainer.sample_seeds(0, len(cond))
    sigmas = tiny_editor.sigmas(4)
    a, _ = trainer.sample(cond, seeds, sigmas)
    b, _ = trainer.sample(cond, seeds, sigmas)
    assert torch.equal(a, b)  # deterministic rollouts
    before = lora_state(trainer.transformer)
    trainer.train()
    log = _log(trainer)
    # the first iteration starts at old == current == base: the KL is exactly 0
    assert log[0]["kl"] == 0.0 and log[-1]["kl"] > 0
    # the old policy after update n: d_n = min(0.3 n, 0.5) -> 0.3, 0.5, 0.5
    assert [r["old_decay"] for r in log] == pytest.approx([0.3, 0.5, 0.5])
    after = lora_state(trainer.transformer)
    assert any(not torch.equal(before[k], after[k]) for k in before if "lora_B" in k)
    assert any(not torch.equal(trainer.old_state[k], after[k]) for k in after if "lora_B" in k)  # old lags behind


def test_old_policy_update_by_hand(tiny_editor, prompts, tmp_path):
    trainer = _trainer(tiny_editor, prompts, tmp_path, num_iterations=1, old_decay_rate=0.25, old_decay_max=0.9)
    old = {k: v.clone() for k, v in trainer.old_state.items()}
    trainer.train()
    current = lora_state(trainer.transformer)
    for k in old:  # one optimizer step: decay 0.25
        torch.testing.assert_close(trainer.old_state[k], 0.25 * old[k] + 0.75 * current[k])


def test_nft_resume_matches_an_uninterrupted_run(prompts, tmp_path):
    from editrl.sampler.editors import FluxKontextEditor
    from editrl.tiny import tiny_flux_kontext

    def make(out, iterations):
        editor = FluxKontextEditor(tiny_flux_kontext(), resolution=64, default_steps=4)
        cfg = small_config(NFTConfig, tmp_path, num_iterations=iterations, save_every=1, ema_decay=0.5,
                           output_dir=str(tmp_path / out), old_decay_rate=0.2)
        return NFTTrainer(cfg, editor=editor, reward=Brightness(), train_prompts=prompts, eval_prompts=prompts)

    full = make("full", 2)
    full.train()
    cut = make("cut", 1)
    cut.train()
    resumed = make("cut", 2)
    resumed.train(resume=True)
    a, b = lora_state(full.transformer), lora_state(resumed.transformer)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(full.old_state[k], resumed.old_state[k]) for k in a)


def test_nft_config_errors(tmp_path):
    with pytest.raises(EditRLError, match="beta"):
        small_config(NFTConfig, tmp_path, beta=0.0).validate()
    with pytest.raises(EditRLError, match="old_decay"):
        small_config(NFTConfig, tmp_path, old_decay_max=1.0).validate()
