"""EditReward on tiny models: the two computation paths, positions, fusion, heads and bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from editrl.errors import EditRLError
from editrl.reward import EditRewardConfig, RewardFunction, fuse

from .conftest import tiny_reward


@pytest.mark.parametrize("overrides", [{}, {"positions": "mrope"}, {"head_type": "shared"}, {"fusion": "sum"}])
def test_fast_path_equals_two_pass(batch, overrides):
    reward = tiny_reward(**overrides)
    two_pass = reward.score(*batch, fast=False)
    fast = reward.score(*batch, batch_size=3)  # one batch: different image sizes and instruction lengths
    for name in ("mu", "sigma", "score", "score_sigma"):
        assert torch.allclose(getattr(two_pass, name), getattr(fast, name), atol=1e-4, rtol=0), name
    assert not torch.allclose(two_pass.mu[:, 0], two_pass.mu[:, 1], atol=1e-6)  # the heads differ by dimension


def test_batching_and_order_do_not_change_scores(reward, batch):
    sources, instructions, edits = batch
    together = reward.score(sources, instructions, edits, batch_size=2)
    alone = [reward.score([s], [i], [e]) for s, i, e in zip(sources, instructions, edits)]
    assert torch.allclose(together.mu, torch.cat([a.mu for a in alone]), atol=1e-5)
    reverse = reward.score(sources[::-1], instructions[::-1], edits[::-1], batch_size=3)
    assert torch.allclose(reverse.score.flip(0), together.score, atol=1e-5)


def test_training_forward_is_differentiable_and_matches_score(reward, batch):
    reward.train()
    reward.rm_heads.eval()  # dropout off, so the values are comparable
    per_dim = reward(*batch)
    assert per_dim.shape == (3, 2, 2) and per_dim.dtype == torch.float32
    per_dim[..., 0].sum().backward()
    assert reward.rm_heads["head_1"][0].weight.grad.abs().sum() > 0
    assert reward.model.language_model.layers[0].mlp.up_proj.weight.grad.abs().sum() > 0
    out = reward.score(*batch)
    assert torch.allclose(out.mu, per_dim[..., 0].detach(), atol=1e-5)
    assert torch.allclose(out.sigma, per_dim[..., 1].detach().exp(), atol=1e-5)


def test_training_forward_under_bf16_autocast_returns_fp32(reward, batch):
    """Reward training on a GPU runs under bf16 autocast (mixed_precision: bf16): the heads then compute in
    bf16, and their outputs must still land in the fp32 result (this raised a dtype error before)."""
    reward.rm_heads.eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        per_dim = reward(*batch)
    exact = reward(*batch)
    assert per_dim.dtype == torch.float32 and per_dim.shape == (3, 2, 2)
    assert torch.allclose(per_dim, exact, atol=0.05) and not torch.equal(per_dim, exact)  # bf16 rounding, same values


def _reference_hidden(reward, batch, dim_index, position_ids):
    """The stock Qwen2.5-VL model forward (input_ids + pixels), independent of EditReward's embedding code."""
    sources, instructions, edits = batch
    images, instructions = reward._prepare(sources, instructions, edits)
    image_batch = reward.inputs.images(images)
    dim = reward.dimensions[dim_index]
    texts = [reward.inputs.text(dim, s) for s in instructions]
    resized = [reward.inputs.resize(image) for image in images]
    enc = reward.processor(text=texts, images=resized, padding=True, return_tensors="pt", images_kwargs={"do_resize": False})
    assert torch.equal(enc["image_grid_thw"], image_batch.grid_thw)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    if position_ids == "sequential":
        position_ids = torch.arange(ids.shape[1]).view(1, 1, -1).expand(3, ids.shape[0], -1)
        extra = {}
    else:
        position_ids = None
        extra = {"mm_token_type_ids": (ids == reward.inputs.image_token_id).int()}
    with torch.no_grad():
        hidden = reward.model(input_ids=ids, attention_mask=mask, pixel_values=enc["pixel_values"],
                              image_grid_thw=enc["image_grid_thw"], position_ids=position_ids, **extra).last_hidden_state
        rows, cols = (ids == reward.inputs.reward_token_id).nonzero(as_tuple=True)
        return reward.head(dim_index)(hidden[rows, cols].float())[:, 0]


def test_legacy_positions_are_sequential_and_mrope_is_the_stock_forward(batch):
    legacy = tiny_reward(positions="legacy")
    mrope = tiny_reward(positions="mrope")
    out_legacy, out_mrope = legacy.score(*batch), mrope.score(*batch)
    for d in range(2):
        assert torch.allclose(out_legacy.mu[:, d], _reference_hidden(legacy, batch, d, "sequential"), atol=1e-5)
        assert torch.allclose(out_mrope.mu[:, d], _reference_hidden(mrope, batch, d, "stock"), atol=1e-5)
    assert (out_legacy.mu - out_mrope.mu).abs().max() > 1e-5  # the positions matter


def test_fusion_formulas_by_hand():
    per_dim = torch.tensor([[[1.0, math.log(2.0)], [3.0, math.log(0.5)]]])  # mu 1, 3; sigma 2, 0.5
    assert torch.allclose(fuse(per_dim, "mean"), torch.tensor([[2.0, 0.0]]))
    assert torch.allclose(fuse(per_dim, "min"), torch.tensor([[1.0, math.log(0.5)]]))
    assert torch.allclose(fuse(per_dim, "sum"), torch.tensor([[4.0, math.log(math.sqrt(4.25))]]))


def test_output_and_heads_layout(reward, batch):
    assert isinstance(reward, RewardFunction)
    out = reward.score(*batch)
    assert out.mu.shape == (3, 2) and out.score.shape == (3,)
    assert torch.allclose(out.score, out.mu.mean(1), atol=1e-6)
    assert torch.allclose(out.score_sigma, out.sigma.log().mean(1).exp(), atol=1e-6)
    keys = [k for k in reward.state_dict() if k.startswith("rm_heads")]
    assert sorted(keys) == sorted(f"rm_heads.head_{h}.{i}.{p}" for h in (0, 1) for i in (0, 3, 5) for p in ("weight", "bias"))
    assert reward.rm_heads["head_0"][0].weight.shape == (16, 32)
    assert all(p.dtype == torch.float32 for p in reward.rm_heads.parameters())
    shared = tiny_reward(head_type="shared")
    assert list(shared.rm_heads) == ["head_0"]
    assert EditRewardConfig().head_hidden_sizes == (1024, 16)


def test_bad_inputs_raise_one_clear_error(reward, batch, tmp_path):
    sources, instructions, edits = batch
    with pytest.raises(EditRLError, match=r"instructions\[1\]"):
        reward.score(sources, [instructions[0], "  ", instructions[2]], edits)
    with pytest.raises(EditRLError, match=r"^instructions\[2\]: not valid Unicode text \(a lone surrogate '\\udcff' at character 2\)"):
        reward.score(sources, [*instructions[:2], "a\udcff"], edits)  # what Python makes of a non-UTF-8 byte in argv
    with pytest.raises(EditRLError, match=r"^edits\[1\]: a 1x300 image; its long side may be at most 200 times its short side$"):
        reward.score(sources, instructions, [edits[0], Image.new("RGB", (1, 300)), edits[2]])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(EditRLError, match="broken.png"):
        reward.score(sources, instructions, [edits[0], str(broken), edits[2]])
    with pytest.raises(EditRLError, match="same length"):
        reward.score(sources, instructions[:2], edits)
    with pytest.raises(EditRLError, match="fusion"):
        EditRewardConfig(fusion="max")
    with pytest.raises(EditRLError, match="text_prompt"):
        tiny_reward(templates={"instruction_following": "a", "visual_quality": "b {text_prompt}", "suffix": "<|Reward|>"})
    for bad in (-1, 2.5, True):
        with pytest.raises(EditRLError, match=f"batch_size: expected an integer >= 1, got {bad!r}"):
            reward.score(sources, instructions, edits, batch_size=bad)
    # 0 and None mean the default batch (8), as they always have: the same scores as one batch of 3
    torch.testing.assert_close(reward.score(sources, instructions, edits, batch_size=0).score,
                               reward.score(sources, instructions, edits, batch_size=3).score)


def test_check_batch_size_gives_the_default_for_none_and_refuses_anything_but_a_positive_integer():
    from editrl.reward.output import check_batch_size

    assert check_batch_size(None, default=8) == 8 and check_batch_size(3, default=8) == 3
    for bad in (0, -1, 2.5, "4", True):
        with pytest.raises(EditRLError, match=f"^batch_size: expected an integer >= 1, got {bad!r}$"):
            check_batch_size(bad, default=8)


def test_image_modes_are_converted(reward):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    from PIL import Image

    gray = Image.fromarray(rgb[..., 0], mode="L")
    out = reward.score([gray, rgb], ["a", "a"], [Image.fromarray(rgb).convert("RGBA"), rgb])
    assert torch.isfinite(out.score).all() and out.score.shape == (2,)


def test_repeated_sources_run_the_vision_tower_once(reward, batch):
    sources, instructions, edits = batch
    seen = []
    handle = reward.model.visual.register_forward_hook(lambda module, args, kwargs_out: seen.append(args[0].shape[0]))
    try:
        shared = reward.score([sources[0]] * 3, instructions, edits)  # best-of-N: one source, three edits
    finally:
        handle.remove()
    copies = reward.score([sources[0].copy() for _ in range(3)], instructions, edits, fast=False)
    assert torch.allclose(shared.mu, copies.mu, atol=1e-5)
    patches = [reward.inputs.images([reward._prepare([s], ["a"], [s])[0][0]]).pixel_values.shape[0] for s in [sources[0], *edits]]
    assert seen == [sum(patches)]  # one vision call over the source once plus the three edits


def test_packed_vision_attention_matches_stock(reward):
    from editrl.reward.vision_attention import NAME, packed_vision_attention

    rng = np.random.default_rng(2)
    # 224x224 has 4 windows of 112 px; 168x112 and 84x56 have windows of other lengths, so groups differ
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in [(224, 224), (168, 112), (84, 56)]]
    enc = reward.processor.image_processor(images=images, do_resize=False, return_tensors="pt")
    visual = reward.model.visual
    with torch.no_grad():
        stock = visual(enc["pixel_values"], grid_thw=enc["image_grid_thw"]).pooler_output
        with packed_vision_attention(visual):
            assert visual.config._attn_implementation == NAME
            packed = visual(enc["pixel_values"], grid_thw=enc["image_grid_thw"]).pooler_output
    assert visual.config._attn_implementation == "sdpa"
    assert stock.shape == packed.shape == (64 + 24 + 6, 32)
    assert torch.allclose(stock, packed, atol=1e-5)
