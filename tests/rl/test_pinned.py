"""Tests that pin the algorithms: a sign flip or a constant rescale of any loss term, a change to the
NFE count or to what a DPO winner and loser share, fails one of these. Expected values are small
independent computations, not the code's own helpers."""

import math

import pytest
import torch
from toys import Brightness, small_config

from editrl.rl import DPOConfig, DPOTrainer
from editrl.rl.dpo import flow_dpo_loss
from editrl.rl.grpo import grpo_loss


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_grpo_loss_every_term_by_hand():
    logp, old = torch.tensor([0.02, -0.03, 0.0]), torch.zeros(3)
    adv = torch.tensor([2.0, -1.5, 0.5])
    kl = torch.tensor([0.3, 0.7, 0.2])
    loss, _ = grpo_loss(logp, old, adv, clip_range=0.01, kl=kl, kl_beta=0.25)
    # pessimistic PPO term per sample: max(-A r, -A clip(r))
    terms = []
    for lp, a in zip(logp.tolist(), adv.tolist()):
        r = math.exp(lp)
        terms.append(max(-a * r, -a * min(max(r, 0.99), 1.01)))
    expected = sum(t + 0.25 * k for t, k in zip(terms, kl.tolist())) / 3
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    # the KL term alone: zero advantages leave beta * mean KL
    loss, _ = grpo_loss(logp, old, torch.zeros(3), clip_range=0.01, kl=kl, kl_beta=0.25)
    assert float(loss) == pytest.approx(0.25 * 0.4, rel=1e-6)


def test_grpo_policy_gradient_raises_the_log_prob_of_positive_advantages():
    logp = torch.zeros(2, requires_grad=True)
    loss, _ = grpo_loss(logp, torch.zeros(2), torch.tensor([1.0, -1.0]), clip_range=0.1)
    loss.backward()
    torch.testing.assert_close(logp.grad, torch.tensor([-0.5, 0.5]))  # d/dlogp of -A e^logp / 2


def test_dpo_loss_every_term_by_hand():
    # errors (mean squared over 2 dims): theta_w 1, theta_l 4, ref_w 2.25, ref_l 0.25
    t_w, t_l = torch.zeros(1, 2), torch.zeros(1, 2)
    v_w, v_l = torch.full((1, 2), 1.0), torch.full((1, 2), 2.0)
    r_w, r_l = torch.full((1, 2), 1.5), torch.full((1, 2), 0.5)
    loss, st = flow_dpo_loss(v_w, v_l, r_w, r_l, t_w, t_l, beta=0.4)
    d_theta, d_ref = 1 - 4, 2.25 - 0.25
    assert float(st["d_theta"]) == pytest.approx(d_theta) and float(st["d_ref"]) == pytest.approx(d_ref)
    assert float(loss) == pytest.approx(_softplus(0.4 / 2 * (d_theta - d_ref)), rel=1e-6)
    # targets enter as errors: moving the loser's target onto its prediction changes d_theta by +4
    loss2, st2 = flow_dpo_loss(v_w, v_l, r_w, r_l, t_w, torch.full((1, 2), 2.0), beta=0.4)
    assert float(st2["d_theta"]) == pytest.approx(1.0) and float(st2["d_ref"]) == pytest.approx(2.25 - 2.25)
    assert float(loss2) == pytest.approx(_softplus(0.2 * (1.0 - 0.0)), rel=1e-6)


def test_dpo_winner_and_loser_share_noise_and_t(tiny_editor, prompts, tmp_path):
    calls = []
    velocity = tiny_editor.velocity

    def record(x, sigma, cond):
        if torch.is_grad_enabled():
            calls.append((x.detach().clone(), sigma.detach().clone()))
        return velocity(x, sigma, cond)

    cfg = small_config(DPOConfig, tmp_path, num_iterations=1, timesteps_per_pair=1, noise_level=0.0)
    trainer = DPOTrainer(cfg, editor=tiny_editor, reward=Brightness(), train_prompts=prompts, eval_prompts=prompts)
    cond = trainer.step_groups(0)
    with trainer.reference():
        x0, _ = trainer.sample(cond, trainer.sample_seeds(0, len(cond)), tiny_editor.sigmas(cfg.num_steps))
    tiny_editor.velocity = record
    try:
        trainer.iteration(0)
    finally:
        tiny_editor.velocity = velocity
    (x_t, sigma), = calls  # one batch of 2 pairs: [winners; losers]
    m = len(sigma) // 2
    assert torch.equal(sigma[:m], sigma[m:])  # same t
    s = sigma[:, None, None]
    # x_t = (1 - t) x0 + t noise: recover each row's noise for every candidate x0 of the step
    for j in range(m):
        noise_w = [(x_t[j] - (1 - s[j]) * x0[r]) / s[j] for r in range(len(x0))]
        noise_l = [(x_t[m + j] - (1 - s[j]) * x0[r]) / s[j] for r in range(len(x0))]
        group = range(j * cfg.group_size, (j + 1) * cfg.group_size)  # pair j is the best and worst of group j
        gap = min(float((noise_w[a] - noise_l[b]).abs().max()) for a in group for b in group if a != b)
        assert gap < 1e-4  # a winner and a loser of the group were noised with the same noise


@pytest.mark.parametrize("adapter,guidance,branches", [("flux-kontext", 2.5, 1), ("qwen-image-edit", 4.0, 2),
                                                       ("qwen-image-edit", 1.0, 1), ("instruct-pix2pix", 7.5, 3)])
def test_nfe_counts_every_guidance_branch(adapter, guidance, branches, prompts):
    from editrl.sampler.editors import FluxKontextEditor
    from editrl.sampler.editors.instruct_pix2pix import InstructPix2PixEditor
    from editrl.sampler.editors.qwen_image_edit import QwenImageEditEditor
    from editrl.tiny import tiny_flux_kontext, tiny_instruct_pix2pix, tiny_qwen_image_edit

    editor = {"flux-kontext": lambda: FluxKontextEditor(tiny_flux_kontext(), resolution=64, default_steps=3),
              "qwen-image-edit": lambda: QwenImageEditEditor(tiny_qwen_image_edit(), resolution=64, default_steps=3),
              "instruct-pix2pix": lambda: InstructPix2PixEditor(tiny_instruct_pix2pix(), resolution=64, default_steps=3)}[adapter]()
    rows = []
    editor.transformer.register_forward_hook(lambda module, args, kwargs, out: rows.append(
        (args[0] if args else kwargs["hidden_states"]).shape[0]), with_kwargs=True)
    result = editor.sample([prompts[0][0]], prompts[0][1], seeds=[1, 2], guidance=guidance)
    # every denoiser row evaluated is one function evaluation: 2 candidates x 3 steps x branches
    assert sum(rows) == 2 * 3 * branches == result.nfe
