"""argparse ``type=`` validators: every numeric flag is checked when the command line is parsed,
before any model loads, so ``--batch-size -1`` is one error line instead of a run that writes garbage.
Also the old flag names and words kept as aliases (``DeprecatedFlag``, ``select_rule``)."""

from __future__ import annotations

import argparse
import math
import sys


def _number(kind, low=None, high=None, low_open=False, high_open=False):
    """A ``type=`` converter accepting ``kind`` values in the given (closed unless told) range."""
    words = "an integer" if kind is int else "a number"
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high}")
    expected = words + (" " + " and ".join(bounds) if bounds else "")

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if (kind is float and not math.isfinite(value)) \
                or (low is not None and (value <= low if low_open else value < low)) \
                or (high is not None and (value >= high if high_open else value > high)):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    convert.__name__ = expected  # argparse names the type in its messages
    return convert


positive_int = _number(int, low=1)
"""An integer >= 1 (counts, batch sizes)."""
nonnegative_int = _number(int, low=0)
"""An integer >= 0 (seeds, top-k)."""
port = _number(int, low=0, high=65535)
"""A TCP port (0: any free port)."""
finite_float = _number(float)
"""Any finite number (score thresholds)."""
nonnegative_float = _number(float, low=0)
"""A finite number >= 0 (waits, multipliers)."""
positive_float = _number(float, low=0, low_open=True)
"""A finite number > 0 (timeouts)."""
fraction = _number(float, low=0, high=1)
"""A number in [0, 1]."""
open_fraction = _number(float, low=0, high=1, low_open=True)
"""A number in (0, 1]."""


def deprecation_note(old: str, new: str) -> None:
    """One line on stderr for an old spelling that still works (logging is not set up while parsing)."""
    print(f"editrl: note: {old} is deprecated; use {new}", file=sys.stderr)


class DeprecatedFlag(argparse.Action):
    """An old flag kept as an alias of ``new`` (same ``dest``): works, is hidden from --help, and says so once."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        super().__init__(option_strings, dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        deprecation_note(option_string, self.new)
        setattr(namespace, self.dest, values)


LEGACY_RULES = {"mean": "fused", "if": "instruction_following", "vq": "visual_quality"}
"""The old words of the selection rules (``editrl.sampler.selection``) and their current names; here, in this
torch-free leaf, so the parser reads them without importing the sampler (which imports this, not the reverse)."""


def select_rule(text: str) -> str:
    """A selection rule (``editrl.sampler.selection``); the old words mean, if, vq still work, with a note."""
    if text in LEGACY_RULES:
        deprecation_note(f"--select {text}", f"--select {LEGACY_RULES[text]}")
    return LEGACY_RULES.get(text, text)
