"""Tiny EditReward models and random images shared by the reward-model tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from editrl.reward import EditReward, EditRewardConfig
from editrl.tiny import tiny_qwen25vl

TINY_DEFAULTS = dict(base_model="tiny", templates="world", head_hidden_sizes=(16, 8), min_pixels=56 * 56, max_pixels=112 * 112)


def tiny_reward(seed: int = 0, **overrides) -> EditReward:
    """A random tiny EditReward in fp32 (world templates, small images, small heads)."""
    backbone, processor = tiny_qwen25vl(seed=seed)
    config = EditRewardConfig(**{**TINY_DEFAULTS, **overrides})
    torch.manual_seed(seed + 1)
    return EditReward.from_backbone(backbone, processor, config).eval()


@pytest.fixture
def reward() -> EditReward:
    return tiny_reward()


@pytest.fixture
def batch():
    """Three triples with different image sizes and instruction lengths, so padding is exercised."""
    rng = np.random.default_rng(0)
    sizes = [((64, 64), (64, 64)), ((90, 50), (64, 96)), ((120, 120), (40, 64))]
    sources = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for (h, w), _ in sizes]
    edits = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _, (h, w) in sizes]
    instructions = ["make it red", "turn the small blue square into a large green circle please", "x"]
    return sources, instructions, edits
