"""Loading official-layout checkpoints strictly, and our save_pretrained round trip."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from editrl.errors import EditRLError
from editrl.reward import EditReward, EditRewardConfig
from editrl.reward.checkpoint import remap_state_dict
from editrl.tiny import tiny_qwen25vl

from .conftest import TINY_DEFAULTS


def _old_layout(state_dict):
    """The key layout of transformers < 4.52 (HPSv3-era checkpoints)."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith("model.language_model."):
            key = "model." + key[len("model.language_model."):]
        elif key.startswith("model.visual."):
            key = key[len("model."):]
        out[key] = value
    return out


@pytest.fixture
def official(tmp_path, batch):
    """A base-model folder (config + processor, no reward token) and an official-style checkpoint folder
    holding only model.safetensors; returns (base, checkpoint, config, expected scores)."""
    backbone, processor = tiny_qwen25vl(seed=3)
    base = tmp_path / "base"
    backbone.config.save_pretrained(base)
    processor.save_pretrained(base)  # before from_backbone adds <|Reward|>, like the real base model
    config = EditRewardConfig(**TINY_DEFAULTS)
    torch.manual_seed(4)
    reward = EditReward.from_backbone(backbone, processor, config).eval()
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    save_file({k: v.contiguous() for k, v in reward.state_dict().items()}, checkpoint / "model.safetensors")
    return base, checkpoint, config, reward.score(*batch)


@pytest.mark.parametrize("layout", ["current", "old"])
def test_official_checkpoint_loads_strictly_and_scores_identically(official, batch, layout):
    base, checkpoint, config, expected = official
    if layout == "old":
        state = load_file(checkpoint / "model.safetensors")
        old = _old_layout(state)
        assert any(k.startswith("model.layers.") for k in old) and any(k.startswith("visual.") for k in old)
        assert remap_state_dict(old).keys() == state.keys()
        save_file(old, checkpoint / "model.safetensors")
    loaded = EditReward.from_pretrained(str(checkpoint), base_model=str(base), config=config)
    out = loaded.score(*batch)
    assert torch.equal(out.mu, expected.mu) and torch.equal(out.score, expected.score)


def test_missing_key_fails_strict_load(official):
    base, checkpoint, config, _ = official
    state = load_file(checkpoint / "model.safetensors")
    del state["rm_heads.head_1.5.bias"]
    save_file(state, checkpoint / "model.safetensors")
    with pytest.raises(EditRLError, match=r"rm_heads\.head_1\.5\.bias"):
        EditReward.from_pretrained(str(checkpoint), base_model=str(base), config=config)


def test_missing_model_or_file_names_it(official, tmp_path):
    base, checkpoint, config, _ = official
    with pytest.raises(EditRLError, match="no such folder"):
        EditReward.from_pretrained(str(tmp_path / "nowhere"), base_model=str(base))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EditRLError, match="model.safetensors is missing"):
        EditReward.from_pretrained(str(empty), base_model=str(base))
    with pytest.raises(EditRLError, match="pass base_model"):
        EditReward.from_pretrained(str(checkpoint))


def test_missing_hub_model_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(EditRLError, match="hf download TIGER-Lab/EditReward-Qwen2.5-VL-7B"):
        EditReward.from_pretrained("TIGER-Lab/EditReward-Qwen2.5-VL-7B")


def test_save_pretrained_round_trip(reward, batch, tmp_path):
    reward.save_pretrained(tmp_path / "ours")
    assert {"model.safetensors", "config.json", "editreward_config.json", "tokenizer.json"} <= {p.name for p in (tmp_path / "ours").iterdir()}
    loaded = EditReward.from_pretrained(str(tmp_path / "ours"))
    assert loaded.config == reward.config
    a, b = reward.score(*batch), loaded.score(*batch)
    assert torch.equal(a.mu, b.mu) and torch.equal(a.sigma, b.sigma)
    half = EditReward.from_pretrained(str(tmp_path / "ours"), dtype=torch.bfloat16)
    assert half.lm_head.weight.dtype == torch.bfloat16 and half.rm_heads["head_0"][0].weight.dtype == torch.float32
    assert (half.score(*batch).mu - a.mu).abs().max() < 0.05  # bf16 backbone, fp32 heads: close, not equal
