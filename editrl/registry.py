"""Named things that the layers above provide to the layers below, without the layers below naming them.

Dependencies point one way (world -> rl -> sampler -> reward): ``editrl.reward`` cannot import the
world, yet ``--reward oracle`` must build the world's oracle. So each lower layer keeps a
``Registry`` (the editors, the reward specs, the RL prompt sets, ...) and the world fills it when it
is imported. A lookup of a name not yet registered first imports the registry's ``plugins`` (the
packages that fill it), so ``load_editor("world")`` works from a script that never imported ``editrl.world``.
Each registry names only its own fillers: checking ``--reward wrold`` imports the world's names, not
``editrl.tiny`` and transformers.

A registered value may be given as a ``"package.module:attribute"`` string: it is imported on first
use, so registering costs nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping

from .errors import EditRLError, did_you_mean

WORLD = ("editrl.world",)
"""The editing world registers its editor, rewards, prompt set and tokenizer words on import."""


def load_plugins(modules: tuple[str, ...]) -> None:
    """Import each of ``modules`` (each registers its names on import; Python imports a module once)."""
    for module in modules:
        importlib.import_module(module)


def resolve(target: object) -> object:
    """``target`` itself, or the attribute a ``"module:attribute"`` string names."""
    if isinstance(target, str) and ":" in target:
        module, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module), attribute)
    return target


def lazy_exports(package: str, exports: dict[str, str]):
    """A module ``__getattr__`` (PEP 562) for a package's ``__init__``: ``exports`` maps each public name
    to the submodule defining it, imported on first use. Importing the package then loads nothing heavy,
    so a torch-free submodule (a config class the CLI parser reads) stays torch-free to import."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return resolve(f"{package}.{exports[name]}:{name}")

    return __getattr__


class Registry(MutableMapping):
    """A dict of names whose unknown keys (and full listing) first load the plugin packages, and whose
    ``"module:attribute"`` values are imported when read."""

    def __init__(self, kind: str, plugins: tuple[str, ...], entries: dict | None = None):
        self.kind = kind
        self.plugins = plugins
        self._entries = dict(entries or {})

    def register(self, name: str, target: object) -> None:
        """Add (or replace) ``name``; ``target`` may be a ``"module:attribute"`` string."""
        self._entries[name] = target

    def __getitem__(self, name: str):
        if name not in self._entries:
            load_plugins(self.plugins)
        value = resolve(self._entries[name])
        self._entries[name] = value
        return value

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            load_plugins(self.plugins)
        return name in self._entries

    def __setitem__(self, name: str, target: object) -> None:
        self._entries[name] = target

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        load_plugins(self.plugins)
        return iter(list(self._entries))

    def __len__(self) -> int:
        load_plugins(self.plugins)
        return len(self._entries)

    def check(self, name: object, label: str, alternatives: str = "") -> None:
        """One line naming ``label`` when ``name`` is not registered: the closest name, then the known names and
        ``alternatives`` (the other forms the caller accepts)."""
        if name not in self:
            raise EditRLError(f"{label}: unknown {self.kind} {name!r}{did_you_mean(name, self)}; "
                              f"known: {', '.join(sorted(self))}{alternatives}")

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"


EDITORS = Registry("editor", ("editrl.sampler.editors", *WORLD))
"""Editor name -> ``editrl.sampler.editors.EditorSpec`` (the diffusers adapters register on import of
``editrl.sampler.editors``; the world registers ``world``)."""
REWARDS = Registry("reward", WORLD)
"""Reward spec word -> factory ``(device) -> RewardFunction`` (the world registers ``world`` and ``oracle``)."""
PROMPT_SETS = Registry("prompt set", WORLD)
"""RL ``data`` word -> ``(n, split, seed, size) -> [(source image, instruction), ...]`` (the world registers ``world``)."""
TINY_BACKBONES = Registry("tiny backbone", ("editrl.tiny",))
"""``qwen2.5-vl`` / ``qwen3-vl`` -> ``(seed, extra_special_tokens, words, **sizes) -> (backbone, processor)`` built in
code, for a reward config's ``model.tiny`` and ``model.tiny_backbone`` (registered by ``editrl.tiny``)."""
TOKENIZER_WORDS = Registry("tokenizer", WORLD, {"bytes": None})
"""A tiny backbone's ``model.tokenizer`` -> ``(templates) -> words`` of a word-level tokenizer, or None for
the byte-level one (the world registers ``world``)."""
CHAT_MODELS = Registry("chat model", WORLD)
"""``editrl reward serve --chat`` word -> factory ``(device) -> editrl.reward.chat_api.ChatModel``: a local generative
model answering (images, text) with token log-probabilities (the world registers ``world-vlm``)."""
JUDGE_PROMPTS = Registry("judge prompt", WORLD)
"""A generative judge's ``prompt=`` word -> a prompt file or folder (``editrl.reward.judge``; the world registers
``world-verify``, its VLM's own question)."""
