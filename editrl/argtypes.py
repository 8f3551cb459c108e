"""argparse ``type=`` validators: every numeric flag is checked when the command line is parsed,
before any model loads, so ``--batch-size -1`` is one error line instead of a run that writes garbage."""

from __future__ import annotations

import argparse
import math


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
