"""Naming a reward with one string: every command's ``--reward`` / ``--model`` and the RL configs.

A spec is one string:

- a registered word (``editrl.registry.REWARDS``): the world registers ``"world"`` (its shipped EditReward
  model), ``"oracle"`` (its exact oracle) and a few more;
- ``"http://host:port"`` / ``"https://..."``: a remote ``editrl reward serve`` (``RemoteReward``);
- ``"openai:URL#model=NAME&..."``: a generative judge behind an OpenAI-compatible chat endpoint (``ChatJudge``,
  options in ``editrl.reward.judge``);
- ``"package.module:Name"``: a custom ``RewardFunction`` class (or factory) called with no arguments;
- an EditReward folder or Hub id (``EditReward.from_pretrained``).

``check_reward_spec`` tells which, without loading anything (torch-free), so a command refuses a typo before its
models load; a bare word that is neither registered nor an existing folder is a typo, not a Hub id (``owner/name``).
Each reward is imported only when built, so a run with the oracle needs no reward model.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import EditRLError
from ..files import check_model_source
from ..registry import REWARDS

if TYPE_CHECKING:
    import torch

    from .output import RewardFunction

EXPECTED = ("a registered word, an http(s) URL of `editrl reward serve`, openai:URL#model=NAME (a chat-completions "
            "judge), module:Class, or an EditReward folder or Hub id")


def _is_word(spec: str) -> bool:
    return bool(re.fullmatch(r"[\w-]+", spec))


def _is_module_path(spec: str) -> bool:
    return ":" in spec and not spec.startswith(("http://", "https://")) and not Path(spec).exists()


def check_reward_spec(spec: object, label: str = "reward spec") -> None:
    """One line naming ``label`` unless ``spec`` names a reward (see the module docstring); loads nothing.

    A bare word must be registered (or an existing folder): ``wrold`` lists the known words and suggests ``world``.
    A ``module:Class`` must name an importable module (found, not imported); a path must exist unless it has
    the form of a Hub id."""
    if not isinstance(spec, str) or not spec.strip():
        raise EditRLError(f"{label}: expected {EXPECTED}, got {spec!r}")
    if spec.startswith(("http://", "https://")):
        return
    if spec.startswith("openai:"):  # its options are parsed when it is built (editrl.reward.judge, which needs torch)
        if not spec[len("openai:"):].startswith(("http://", "https://")):
            raise EditRLError(f"{label} {spec!r}: expected openai:http(s)://HOST:PORT/v1#model=NAME")
        return
    if _is_word(spec) and not Path(spec).exists():
        REWARDS.check(spec, label, "; or an http(s) URL, module:Class, an EditReward folder or Hub id (owner/name)")
    elif _is_module_path(spec):
        module = spec.partition(":")[0]
        try:
            found = module in sys.modules or importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package that does not exist, an empty name
            found = False
        except Exception as err:  # finding pkg.mod runs pkg/__init__.py, which may fail
            raise EditRLError(f"{label} {spec!r}: importing its package failed ({type(err).__name__}: {err})") from None
        if not found:
            raise EditRLError(f"{label} {spec!r}: no module {module!r} to import (expected module:Class)")
    else:
        check_model_source(spec, label)


def build_reward(spec: str, device: str | torch.device | None = None) -> RewardFunction:
    """The ``RewardFunction`` a spec names (see the module docstring)."""
    from .output import RewardFunction

    check_reward_spec(spec)
    if _is_word(spec) and spec in REWARDS:  # a bare word: never a URL, module path or Hub id
        return REWARDS[spec](device)
    if spec.startswith("openai:"):
        from .judge import ChatJudge

        return ChatJudge.from_spec(spec)
    if spec.startswith(("http://", "https://")):
        from .client import RemoteReward

        return RemoteReward(spec)
    if _is_module_path(spec):
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
