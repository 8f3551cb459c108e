"""Shared fixtures of the sampler tests: tiny random editors built in code, 64x64 sources."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from editrl.sampler.editors import FluxKontextEditor
from editrl.tiny import tiny_flux_kontext


def random_image(seed: int, size: int = 64, mode: str = "RGB") -> Image.Image:
    rng = np.random.RandomState(seed)
    return Image.fromarray((rng.rand(size, size, 3) * 255).astype(np.uint8)).convert(mode)


@pytest.fixture(scope="session")
def flux_pipe():
    pipe = tiny_flux_kontext()
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def flux_editor(flux_pipe):
    return FluxKontextEditor(flux_pipe, resolution=64, default_steps=3)


@pytest.fixture(scope="session")
def make_image():
    """``make_image(seed, size=64, mode="RGB")``: a random test image."""
    return random_image


@pytest.fixture
def source():
    return random_image(0)
