"""The model sizes the benchmarks time, and the one builder of each: random weights, no downloads.

Timing needs the real architecture, not trained weights (the compute does not depend on the values),
so every benchmark builds the genuine transformers/diffusers classes from configs written here:

- ``QWEN25VL``: the EditReward backbone, Qwen2.5-VL at 7B size (``"7b"``, from the released
  config.json), a CPU size where the forward passes dominate (``"small"``) and a toy (``"tiny"``);
- ``FLUX_KONTEXT``: the FLUX.1-Kontext-dev editor at real size (``"kontext"``: 12 B transformer,
  T5-XXL encoder, CLIP-L, the FLUX VAE) and a toy (``"tiny"``);
- ``FLUX2``: FLUX.2 [dev] (``"dev"``: 32 B transformer, Mistral-Small-3.1-24B text encoder), FLUX.2 [klein] 4B
  (``"klein-4b"``: 4 B transformer, Qwen3-4B) and toys (``"tiny"``, ``"tiny-klein"``);
- ``QWEN_IMAGE_EDIT``: Qwen-Image-Edit-2511 (``"2511"``: 20 B transformer, Qwen2.5-VL-7B) and a toy (``"tiny"``).

The builders create every weight directly on ``device`` in ``dtype`` (``torch.device`` and the
default dtype around the constructors), so a 7 B + 12 B build on a GPU never materialises in fp32 on
the CPU. Tokenizers are byte-level (``editrl.tiny``): one token per character.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from editrl.reward import EditReward, EditRewardConfig
from editrl.reward.inputs import common_prefix_length
from editrl.reward.prompts import EDITREWARD_INSTRUCTION_FOLLOWING, EDITREWARD_SUFFIX, EDITREWARD_VISUAL_QUALITY
from editrl.tiny import (
    FLUX2_TINY,
    byte_level_tokenizer,
    flux2_pipeline,
    tiny_qwen25vl_processor,
    tiny_qwen_tokenizer,
    tiny_t5_tokenizer,
)

QWEN25VL = {
    # Qwen2.5-VL-7B-Instruct's config.json (vocab_size: the real embedding and LM-head memory)
    "7b": dict(
        vocab_size=152064,
        text=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                  num_key_value_heads=4, mrope_section=[16, 24, 24]),
        vision=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, fullatt_block_indexes=[7, 15, 23, 31]),
    ),
    # a CPU model large enough that the forward passes, not Python, dominate
    "small": dict(
        text=dict(hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,
                  mrope_section=[8, 4, 4]),
        vision=dict(depth=4, hidden_size=128, intermediate_size=256, num_heads=4, fullatt_block_indexes=[3]),
    ),
    "tiny": dict(
        vocab_size=512,  # more rows than the tokenizer has, as at 7b
        text=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  mrope_section=[2, 1, 1]),
        vision=dict(depth=2, hidden_size=32, intermediate_size=32, num_heads=4, fullatt_block_indexes=[1]),
    ),
}

FLUX_KONTEXT = {
    # FLUX.1-Kontext-dev: FluxTransformer2DModel (12 B), T5-XXL encoder, CLIP-L text model, the FLUX VAE
    "kontext": dict(
        transformer=dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
                         num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768, axes_dims_rope=(16, 56, 56)),
        vae=dict(latent_channels=16, block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32, sample_size=1024),
        clip=dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                  projection_dim=768, hidden_act="quick_gelu"),
        t5=dict(vocab_size=32128, d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24, feed_forward_proj="gated-gelu",
                relative_attention_num_buckets=32),
    ),
    "tiny": dict(
        transformer=dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
                         num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(4, 4, 8)),
        vae=dict(latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4, sample_size=64),
        clip=dict(vocab_size=300, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                  projection_dim=32, hidden_act="gelu"),
        t5=dict(vocab_size=300, d_model=32, d_ff=37, d_kv=8, num_heads=4, num_layers=2, relative_attention_num_buckets=8),
    ),
}


FLUX2 = {
    # FLUX.2 [dev]: the transformer and VAE are diffusers' defaults (the released config), Mistral-Small-3.1-24B's text
    # and Pixtral vision sizes; the pipeline reads hidden states 10, 20, 30 of its 40 layers
    "dev": dict(klein=False, transformer={}, vae={}, text_layers=40, vocab_size=131072,
                text=dict(hidden_size=5120, intermediate_size=32768, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                          max_position_embeddings=131072),
                vision=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, head_dim=64,
                            image_size=1540, patch_size=14)),
    # FLUX.2 [klein] 4B: 5 double + 20 single blocks of 24 x 128, Qwen3-4B (36 layers; hidden states 9, 18, 27 read)
    "klein-4b": dict(klein=True, transformer=dict(num_layers=5, num_single_layers=20, num_attention_heads=24,
                                                  joint_attention_dim=3 * 2560), vae={}, text_layers=36, vocab_size=151936,
                     text=dict(hidden_size=2560, intermediate_size=9728, num_attention_heads=32, num_key_value_heads=8,
                               head_dim=128, max_position_embeddings=40960, tie_word_embeddings=True)),
    "tiny": dict(klein=False, text_layers=30, **FLUX2_TINY),
    "tiny-klein": dict(klein=True, **{k: v for k, v in FLUX2_TINY.items() if k != "vision"}),
}

QWEN_IMAGE_EDIT = {
    # Qwen-Image-Edit-2511: diffusers' QwenImageTransformer2DModel defaults (60 layers, 24 x 128) with zero_cond_t, the
    # Qwen-Image VAE's defaults, Qwen2.5-VL-7B; the text encoder sees each source at 384 x 384
    "2511": dict(transformer=dict(zero_cond_t=True), vae={}, text="7b", condition_pixels=384 * 384),
    "tiny": dict(transformer=dict(patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16,
                                  num_attention_heads=3, joint_attention_dim=32, axes_dims_rope=(8, 4, 4), zero_cond_t=True),
                 vae=dict(base_dim=24, z_dim=4, dim_mult=[1, 2, 4], num_res_blocks=1, temperal_downsample=[False, True],
                          latents_mean=[0.0] * 4, latents_std=[1.0] * 4), text="tiny", condition_pixels=56 * 56),
}


@contextmanager
def built_on(device: str | torch.device, dtype: torch.dtype):
    """New modules get their weights on ``device`` in ``dtype`` (the default dtype is restored after)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def qwen25vl_backbone(size: str | dict, tokenizer, device: str | torch.device, dtype: torch.dtype):
    """A random ``Qwen2_5_VLForConditionalGeneration`` of ``QWEN25VL[size]`` (or a size dict), in eval mode."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    size = QWEN25VL[size] if isinstance(size, str) else size
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_end|>", "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")}
    text = dict(size["text"])
    mrope = text.pop("mrope_section")
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=max(len(tokenizer), size.get("vocab_size", 0)), max_position_embeddings=32768, rms_norm_eps=1e-6,
                         rope_parameters={"rope_type": "default", "mrope_section": mrope, "rope_theta": 1e6},
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"], **text),
        vision_config=dict(out_hidden_size=size["text"]["hidden_size"], patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                           window_size=112, **size["vision"]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    with built_on(device, dtype):
        model = Qwen2_5_VLForConditionalGeneration(config)
    return model.eval()


def realistic_templates(prompt_tokens: int) -> dict:
    """Official structure (shared start, dimension text, instruction, reward suffix) at Qwen-token lengths.

    The byte-level tokenizer spends one token per character, so the official prompts would be about
    four times longer than with Qwen's tokenizer: these keep the official shared start, then
    ``prompt_tokens`` characters per dimension, which gives realistic sequence lengths.
    """
    shared = common_prefix_length(EDITREWARD_INSTRUCTION_FOLLOWING, EDITREWARD_VISUAL_QUALITY)

    def body(text: str) -> str:
        filler = (text[shared:] * 2)[:prompt_tokens]
        return text[:shared] + filler.replace("{", "(").replace("}", ")") + "\nText instruction - {text_prompt}\n"
    return {"instruction_following": body(EDITREWARD_INSTRUCTION_FOLLOWING), "visual_quality": body(EDITREWARD_VISUAL_QUALITY),
            "suffix": EDITREWARD_SUFFIX}


def editreward(size: str | dict, device: str | torch.device, dtype: torch.dtype, pixels: int, templates) -> EditReward:
    """An EditReward on a random ``qwen25vl_backbone`` (heads in fp32, as loaded checkpoints have them), in eval mode."""
    tokenizer = tiny_qwen_tokenizer(["<|Reward|>"])
    processor = tiny_qwen25vl_processor(tokenizer, min_pixels=pixels, max_pixels=pixels)
    backbone = qwen25vl_backbone(size, tokenizer, device, dtype)
    config = EditRewardConfig(base_model="random", templates=templates, min_pixels=pixels, max_pixels=pixels)
    # the constructor, not from_backbone: that resizes the embeddings to the byte-level tokenizer's few hundred
    # tokens, and the real vocabulary's embedding and LM head are part of the 7B size (its ids are a subset)
    reward = EditReward(backbone, processor, config).to(device).eval()
    reward.rm_heads.float()
    return reward


def flux_kontext(size: str | dict, device: str | torch.device, dtype: torch.dtype):
    """A random ``FluxKontextPipeline`` of ``FLUX_KONTEXT[size]`` (or a size dict), every module in eval mode."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxKontextPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    size = FLUX_KONTEXT[size] if isinstance(size, str) else size
    special = dict(bos_token_id=256, eos_token_id=257, pad_token_id=258)  # the byte-level tokenizers' ids
    with built_on(device, dtype):
        transformer = FluxTransformer2DModel(guidance_embeds=True, **size["transformer"])
        vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, use_quant_conv=False, use_post_quant_conv=False,
                            shift_factor=0.1159, scaling_factor=0.3611, **size["vae"])
        clip = CLIPTextModel(CLIPTextConfig(max_position_embeddings=77, **special, **size["clip"]))
        t5 = T5EncoderModel(T5Config(dropout_rate=0.0, pad_token_id=258, eos_token_id=257, decoder_start_token_id=258, **size["t5"]))
    tokenizer = byte_level_tokenizer(["<|startoftext|>", "<|endoftext|>", "<pad>"], 77, bos_token="<|startoftext|>",
                                     eos_token="<|endoftext|>", pad_token="<pad>", unk_token="<|endoftext|>")
    # FLUX.1's scheduler config: resolution-dependent shift between 0.5 and 1.15
    scheduler = FlowMatchEulerDiscreteScheduler(base_image_seq_len=256, max_image_seq_len=4096, base_shift=0.5, max_shift=1.15,
                                                shift=3.0, use_dynamic_shifting=True)
    pipe = FluxKontextPipeline(scheduler=scheduler, vae=vae.eval(), text_encoder=clip.eval(), tokenizer=tokenizer,
                               text_encoder_2=t5.eval(), tokenizer_2=tiny_t5_tokenizer(), transformer=transformer.eval(),
                               image_encoder=None, feature_extractor=None)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def flux2(size: str, device: str | torch.device, dtype: torch.dtype):
    """A random ``Flux2Pipeline`` / ``Flux2KleinPipeline`` of ``FLUX2[size]``, built on ``device`` in ``dtype``."""
    with built_on(device, dtype):
        pipe = flux2_pipeline(**FLUX2[size])
    pipe.set_progress_bar_config(disable=True)
    return pipe


def qwen_image_edit_plus(size: str, device: str | torch.device, dtype: torch.dtype):
    """A random ``QwenImageEditPlusPipeline`` of ``QWEN_IMAGE_EDIT[size]``, built on ``device`` in ``dtype``."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPlusPipeline,
        QwenImageTransformer2DModel,
    )

    size = QWEN_IMAGE_EDIT[size]
    tokenizer = tiny_qwen_tokenizer()
    processor = tiny_qwen25vl_processor(tokenizer, min_pixels=size["condition_pixels"], max_pixels=size["condition_pixels"])
    text_encoder = qwen25vl_backbone(size["text"], tokenizer, device, dtype)
    with built_on(device, dtype):
        transformer = QwenImageTransformer2DModel(**size["transformer"]).eval()
        vae = AutoencoderKLQwenImage(**size["vae"]).eval()
    pipe = QwenImageEditPlusPipeline(transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(),
                                     text_encoder=text_encoder, tokenizer=tokenizer, processor=processor)
    pipe.set_progress_bar_config(disable=True)
    return pipe
