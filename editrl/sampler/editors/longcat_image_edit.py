"""LongCat-Image-Edit (``LongCatImageEditPipeline``) as an editrl editor: sampling and search only.

In-context conditioning as FLUX: the source's packed VAE latents (FLUX-style VAE, 16 channels, shift and scale)
follow the target's tokens. Qwen2.5-VL reads the instruction with the source at half size, one prompt per call;
its last hidden states (vision and text tokens, the text padded to 512) are the condition. Position ids have three
axes: modality (text 0, target 1, source 2) and two coordinates that start after the text. Guidance is true CFG
against the empty prompt (NFE 2 per step, no norm rescaling); sigmas are shifted by FLUX.1's ``calculate_shift``.

The pipeline sizes the source by its ``calculate_dimensions`` (the aspect ratio at 1024 ** 2 pixels, sides rounded
up to 16); the adapter applies it at its ``resolution ** 2``. LongCatImageEditPipeline has no LoRA loader, so the
RL commands, which save and load LoRA through the pipeline, refuse this editor with one line.
"""

from __future__ import annotations

import torch
from PIL import Image

from .base import EditCondition, InContextFlowEditor


class LongCatImageEditEditor(InContextFlowEditor):
    name = "longcat-image-edit"
    nfe_per_step = 2  # true CFG (``step_nfe``: 1 at guidance <= 1)
    DEFAULT_STEPS, DEFAULT_GUIDANCE = 50, 4.5  # the pipeline's defaults (at the base class's 1024 px)

    def aspect_size(self, aspect: float) -> tuple[int, int]:
        from diffusers.pipelines.longcat_image.pipeline_longcat_image_edit import calculate_dimensions

        multiple = self.resolution_multiple
        return tuple(max(multiple, side // multiple * multiple) for side in calculate_dimensions(self.resolution**2, aspect))

    def _draw_noise(self, batch: int, height: int, width: int, generators: list[torch.Generator]) -> torch.Tensor:
        return self.pipe.prepare_latents(None, batch, self._latent_channels, height, width, torch.float32, 0,
                                         torch.device("cpu"), generators)[0]

    def _text(self, instruction: str, image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeddings (1, L, D), text position ids) of one prompt: the pipeline encodes one at a time."""
        return self.pipe.encode_prompt(prompt=[instruction], image=image)

    def _encode(self, sources: list[Image.Image], instructions: list[str], guidance: float) -> EditCondition:
        pipe, device, dtype = self.pipe, self.device, self.dtype
        width, height = sources[0].size
        # the text encoder sees each source at half size (the pipeline's prompt_image)
        views = [pipe.image_processor.resize(image, height // 2, width // 2) for image in sources]
        encoded = [self._text(text, view) for text, view in zip(instructions, views)]
        batched = {"prompt_embeds": torch.cat([embeds for embeds, _ in encoded])}
        if guidance > 1:
            batched["negative_embeds"] = torch.cat([self._text("", view)[0] for view in views])
        image = pipe.image_processor.preprocess(sources, height, width)
        placeholder = torch.zeros(len(sources), 1, 1, device=device, dtype=dtype)
        _, batched["image_latents"], latent_ids, image_ids = pipe.prepare_latents(
            image, len(sources), self._latent_channels, height, width, batched["prompt_embeds"].dtype,
            batched["prompt_embeds"].shape[1], device, None, placeholder,
        )
        return EditCondition(
            batched=batched,
            shared={"text_ids": encoded[0][1], "img_ids": torch.cat([latent_ids, image_ids]), "guidance": guidance},
            sources=list(sources),
            instructions=list(instructions),
        )

    def decode(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> list[Image.Image]:
        pipe, vae = self.pipe, self.pipe.vae
        width, height = self._size(size)
        with torch.no_grad():
            latents = pipe._unpack_latents(x, height, width, pipe.vae_scale_factor)
            latents = latents / vae.config.scaling_factor + vae.config.shift_factor
            image = vae.decode(latents.to(vae.dtype), return_dict=False)[0]
            return pipe.image_processor.postprocess(image, output_type="pil")
