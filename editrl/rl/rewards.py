"""Several rewards mixed with weights (the ``rewards: {spec: weight}`` key of the RL configs).

Each spec is built by ``editrl.reward.specs.build_reward``.
"""

from __future__ import annotations

import functools
from typing import Sequence

import torch

from ..errors import EditRLError
from ..images import ImageLike
from ..reward.output import RewardFunction, RewardOutput, sources_for
from ..reward.specs import build_reward
from .scoring import concurrently


class WeightedReward:
    """``score = sum_i w_i * score_i`` over several rewards (a ``RewardFunction`` itself).

    The output's per-"dimension" columns are the component scores (``dimensions`` = the component
    names), so logs can show each reward next to the mix; ``score_sigma`` combines the components'
    sigmas as independent Gaussians. It takes a prompt's several sources and gives each component what it reads.
    With ``concurrent`` the components are scored at the same time, one thread each (``scoring.concurrently``: a
    remote judge's wait overlaps the others' work; the scores are unchanged).
    """

    takes_several_sources = True

    def __init__(self, rewards: dict[str, RewardFunction], weights: dict[str, float], concurrent: bool = True):
        if not rewards:
            raise EditRLError("rewards: expected at least one reward")
        if set(rewards) != set(weights):
            raise EditRLError(f"rewards/weights: names differ ({sorted(rewards)} vs {sorted(weights)})")
        self.rewards = dict(rewards)
        self.weights = {k: float(v) for k, v in weights.items()}
        self.concurrent = concurrent

    def score(
        self,
        sources: Sequence[ImageLike],
        instructions: Sequence[str],
        edits: Sequence[ImageLike],
        batch_size: int | None = None,
    ) -> RewardOutput:
        names = tuple(self.rewards)
        calls = [functools.partial(self.rewards[n].score, sources_for(self.rewards[n], sources), instructions, edits,
                                   batch_size=batch_size) for n in names]
        outs = dict(zip(names, concurrently(calls) if self.concurrent else [call() for call in calls]))
        mu = torch.stack([outs[n].score.float() for n in names], dim=1)
        sigma = torch.stack([outs[n].score_sigma.float() for n in names], dim=1)
        w = torch.tensor([self.weights[n] for n in names])
        return RewardOutput(
            mu=mu, sigma=sigma, score=mu @ w, score_sigma=((sigma * w) ** 2).sum(1).sqrt(), dimensions=names
        )


def build_weighted_reward(weights: dict[str, float], device: str | torch.device | None = None,
                          concurrent: bool = True) -> WeightedReward:
    """A ``WeightedReward`` from ``{spec: weight}`` (the ``rewards`` key of the RL configs)."""
    if not isinstance(weights, dict) or not weights:
        raise EditRLError(f"rewards: expected a mapping {{spec: weight}}, e.g. {{world: 1.0}}, got {weights!r}")
    return WeightedReward({spec: build_reward(spec, device) for spec in weights}, weights, concurrent)
