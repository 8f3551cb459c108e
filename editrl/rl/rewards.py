"""Rewards for RL: build one from a short spec, and mix several with weights.

A spec is one string:

- ``"world"``: the world's shipped EditReward model (``editrl.world.load_world_reward``);
- ``"oracle"``: the world's exact oracle (``editrl.world.Oracle``);
- ``"http://host:port"`` / ``"https://..."``: a remote ``editrl reward serve`` (``RemoteReward``);
- ``"package.module:Name"``: a custom ``RewardFunction`` class (or factory) called with no arguments;
- anything else: an EditReward folder or Hub id (``EditReward.from_pretrained``).

Each is imported only when asked for, so a run with the oracle needs no reward model.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Sequence

import torch

from ..errors import EditRLError
from ..images import ImageLike
from ..reward.output import RewardFunction, RewardOutput


def build_reward(spec: str, device: str | torch.device | None = None) -> RewardFunction:
    """The ``RewardFunction`` a spec names (see the module docstring)."""
    if not isinstance(spec, str) or not spec.strip():
        raise EditRLError(f"reward spec: expected 'world', 'oracle', an http(s) URL or an EditReward path, got {spec!r}")
    if spec == "oracle":
        from ..world import Oracle

        return Oracle()
    if spec == "world":
        from ..world import load_world_reward

        return load_world_reward()
    if spec.startswith(("http://", "https://")):
        from ..reward.client import RemoteReward

        return RemoteReward(spec)
    if ":" in spec and not Path(spec).exists():
        module, _, name = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as err:
            raise EditRLError(f"reward spec {spec!r}: cannot import {name} from {module} ({err})") from None
        reward = factory()
        if not isinstance(reward, RewardFunction):
            raise EditRLError(f"reward spec {spec!r}: {name}() has no score(sources, instructions, edits) method")
        return reward
    from ..reward import EditReward

    return EditReward.from_pretrained(spec, device=device)


class WeightedReward:
    """``score = sum_i w_i * score_i`` over several rewards (a ``RewardFunction`` itself).

    The output's per-"dimension" columns are the component scores (``dimensions`` = the component
    names), so logs can show each reward next to the mix; ``score_sigma`` combines the components'
    sigmas as independent Gaussians.
    """

    def __init__(self, rewards: dict[str, RewardFunction], weights: dict[str, float]):
        if not rewards:
            raise EditRLError("rewards: expected at least one reward")
        if set(rewards) != set(weights):
            raise EditRLError(f"rewards/weights: names differ ({sorted(rewards)} vs {sorted(weights)})")
        self.rewards = dict(rewards)
        self.weights = {k: float(v) for k, v in weights.items()}

    def score(
        self,
        sources: Sequence[ImageLike],
        instructions: Sequence[str],
        edits: Sequence[ImageLike],
        batch_size: int | None = None,
    ) -> RewardOutput:
        outs = {name: r.score(sources, instructions, edits, batch_size=batch_size) for name, r in self.rewards.items()}
        names = tuple(self.rewards)
        mu = torch.stack([outs[n].score.float() for n in names], dim=1)
        sigma = torch.stack([outs[n].score_sigma.float() for n in names], dim=1)
        w = torch.tensor([self.weights[n] for n in names])
        return RewardOutput(
            mu=mu, sigma=sigma, score=mu @ w, score_sigma=((sigma * w) ** 2).sum(1).sqrt(), dimensions=names
        )


def build_weighted_reward(weights: dict[str, float], device: str | torch.device | None = None) -> WeightedReward:
    """A ``WeightedReward`` from ``{spec: weight}`` (the ``rewards`` key of the RL configs)."""
    if not isinstance(weights, dict) or not weights:
        raise EditRLError(f"rewards: expected a mapping {{spec: weight}}, e.g. {{world: 1.0}}, got {weights!r}")
    return WeightedReward({spec: build_reward(spec, device) for spec in weights}, weights)
