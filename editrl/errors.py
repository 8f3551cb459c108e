"""The one exception type users see for bad input or missing models.

The CLI catches it and prints its message as a single line (exit code 2), so every message must
name the offending input and say what was expected or how to fix it.
"""


class EditRLError(ValueError):
    """Bad input, a malformed config, or a model/file that is not available offline."""
