"""FLUX.1-Kontext (``FluxKontextPipeline``) as an editrl editor.

Kontext edits by in-context conditioning: the source image's packed VAE latents are appended to the
target's token sequence, with position ids whose first axis is 1 instead of 0, and the transformer's
prediction for those extra tokens is discarded. Guidance is a distilled embedding (one forward per
step). All tensor layouts come from the pipeline's own helpers (``encode_prompt``,
``prepare_latents``, ``_unpack_latents``, ``calculate_shift``), so the loop stays faithful to
``FluxKontextPipeline.__call__``.

Sizes follow the pipeline's ``_auto_resize``: a source goes to the preferred Kontext resolution
(``PREFERRED_KONTEXT_RESOLUTIONS``, ~1 MP, multiples of 16) whose aspect ratio is closest to its own,
scaled to the adapter's ``resolution`` budget, and the edit comes out at that size (the pipeline's
output size is its own ``height``/``width`` arguments; editrl passes the source's).
"""

from __future__ import annotations

import torch
from PIL import Image

from .base import EditCondition, PaddedTextFlowEditor


class FluxKontextEditor(PaddedTextFlowEditor):
    name = "flux-kontext"
    nfe_per_step = 1  # guidance-distilled: the guidance scale is an embedding, not a second branch
    DEFAULT_STEPS = 28
    DEFAULT_GUIDANCE = 2.5
    DEFAULT_RESOLUTION = 1024

    def aspect(self, image: Image.Image) -> float:
        """As the pipeline measures it: of the sides cut to multiples of 16 (which can tip the choice
        between two preferred sizes), or of the sides themselves for a source under 16 pixels."""
        height, width = self.pipe.image_processor.get_default_height_width(image)
        return width / height if width and height else image.width / image.height

    def aspect_size(self, aspect: float) -> tuple[int, int]:
        """The preferred Kontext resolution closest to ``aspect`` (the pipeline's choice), scaled by
        ``resolution / 1024`` to the nearest multiples (exactly the list at the default 1024)."""
        from diffusers.pipelines.flux.pipeline_flux_kontext import PREFERRED_KONTEXT_RESOLUTIONS

        _, width, height = min((abs(aspect - w / h), w, h) for w, h in PREFERRED_KONTEXT_RESOLUTIONS)
        scale, multiple = self.resolution / 1024, self.resolution_multiple
        return tuple(max(multiple, round(side * scale / multiple) * multiple) for side in (width, height))

    def _encode(self, sources: list[Image.Image], instructions: list[str], guidance: float) -> EditCondition:
        pipe, device, dtype = self.pipe, self.device, self.dtype
        prompt_embeds, pooled, text_ids = pipe.encode_prompt(
            prompt=self._clip_prompts(instructions), prompt_2=instructions, device=device, num_images_per_prompt=1,
            max_sequence_length=self.max_sequence_length,
        )
        width, height = sources[0].size
        image = pipe.image_processor.preprocess(sources, height, width)
        # prepare_latents encodes (VAE mode, no sampling), packs the source and builds both id grids;
        # the placeholder latents it is given are returned untouched and not used
        placeholder = torch.zeros(len(sources), 1, 1, device=device, dtype=dtype)
        _, image_latents, latent_ids, image_ids = pipe.prepare_latents(
            image, len(sources), self._latent_channels, height, width, dtype, device, None, placeholder
        )
        return EditCondition(
            batched={"prompt_embeds": prompt_embeds, "pooled_prompt_embeds": pooled, "image_latents": image_latents},
            shared={"text_ids": text_ids, "img_ids": torch.cat([latent_ids, image_ids]), "guidance": guidance},
            sources=list(sources),
            instructions=list(instructions),
        )

    def _clip_prompts(self, instructions: list[str]) -> list[str]:
        """Each instruction cut to the text of the tokens CLIP reads (FLUX takes only CLIP's pooled embedding;
        T5 gets the whole instruction). The pipeline would cut the same tokens, but only after tokenizing the
        whole text, which makes transformers warn of "indexing errors" and diffusers log the cut text on every
        call. A cut that does not re-tokenize to the same tokens (BPE at a word boundary) is left whole."""
        tokenizer = self.pipe.tokenizer
        kept = tokenizer(instructions, truncation=True, max_length=self.pipe.tokenizer_max_length, return_offsets_mapping=True)
        cuts = [text[:max((end for _, end in offsets), default=0)] for text, offsets in zip(instructions, kept["offset_mapping"])]
        return [cut if tokenizer(cut)["input_ids"] == ids else text for cut, text, ids in zip(cuts, instructions, kept["input_ids"])]

    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, cond: EditCondition) -> torch.Tensor:
        dtype = self.dtype
        batch, tokens = x.shape[:2]
        hidden = torch.cat([x.to(dtype), cond.batched["image_latents"].to(dtype)], dim=1)
        guidance = None
        if self.transformer.config.guidance_embeds:
            guidance = torch.full((batch,), cond.shared["guidance"], device=x.device, dtype=torch.float32)
        out = self.transformer(
            hidden_states=hidden,
            timestep=sigma.to(device=x.device, dtype=dtype),
            guidance=guidance,
            pooled_projections=cond.batched["pooled_prompt_embeds"],
            encoder_hidden_states=cond.batched["prompt_embeds"],
            txt_ids=cond.shared["text_ids"],
            img_ids=cond.shared["img_ids"],
            return_dict=False,
        )[0]
        return out[:, :tokens].float()

    def decode(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> list[Image.Image]:
        pipe, vae = self.pipe, self.pipe.vae
        width, height = self._size(size)
        with torch.no_grad():
            latents = pipe._unpack_latents(x.to(vae.dtype), height, width, pipe.vae_scale_factor)
            latents = latents / vae.config.scaling_factor + vae.config.shift_factor
            image = vae.decode(latents, return_dict=False)[0]
            return pipe.image_processor.postprocess(image, output_type="pil")
