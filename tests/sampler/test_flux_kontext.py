"""FLUX.1-Kontext adapter on a tiny random pipeline: faithful to the pipeline, per-seed reproducible."""

from __future__ import annotations

import torch

from editrl.sampler.editors import FluxKontextEditor
from editrl.tiny import tiny_flux_kontext


def test_sample_equals_pipeline_call(flux_editor, flux_pipe, source):
    seeds = [3, 7]
    ours = flux_editor.sample([source], "make it red", seeds, num_steps=3)
    theirs = flux_pipe(
        image=source, prompt="make it red", generator=[torch.Generator().manual_seed(s) for s in seeds],
        num_images_per_prompt=2, height=64, width=64, max_area=64 * 64, _auto_resize=False,
        output_type="latent", num_inference_steps=3, guidance_scale=flux_editor.default_guidance,
    ).images
    assert ours.latents.shape == theirs.shape == (2, 16, 16)
    torch.testing.assert_close(ours.latents, theirs, atol=1e-4, rtol=1e-4)
    assert ours.nfe == 2 * 3 * 1
    assert [im.size for im in ours.images] == [(64, 64), (64, 64)]


def test_seed_alone_equals_seed_in_batch(flux_editor, source):
    batch = flux_editor.sample([source], "add a hat", [1, 5, 9], num_steps=2)
    alone = flux_editor.sample([source], "add a hat", [5], num_steps=2)
    torch.testing.assert_close(alone.latents[0], batch.latents[1], atol=1e-5, rtol=1e-5)
    again = flux_editor.sample([source], "add a hat", [1, 5, 9], num_steps=2)
    assert torch.equal(again.latents, batch.latents)  # deterministic
    assert not torch.allclose(batch.latents[0], batch.latents[2])  # different seeds differ


def test_shapes_and_condition_batching(flux_editor, source, make_image):
    cond = flux_editor.encode([source, make_image(1)], ["make it red", "make it blue"])
    assert len(cond) == 2 and cond.batched["image_latents"].shape == (2, 16, 16)
    x = flux_editor.initial_noise([0, 1])
    assert x.shape == (2, 16, 16) and x.dtype == torch.float32
    torch.testing.assert_close(flux_editor.initial_noise([1])[0], x[1])
    sigma = torch.tensor([1.0, 0.5])
    v = flux_editor.velocity(x, sigma, cond)
    assert v.shape == x.shape and v.dtype == torch.float32
    # select / repeat_interleave give the rows asked for
    picked = cond.select([1, 1, 0])
    assert picked.instructions == ["make it blue", "make it blue", "make it red"]
    torch.testing.assert_close(flux_editor.velocity(x[[1]], sigma[[1]], cond.select([1])), v[[1]], atol=1e-5, rtol=1e-5)
    assert len(cond.repeat_interleave(3)) == 6 and cond.repeat_interleave(3).instructions[2] == "make it red"


def test_sigmas_schedule(flux_editor):
    s = flux_editor.sigmas(4)
    assert s.shape == (5,) and s[0] == 1.0 and s[-1] == 0.0 and bool((s[:-1] > s[1:]).all())


def test_x0_preview_and_callback(flux_editor, source):
    seen = []

    def callback(step, sigma, x, v):
        seen.append((step, float(sigma[0]), flux_editor.x0(x, sigma, v)))

    result = flux_editor.sample([source], "add a hat", [4], num_steps=3, callback=callback)
    assert [s for s, _, _ in seen] == [0, 1, 2]
    # the last Euler step goes to sigma = 0, so the last preview is the final sample
    torch.testing.assert_close(seen[-1][2], result.latents, atol=1e-5, rtol=1e-5)
    x = torch.randn(2, 16, 16)
    v = torch.randn(2, 16, 16)
    sigma = torch.tensor([0.25, 0.75])
    torch.testing.assert_close(flux_editor.x0(x, sigma, v), x - sigma[:, None, None] * v)


def test_any_image_is_converted_and_resized(flux_editor, caplog, make_image):
    grey = make_image(2, size=50, mode="L")
    rgba = make_image(3, size=80).convert("RGBA")
    with caplog.at_level("INFO"):
        images = flux_editor.prepare_sources([grey, rgba])
    assert all(im.mode == "RGB" and im.size == (64, 64) for im in images)
    assert "resized from 50x50 to 64x64" in caplog.text


def test_resolution_must_fit_the_packing():
    import pytest

    from editrl.errors import EditRLError

    with pytest.raises(EditRLError, match="multiple of 16"):
        FluxKontextEditor(tiny_flux_kontext(), resolution=40)


def test_velocity_is_differentiable(flux_editor, source):
    cond = flux_editor.encode([source], ["make it red"])
    x = flux_editor.initial_noise([0])
    weight = flux_editor.transformer.proj_out.weight
    with torch.enable_grad():
        loss = flux_editor.velocity(x, torch.tensor([0.5]), cond).square().mean()
        (grad,) = torch.autograd.grad(loss, weight)
    assert grad.abs().sum() > 0
