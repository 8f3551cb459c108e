"""The one denoising loop: plain sampling, pruned search, RL rollouts and evaluation all run it.

Each step evaluates the velocity at ``sigmas[i]``, shows it to ``on_step`` (previews, pruning,
counting) and hands it to ``step``, which moves the latents to ``sigmas[i + 1]``. The step is the
only thing that differs between the users: the Euler ODE step here, the SDE steps of RL
(``editrl.rl.sde.SDESampler``) from above, so a new step form or hook reaches every user at once.
Running ``sigmas[:k + 1]`` then ``sigmas[k:]`` gives exactly the latents of ``sigmas``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:
    from .editors.base import EditCondition

Velocity = Callable[[torch.Tensor, torch.Tensor, "EditCondition"], torch.Tensor]
"""``velocity(x, sigma, cond)``: an editor's ``Editor.velocity`` (sigma is (B,))."""
Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]
"""``step(x, v, sigmas, i)``: the latents at ``sigmas[i + 1]`` from those at ``sigmas[i]`` and their velocity."""
OnStep = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], "torch.Tensor | None"]
"""``on_step(i, sigma, x, v)`` after each velocity evaluation, before the step; the x0 preview of that
step is ``x - sigma[:, None, None] * v``. Returning row indices continues with those rows only (pruning)."""


def euler_step(x: torch.Tensor, v: torch.Tensor, sigmas: torch.Tensor, i: int) -> torch.Tensor:
    """The flow ODE's Euler step ``x + (sigmas[i + 1] - sigmas[i]) v``."""
    return x + (sigmas[i + 1] - sigmas[i]).to(x.device) * v


def denoise(
    velocity: Velocity,
    x: torch.Tensor,
    cond: EditCondition,
    sigmas: torch.Tensor,
    step: Step = euler_step,
    on_step: OnStep | None = None,
) -> torch.Tensor:
    """Run the schedule ``sigmas`` from the latents ``x`` (rows matching ``cond``'s); returns the last latents."""
    for i in range(len(sigmas) - 1):
        sigma = sigmas[i].expand(x.shape[0]).to(x.device)
        v = velocity(x, sigma, cond)
        rows = on_step(i, sigma, x, v) if on_step is not None else None
        if rows is not None:
            x, v, cond = x[rows.to(x.device)], v[rows.to(v.device)], cond.select(rows)
        x = step(x, v, sigmas, i)
    return x
