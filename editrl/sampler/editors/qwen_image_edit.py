"""Qwen-Image-Edit and Qwen-Image-Edit-2509 ("Plus") as editrl editors.

Both condition on the source twice: Qwen2.5-VL reads it with the instruction (the text embedding),
and its packed VAE latents are appended to the target tokens (``img_shapes`` tells the transformer's
RoPE where each image lies). Guidance is true classifier-free guidance against the negative prompt
" " with the pipeline's norm rescaling, both branches run as one batch of 2B (NFE 2 per step).

The pipelines' ``__call__`` always resizes the source to ~1 MP for the VAE (and ~384x384 for the
Plus text encoder) through module-level constants; this adapter does its own resizing with the
pipeline's rule (``calculate_dimensions``: the source's aspect ratio at that area, sides rounded to
32) at its own budgets instead, so ``resolution`` (VAE / output: ~resolution**2 pixels) and
``condition_resolution`` (text-encoder image: ~condition_resolution**2 pixels) are plain adapter
settings and no global is patched.
"""

from __future__ import annotations

import torch
from PIL import Image

from .base import EditCondition, PackedFlowEditor, source_rows


def _pad(embeds: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (T_i, D) embeddings to one (B, T, D) tensor and its (B, T) attention mask."""
    length = max(e.shape[0] for e in embeds)
    padded = torch.stack([torch.cat([e, e.new_zeros(length - e.shape[0], e.shape[1])]) for e in embeds])
    mask = torch.stack([torch.arange(length, device=e.device) < e.shape[0] for e in embeds]).long()
    return padded, mask


class QwenImageEditEditor(PackedFlowEditor):
    name = "qwen-image-edit"
    nfe_per_step = 2  # true CFG: conditional + unconditional branch
    DEFAULT_STEPS = 50
    DEFAULT_GUIDANCE = 4.0  # the pipeline's true_cfg_scale
    DEFAULT_RESOLUTION = 1024
    DEFAULT_CONDITION_RESOLUTION: int | None = None  # None: the text encoder sees the source at `resolution`
    negative_prompt = " "

    def __init__(self, pipe, resolution=None, default_steps=None, default_guidance=None, condition_resolution=None):
        super().__init__(pipe, resolution, default_steps, default_guidance)
        self.condition_resolution = int(condition_resolution or self.DEFAULT_CONDITION_RESOLUTION or self.resolution)

    def step_nfe(self, cond: EditCondition) -> int:
        return 2 if cond.shared["guidance"] > 1 else 1

    def aspect_size(self, aspect: float) -> tuple[int, int]:
        return self._dimensions(self.resolution, aspect, self.resolution_multiple)

    @staticmethod
    def _dimensions(side: int, aspect: float, multiple: int) -> tuple[int, int]:
        """The pipeline's size for ``aspect`` at ``side ** 2`` pixels: ``calculate_dimensions`` (sides
        rounded to 32), then cut to ``multiple`` as ``__call__`` does for the latents (at least one)."""
        from diffusers.pipelines.qwenimage.pipeline_qwenimage_edit import calculate_dimensions

        return tuple(max(multiple, s // multiple * multiple) for s in calculate_dimensions(side * side, aspect)[:2])

    def _prompt_embeds(self, instruction: str, images: list[Image.Image]) -> torch.Tensor:
        embeds, mask = self._encode_prompt(instruction, images)
        return embeds[0] if mask is None else embeds[0][mask[0].bool()]

    def _encode_prompt(self, instruction: str, images: list[Image.Image]):
        return self.pipe.encode_prompt(prompt=[instruction], image=images[0], device=self.device)

    def _vae_input(self, columns: list[torch.Tensor]):
        return columns[0]  # (B, 3, 1, H, W): the one source

    def _condition_view(self, image: Image.Image) -> Image.Image:
        """What the text encoder sees of ``image``: itself, or (Plus) the pipeline's rule at condition_resolution**2 pixels."""
        if self.condition_resolution == self.resolution:
            return image
        size = self._dimensions(self.condition_resolution, image.width / image.height, 32)
        return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)

    def _encode(self, sources: list[Image.Image], instructions: list[str], guidance: float,
                references: list[list[Image.Image]] | None = None) -> EditCondition:
        pipe, device, dtype = self.pipe, self.device, self.dtype
        width, height = sources[0].size
        rows = source_rows(sources, references)
        vl_rows = [[self._condition_view(image) for image in row] for row in rows]
        # one row at a time: EditPlus reads a list of images as several pictures of ONE prompt
        positive = [self._prompt_embeds(text, row) for text, row in zip(instructions, vl_rows)]
        negative = [self._prompt_embeds(self.negative_prompt, row) for row in vl_rows]
        embeds, mask = _pad(positive + negative)  # one length for both branches: they run as one batch
        batch = len(sources)
        # the j-th images of all rows share one size (``prepare_references``): one VAE batch each
        columns = [pipe.image_processor.preprocess([row[j] for row in rows], image.height, image.width).unsqueeze(2)
                   for j, image in enumerate(rows[0])]
        placeholder = torch.zeros(batch, 1, 1, device=device, dtype=dtype)
        _, image_latents = pipe.prepare_latents(
            self._vae_input(columns), batch, self._latent_channels, height, width, dtype, device, None, placeholder
        )
        multiple = self.resolution_multiple
        grids = [(1, image.height // multiple, image.width // multiple) for image in rows[0]]
        return EditCondition(
            batched={
                "prompt_embeds": embeds[:batch].to(dtype), "prompt_mask": mask[:batch],
                "negative_embeds": embeds[batch:].to(dtype), "negative_mask": mask[batch:],
                "image_latents": image_latents,
            },
            shared={"guidance": guidance, "img_shapes": [grids[0], *grids]},  # the target, then each source
            sources=list(sources),
            instructions=list(instructions),
        )

    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, cond: EditCondition) -> torch.Tensor:
        dtype, b = self.dtype, cond.batched
        batch, tokens = x.shape[:2]
        guidance = cond.shared["guidance"]
        hidden = torch.cat([x.to(dtype), b["image_latents"].to(dtype)], dim=1)
        embeds, mask = b["prompt_embeds"], b["prompt_mask"]
        branches = 2 if guidance > 1 else 1
        if branches == 2:  # conditional and unconditional branch in one batch
            hidden = torch.cat([hidden, hidden])
            embeds = torch.cat([embeds, b["negative_embeds"]])
            mask = torch.cat([mask, b["negative_mask"]])
        out = self.transformer(
            hidden_states=hidden,
            timestep=sigma.to(device=x.device, dtype=dtype).repeat(branches),
            encoder_hidden_states=embeds,
            encoder_hidden_states_mask=mask,
            img_shapes=[cond.shared["img_shapes"]] * (batch * branches),
            return_dict=False,
        )[0][:, :tokens].float()
        if branches == 1:
            return out
        positive, negative = out.chunk(2)
        combined = negative + guidance * (positive - negative)
        # the pipeline's rescaling: keep each token's norm of the conditional prediction
        return combined * (positive.norm(dim=-1, keepdim=True) / combined.norm(dim=-1, keepdim=True))

    def decode(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> list[Image.Image]:
        pipe, vae = self.pipe, self.pipe.vae
        width, height = self._size(size)
        with torch.no_grad():
            latents = pipe._unpack_latents(x, height, width, pipe.vae_scale_factor).to(vae.dtype)
            shape = (1, vae.config.z_dim, 1, 1, 1)
            mean = torch.tensor(vae.config.latents_mean).view(shape).to(latents)
            std = torch.tensor(vae.config.latents_std).view(shape).to(latents)
            image = vae.decode(latents * std + mean, return_dict=False)[0][:, :, 0]
            return pipe.image_processor.postprocess(image, output_type="pil")


class QwenImageEditPlusEditor(QwenImageEditEditor):
    """Qwen-Image-Edit-2509/2511: same loop; the text encoder sees "Picture 1: <image> Picture 2: ..." at ~384x384
    each, and several sources' VAE tokens follow the target's (``img_shapes`` lists each)."""

    name = "qwen-image-edit-plus"
    max_sources = 3  # Qwen's recommended 1 to 3 images for 2509 and 2511
    DEFAULT_CONDITION_RESOLUTION = 384  # the pipeline's CONDITION_IMAGE_SIZE = 384 * 384

    def _encode_prompt(self, instruction: str, images: list[Image.Image]):
        return self.pipe.encode_prompt(prompt=[instruction], image=images, device=self.device)

    def _vae_input(self, columns: list[torch.Tensor]):
        return columns  # EditPlus takes a list of condition images, their tokens concatenated
