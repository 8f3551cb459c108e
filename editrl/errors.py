"""The one exception type users see for bad input or missing models, and the one way a wrong name suggests a fix.

The CLI catches it and prints its message as a single line (exit code 2), so every message must
name the offending input and say what was expected or how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable


class EditRLError(ValueError):
    """Bad input, a malformed config, or a model/file that is not available offline."""


def did_you_mean(word: object, choices: Iterable[object], show: Callable[[str], str] = repr) -> str:
    """`` (did you mean X?)`` for the choice closest to ``word`` (``difflib``), or ``""`` when none is close.

    Every unknown name (editor, reward, prompt set), command-line flag and config key suggests its fix
    through this, so a typo reads the same everywhere."""
    close = difflib.get_close_matches(str(word), [str(choice) for choice in choices], n=1)
    return f" (did you mean {show(close[0])}?)" if close else ""
