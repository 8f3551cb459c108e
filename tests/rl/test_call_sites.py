"""What each trainer feeds its loss, checked against the reference algorithms (the losses themselves are pinned by
hand in test_pinned.py): each test names in its docstring the wrong algorithm it catches. The trainers run one
iteration on the tiny FLUX.1-Kontext editor; the loss function is wrapped to record its arguments, and the test
recomputes those arguments from the trajectory by the reference's formula."""

import math

import pytest
import torch
from toys import Brightness, small_config

import editrl.rl.dpo as dpo_module
import editrl.rl.grpo as grpo_module
import editrl.rl.nft as nft_module
from editrl.rl import DPOConfig, DPOTrainer, GRPOConfig, GRPOTrainer, NFTConfig, NFTTrainer
from editrl.rl.lora import adapter_disabled, load_lora_state, lora_state, swapped_lora
from editrl.rl.nft import nft_loss
from editrl.rl.sde import SDESampler, kl_to_reference


def _recorded(monkeypatch, module, name: str) -> list[tuple]:
    """Wrap ``module.name`` so every call's positional arguments are kept."""
    calls, real = [], getattr(module, name)

    def wrapper(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def _forwards(editor) -> list[dict]:
    """Every denoiser call of the editor: its inputs, whether it carries gradient, and the LoRA weights then."""
    calls, velocity = [], editor.velocity

    def record(x, sigma, cond):
        calls.append({"x": x.detach().clone(), "sigma": sigma.detach().clone(), "cond": cond,
                      "grad": torch.is_grad_enabled(), "lora": lora_state(editor.transformer)})
        return velocity(x, sigma, cond)

    editor.velocity = record
    return calls


def _perturb(trainer, seed: int) -> None:
    """Move the LoRA off its zero start (B != 0), so the policy differs from the reference."""
    generator = torch.Generator().manual_seed(seed)
    state = {k: v + 0.05 * torch.randn(v.shape, generator=generator) if "lora_B" in k else v
             for k, v in lora_state(trainer.transformer).items()}
    load_lora_state(trainer.transformer, state)


def test_dpo_regresses_noise_minus_x0_of_the_best_and_the_worst_sample(tiny_editor, prompts, tmp_path, monkeypatch):
    """Diffusion-DPO in flow form: the targets fed to the loss are v = noise - x0 of each group's best (winner) and
    worst (loser) sample, so x_t - t * target gives back that sample; the policy's and the reference's predictions
    at the same x_t come with them. Catches a flipped target (x0 - noise), swapped winner and loser, and the
    policy and reference predictions swapped."""
    cfg = small_config(DPOConfig, tmp_path, num_iterations=1, timesteps_per_pair=1, noise_level=0.0)
    trainer = DPOTrainer(cfg, editor=tiny_editor, reward=Brightness(), train_prompts=prompts, eval_prompts=prompts)
    _perturb(trainer, 0)
    cond = trainer.step_groups(0)
    with trainer.reference():
        x0, images = trainer.sample(cond, trainer.sample_seeds(0, len(cond)), tiny_editor.sigmas(cfg.num_steps))
    grouped = Brightness().score(None, None, images).score.view(-1, cfg.group_size)
    offsets = torch.arange(len(grouped)) * cfg.group_size
    best, worst = grouped.argmax(1) + offsets, grouped.argmin(1) + offsets
    policy = lora_state(trainer.transformer)
    losses = _recorded(monkeypatch, dpo_module, "flow_dpo_loss")
    forwards = _forwards(tiny_editor)
    trainer.iteration(0)
    (v_w, v_l, ref_w, ref_l, target_w, target_l, beta), = losses
    (trained,) = [f for f in forwards if f["grad"]]
    x_t, t, c = trained["x"], trained["sigma"][:, None, None], trained["cond"]
    m = len(best)
    torch.testing.assert_close(x_t[:m] - t[:m] * target_w, x0[best], atol=1e-5, rtol=0)
    torch.testing.assert_close(x_t[m:] - t[m:] * target_l, x0[worst], atol=1e-5, rtol=0)
    assert beta == cfg.beta
    with torch.no_grad():
        with swapped_lora(trainer.transformer, policy):
            v = tiny_editor.velocity(x_t, trained["sigma"], c)
        with adapter_disabled(trainer.transformer):
            v_ref = tiny_editor.velocity(x_t, trained["sigma"], c)
    assert not torch.allclose(v, v_ref)
    torch.testing.assert_close(torch.cat([v_w, v_l]).detach(), v)
    torch.testing.assert_close(torch.cat([ref_w, ref_l]), v_ref)


def test_nft_takes_v_old_from_the_old_policy_and_rolls_out_with_it(tiny_editor, prompts, tmp_path, monkeypatch):
    """DiffusionNFT: v_old is the prediction of the old (slowly updated) LoRA, v the current one, at the same x_t;
    the rollouts are the old policy's too. After one iteration with decay 0.5 the two differ. Catches v_old taken
    from the current weights (then v_pos = v_neg = v and nothing is learned) or rollouts of the current policy."""
    cfg = small_config(NFTConfig, tmp_path, num_iterations=1, old_decay_rate=0.5, old_decay_max=0.5, kl_beta=0.0)
    trainer = NFTTrainer(cfg, editor=tiny_editor, reward=Brightness(), train_prompts=prompts, eval_prompts=prompts)
    trainer.train()
    old, current = dict(trainer.old_state), lora_state(trainer.transformer)
    assert any(not torch.equal(old[k], current[k]) for k in old)
    losses = _recorded(monkeypatch, nft_module, "nft_loss")
    forwards = _forwards(tiny_editor)
    trainer.iteration(1)
    assert all(torch.equal(forwards[0]["lora"][k], old[k]) for k in old)  # the first rollout forward
    trained = [f for f in forwards if f["grad"]]
    assert len(trained) == len(losses) > 0
    for f, (v, v_old, x_t, *_) in zip(trained, losses):
        with torch.no_grad():
            with swapped_lora(trainer.transformer, old):
                expected_old = tiny_editor.velocity(f["x"], f["sigma"], f["cond"])
            with swapped_lora(trainer.transformer, current):
                expected = tiny_editor.velocity(f["x"], f["sigma"], f["cond"])
        assert torch.equal(x_t, f["x"])
        torch.testing.assert_close(v_old, expected_old)
        torch.testing.assert_close(v.detach(), expected)
        assert not torch.allclose(v_old, expected)


def test_grpo_feeds_kl_beta_times_the_kl_of_the_step_means_to_the_lora_free_reference(tiny_editor, prompts, tmp_path,
                                                                                        monkeypatch):
    """flow_grpo: the loss gets ``kl_beta`` (the config's, unscaled) and the KL of the policy's SDE step mean to the
    reference's (LoRA disabled) at the stored x_j, recomputed here from the two velocities. Catches kl_beta scaled
    at the call site (x9), a KL to the policy itself (0), and a KL scaled or taken on other inputs."""
    cfg = small_config(GRPOConfig, tmp_path, num_iterations=1, kl_beta=0.04)
    trainer = GRPOTrainer(cfg, editor=tiny_editor, reward=Brightness(), train_prompts=prompts, eval_prompts=prompts)
    _perturb(trainer, 1)
    policy = lora_state(trainer.transformer)
    losses = _recorded(monkeypatch, grpo_module, "grpo_loss")
    forwards = _forwards(tiny_editor)
    trainer.iteration(0)
    trained = [f for f in forwards if f["grad"]]
    assert len(trained) == len(losses) == cfg.num_steps - 1  # one batch, every SDE step but the last
    sigmas = tiny_editor.sigmas(cfg.num_steps)
    sde = SDESampler(cfg.noise_level, cfg.sde_type)
    for f, (_, _, _, _, kl, kl_beta, _) in zip(trained, losses):
        i = int((sigmas - f["sigma"][0]).abs().argmin())
        with torch.no_grad():
            with swapped_lora(trainer.transformer, policy):
                step = sde.transition(f["x"], tiny_editor.velocity(f["x"], f["sigma"], f["cond"]), sigmas, i, prev_sample=f["x"])
            with adapter_disabled(trainer.transformer):
                ref = sde.transition(f["x"], tiny_editor.velocity(f["x"], f["sigma"], f["cond"]), sigmas, i, prev_sample=f["x"])
        expected = kl_to_reference(step, ref)
        assert kl_beta == cfg.kl_beta and (expected > 0).all()
        torch.testing.assert_close(kl, expected, rtol=1e-4, atol=1e-9)


def test_nft_adaptive_weight_on_errors_other_than_zero_and_one():
    """DiffusionNFT's weight is the detached mean absolute x0 error of each sample. With errors like 0.5, -2, 3 (and a
    second sample ten times smaller) the loss and its gradient are computed by hand. Catches a weight from the
    squared error, one shared by the batch, or a weight that is differentiated."""
    beta, clip, t = 0.5, 5.0, 0.4
    x_t = torch.tensor([[[0.9, -1.6, 3.4]], [[0.05, -0.3, 0.12]]])
    v = torch.tensor([[[1.0, 0.5, 2.0]], [[-0.5, 0.25, 0.1]]], requires_grad=True)
    v_old = torch.tensor([[[0.0, 1.5, -1.0]], [[0.2, -0.1, 0.3]]])
    x0 = torch.tensor([[[0.1, 0.2, -0.3]], [[0.0, 0.1, 0.05]]])
    r = torch.tensor([0.7, 0.2])
    loss, _ = nft_loss(v, v_old, x_t, x0, torch.tensor([t, t]), r, beta, clip)
    loss.backward()

    expected, grads = 0.0, []
    for b in range(2):
        xs, vs, olds, zs = x_t[b, 0].tolist(), v[b, 0].tolist(), v_old[b, 0].tolist(), x0[b, 0].tolist()
        err_pos = [x - t * (beta * vv + (1 - beta) * o) - z for x, vv, o, z in zip(xs, vs, olds, zs)]
        err_neg = [x - t * ((1 + beta) * o - beta * vv) - z for x, vv, o, z in zip(xs, vs, olds, zs)]
        w_pos, w_neg = sum(map(abs, err_pos)) / 3, sum(map(abs, err_neg)) / 3
        pos, neg = sum(e * e for e in err_pos) / 3 / w_pos, sum(e * e for e in err_neg) / 3 / w_neg
        expected += clip * (r[b] * pos / beta + (1 - r[b]) * neg / beta) / 2
        # d/dv_k with w fixed: the positive x0 moves by -t beta per unit of v, the negative by +t beta
        grads.append([clip / beta / 2 * (r[b] * 2 * ep * (-t * beta) / (3 * w_pos) + (1 - r[b]) * 2 * en * (t * beta) / (3 * w_neg))
                      for ep, en in zip(err_pos, err_neg)])
        assert not any(abs(e) in (0.0, 1.0) for e in err_pos + err_neg)
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    torch.testing.assert_close(v.grad, torch.tensor(grads).reshape(2, 1, 3), rtol=1e-4, atol=1e-7)


def test_nft_old_policy_is_a_plain_copy_during_the_decay_delay(tiny_editor, prompts, tmp_path):
    """DiffusionNFT decay_type 2 (train_nft_sd3.py ``return_decay``): decay 0 while the optimizer steps are below the
    delay (and at it), then ``rate * (steps - delay)`` capped; the old policy after each iteration is
    ``decay * old + (1 - decay) * current``. With delay 2, rate 0.3, cap 0.5: 0, 0, 0.3, 0.5. Catches an ignored
    delay (0.3, 0.6 -> 0.5, ...), an old policy frozen during the delay, and an off-by-one at its end."""
    cfg = small_config(NFTConfig, tmp_path, num_iterations=4, old_decay_rate=0.3, old_decay_max=0.5,
                       old_decay_delay=2)
    trainer = NFTTrainer(cfg, editor=tiny_editor, reward=Brightness(), train_prompts=prompts, eval_prompts=prompts)
    decays = []
    for step in range(4):
        old = dict(trainer.old_state)
        record = trainer.iteration(step)
        current = lora_state(trainer.transformer)
        decays.append(record["old_decay"])
        for k in old:
            torch.testing.assert_close(trainer.old_state[k], decays[-1] * old[k] + (1 - decays[-1]) * current[k])
        if step < 2:  # during the delay the old policy is the current one, not the initial one
            assert all(torch.equal(trainer.old_state[k], current[k]) for k in old)
    assert decays == pytest.approx([0.0, 0.0, 0.3, 0.5]) and not math.isclose(decays[2], 0.6)
