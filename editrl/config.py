"""Dataclass configs from YAML plus ``--set key=value`` overrides, shared by every trainer.

Each trainer (reward training, GRPO, DPO, the world editor) describes its keys as a dataclass,
possibly with nested dataclass sections. Loading is strict: an unknown key or a value of the wrong
type stops with an ``EditRLError`` naming the dotted key, so a typo never silently falls back to a
default. The convention for every config dataclass: each field is a ``config_field`` (its help text
is the one place the key is documented: ``--help``, ``config_help`` and generated CLI flags read it),
and checks across keys go in ``validate()``, which ``Config`` runs on construction.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml

from .errors import EditRLError, did_you_mean

C = TypeVar("C")

REQUIRED = dataclasses.MISSING
"""The ``default`` of a ``config_field`` that has none: the key must be given."""


def config_field(default, help: str, parse: Callable[[str], Any] | None = None, cli: bool = True, **kwargs):
    """A config key with its documentation (``metadata["help"]``); list, dict and section defaults are copied per instance.

    ``parse`` is the ``argparse`` type of the key's generated flag (an ``editrl.argtypes`` validator;
    default: the annotation's int/float/str); ``cli=False`` keeps the key off the command line.
    """
    metadata = {"help": help, "parse": parse, "cli": cli}
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata, **kwargs)
    return field(default=default, metadata=metadata, **kwargs)


class Config:
    """Base of the config dataclasses: ``validate()`` (checks across keys, raising one ``EditRLError``
    line that names the key) runs on every construction, from code, YAML or the command line alike."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Nothing to check; subclasses extend it (calling ``super().validate()``)."""

    def require_positive(self, *names: str) -> None:
        """The check most configs share: each key in ``names`` holds an integer >= 1."""
        for name in names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise EditRLError(f"config key {name}: expected an integer >= 1, got {value!r}")


def add_config_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One ``--key`` flag per field of the config dataclass ``cls`` (underscores as dashes), with the field's
    help and default, so the command and the config cannot drift apart; ``config_from_args`` reads them back."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.metadata.get("cli", True):
            continue
        kinds = typing.get_args(hints[f.name]) if _is_union(hints[f.name]) else (hints[f.name],)
        parse = f.metadata.get("parse") or next(kind for kind in (int, float, str) if kind in kinds)
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=parse, default=f.default, help=f.metadata["help"])


def config_from_args(cls: type[C], args: argparse.Namespace, **values) -> C:
    """``cls`` from the flags ``add_config_arguments`` added (plus ``values`` for the keys kept off the command line)."""
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.metadata.get("cli", True)}
    return cls(**flags, **values)


def _is_union(annotation: Any) -> bool:
    return isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union


def _dataclass_in(annotation: Any) -> type | None:
    """The dataclass inside an annotation like ``X`` or ``X | None``."""
    options = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    return next((a for a in options if dataclasses.is_dataclass(a)), None)


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check a YAML value against the field's type; YAML reads ``1e-4`` as a string, so numbers are converted."""
    if annotation is Any:
        return value
    if _is_union(annotation):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        for option in (a for a in options if a is not type(None)):
            try:
                return _coerce(value, option, key)
            except EditRLError:
                continue
        raise EditRLError(f"config key {key}: expected {annotation}, got {value!r}")
    expected = typing.get_origin(annotation) or annotation
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is float and (is_number or isinstance(value, str)):
        try:
            return float(value)
        except ValueError:
            pass
    elif expected is int and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return int(value)
        except ValueError:
            pass
    elif expected in (list, tuple) and isinstance(value, (list, tuple)):
        return expected(value)
    elif expected in (bool, str, dict) and isinstance(value, expected):
        return value
    name = getattr(expected, "__name__", str(expected))
    raise EditRLError(f"config key {key}: expected {'a number' if expected in (int, float) else name}, got {value!r}")


def build_dataclass(cls: type[C], data: Any, prefix: str = "") -> C:
    """``cls(**data)`` recursively through nested sections, strictly typed, then ``validate()``."""
    if dataclasses.is_dataclass(data):
        return data
    section = prefix.rstrip(".") or "the config"
    if not isinstance(data, dict):
        raise EditRLError(f"config section {section}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [key for key in data if key not in names]
    if unknown:
        hint = did_you_mean(unknown[0], names, show=lambda key: prefix + key)
        raise EditRLError(f"unknown config key {prefix}{unknown[0]}{hint}; known keys of {section}: {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        sub = _dataclass_in(hints[key])
        if sub is not None and value is not None:
            kwargs[key] = build_dataclass(sub, value, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(value, hints[key], prefix + key)
    try:
        config = cls(**kwargs)
    except TypeError as err:
        raise EditRLError(f"config section {section}: {err}") from None
    if hasattr(config, "validate") and not isinstance(config, Config):  # a Config validated itself
        config.validate()
    return config


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Apply ``key.sub=value`` strings (values parsed as YAML) to a nested dict, in place."""
    for item in overrides or ():
        if "=" not in item:
            raise EditRLError(f"--set {item!r}: expected key=value, e.g. --set learning_rate=1e-5")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise EditRLError(f"--set {item!r}: {part} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def load_config(cls: type[C], path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> C:
    """``cls`` from a YAML file (or its defaults when ``path`` is None), then ``--set`` overrides."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise EditRLError(f"config {str(path)!r}: no such file")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise EditRLError(f"config {str(path)!r}: not valid YAML ({err})") from None
        if not isinstance(data, dict):
            raise EditRLError(f"config {str(path)!r}: expected a mapping of keys to values")
    return build_dataclass(cls, apply_overrides(data, list(overrides or ())))


def config_help(cls: type, prefix: str = "", indent: str = "  ") -> str:
    """Every key of a config dataclass (nested sections as dotted keys) with its default and help,
    for a command's ``--help``: the dataclass is the one place keys are documented."""
    lines = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        sub = _dataclass_in(hints[f.name])
        if sub is not None:
            lines.append(config_help(sub, f"{prefix}{f.name}.", indent))
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        lines.append(f"{indent}{prefix}{f.name} (default: {yaml.safe_dump(default, default_flow_style=True).strip().removesuffix('...').strip()})")
        if f.metadata.get("help"):
            lines.append(f"{indent}    {f.metadata['help']}")
    return "\n".join(lines)
