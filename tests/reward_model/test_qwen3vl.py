"""EditReward on Qwen3-VL: the official Qwen3-VL scoring path on a tiny real Qwen3VLForConditionalGeneration, its
checkpoint layout, and training through ``editrl reward train``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from editrl.errors import EditRLError
from editrl.reward import EditReward, EditRewardConfig
from editrl.reward.prompts import render_prompt
from editrl.tiny import tiny_qwen3vl

# the tiny processor's own resize bounds (64 x 64 to 128 x 128 pixels), which the official path resizes by
QWEN3_TINY = dict(base_model="tiny", templates="editreward", positions="mrope",
                  min_pixels=64 * 64, max_pixels=128 * 128)


def tiny_qwen3_reward(seed: int = 0) -> EditReward:
    backbone, processor = tiny_qwen3vl(seed=seed)
    torch.manual_seed(seed + 1)
    return EditReward.from_backbone(backbone, processor, EditRewardConfig(**QWEN3_TINY)).eval()


@pytest.fixture(scope="module")
def reward() -> EditReward:
    return tiny_qwen3_reward()


@pytest.fixture(scope="module")
def batch():
    """Images that need resizing to 32-pixel multiples (and one that is upscaled to the minimum area)."""
    rng = np.random.default_rng(0)
    sizes = [((70, 90), (64, 64)), ((40, 40), (130, 100))]
    sources = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for (h, w), _ in sizes]
    edits = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for _, (h, w) in sizes]
    return sources, ["make the sky red", "remove the small blue square on the left"], edits


@torch.no_grad()
def official_scores(reward: EditReward, sources, instructions, edits) -> torch.Tensor:
    """The official Qwen3-VL inference, written out, one item at a time: per dimension, [source, edit, prompt + suffix]
    as one user message through the processor's chat template (which resizes with its own rule), the backbone's stock
    forward, the head over every position read at the <|Reward|> token; then the mean of the two heads' [mu, log_sigma].
    (The official code hands a batch's messages to apply_chat_template as one list, which renders them as a single
    conversation of B user turns: for B > 1 each item would see the ones before it. One item per call is its only
    per-item-correct result.)"""
    processor, backbone = reward.processor, reward.backbone
    reward_id = processor.tokenizer.convert_tokens_to_ids("<|Reward|>")
    rows = []
    for source, instruction, edit in zip(sources, instructions, edits):
        per_head = []
        for d, dim in enumerate(("instruction_following", "visual_quality")):
            message = {"role": "user", "content": [{"type": "image", "image": source}, {"type": "image", "image": edit},
                                                   {"type": "text", "text": render_prompt(reward.templates, dim, instruction)}]}
            inputs = processor.apply_chat_template([message], tokenize=True, add_generation_prompt=True, return_dict=True,
                                                   return_tensors="pt")
            assert inputs["input_ids"].shape[0] == 1 and int((inputs["input_ids"] == reward_id).sum()) == 1
            hidden = backbone.model(**inputs).last_hidden_state
            logits = reward.rm_heads[f"head_{d}"](hidden.float())
            per_head.append(logits[inputs["input_ids"] == reward_id][0])
        rows.append(torch.stack(per_head).mean(0))
    return torch.stack(rows)


def test_scores_equal_the_official_qwen3_vl_path(reward, batch):
    expected = official_scores(reward, *batch)
    for fast in (True, False):  # fast does not apply to Qwen3-VL: both run the official two passes
        out = reward.score(*batch, fast=fast)
        assert torch.allclose(out.score, expected[:, 0], atol=1e-5), (out.score, expected[:, 0])
        assert torch.allclose(out.score_sigma.log(), expected[:, 1], atol=1e-5)
    assert reward.inputs.factor == 32 and reward.inputs.num_image_tokens(batch[0][0]) == 2 * 3  # 70x90 -> 64x96


def test_the_parity_reference_sees_a_wrong_read_out(reward, batch):
    """The comparison above is sharp: a head's output scaled or the deepstack features dropped change the scores,
    and the legacy positions are refused."""
    expected = official_scores(reward, *batch)
    for head in ("head_0", "head_1"):  # a head scaled x2 moves the fused score
        reward.rm_heads[head][5].weight.data *= 2
        try:
            assert not torch.allclose(reward.score(*batch).score, expected[:, 0], atol=1e-4)
        finally:
            reward.rm_heads[head][5].weight.data /= 2
    deepstack = reward.model.visual.deepstack_merger_list[0].linear_fc2
    saved = deepstack.weight.data.clone()
    deepstack.weight.data.zero_()
    try:
        assert not torch.allclose(reward.score(*batch).score, expected[:, 0], atol=1e-4)
    finally:
        deepstack.weight.data.copy_(saved)
    with pytest.raises(EditRLError, match="set positions: mrope"):
        EditReward.from_backbone(*tiny_qwen3vl(seed=0), EditRewardConfig(**{**QWEN3_TINY, "positions": "legacy"}))


def test_training_forward_matches_score_and_is_differentiable(reward, batch):
    per_dim = reward(*batch)
    assert per_dim.shape == (2, 2, 2) and per_dim.dtype == torch.float32
    assert torch.allclose(reward.fuse(per_dim.detach())[:, 0], reward.score(*batch).score, atol=1e-5)
    per_dim[..., 0].sum().backward()
    assert reward.model.visual.deepstack_merger_list[0].linear_fc2.weight.grad.abs().sum() > 0
    reward.zero_grad(set_to_none=True)


def test_an_official_qwen3_vl_checkpoint_loads_strictly_and_scores_identically(tmp_path, reward, batch):
    base = tmp_path / "base"
    backbone, processor = tiny_qwen3vl(seed=0)
    backbone.config.save_pretrained(base)
    processor.save_pretrained(base)  # the base model's files: no <|Reward|> yet
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    state = {k: v.contiguous() for k, v in reward.state_dict().items()}
    assert {"lm_head.weight", "rm_heads.head_1.5.bias"} <= state.keys()
    assert any(k.startswith("model.visual.deepstack_merger_list.") for k in state)
    save_file(state, checkpoint / "model.safetensors")
    assert json.loads((base / "config.json").read_text())["model_type"] == "qwen3_vl"
    loaded = EditReward.from_pretrained(str(checkpoint), base_model=str(base))  # read as the official code: no config given
    assert (loaded.config.positions, loaded.config.min_pixels, loaded.config.max_pixels) == ("mrope", 64 * 64, 128 * 128)
    expected = reward.score(*batch)
    assert torch.equal(loaded.score(*batch).score, expected.score)
    ours = tmp_path / "ours"
    loaded.save_pretrained(str(ours))
    assert torch.equal(EditReward.from_pretrained(str(ours)).score(*batch).score, expected.score)


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_reward_train_trains_a_qwen3_vl_backbone(tmp_path, capsys, lora):
    """``editrl reward train`` on the shipped tiny Qwen3-VL config: full fine-tuning moves the vision tower (its
    deepstack mergers included) and the language model; LoRA leaves the vision tower and moves the language model."""
    from pathlib import Path

    from editrl.cli import main
    from editrl.reward.train import build_reward_model
    from editrl.reward.train_config import load_config

    config_path = Path(__file__).parents[2] / "configs" / "reward" / "tiny-qwen3-vl.yaml"
    overrides = [f"output_dir={tmp_path}", "max_steps=2", "data.train.num_rows=16", "data.validation=null",
                 "per_device_batch_size=4"] + (["model.lora={r: 4, alpha: 8, dropout: 0.0}"] if lora else [])
    assert main(["reward", "train", "--config", str(config_path), *[a for o in overrides for a in ("--set", o)]]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 2 and summary["samples_seen"] == 8
    losses = [json.loads(line).get("loss") for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x for x in losses if x is not None] and all(math.isfinite(x) for x in losses if x is not None)
    initial = build_reward_model(load_config(config_path, overrides).model).state_dict()
    trained = EditReward.from_pretrained(str(tmp_path / "final"))
    assert trained.backbone.config.model_type == "qwen3_vl" and trained.config.positions == "mrope"
    state = trained.state_dict()
    assert state.keys() == initial.keys()
    changed = {k for k in state if not torch.equal(state[k], initial[k])}
    assert any(k.startswith("rm_heads.head_0.") for k in changed) and any(k.startswith("rm_heads.head_1.") for k in changed)
    assert any(k.startswith("model.language_model.layers.") for k in changed)
    vision = any(k.startswith("model.visual.deepstack_merger_list.") for k in changed)
    assert vision != lora
