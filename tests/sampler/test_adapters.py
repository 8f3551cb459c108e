"""Every editor adapter end to end on a tiny random pipeline: faithful to the pipeline's own
``__call__``, reproducible per seed, correct shapes, differentiable velocity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from editrl.errors import EditRLError
from editrl.sampler.editors.flux2 import Flux2Editor, Flux2KleinEditor
from editrl.sampler.editors.flux_kontext import FluxKontextEditor
from editrl.sampler.editors.instruct_pix2pix import InstructPix2PixEditor
from editrl.sampler.editors.longcat_image_edit import LongCatImageEditEditor
from editrl.sampler.editors.qwen_image_edit import QwenImageEditEditor, QwenImageEditPlusEditor
from editrl.tiny import (
    tiny_flux2,
    tiny_flux2_klein,
    tiny_flux_kontext,
    tiny_instruct_pix2pix,
    tiny_longcat_image_edit,
    tiny_qwen_image_edit,
)

STEPS = 3
ADAPTERS = ["flux-kontext", "qwen-image-edit", "qwen-image-edit-plus", "qwen-image-edit-2511", "flux2", "flux2-klein",
            "longcat-image-edit", "instruct-pix2pix"]


def _build(name, resolution=64):
    if name == "flux-kontext":
        return FluxKontextEditor(tiny_flux_kontext(), resolution=resolution, default_steps=STEPS)
    if name == "flux2":
        return Flux2Editor(tiny_flux2(), resolution=resolution, default_steps=STEPS)
    if name == "flux2-klein":
        return Flux2KleinEditor(tiny_flux2_klein(), resolution=resolution, default_steps=STEPS)
    if name == "longcat-image-edit":
        return LongCatImageEditEditor(tiny_longcat_image_edit(), resolution=resolution, default_steps=STEPS)
    if name.startswith("qwen"):
        plus = name != "qwen-image-edit"  # 2511 is the Plus pipeline with a zero_cond_t transformer
        cls = QwenImageEditPlusEditor if plus else QwenImageEditEditor
        pipe = tiny_qwen_image_edit(plus=plus, zero_cond_t=name.endswith("2511"))
        return cls(pipe, resolution=resolution, default_steps=STEPS, condition_resolution=resolution)
    return InstructPix2PixEditor(tiny_instruct_pix2pix(), resolution=resolution, default_steps=STEPS)


@pytest.fixture(scope="module", params=ADAPTERS)
def editor(request):
    editor = _build(request.param)
    editor.pipe.set_progress_bar_config(disable=True)
    return editor


def _pipeline_latents(editor, source, instruction, seeds, monkeypatch, references=()):
    """The pipeline's own ``__call__`` for the same seeds and steps, latents in the adapter's layout.

    Kontext and InstructPix2Pix get the source at the adapter's working size (Kontext's own choice among
    its ~1 MP preferred sizes is tested below; InstructPix2Pix edits at the size it is given); the Qwen
    pipelines resize the source themselves, with their ``calculate_dimensions`` at the adapter's area.
    ``references``: further sources of the one prompt (FLUX.2 and Qwen-Image-Edit-Plus take a list)."""
    pipe = editor.pipe
    resized = editor.prepare_sources([source])[0]
    width, height = resized.size
    if references:
        resized = [resized, *editor.prepare_references([list(references)])[0]]
        source = [source, *references]
    common = dict(
        prompt=instruction, generator=[torch.Generator().manual_seed(s) for s in seeds],
        num_images_per_prompt=len(seeds), output_type="latent", num_inference_steps=STEPS,
    )
    if editor.name == "flux-kontext":
        return pipe(**common, image=resized, height=height, width=width, max_area=width * height, _auto_resize=False,
                    guidance_scale=editor.default_guidance).images
    if editor.name.startswith("flux2"):  # Klein returns the VAE's latents, dev the packed ones
        latents = pipe(**common, image=resized, guidance_scale=editor.default_guidance).images
        return latents if latents.ndim == 3 else _flux2_packed(pipe, latents)
    if editor.name == "longcat-image-edit":  # sizes the source by calculate_dimensions at ~1 MP: the adapter's area here
        import diffusers.pipelines.longcat_image.pipeline_longcat_image_edit as longcat

        area = editor.resolution**2
        monkeypatch.setattr(longcat, "calculate_dimensions", lambda _, ratio, real=longcat.calculate_dimensions: real(area, ratio))
        return pipe(**common, image=source, guidance_scale=editor.default_guidance).images
    if editor.name.startswith("qwen"):
        # the pipelines size the source for ~1 MP through module globals: the adapter's area for this call only
        import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit as edit
        import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus as edit_plus

        area = editor.resolution**2
        monkeypatch.setattr(edit, "calculate_dimensions", lambda _, ratio, real=edit.calculate_dimensions: real(area, ratio))
        monkeypatch.setattr(edit_plus, "calculate_dimensions",
                            lambda _, ratio, real=edit_plus.calculate_dimensions: real(area, ratio))
        return pipe(**common, image=source, negative_prompt=" ", true_cfg_scale=editor.default_guidance, height=height,
                    width=width).images  # (the Plus pipeline's own output size is its last image's)
    from diffusers import EulerDiscreteScheduler

    # the deterministic Euler scheduler (the default ancestral one re-injects noise every step)
    monkeypatch.setattr(pipe, "scheduler", EulerDiscreteScheduler.from_config(pipe.scheduler.config))
    latents = pipe(**common, image=resized, guidance_scale=editor.default_guidance,
                   image_guidance_scale=editor.image_guidance).images
    return editor._pack(latents)


def _flux2_packed(pipe, latents):
    """FLUX.2 VAE latents (Klein's ``output_type="latent"``) in the packed, batch-normalised layout the adapter denoises."""
    bn, eps = pipe.vae.bn, pipe.vae.config.batch_norm_eps
    patches = pipe._patchify_latents(latents)
    return pipe._pack_latents((patches - bn.running_mean.view(1, -1, 1, 1)) / (bn.running_var.view(1, -1, 1, 1) + eps).sqrt())


def test_sample_equals_pipeline_call(editor, source, monkeypatch):
    seeds = [3, 7]
    ours = editor.sample([source], "make it red", seeds)
    theirs = _pipeline_latents(editor, source, "make it red", seeds, monkeypatch)
    assert ours.latents.shape == theirs.shape
    scale = theirs.abs().max()
    torch.testing.assert_close(ours.latents / scale, theirs / scale, atol=2e-5, rtol=0)
    assert ours.nfe == len(seeds) * STEPS * editor.nfe_per_step
    assert [im.size for im in ours.images] == [(64, 64)] * 2


def test_seed_alone_equals_seed_in_batch(editor, source):
    batch = editor.sample([source], "add a hat", [1, 5, 9], num_steps=2)
    alone = editor.sample([source], "add a hat", [5], num_steps=2)
    scale = batch.latents.abs().max()
    torch.testing.assert_close(alone.latents[0] / scale, batch.latents[1] / scale, atol=1e-5, rtol=0)
    again = editor.sample([source], "add a hat", [1, 5, 9], num_steps=2)
    torch.testing.assert_close(again.latents, batch.latents)
    assert not torch.allclose(batch.latents[0], batch.latents[2])


def test_shapes_and_differentiable_velocity(editor, source, make_image):
    cond = editor.encode([source, make_image(1, size=48, mode="L")], ["make it red", "make it blue"])
    assert len(cond) == 2 and cond.sources[1].size == (64, 64)
    x = editor.initial_noise([0, 1], cond.size)
    assert cond.size == (64, 64) and x.ndim == 3 and x.shape[0] == 2 and x.dtype == torch.float32
    torch.testing.assert_close(editor.initial_noise([1])[0], x[1])
    sigmas = editor.sigmas(STEPS)
    assert sigmas.shape == (STEPS + 1,) and sigmas[-1] == 0 and sigmas[0] > 0.9 and bool((sigmas[:-1] > sigmas[1:]).all())
    sigma = sigmas[[0, 1]]
    v = editor.velocity(x, sigma, cond)
    assert v.shape == x.shape and v.dtype == torch.float32 and torch.isfinite(v).all()
    single = editor.velocity(x[[1]], sigma[[1]], cond.select([1]))
    torch.testing.assert_close(single / v.abs().max(), v[[1]] / v.abs().max(), atol=1e-5, rtol=0)
    weight = next(p for p in editor.transformer.parameters() if p.ndim == 2)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(editor.velocity(x, sigma, cond).square().mean(), weight)
    assert grad.abs().sum() > 0


def test_x0_preview_is_the_denoised_estimate(editor, source):
    """At the last step (sigma_next = 0) the Euler update lands exactly on the x0 preview."""
    previews = {}

    def keep(step, sigma, x, v):
        previews[step] = editor.x0(x, sigma, v)

    result = editor.sample([source], "add a hat", [4], on_step=keep)
    assert sorted(previews) == list(range(STEPS))
    torch.testing.assert_close(previews[STEPS - 1], result.latents, atol=1e-4 * float(result.latents.abs().max()), rtol=0)
    assert len(editor.decode(previews[0])) == 1


def test_kontext_long_instruction_encodes_as_the_pipeline_without_warnings(capfd):
    """CLIP reads 77 tokens (bytes, for the tiny byte-level tokenizer): the adapter cuts the instruction for
    CLIP itself, so the embeddings are the pipeline's own (which cuts the same tokens) and nothing is printed.
    A cut that would split a character (é is two byte tokens) is left to the pipeline: same embeddings."""
    editor = _build("flux-kontext")
    long = "Put a medium green cross in the bottom left, then move the red circle to the bottom right."
    straddling = "x" * 76 + "é and more"
    capfd.readouterr()
    ours = editor._encode([Image.new("RGB", (64, 64))] * 2, [long, "make it red"], guidance=2.5)
    assert capfd.readouterr().err == ""
    assert editor._clip_prompts([long, "make it red", straddling]) == [long[:77], "make it red", straddling]
    for instructions, cond in (([long, "make it red"], ours), ([straddling], editor._encode([Image.new("RGB", (64, 64))], [straddling], 2.5))):
        theirs = editor.pipe.encode_prompt(prompt=instructions, prompt_2=None, device="cpu", num_images_per_prompt=1,
                                           max_sequence_length=editor.max_sequence_length)
        assert torch.equal(cond.batched["prompt_embeds"], theirs[0]) and torch.equal(cond.batched["pooled_prompt_embeds"], theirs[1])


# (editor, resolution): a 2:1 source is edited at about resolution**2 pixels; Qwen's pipeline rounds sides to 32,
# so it gets a budget where that still leaves the aspect ratio within one rounding unit
NON_SQUARE = [("flux-kontext", 64, 16), ("qwen-image-edit", 128, 32), ("qwen-image-edit-plus", 128, 32),
              ("qwen-image-edit-2511", 128, 32), ("flux2", 128, 16), ("flux2-klein", 128, 16), ("longcat-image-edit", 128, 16),
              ("instruct-pix2pix", 64, 8)]


@pytest.mark.parametrize("name, resolution, unit", NON_SQUARE)
def test_non_square_source_keeps_its_aspect_ratio_as_the_pipeline(name, resolution, unit, make_image, monkeypatch):
    editor = _build(name, resolution)
    source = make_image(5, size=(2 * resolution, resolution))
    ours = editor.sample([source], "make it red", [3, 7])
    width, height = ours.images[0].size
    assert [im.size for im in ours.images] == [(width, height)] * 2 and width > height
    assert width % editor.resolution_multiple == height % editor.resolution_multiple == 0
    # each side within one rounding unit of the exact 2:1 size of resolution**2 pixels
    assert abs(width - resolution * 2**0.5) <= unit and abs(height - resolution / 2**0.5) <= unit
    theirs = _pipeline_latents(editor, source, "make it red", [3, 7], monkeypatch)
    assert ours.latents.shape == theirs.shape
    scale = theirs.abs().max()
    torch.testing.assert_close(ours.latents / scale, theirs / scale, atol=2e-5, rtol=0)


class _Resized(Exception):
    pass


def _pipeline_size(pipe, image, monkeypatch) -> tuple[int, int]:
    """The (width, height) the pipeline's own ``__call__`` resizes ``image`` to (the call stops there)."""
    def resize(image, height, width, *args, **kwargs):
        raise _Resized((width, height))

    monkeypatch.setattr(pipe.image_processor, "resize", resize)
    with pytest.raises(_Resized) as stop:
        pipe(image=image, prompt="make it red", num_inference_steps=1)
    return stop.value.args[0]


SOURCE_SIZES = [(800, 600), (600, 800), (1920, 1080), (1000, 200), (512, 512), (1080, 1344)]


@pytest.mark.parametrize("name", ["flux-kontext", "qwen-image-edit", "longcat-image-edit"])
def test_working_size_at_1024_is_the_pipelines_choice(name, monkeypatch):
    """At the default ~1 MP budget a source goes to the size the pipeline picks: Kontext's preferred
    resolution of the closest aspect ratio, Qwen-Image-Edit's ``calculate_dimensions`` (sides of 32)."""
    editor = _build(name, 1024)
    for size in SOURCE_SIZES:
        image = Image.new("RGB", size)
        assert editor.working_size(image) == _pipeline_size(editor.pipe, image, monkeypatch), size


@pytest.mark.parametrize("name, distilled", [("flux2", False), ("flux2-klein", False), ("flux2-klein", True)])
def test_flux2_equals_its_pipeline_bit_for_bit(name, distilled, source):
    """Same seeds, same output, to the bit, in the VAE's latent space (what both decode): dev's guidance embedding,
    Klein's true CFG (two forward passes a step) and a step-distilled Klein (guidance ignored: one pass)."""
    pipe = tiny_flux2() if name == "flux2" else tiny_flux2_klein(is_distilled=distilled)
    pipe.set_progress_bar_config(disable=True)
    editor = (Flux2Editor if name == "flux2" else Flux2KleinEditor)(pipe, resolution=64)
    assert (editor.default_steps, editor.default_guidance) == ((4, 1.0) if distilled else (50, 4.0))
    seeds = [3, 7]
    ours = editor.sample([source], "make it red", seeds, num_steps=STEPS, guidance=3.0)
    theirs = pipe(image=source, prompt="make it red", generator=[torch.Generator().manual_seed(s) for s in seeds],
                  num_images_per_prompt=2, output_type="latent", num_inference_steps=STEPS, guidance_scale=3.0).images
    latents = ours.latents if theirs.ndim == 3 else editor.vae_latents(ours.latents)
    assert torch.equal(latents, theirs)
    branches = 1 if name == "flux2" or distilled else 2
    assert ours.nfe == len(seeds) * STEPS * branches
    assert editor.sample([source], "make it red", [3], num_steps=1, guidance=1.0).nfe == 1  # no CFG at guidance 1
    images = pipe(image=source, prompt="make it red", generator=[torch.Generator().manual_seed(s) for s in seeds],
                  num_images_per_prompt=2, num_inference_steps=STEPS, guidance_scale=3.0).images  # the same batch
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(ours.images, images))


@pytest.mark.parametrize("name", ["flux2", "flux2-klein"])
def test_flux2_guidance_and_schedule_matter(name, source):
    """A guidance or shift computed wrongly would change the result: the guidance scale changes the edit and the
    sigmas follow ``compute_empirical_mu`` of the token and step counts (not FLUX.1's shift)."""
    from diffusers.pipelines.flux2.pipeline_flux2 import compute_empirical_mu

    editor = _build(name)
    low, high = (editor.sample([source], "make it red", [3], guidance=g).latents for g in (2.0, 5.0))
    assert not torch.allclose(low, high, atol=1e-3)
    for steps, side in ((3, 64), (8, 128)):
        mu = compute_empirical_mu((side // 16) ** 2, steps)
        grid = np.linspace(1.0, 1 / steps, steps)
        shifted = np.exp(mu) / (np.exp(mu) + (1 / grid - 1))  # the scheduler's exponential time shift
        torch.testing.assert_close(editor.sigmas(steps, (side, side)), torch.tensor([*shifted, 0.0], dtype=torch.float32))


@pytest.mark.parametrize("name", ["flux2", "flux2-klein"])
def test_flux2_working_size_is_the_pipelines_choice_above_its_budget(name, monkeypatch):
    """Sources over 1 MP go where the pipeline sends them (``_resize_to_target_area``, sides cut to 16)."""
    editor = _build(name, 1024)
    for size in [(1920, 1080), (1080, 1920), (4000, 3000), (2048, 2048), (3000, 1000), (1025, 1024)]:
        image = Image.new("RGB", size)
        assert editor.working_size(image) == _pipeline_size(editor.pipe, image, monkeypatch), size
    assert editor.working_size(Image.new("RGB", (512, 512))) == (1024, 1024)  # editrl brings a small source up


def test_qwen_image_edit_2511_is_the_plus_pipeline_with_its_defaults():
    from editrl.sampler.editors import EDITORS

    spec = EDITORS["qwen-image-edit-2511"]
    assert (spec.pipeline, spec.default_model, dict(spec.settings)) == (
        "QwenImageEditPlusPipeline", "Qwen/Qwen-Image-Edit-2511", {"default_steps": 40})
    editor = spec.adapter_class()(tiny_qwen_image_edit(plus=True, zero_cond_t=True), **dict(spec.settings))
    assert (editor.default_steps, editor.default_guidance, editor.resolution, editor.condition_resolution) == (40, 4.0, 1024, 384)


MULTI_SOURCE = ["flux2", "flux2-klein", "qwen-image-edit-plus", "qwen-image-edit-2511"]


@pytest.mark.parametrize("name", MULTI_SOURCE)
def test_several_sources_equal_the_pipeline_given_the_list(name, make_image, monkeypatch):
    """One prompt with a source and a reference of another aspect ratio: the same latents as the pipeline given
    both images, the edit at the first source's size; the reference changes the edit."""
    editor, source = _build(name, 128), make_image(0, 128)  # 128: FLUX.2's pipeline refuses sides under 64
    reference = make_image(9, size=(192, 96))
    ours = editor.sample([[source, reference]], "put the hat of picture 2 on picture 1", [3, 7])
    theirs = _pipeline_latents(editor, source, "put the hat of picture 2 on picture 1", [3, 7], monkeypatch, [reference])
    scale = theirs.abs().max()
    torch.testing.assert_close(ours.latents / scale, theirs / scale, atol=2e-5, rtol=0)
    assert [im.size for im in ours.images] == [(128, 128)] * 2
    alone = editor.sample([source], "put the hat of picture 2 on picture 1", [3]).latents
    assert not torch.allclose(alone, ours.latents[:1], atol=1e-4)
    cond = editor.encode([[source, reference]], ["x"])
    assert cond.references[0][0].size == editor.working_size(reference) and cond.repeat_interleave(2).references[1] == cond.references[0]


@pytest.mark.parametrize("name", ["flux-kontext", "qwen-image-edit", "longcat-image-edit", "instruct-pix2pix"])
def test_an_editor_of_one_source_refuses_two_in_one_line(name, source, make_image):
    editor = _build(name)
    with pytest.raises(EditRLError, match=f"sources: {name} takes one source image per prompt, got 2; pass fewer --image"):
        editor.sample([[source, make_image(1)]], "make it red", [0])
    assert editor.sample([[source]], "make it red", [0], num_steps=1).latents.shape == editor.sample(
        [source], "make it red", [0], num_steps=1).latents.shape  # a list of one is the plain source


def test_several_sources_limits(source, make_image):
    editor = _build("qwen-image-edit-plus")
    with pytest.raises(EditRLError, match="takes at most 3 source images per prompt, got 4"):
        editor.encode([[source] * 4], ["x"])
    with pytest.raises(EditRLError, match=r"carry \[1, 2\] source images; one batch carries one count"):
        editor.encode([source, [source, make_image(1)]], ["x", "y"])
    with pytest.raises(EditRLError, match=r"sources\[0\]: an empty list"):
        editor.encode([[]], ["x"])
