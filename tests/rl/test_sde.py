import math

import pytest
import torch
from torch.distributions import Normal

from editrl.errors import EditRLError
from editrl.rl.sde import SDESampler, kl_to_reference, sde_step
from editrl.sampler.editors.base import denoise, euler_step


def _inputs(seed=0, shape=(3, 16, 8)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


@pytest.mark.parametrize("sigma,sigma_next,a", [(0.8, 0.6, 0.7), (0.5, 0.3, 0.9), (0.2, 0.05, 1.0)])
def test_flow_grpo_log_prob_is_the_gaussian_density(sigma, sigma_next, a):
    x, v = _inputs()
    out = sde_step(x, v, sigma, sigma_next, a, generator=torch.Generator().manual_seed(1))
    # independent computation of mean and std from the Flow-GRPO formulas
    dt = sigma_next - sigma
    std_t = a * math.sqrt(sigma / (1 - sigma))
    mean = x * (1 + std_t**2 / (2 * sigma) * dt) + v * (1 + std_t**2 * (1 - sigma) / (2 * sigma)) * dt
    std = std_t * math.sqrt(-dt)
    expected = Normal(mean, std).log_prob(out.prev_sample).mean(dim=(1, 2))
    torch.testing.assert_close(out.log_prob, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.mean, mean)
    torch.testing.assert_close(out.std, torch.full((3,), std))
    # the drawn sample really has that spread around the mean
    z = (out.prev_sample - mean) / std
    assert abs(float(z.std()) - 1) < 0.1 and abs(float(z.mean())) < 0.1


def test_rescoring_a_stored_transition_gives_the_same_log_prob():
    x, v = _inputs()
    sigma = torch.tensor([0.9, 0.7, 0.4])
    sigma_next = sigma - 0.1
    rollout = sde_step(x, v, sigma, sigma_next, 0.9, generator=torch.Generator().manual_seed(3))
    again = sde_step(x, v, sigma, sigma_next, 0.9, prev_sample=rollout.prev_sample)
    assert torch.equal(again.log_prob, rollout.log_prob)
    # a transition less likely under a shifted mean has lower log-prob
    worse = sde_step(x, v + 1.0, sigma, sigma_next, 0.9, prev_sample=rollout.prev_sample)
    assert (worse.log_prob < rollout.log_prob).all()


@pytest.mark.parametrize("sde_type", ["flow_grpo", "cps"])
def test_zero_noise_level_is_the_euler_ode_step(sde_type):
    x, v = _inputs()
    out = sde_step(x, v, 0.7, 0.5, 0.0, sde_type=sde_type)
    expected = x + v * (0.5 - 0.7)
    torch.testing.assert_close(out.prev_sample, expected)
    torch.testing.assert_close(euler_step(x, v, torch.tensor([0.7, 0.5]), 0), expected)


def test_cps_mean_std_and_log_prob():
    x, v = _inputs()
    sigma, sigma_next, a = 0.6, 0.4, 0.8
    out = sde_step(x, v, sigma, sigma_next, a, sde_type="cps", generator=torch.Generator().manual_seed(0))
    std = sigma_next * math.sin(a * math.pi / 2)
    x0, x1 = x - sigma * v, x + (1 - sigma) * v
    mean = x0 * (1 - sigma_next) + x1 * math.sqrt(sigma_next**2 - std**2)
    torch.testing.assert_close(out.mean, mean)
    torch.testing.assert_close(out.log_prob, -((out.prev_sample - mean) ** 2).mean(dim=(1, 2)))
    # coefficient preserving: noise variance + x1 coefficient^2 = sigma_next^2
    assert math.isclose(std**2 + (sigma_next**2 - std**2), sigma_next**2)


def test_sde_step_is_fp32_for_bf16_inputs_and_sigma_one_is_guarded():
    x, v = _inputs()
    out = sde_step(x.bfloat16(), v.bfloat16(), 1.0, 0.9, 0.9, generator=torch.Generator().manual_seed(0))
    assert out.log_prob.dtype == torch.float32 and torch.isfinite(out.log_prob).all()


def test_kl_is_zero_for_equal_means_and_divides_by_std_t_not_the_transition_variance():
    x, v = _inputs()
    sigma, sigma_next, a = 0.8, 0.6, 0.9
    step = sde_step(x, v, sigma, sigma_next, a, generator=torch.Generator().manual_seed(0))
    assert torch.equal(kl_to_reference(step, step), torch.zeros(3))
    ref = sde_step(x, v + 0.5, sigma, sigma_next, a, prev_sample=step.prev_sample)
    # independent: flow_grpo's KL = mean((mean - mean_ref)^2) / (2 std_t^2), std_t = a sqrt(sigma / (1 - sigma))
    std_t = a * math.sqrt(sigma / (1 - sigma))
    def mean(vv):
        return x * (1 + std_t**2 / (2 * sigma) * (sigma_next - sigma)) + vv * (1 + std_t**2 * (1 - sigma) / (2 * sigma)) * (sigma_next - sigma)
    expected = ((mean(v) - mean(v + 0.5)) ** 2).mean(dim=(1, 2)) / (2 * std_t**2)
    torch.testing.assert_close(kl_to_reference(step, ref), expected)  # the transition variance would give 5x this


def test_cps_kl_divides_by_its_transition_std():
    x, v = _inputs()
    step = sde_step(x, v, 0.6, 0.4, 0.8, sde_type="cps", generator=torch.Generator().manual_seed(0))
    ref = sde_step(x, v + 1.0, 0.6, 0.4, 0.8, sde_type="cps", prev_sample=step.prev_sample)
    std = 0.4 * math.sin(0.8 * math.pi / 2)
    expected = ((step.mean - ref.mean) ** 2).mean(dim=(1, 2)) / (2 * std**2)
    torch.testing.assert_close(kl_to_reference(step, ref), expected)


def test_sigma_one_guard_only_touches_the_denominator_and_only_at_one():
    x, v = _inputs()
    a, sigma_max = 0.9, 0.8
    # below 1 (Kontext's first sigma ~0.97, InstructPix2Pix's below any guard): no clamp at all
    out = sde_step(x, v, 0.97, 0.85, a, generator=torch.Generator().manual_seed(0), sigma_max=sigma_max)
    torch.testing.assert_close(out.std_t, torch.full((3,), a * math.sqrt(0.97 / 0.03)))
    # at exactly 1: the numerator stays 1, the denominator uses 1 - sigma_max
    out = sde_step(x, v, 1.0, 0.85, a, generator=torch.Generator().manual_seed(0), sigma_max=sigma_max)
    std_t = a * math.sqrt(1.0 / (1 - sigma_max))
    torch.testing.assert_close(out.std_t, torch.full((3,), std_t))
    mean = x * (1 + std_t**2 / 2 * -0.15) + v * (1 + 0.0) * -0.15
    torch.testing.assert_close(out.mean, mean)
    torch.testing.assert_close(out.std, torch.full((3,), std_t * math.sqrt(0.15)))


def test_unknown_sde_type_is_one_clear_error():
    x, v = _inputs()
    with pytest.raises(EditRLError, match="sde_type"):
        sde_step(x, v, 0.5, 0.4, 0.7, sde_type="ddim")


def test_log_prob_does_not_depend_on_memory_layout():
    # rollout latents may be strided (packed/permuted), the stored copies contiguous: same bits required
    x, v = _inputs(shape=(3, 8, 16))
    strided_x, strided_v = x.transpose(1, 2).contiguous().transpose(1, 2), v.transpose(1, 2).contiguous().transpose(1, 2)
    a = sde_step(strided_x, strided_v, 0.7, 0.5, 0.9, generator=torch.Generator().manual_seed(0))
    b = sde_step(x, v, 0.7, 0.5, 0.9, prev_sample=a.prev_sample.contiguous())
    assert torch.equal(a.log_prob, b.log_prob)


@pytest.mark.parametrize("sde_type", ["flow_grpo", "cps"])
def test_sde_sampler_in_the_loop_adds_noise_on_the_noisy_steps_only_and_keeps_their_transitions(sde_type):
    sigmas = torch.tensor([1.0, 0.8, 0.5, 0.2, 0.0])
    x, w = _inputs(4)

    def velocity(x, sigma, cond):
        return w - x * sigma[:, None, None]

    sampler = SDESampler(0.8, sde_type, noisy=[1, 2], generator=torch.Generator().manual_seed(7))
    out = denoise(velocity, x, None, sigmas, step=sampler)
    # the same path by hand: ODE, SDE, SDE (noise drawn in order from the same seed), ODE
    g = torch.Generator().manual_seed(7)
    expected, kept = x, []
    for i in range(4):
        v = velocity(expected, sigmas[i].expand(3), None)
        if i in (1, 2):
            step = sde_step(expected, v, sigmas[i], sigmas[i + 1], 0.8, sde_type=sde_type, generator=g, sigma_max=0.8)
            kept.append((expected, step))
            expected = step.prev_sample
        else:
            expected = expected + (sigmas[i + 1] - sigmas[i]) * v
    assert torch.equal(out, expected)
    assert len(sampler.transitions) == 2
    for got, (x_i, step) in zip(sampler.transitions, kept):
        assert torch.equal(got["x"], x_i) and torch.equal(got["x_next"], step.prev_sample)
        assert torch.equal(got["log_prob"], step.log_prob)
    # re-scoring a kept transition gives its log-prob back
    rescored = sampler.transition(kept[0][0], velocity(kept[0][0], sigmas[1].expand(3), None), sigmas, 1,
                                  prev_sample=kept[0][1].prev_sample)
    assert torch.equal(rescored.log_prob, kept[0][1].log_prob)
