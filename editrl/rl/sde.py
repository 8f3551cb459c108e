"""One step of the flow sampler as a stochastic policy: SDE step, its log-probability, and the ODE step.

Flow convention (every editor adapter): ``x_t = (1 - sigma) x0 + sigma * noise``, ``v = noise - x0``,
sigma runs from ~1 (noise) down to 0, ``dt = sigma_next - sigma < 0``.

Two stochastic forms (see shared/reference/rl-algorithms.md):

- ``"flow_grpo"`` (Flow-GRPO): the reverse SDE with the same marginals as the ODE, noise level ``a``:
  ``std_t = a * sqrt(sigma / (1 - sigma))`` (at sigma == 1 exactly, and only there, the denominator
  uses the schedule's second sigma instead, as flow_grpo does),
  ``mean = x (1 + std_t^2 dt / (2 sigma)) + v (1 + std_t^2 (1 - sigma) / (2 sigma)) dt``,
  ``x_next = mean + std_t sqrt(-dt) eps``; the log-prob is the Gaussian log-density, averaged over
  the latent dimensions (so ratios stay near 1 whatever the latent size).
- ``"cps"`` (coefficient-preserving): ``std = sigma_next sin(a pi / 2)``,
  ``mean = x0_hat (1 - sigma_next) + x1_hat sqrt(sigma_next^2 - std^2)``; the log-prob is the
  unnormalised ``-(x_next - mean)^2`` averaged over latent dimensions (its constant terms cancel in
  ratios).

Everything is computed in fp32: bf16 overflows in ``(x_next - mean)^2 / std^2``. With ``a = 0`` both
forms reduce to the Euler ODE step ``x + v dt``. ``SDESampler`` is the step RL hands to the one
sampling loop (``editrl.sampler.editors.base.denoise``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Collection

import torch

from ..errors import EditRLError
from ..sampler.editors.base import euler_step
from .config import SDE_TYPES


@dataclass
class SDEStep:
    """Result of one stochastic step for a batch of B latents of shape (B, ...).

    ``prev_sample`` is x at the next (lower) sigma, ``log_prob`` (B,) its log-probability under the
    step's Gaussian, ``mean`` the Gaussian mean (B, ...) (the KL to the reference is taken on it) and
    ``std`` (B,) the standard deviation of the added noise. ``std_t`` (B,) is the scale the KL to the
    reference divides by, as in flow_grpo: the SDE's ``std_t`` *before* the ``sqrt(-dt)`` factor for
    ``"flow_grpo"``, the transition std itself for ``"cps"``.
    """

    prev_sample: torch.Tensor
    log_prob: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    std_t: torch.Tensor


def _per_sample(t: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """A scalar or (B,) time as fp32 (B, 1, ..., 1), broadcastable against x."""
    t = torch.as_tensor(t, dtype=torch.float32, device=x.device)
    if t.ndim == 0:
        t = t.expand(x.shape[0])
    return t.reshape(-1, *([1] * (x.ndim - 1)))


def _mean_over_latent(t: torch.Tensor) -> torch.Tensor:
    # contiguous first: the summation order (and so the last bits) of a reduction follows the memory
    # layout, and the rollout and the training pass may hold the same latents in different layouts
    return t.contiguous().mean(dim=tuple(range(1, t.ndim)))


def sde_step(
    x: torch.Tensor,
    v: torch.Tensor,
    sigma,
    sigma_next,
    noise_level: float,
    *,
    sde_type: str = "flow_grpo",
    prev_sample: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    sigma_max: float = 0.99,
) -> SDEStep:
    """One SDE step from ``sigma`` to ``sigma_next`` (scalars or (B,) tensors).

    If ``prev_sample`` is given (training: re-scoring a stored rollout transition) no noise is drawn
    and the log-probability of that transition is returned; otherwise noise is drawn from
    ``generator`` (a CPU generator). ``sigma_max`` replaces sigma in the denominator of ``std_t``
    where sigma is exactly 1 (``std_t`` would be infinite there); every other sigma is used as is.
    """
    if sde_type not in SDE_TYPES:
        raise EditRLError(f"sde_type={sde_type!r} is not supported; expected one of {SDE_TYPES}")
    x, v = x.float(), v.float()
    s = _per_sample(sigma, x)
    s_next = _per_sample(sigma_next, x)
    dt = s_next - s
    if sde_type == "flow_grpo":
        std_t = noise_level * torch.sqrt(s / (1 - torch.where(s == 1, torch.full_like(s, sigma_max), s)))
        mean = x * (1 + std_t**2 / (2 * s) * dt) + v * (1 + std_t**2 * (1 - s) / (2 * s)) * dt
        std = std_t * torch.sqrt(-dt)
    else:
        std = std_t = s_next * math.sin(noise_level * math.pi / 2)
        x0 = x - s * v
        x1 = x + (1 - s) * v
        mean = x0 * (1 - s_next) + x1 * torch.sqrt((s_next**2 - std**2).clamp(min=0))
    if prev_sample is None:
        # drawn on the CPU so a seed gives the same noise on every device
        noise = torch.randn(x.shape, generator=generator, dtype=torch.float32).to(x.device)
        prev_sample = mean + std * noise
    prev_sample = prev_sample.float()
    if sde_type == "flow_grpo":
        log_prob = (
            -((prev_sample.detach() - mean) ** 2) / (2 * std**2) - torch.log(std) - 0.5 * math.log(2 * math.pi)
        )
    else:
        log_prob = -((prev_sample.detach() - mean) ** 2)
    return SDEStep(prev_sample=prev_sample, log_prob=_mean_over_latent(log_prob), mean=mean, std=std.flatten(),
                   std_t=std_t.flatten())


def kl_to_reference(step: SDEStep, reference: SDEStep) -> torch.Tensor:
    """(B,) flow_grpo's KL term: ``mean over dims of (mean - mean_ref)^2 / (2 std_t^2)``.

    flow_grpo divides by the SDE's ``std_t``, not by the transition variance ``std_t^2 (-dt)``: with
    the latter the same ``kl_beta`` would be a 1/(-dt) times (4-18x on 6-step schedules) stronger KL.
    """
    std_t = step.std_t.reshape(-1, *([1] * (step.mean.ndim - 1)))
    return _mean_over_latent((step.mean - reference.mean) ** 2 / (2 * std_t**2))


@dataclass
class SDESampler:
    """A ``step`` for ``editrl.sampler.editors.base.denoise``: the SDE on the steps in ``noisy``, the Euler ODE
    step elsewhere, noise from ``generator``; each SDE transition is kept in ``transitions``
    (``x``, ``x_next`` and its ``log_prob``: GRPO re-scores them)."""

    noise_level: float
    sde_type: str = "flow_grpo"
    noisy: Collection[int] = ()
    generator: torch.Generator | None = None
    transitions: list[dict[str, torch.Tensor]] = field(default_factory=list, init=False)

    def transition(self, x, v, sigmas: torch.Tensor, i: int, prev_sample: torch.Tensor | None = None) -> SDEStep:
        """The SDE step i of the schedule (drawn, or the log-prob of a stored ``prev_sample``)."""
        return sde_step(x, v, sigmas[i], sigmas[i + 1], self.noise_level, sde_type=self.sde_type,
                        prev_sample=prev_sample, generator=self.generator, sigma_max=float(sigmas[1]))

    def __call__(self, x: torch.Tensor, v: torch.Tensor, sigmas: torch.Tensor, i: int) -> torch.Tensor:
        if i not in self.noisy:
            return euler_step(x, v, sigmas, i)
        out = self.transition(x, v, sigmas, i)
        self.transitions.append({"x": x, "x_next": out.prev_sample, "log_prob": out.log_prob})
        return out.prev_sample
