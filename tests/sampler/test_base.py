"""The shared Editor machinery (on the tiny Kontext): conditions, resizing, the loop's invariants."""

from __future__ import annotations

import pytest
import torch

from editrl.errors import EditRLError
from editrl.sampler.editors import FluxKontextEditor
from editrl.sampler.editors.base import denoise


def test_condition_select_and_repeat(flux_editor, source, make_image):
    cond = flux_editor.encode([source, make_image(1)], ["make it red", "make it blue"])
    picked = cond.select([1, 1, 0])
    assert picked.instructions == ["make it blue", "make it blue", "make it red"]
    assert torch.equal(picked.batched["image_latents"][2], cond.batched["image_latents"][0])
    repeated = cond.repeat_interleave(3)
    assert repeated.instructions == ["make it red"] * 3 + ["make it blue"] * 3
    assert repeated.sources[3] is cond.sources[1]
    assert repeated.shared["guidance"] == cond.shared["guidance"] == flux_editor.default_guidance


def test_split_denoising_equals_one_run(flux_editor, source):
    """Pausing after k steps and resuming gives the same latents: the search relies on it."""
    cond = flux_editor.encode([source], ["add a hat"]).repeat_interleave(2)
    sigmas = flux_editor.sigmas(3)
    x = flux_editor.initial_noise([0, 1])
    with torch.no_grad():
        whole = denoise(flux_editor.velocity, x, cond, sigmas)
        split = denoise(flux_editor.velocity, denoise(flux_editor.velocity, x, cond, sigmas[:2]), cond, sigmas[1:])
    assert torch.equal(whole, split)


def test_chunked_sampling_matches(flux_editor, source):
    full = flux_editor.sample([source], "add a hat", [0, 1, 2])
    chunked = flux_editor.sample([source], "add a hat", [0, 1, 2], batch_size=2)
    torch.testing.assert_close(full.latents, chunked.latents, atol=1e-5, rtol=1e-5)
    assert full.nfe == chunked.nfe == 3 * flux_editor.default_steps


def test_x0_formula(flux_editor):
    x, v, sigma = torch.randn(2, 16, 16), torch.randn(2, 16, 16), torch.tensor([0.25, 0.75])
    torch.testing.assert_close(flux_editor.x0(x, sigma, v), x - sigma[:, None, None] * v)


def test_any_image_is_converted_and_resized(flux_editor, caplog, make_image):
    grey = make_image(2, size=50, mode="L")
    rgba = make_image(3, size=80).convert("RGBA")
    with caplog.at_level("INFO"):
        images = flux_editor.prepare_sources([grey, rgba])
    assert all(im.mode == "RGB" and im.size == (64, 64) for im in images)
    assert "resized from 50x50 to 64x64" in caplog.text and "resized from 80x80" in caplog.text


def test_bad_inputs_are_one_clear_error(flux_editor, flux_pipe, source, tmp_path):
    with pytest.raises(EditRLError, match="multiple of 16"):
        FluxKontextEditor(flux_pipe, resolution=40)
    with pytest.raises(EditRLError, match=r"instructions\[0\]"):
        flux_editor.encode([source], [""])
    with pytest.raises(EditRLError, match="2 sources but 1 instructions"):
        flux_editor.encode([source, source], ["x"])
    with pytest.raises(EditRLError, match=r"sources\[0\]: no image file"):
        flux_editor.sample([str(tmp_path / "nope.png")], "x", [0])
    with pytest.raises(EditRLError, match="3 seeds for 2"):
        flux_editor.sample([source, source], ["a", "b"], [0, 1, 2])


def test_sources_keep_their_aspect_ratio_and_a_batch_shares_one_size(flux_editor, caplog, make_image):
    wide, wider, tall = make_image(4, size=(128, 64)), make_image(5, size=(96, 48)), make_image(6, size=(64, 128))
    with caplog.at_level("INFO"):
        cond = flux_editor.encode([wide, wider], ["make it red", "make it blue"])
    assert cond.size == (96, 48) and [im.size for im in cond.sources] == [(96, 48)] * 2
    assert cond.select([1]).size == (96, 48) and "squashed" not in caplog.text
    assert flux_editor.working_size(tall) == (48, 96)
    with pytest.raises(EditRLError) as err:
        flux_editor.encode([wide, tall], ["make it red", "make it blue"])
    assert str(err.value) == ("sources: flux-kontext edits sources[0] (128x64) at 96x48 but sources[1] (64x128) at 48x96; "
                              "one batch shares one size: edit them in separate calls or crop them to one aspect ratio")


def test_a_given_size_squashes_with_one_warning(flux_pipe, caplog, make_image):
    editor = FluxKontextEditor(flux_pipe, resolution=64, default_steps=3)
    with caplog.at_level("WARNING"):
        cond = editor.encode([make_image(4, size=(128, 64))] * 2, ["a", "b"], size=(64, 64))
        editor.encode([make_image(7, size=(128, 64))], ["c"], size=(64, 64))
    assert cond.size == (64, 64) and cond.sources[0].size == (64, 64)
    assert caplog.text.count("squashed") == 1 and "works at 64x64 here, so a 128x64 source is squashed" in caplog.text
    x = editor.initial_noise([0], cond.size)
    assert editor.decode(x, cond.size)[0].size == (64, 64)


def test_an_editor_with_a_scope_keeps_its_square(flux_pipe, make_image):
    """The world editor (a FLUX.1-Kontext with a scope) knows 64x64 scenes only: a photo goes to that square."""
    editor = FluxKontextEditor(flux_pipe, resolution=64, default_steps=3)
    editor.scope = "knows only toy scenes"
    photo = make_image(4, size=(128, 64))
    assert editor.working_size(photo) == (64, 64) and editor.prepare_sources([photo])[0].size == (64, 64)
    notes = editor.source_notes(photo)
    assert len(notes) == 2 and "knows only toy scenes" in notes[0] and "squashed" in notes[1]
    assert editor.source_notes(make_image(4, size=64)) == []
    result = editor.sample([photo], "make it red", [0])
    assert result.images[0].size == (64, 64)
