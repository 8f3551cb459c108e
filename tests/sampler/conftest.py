"""Shared fixtures of the sampler tests: tiny random editors built in code, 64x64 sources."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from editrl.sampler.editors import FluxKontextEditor
from editrl.tiny import tiny_flux_kontext


def random_image(seed: int, size: int | tuple[int, int] = 64, mode: str = "RGB") -> Image.Image:
    """A random image of ``size`` (a side, or (width, height))."""
    width, height = (size, size) if isinstance(size, int) else size
    rng = np.random.RandomState(seed)
    return Image.fromarray((rng.rand(height, width, 3) * 255).astype(np.uint8)).convert(mode)


@pytest.fixture(scope="session")
def flux_pipe():
    pipe = tiny_flux_kontext()
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def editor_folder(tmp_path_factory, flux_pipe):
    """The tiny Kontext saved as a diffusers folder with 2 default steps: what ``--editor FOLDER`` loads."""
    folder = tmp_path_factory.mktemp("editor") / "tiny-kontext"
    flux_pipe.save_pretrained(folder)
    (folder / "editrl_editor.json").write_text(json.dumps({"resolution": 64, "default_steps": 2}))
    return folder


@pytest.fixture(scope="session")
def flux_editor(flux_pipe):
    return FluxKontextEditor(flux_pipe, resolution=64, default_steps=3)


@pytest.fixture(scope="session")
def make_image():
    """``make_image(seed, size=64, mode="RGB")``: a random test image (``size``: a side or (width, height))."""
    return random_image


@pytest.fixture
def source():
    return random_image(0)


class ToyReward:
    """A deterministic RewardFunction: instruction following = mean brightness, visual quality =
    mean red minus mean blue; sigma = pixel std (so ``lcb`` differs from ``mean``). Counts items."""

    dimensions = ("instruction_following", "visual_quality")

    def __init__(self):
        self.items = 0

    def score(self, sources, instructions, edits, batch_size=None):
        import torch

        from editrl.images import load_images
        from editrl.reward.output import RewardOutput

        assert len(sources) == len(instructions) == len(edits)
        self.items += len(edits)
        arrays = [torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0) for im in load_images(edits, "edits")]
        mu = torch.stack([torch.stack([a.mean(), a[..., 0].mean() - a[..., 2].mean()]) for a in arrays])
        sigma = torch.stack([torch.stack([a.std(), a.std() / 2]) for a in arrays])
        return RewardOutput(mu=mu, sigma=sigma, score=mu.mean(1), score_sigma=sigma.norm(dim=1) / 2, dimensions=self.dimensions)


@pytest.fixture
def toy_reward():
    return ToyReward()
