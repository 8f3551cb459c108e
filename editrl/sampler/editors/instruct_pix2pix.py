"""InstructPix2Pix (``StableDiffusionInstructPix2PixPipeline``) exposed in flow coordinates.

The UNet predicts noise eps for a variance-preserving x_t = a_t x0 + s_t eps. Dividing by
(a_t + s_t) turns that into the flow convention every editrl loop uses:

    sigma_flow = s_t / (a_t + s_t),   x_flow = x_t / (a_t + s_t) = (1 - sigma) x0 + sigma eps,
    v = eps_hat - x0_hat,             x0_hat = (x_t - s_t eps_hat) / a_t.

An Euler step in these coordinates is exactly a DDIM / k-diffusion Euler step, so ``sample`` equals
the pipeline run with ``EulerDiscreteScheduler`` (the ancestral default adds fresh noise each step).
The UNet's timestep label for a flow sigma is read off the training schedule by linear
interpolation, which inverts the scheduler's own interpolation. Guidance is the pipeline's 3-way
CFG (text branch, image-only branch, unconditional branch): NFE 3 per step.

The pipeline edits at the source's own size cut to multiples of 8; the adapter first resizes a source
to its ``resolution ** 2`` pixel budget keeping the aspect ratio (``Editor.aspect_size``, multiples of
8), and the pipeline given that resized source computes exactly the same edit.
"""

from __future__ import annotations

from typing import Sequence

import torch
from PIL import Image

from .base import EditCondition, Editor, seed_generators


class InstructPix2PixEditor(Editor):
    name = "instruct-pix2pix"
    nfe_per_step = 3
    DEFAULT_STEPS = 100
    DEFAULT_GUIDANCE = 7.5
    DEFAULT_IMAGE_GUIDANCE = 1.5
    DEFAULT_RESOLUTION = 512
    lora_layers_key = "unet_lora_layers"
    denoiser = "unet"
    # no safety checker: its weights are a separate download, and it would black out edits before the reward sees them
    pipeline_kwargs = {"safety_checker": None, "requires_safety_checker": False}

    def __init__(self, pipe, resolution=None, default_steps=None, default_guidance=None, image_guidance: float | None = None):
        super().__init__(pipe, resolution, default_steps, default_guidance)
        self.image_guidance = float(self.DEFAULT_IMAGE_GUIDANCE if image_guidance is None else image_guidance)
        alphas_cumprod = self._schedule().alphas_cumprod.double()
        # k-diffusion sigmas s_t / a_t of the training timesteps 0..T-1 (increasing)
        self._train_sigmas = ((1 - alphas_cumprod) / alphas_cumprod).sqrt()

    @property
    def resolution_multiple(self) -> int:
        return self.pipe.vae_scale_factor

    def step_nfe(self, cond: EditCondition) -> int:
        return 3 if (cond.shared["guidance"] > 1 or cond.shared["image_guidance"] > 1) else 1

    def _schedule(self):
        from diffusers import EulerDiscreteScheduler

        # timesteps spread from T-1 to 0 (the InstructPix2Pix release's "linspace" spacing)
        return EulerDiscreteScheduler.from_config(self.pipe.scheduler.config, timestep_spacing="linspace")

    def _encode(self, sources: list[Image.Image], instructions: list[str], guidance: float) -> EditCondition:
        pipe, device, dtype = self.pipe, self.device, self.dtype
        embeds = pipe._encode_prompt(instructions, device, 1, True)  # [text; unconditional; unconditional]
        batch = len(sources)
        image = pipe.image_processor.preprocess(sources, *reversed(sources[0].size))
        image_latents = pipe.prepare_image_latents(image, batch, 1, dtype, device, False)
        return EditCondition(
            batched={"prompt_embeds": embeds[:batch], "negative_embeds": embeds[batch : 2 * batch], "image_latents": image_latents},
            shared={"guidance": guidance, "image_guidance": self.image_guidance},
            sources=list(sources),
            instructions=list(instructions),
        )

    def _pack(self, latents: torch.Tensor) -> torch.Tensor:
        return latents.flatten(2).transpose(1, 2)  # (B, C, h, w) -> (B, h*w, C)

    def _unpack(self, x: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
        width, height = self._size(size)
        factor = self.pipe.vae_scale_factor
        return x.transpose(1, 2).reshape(x.shape[0], -1, height // factor, width // factor)

    def initial_noise(self, seeds: Sequence[int], size: tuple[int, int] | None = None) -> torch.Tensor:
        from diffusers.utils.torch_utils import randn_tensor

        width, height = self._size(size)
        factor = self.pipe.vae_scale_factor
        shape = (len(seeds), self.pipe.vae.config.latent_channels, height // factor, width // factor)
        noise = randn_tensor(shape, generator=seed_generators(seeds), device=torch.device("cpu"), dtype=torch.float32)
        top = self._train_sigmas[-1]
        return (self._pack(noise) * float(top / (1 + top))).to(self.device)  # pure noise at the top flow sigma

    def sigmas(self, num_steps: int | None = None, size: tuple[int, int] | None = None) -> torch.Tensor:
        """The schedule does not depend on the image size."""
        scheduler = self._schedule()
        scheduler.set_timesteps(int(num_steps or self.default_steps), device="cpu")
        k_sigmas = scheduler.sigmas.double()  # ends with 0
        return (k_sigmas / (1 + k_sigmas)).float()

    def _timestep(self, k_sigma: torch.Tensor) -> torch.Tensor:
        """The (fractional) training timestep whose k-sigma is ``k_sigma``: inverse linear interpolation."""
        table = self._train_sigmas.to(k_sigma.device)
        k_sigma = k_sigma.double().clamp(table[0], table[-1])
        hi = torch.searchsorted(table, k_sigma).clamp(1, len(table) - 1)
        lo = hi - 1
        frac = (k_sigma - table[lo]) / (table[hi] - table[lo])
        return lo.double() + frac

    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, cond: EditCondition) -> torch.Tensor:
        dtype, b = self.dtype, cond.batched
        sigma = sigma.to(x.device, torch.float32)
        k_sigma = (sigma / (1 - sigma)).reshape(-1, 1, 1)
        x_k = x * (1 + k_sigma)  # = x0 + k_sigma eps
        x_t = self._unpack(x_k / (k_sigma**2 + 1).sqrt(), cond.size)  # the UNet's (variance-preserving) input
        t = self._timestep(k_sigma.flatten()).float()  # fp32: bf16 would round timesteps near 1000 by ~4
        branches = self.step_nfe(cond)
        if branches == 3:
            zeros = torch.zeros_like(b["image_latents"])
            latents = torch.cat([x_t] * 3)
            image = torch.cat([b["image_latents"], b["image_latents"], zeros])
            embeds = torch.cat([b["prompt_embeds"], b["negative_embeds"], b["negative_embeds"]])
            t = t.repeat(3)
        else:
            latents, image, embeds = x_t, b["image_latents"], b["prompt_embeds"]
        eps = self.pipe.unet(
            torch.cat([latents.to(dtype), image.to(dtype)], dim=1), t, encoder_hidden_states=embeds, return_dict=False
        )[0].float()
        if branches == 3:
            text, image_only, uncond = eps.chunk(3)
            g, ig = cond.shared["guidance"], cond.shared["image_guidance"]
            eps = uncond + g * (text - image_only) + ig * (image_only - uncond)
        eps = self._pack(eps)
        x0 = x_k - k_sigma * eps
        return eps - x0

    def decode(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> list[Image.Image]:
        vae = self.pipe.vae
        with torch.no_grad():
            image = vae.decode(self._unpack(x, size).to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
            return self.pipe.image_processor.postprocess(image, output_type="pil")
