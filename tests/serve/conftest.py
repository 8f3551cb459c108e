"""Shared fixtures for the reward-server tests: a deterministic toy reward and test images."""

from __future__ import annotations

import threading

import numpy as np
import numpy.random  # noqa: F401 - imported here, not lazily by two threads at once (numpy 2 lazy-import race)
import pytest
import torch
from PIL import Image

from editrl.images import load_image
from editrl.reward.output import DIMENSIONS, RewardOutput


class ToyReward:
    """A deterministic RewardFunction whose score of an item depends on that item only.

    mu = (mean of the edit's red channel - mean of the source's red channel, len(instruction) / 10),
    so any mix-up of items, images or order between requests shows up in the scores.
    """

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls = 0
        self.batch_sizes: list[int] = []
        self.gate = gate  # if given, scoring blocks until it is set ...
        self.entered = threading.Event()  # ... and this tells that a call is waiting on it

    def score(self, sources, instructions, edits, batch_size=None) -> RewardOutput:
        if self.gate is not None:
            self.entered.set()
            assert self.gate.wait(timeout=30), "test gate never opened"
        self.calls += 1
        self.batch_sizes.append(len(sources))
        rows = []
        for s, t, e in zip(sources, instructions, edits):
            src = np.asarray(load_image(s), dtype=np.float64)
            edt = np.asarray(load_image(e), dtype=np.float64)
            rows.append([edt[..., 0].mean() / 255 - src[..., 0].mean() / 255, len(t) / 10.0])
        mu = torch.tensor(rows, dtype=torch.float32)
        sigma = torch.full_like(mu, 0.5) + mu.abs() / 7
        return RewardOutput(mu=mu, sigma=sigma, score=mu.mean(1), score_sigma=sigma.mean(1), dimensions=DIMENSIONS)


def random_image(seed: int, size: int = 32) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


@pytest.fixture
def toy_reward() -> ToyReward:
    return ToyReward()


@pytest.fixture
def toy_reward_cls() -> type[ToyReward]:
    return ToyReward


@pytest.fixture
def image():
    return random_image


@pytest.fixture(scope="session")
def tiny_edit_reward():
    """A tiny random-weight EditReward (the real class) at 56x56 pixels."""
    from editrl.reward.model import EditReward, EditRewardConfig
    from editrl.tiny import tiny_qwen25vl

    backbone, processor = tiny_qwen25vl(0, extra_special_tokens=["<|Reward|>"])
    config = EditRewardConfig(templates="world", min_pixels=56 * 56, max_pixels=56 * 56)
    return EditReward.from_backbone(backbone, processor, config).eval()
