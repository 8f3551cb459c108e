"""Tiny real models for the demo tests: a random FLUX.1-Kontext editor and a random EditReward."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_editor():
    from editrl.sampler.editors import FluxKontextEditor
    from editrl.tiny import tiny_flux_kontext

    return FluxKontextEditor(tiny_flux_kontext(), resolution=64, default_steps=2)


@pytest.fixture(scope="session")
def tiny_reward():
    from editrl.reward.model import EditReward, EditRewardConfig
    from editrl.tiny import tiny_qwen25vl

    backbone, processor = tiny_qwen25vl(0, extra_special_tokens=["<|Reward|>"])
    return EditReward.from_backbone(backbone, processor, EditRewardConfig(templates="world", min_pixels=56 * 56, max_pixels=56 * 56)).eval()
