"""Quiet model loading: the third-party chatter around ``from_pretrained`` that a user cannot act on.

diffusers and transformers print loading progress bars, a notice per image processor that falls back
to PIL without torchvision, and LoRA-prefix notices for text encoders our transformer-only adapters
never touch. ``quiet_loading()`` wraps only editrl's own loading calls: it lowers the two libraries'
verbosity to errors and turns their progress bars off, then restores what was set before, so a user's
own settings (and every warning outside loading) are left alone. ``editrl -v`` keeps them all.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager


@contextmanager
def quiet_loading():
    """Silence diffusers' and transformers' loading logs and progress bars inside the block."""
    if logging.getLogger("editrl").getEffectiveLevel() <= logging.DEBUG:
        yield
        return
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    saved = []
    for lib in (diffusers_logging, transformers_logging):
        saved.append((lib, lib.get_verbosity(), lib.is_progress_bar_enabled()))
        lib.set_verbosity_error()
        lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, verbosity, bars in saved:
            lib.set_verbosity(verbosity)
            if bars:
                lib.enable_progress_bar()
