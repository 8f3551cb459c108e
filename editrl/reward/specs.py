"""Naming a reward with one string: every command's ``--reward`` / ``--model`` and the RL configs.

A spec is one string:

- a registered word (``editrl.registry.REWARDS``): the world registers ``"world"`` (its shipped EditReward
  model) and ``"oracle"`` (its exact oracle);
- ``"http://host:port"`` / ``"https://..."``: a remote ``editrl reward serve`` (``RemoteReward``);
- ``"openai:URL#model=NAME&..."``: a generative judge behind an OpenAI-compatible chat endpoint (``ChatJudge``,
  options in ``editrl.reward.judge``);
- ``"package.module:Name"``: a custom ``RewardFunction`` class (or factory) called with no arguments;
- anything else: an EditReward folder or Hub id (``EditReward.from_pretrained``).

Each is imported only when asked for, so a run with the oracle needs no reward model.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import torch

from ..errors import EditRLError
from ..registry import REWARDS
from .output import RewardFunction


def build_reward(spec: str, device: str | torch.device | None = None) -> RewardFunction:
    """The ``RewardFunction`` a spec names (see the module docstring)."""
    if not isinstance(spec, str) or not spec.strip():
        raise EditRLError(f"reward spec: expected 'world', 'oracle', an http(s) URL or an EditReward path, got {spec!r}")
    if re.fullmatch(r"[\w-]+", spec) and spec in REWARDS:  # a bare word: never a URL, module path or Hub id
        return REWARDS[spec](device)
    if spec.startswith("openai:"):
        from .judge import ChatJudge

        return ChatJudge.from_spec(spec)
    if spec.startswith(("http://", "https://")):
        from .client import RemoteReward

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
    from .model import EditReward

    return EditReward.from_pretrained(spec, device=device)
