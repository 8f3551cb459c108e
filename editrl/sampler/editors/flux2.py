"""FLUX.2 [dev] (``Flux2Pipeline``) and FLUX.2 [klein] (``Flux2KleinPipeline``) as editrl editors.

Both edit by in-context conditioning as FLUX.1-Kontext does, with their own layouts: the VAE latents
(32 channels at 1/8 size for the released VAE) are patchified 2x2, batch-normalised with the VAE's
``bn`` statistics and flattened to tokens; each reference image gets position ids with time
coordinate 10, 20, ... (``_prepare_image_ids``), the target 0, and the prediction for the reference
tokens is discarded. Text comes from a chat LLM's hidden states at three layers (Mistral-Small-3 for
dev, Qwen3 for Klein). Sigmas are shifted by ``compute_empirical_mu`` of the token count and step count.

Guidance: dev is guidance-distilled (an embedding, one forward per step); Klein runs true CFG against
the empty prompt (two forwards, batched here) unless the checkpoint is step-distilled
(``is_distilled``: the released 4B/9B Klein, 4 steps, guidance ignored).

Sizes follow the pipelines: a source goes to ``resolution ** 2`` pixels with its aspect ratio, each side
cut to a multiple of 16 (the pipeline's choice for any source over its 1024 ** 2 budget; it leaves smaller
sources at their own size), and the edit comes out at that size (the pipeline's default output size is
its first reference's).
"""

from __future__ import annotations

import math

import torch
from PIL import Image

from .base import EditCondition, InContextFlowEditor, PaddedTextFlowEditor, source_rows


class Flux2Editor(InContextFlowEditor, PaddedTextFlowEditor):
    name = "flux2"
    max_sources = 10  # BFL's limit for FLUX.2 [dev] reference images
    nfe_per_step = 1  # dev reads its guidance scale as an embedding: one forward per step
    DEFAULT_STEPS, DEFAULT_GUIDANCE = 50, 4.0  # the pipeline's defaults (at the base class's 1024 px)

    @property
    def lora_target_modules(self) -> list[str]:
        """Both streams' attention projections and the single-stream blocks' fused QKV + MLP input."""
        return [*super().lora_target_modules, "to_qkv_mlp_proj"]

    def working_size(self, image: Image.Image) -> tuple[int, int]:
        """The pipeline's rule (``Flux2ImageProcessor._resize_to_target_area``, then sides cut to multiples of 16)
        with ``resolution ** 2`` pixels in place of its 1024 ** 2. The pipeline leaves a source under its budget at
        its own size; editrl brings it up to the budget too, so sources of one aspect ratio share one size."""
        width, height = image.size
        scale = math.sqrt(self.resolution**2 / (width * height))
        width, height = int(width * scale), int(height * scale)
        multiple = self.resolution_multiple
        return max(multiple, width // multiple * multiple), max(multiple, height // multiple * multiple)

    def _draw_noise(self, batch: int, height: int, width: int, generators: list[torch.Generator]) -> torch.Tensor:
        return self.pipe.prepare_latents(batch, self._latent_channels, height, width, torch.float32, torch.device("cpu"), generators)[0]

    def _shift_mu(self, tokens: int, num_steps: int) -> float:
        from diffusers.pipelines.flux2.pipeline_flux2 import compute_empirical_mu

        return compute_empirical_mu(image_seq_len=tokens, num_steps=num_steps)

    def _text(self, instructions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(prompt embeddings, text position ids): every prompt is padded to ``max_sequence_length``."""
        return self.pipe.encode_prompt(prompt=instructions, device=self.device, max_sequence_length=self.max_sequence_length)

    def _encode(self, sources: list[Image.Image], instructions: list[str], guidance: float,
                references: list[list[Image.Image]] | None = None) -> EditCondition:
        pipe, device = self.pipe, self.device
        embeds, text_ids = self._text(instructions)
        width, height = sources[0].size
        rows = source_rows(sources, references)
        # each row's images in order, each at its own size: their tokens follow the target's, time ids 10, 20, ...
        encoded = [pipe.prepare_image_latents([pipe.image_processor.preprocess(im, height=im.height, width=im.width) for im in row],
                                              1, None, device, pipe.vae.dtype) for row in rows]
        grid = torch.empty(1, 1, height // self.resolution_multiple, width // self.resolution_multiple)
        latent_ids = pipe._prepare_latent_ids(grid)[0].to(device)
        batched = {"prompt_embeds": embeds, "image_latents": torch.cat([latents for latents, _ in encoded])}
        batched.update(self._negative(len(sources), guidance))
        return EditCondition(
            batched=batched,
            shared={"text_ids": text_ids[0], "img_ids": torch.cat([latent_ids, encoded[0][1][0]]), "guidance": guidance},
            sources=list(sources),
            instructions=list(instructions),
        )

    def _negative(self, batch: int, guidance: float) -> dict[str, torch.Tensor]:
        """The unconditional branch's inputs, for an editor that runs one (none for guidance-distilled dev)."""
        return {}


    def vae_latents(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Packed latents -> the VAE's (B, C, H/8, W/8) latents (what the pipeline decodes, and returns
        for ``output_type="latent"`` in Klein): unpacked by position id, batch-norm undone, unpatchified."""
        pipe, vae = self.pipe, self.pipe.vae
        width, height = self._size(size)
        grid = torch.empty(x.shape[0], 1, height // self.resolution_multiple, width // self.resolution_multiple)
        latents = pipe._unpack_latents_with_ids(x, pipe._prepare_latent_ids(grid).to(x.device))
        mean = vae.bn.running_mean.view(1, -1, 1, 1).to(latents)
        std = torch.sqrt(vae.bn.running_var.view(1, -1, 1, 1) + vae.config.batch_norm_eps).to(latents)
        return pipe._unpatchify_latents(latents * std + mean)

    def decode(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> list[Image.Image]:
        vae = self.pipe.vae
        with torch.no_grad():
            image = vae.decode(self.vae_latents(x, size).to(vae.dtype), return_dict=False)[0]
            return self.pipe.image_processor.postprocess(image, output_type="pil")


class Flux2KleinEditor(Flux2Editor):
    """FLUX.2 [klein]: the FLUX.2 loop with a Qwen3 text encoder and no guidance embedding; true CFG
    against "" (NFE 2 per step) at guidance > 1, except for a step-distilled checkpoint (NFE 1)."""

    name = "flux2-klein"
    max_sources = 4  # BFL's limit for FLUX.2 [klein] reference images
    nfe_per_step = 2  # true CFG (``step_nfe``: 1 at guidance <= 1 or for a step-distilled checkpoint)
    DISTILLED_STEPS = 4  # the released step-distilled Klein's schedule; its guidance is ignored

    def __init__(self, pipe, resolution=None, default_steps=None, default_guidance=None, max_sequence_length: int = 512):
        distilled = bool(pipe.config.is_distilled)
        super().__init__(pipe, resolution, default_steps or (self.DISTILLED_STEPS if distilled else None),
                         1.0 if default_guidance is None and distilled else default_guidance, max_sequence_length)

    def _negative(self, batch: int, guidance: float) -> dict[str, torch.Tensor]:
        if guidance <= 1 or self.pipe.config.is_distilled:
            return {}
        return {"negative_embeds": self._text([""] * batch)[0]}
