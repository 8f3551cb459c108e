"""Loading editors by name or folder, and the one-line errors for what is missing."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from editrl.errors import EditRLError
from editrl.sampler.editors import EDITORS, PIPELINE_EDITORS, FluxKontextEditor, load_editor
from editrl.world.editor import WORLD_EDITOR, WORLD_EDITOR_DIR


def test_registry_names_and_defaults():
    assert set(EDITORS) == {"world", "flux-kontext", "qwen-image-edit", "qwen-image-edit-plus", "qwen-image-edit-2511", "flux2",
                            "flux2-klein", "longcat-image-edit", "instruct-pix2pix"}
    assert EDITORS["flux-kontext"].default_model == "black-forest-labs/FLUX.1-Kontext-dev"
    assert EDITORS["qwen-image-edit-plus"].default_model == "Qwen/Qwen-Image-Edit-2509"
    for name, spec in EDITORS.items():
        assert spec.adapter_class().name in (name, "flux-kontext", "qwen-image-edit-plus")  # 2511: the Plus adapter


def test_model_not_available_offline_names_it():
    with pytest.raises(EditRLError, match="'nobody/no-such-editor' is not available offline.*hf download nobody/no-such-editor"):
        load_editor("flux-kontext", model="nobody/no-such-editor", device="cpu")


def test_unknown_editor_and_bad_folder(tmp_path):
    with pytest.raises(EditRLError, match="unknown editor 'dall-e'"):
        load_editor("dall-e")
    with pytest.raises(EditRLError, match="not a diffusers pipeline folder"):
        load_editor("flux-kontext", model=str(tmp_path), device="cpu")


def test_world_editor_missing_is_reported(monkeypatch, tmp_path):
    if (WORLD_EDITOR_DIR / "model_index.json").is_file():
        monkeypatch.setitem(EDITORS, "world", dataclasses.replace(WORLD_EDITOR, default_model=str(tmp_path / "editor")))
    with pytest.raises(EditRLError, match="shipped world editor is missing"):
        load_editor("world", device="cpu")


def test_load_from_saved_folder_with_settings(flux_pipe, flux_editor, source, tmp_path):
    folder = tmp_path / "kontext"
    flux_pipe.save_pretrained(folder)
    (folder / "editrl_editor.json").write_text(json.dumps({"resolution": 64, "default_steps": 3}))
    for editor in (load_editor(str(folder), device="cpu"), load_editor("flux-kontext", model=str(folder), device="cpu")):
        assert isinstance(editor, FluxKontextEditor)
        assert (editor.resolution, editor.default_steps, editor.dtype) == (64, 3, torch.float32)
        torch.testing.assert_close(
            editor.sample([source], "add a hat", [2]).latents, flux_editor.sample([source], "add a hat", [2]).latents
        )
    with pytest.raises(EditRLError, match="lora '.*missing': no such file or folder"):
        load_editor(str(folder), device="cpu", lora=str(tmp_path / "missing"))


def test_model_specific_choices_live_on_the_adapters(tmp_path):
    """InstructPix2Pix's denoiser is a UNet (its LoRA is saved as UNet layers) and it loads without the
    safety checker; the transformer editors need neither."""
    from editrl.tiny import tiny_instruct_pix2pix

    adapters = {name: spec.adapter_class() for name, spec in PIPELINE_EDITORS.items()}
    assert {name: a.lora_layers_key for name, a in adapters.items()} == {
        "flux-kontext": "transformer_lora_layers", "qwen-image-edit": "transformer_lora_layers",
        "qwen-image-edit-plus": "transformer_lora_layers", "qwen-image-edit-2511": "transformer_lora_layers",
        "flux2": "transformer_lora_layers", "flux2-klein": "transformer_lora_layers",
        "longcat-image-edit": "transformer_lora_layers", "instruct-pix2pix": "unet_lora_layers",
    }
    assert {name: a.pipeline_kwargs for name, a in adapters.items()} == {
        "flux-kontext": {}, "qwen-image-edit": {}, "qwen-image-edit-plus": {}, "qwen-image-edit-2511": {}, "flux2": {},
        "flux2-klein": {}, "longcat-image-edit": {},
        "instruct-pix2pix": {"safety_checker": None, "requires_safety_checker": False},
    }
    tiny_instruct_pix2pix().save_pretrained(tmp_path / "ip2p")
    editor = load_editor(str(tmp_path / "ip2p"), device="cpu", resolution=64)
    assert editor.name == "instruct-pix2pix" and editor.pipe.safety_checker is None


@pytest.mark.parametrize("adapter", ["flux", "pix2pix"])
def test_lora_written_by_rl_loads_on_top(adapter, flux_pipe, source, tmp_path):
    """A LoRA saved the way `editrl grpo` saves it changes the velocity exactly as the in-memory one."""
    from editrl.rl.lora import add_lora, save_lora
    from editrl.sampler.editors.instruct_pix2pix import InstructPix2PixEditor
    from editrl.tiny import tiny_flux_kontext, tiny_instruct_pix2pix

    build = (lambda: FluxKontextEditor(tiny_flux_kontext(), resolution=64)) if adapter == "flux" else (
        lambda: InstructPix2PixEditor(tiny_instruct_pix2pix(), resolution=64))
    trained, fresh = build(), build()
    params = add_lora(trained.transformer, rank=4, alpha=4, target_modules=trained.lora_target_modules)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in params:
            p.add_(0.1 * torch.randn_like(p))
    save_lora(trained, tmp_path / "lora")

    cond = fresh.encode([source], ["add a hat"])
    x, sigma = fresh.initial_noise([0]), torch.tensor([0.7])
    with torch.no_grad():
        base = fresh.velocity(x, sigma, cond)
        fresh.load_lora(str(tmp_path / "lora"))
        adapted = fresh.velocity(x, sigma, cond)
        expected = trained.velocity(x, sigma, trained.encode([source], ["add a hat"]))
    assert not torch.allclose(adapted, base, atol=1e-4)
    torch.testing.assert_close(adapted, expected, atol=1e-5, rtol=1e-4)
