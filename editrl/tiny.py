"""Tiny random-weight builds of the real model classes, made entirely in code.

No weights or tokenizers can be downloaded where editrl is tested, so tests, benchmarks and the
world's shipped models all start from these builders: the genuine transformers/diffusers classes
(Qwen2_5_VLForConditionalGeneration, FluxKontextPipeline, QwenImageEditPipeline, ...) at toy sizes,
with byte-level tokenizers that need no vocabulary file (or a word-level one over a known vocabulary).
"""

from __future__ import annotations

import re

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLImageProcessorPil,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    T5Config,
    T5EncoderModel,
)

from .registry import TINY_BACKBONES
from .reward.processor import ImageOnlyQwen2_5_VLProcessor, ImageOnlyQwen3VLProcessor

QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]

# The Qwen2.5-VL-Instruct chat template (the text of the released chat_template.json).
QWEN_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# The Qwen3-VL-Instruct chat template's rendering of plain user turns: like Qwen2.5-VL's, but no default system turn.
QWEN3_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_level_tokenizer(special_tokens: list[str], model_max_length: int, **special_kwargs) -> PreTrainedTokenizerFast:
    """A BPE tokenizer with no merges: 256 byte tokens then the special tokens; encodes any string."""
    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(special_tokens)
    # model_max_length must be set: pipelines pad to it, and the default is 1e30
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=model_max_length, **special_kwargs)


def split_words(text: str) -> list[str]:
    """``text`` lower-cased and cut the way ``word_level_tokenizer`` cuts it (words and punctuation runs)."""
    return re.findall(r"\w+|[^\w\s]+", text.lower())


def word_level_tokenizer(words, special_tokens: list[str], model_max_length: int, **special_kwargs) -> PreTrainedTokenizerFast:
    """One token per lower-cased word or punctuation mark of ``words`` (special tokens first); anything else is unknown.

    A closed vocabulary makes a sentence a handful of tokens instead of one per byte, which is what lets a
    tiny text-conditioned model read its instructions at all.
    """
    vocab = {token: i for i, token in enumerate([*special_tokens, *sorted(set(words) - set(special_tokens))])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=special_kwargs.get("unk_token")))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()  # the split_words rule
    tokenizer.decoder = decoders.WordPiece()  # joins words with spaces
    tokenizer.add_special_tokens(special_tokens)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=model_max_length, **special_kwargs)


def tiny_tokenizer(special_tokens: list[str], model_max_length: int, words=None, **special_kwargs) -> PreTrainedTokenizerFast:
    """Byte-level, or word-level over ``words`` when given; the special tokens come first in both."""
    if words is None:
        return byte_level_tokenizer(special_tokens, model_max_length, **special_kwargs)
    return word_level_tokenizer(words, special_tokens, model_max_length, **special_kwargs)


def tiny_t5_tokenizer(words=None, model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """The tokenizer of the tiny T5 text encoder of ``tiny_flux_kontext`` (byte- or word-level)."""
    return tiny_tokenizer(["<unk>", "</s>", "<pad>"], model_max_length, words, eos_token="</s>", pad_token="<pad>", unk_token="<unk>")


def tiny_qwen_tokenizer(extra_special_tokens: list[str] = (), words=None) -> PreTrainedTokenizerFast:
    """Byte-level, or word-level over ``words`` when given."""
    tokenizer = tiny_tokenizer(QWEN_SPECIAL_TOKENS, 32768, words, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                               unk_token="<|endoftext|>")
    if extra_special_tokens:
        tokenizer.add_special_tokens({"additional_special_tokens": list(extra_special_tokens)})
    return tokenizer


def _tiny_vl_config(config_class, tokenizer: PreTrainedTokenizerFast, hidden_size: int, num_hidden_layers: int,
                    num_attention_heads: int, num_key_value_heads: int, intermediate_size: int, vision_depth: int,
                    vision_hidden_size: int, text: dict, rope: dict, vision: dict):
    """What the tiny Qwen-VL configs share: the special token ids, the sizes, an M-RoPE split of head_dim / 2;
    ``text``, ``rope`` and ``vision`` hold what differs between the families."""
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    half = hidden_size // num_attention_heads // 2  # mrope_section must sum to head_dim / 2
    mrope = [half - 2 * (half // 4), half // 4, half // 4]
    return config_class(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
            num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
            num_key_value_heads=num_key_value_heads, max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "mrope_section": mrope, **rope}, pad_token_id=ids["<|endoftext|>"],
            **{k: ids[v] if isinstance(v, str) else v for k, v in text.items()},
        ),
        vision_config=dict(depth=vision_depth, hidden_size=vision_hidden_size, intermediate_size=vision_hidden_size,
                           num_heads=4, out_hidden_size=hidden_size, spatial_merge_size=2, temporal_patch_size=2, **vision),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )


def tiny_qwen25vl_config(tokenizer: PreTrainedTokenizerFast, hidden_size: int = 32, num_hidden_layers: int = 2,
                         num_attention_heads: int = 4, num_key_value_heads: int = 2, intermediate_size: int = 37,
                         vision_depth: int = 2, vision_hidden_size: int = 32) -> Qwen2_5_VLConfig:
    return _tiny_vl_config(
        Qwen2_5_VLConfig, tokenizer, hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads,
        intermediate_size, vision_depth, vision_hidden_size,
        text={"bos_token_id": "<|endoftext|>", "eos_token_id": "<|im_end|>"}, rope={"rope_theta": 1e6},
        vision={"patch_size": 14, "window_size": 112, "fullatt_block_indexes": [vision_depth - 1]},
    )


def tiny_qwen25vl_processor(
    tokenizer: PreTrainedTokenizerFast, min_pixels: int = 56 * 56, max_pixels: int = 112 * 112
) -> ImageOnlyQwen2_5_VLProcessor:
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=min_pixels, max_pixels=max_pixels, patch_size=14, temporal_patch_size=2, merge_size=2
    )
    return ImageOnlyQwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=QWEN_CHAT_TEMPLATE)


def tiny_qwen25vl(seed: int = 0, extra_special_tokens: list[str] = (), words=None, **config_kwargs):
    """(model, processor): a random Qwen2_5_VLForConditionalGeneration and its processor, in eval mode."""
    tokenizer = tiny_qwen_tokenizer(extra_special_tokens, words)
    config = tiny_qwen25vl_config(tokenizer, **config_kwargs)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    return model, tiny_qwen25vl_processor(tokenizer)


def tiny_qwen3vl_config(tokenizer: PreTrainedTokenizerFast, hidden_size: int = 32, num_hidden_layers: int = 2,
                        num_attention_heads: int = 4, num_key_value_heads: int = 2, intermediate_size: int = 37,
                        vision_depth: int = 2, vision_hidden_size: int = 32) -> Qwen3VLConfig:
    """A Qwen3-VL config at toy sizes: 16-pixel patches, interleaved 3-D rotary positions, and one deepstack layer
    (the vision tower's first block feeds the language model's first layer, as the real ones do at three depths)."""
    return _tiny_vl_config(
        Qwen3VLConfig, tokenizer, hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads,
        intermediate_size, vision_depth, vision_hidden_size,
        text={"head_dim": hidden_size // num_attention_heads}, rope={"mrope_interleaved": True, "rope_theta": 5e5},
        vision={"patch_size": 16, "num_position_embeddings": 64, "deepstack_visual_indexes": [0]},
    )


def tiny_qwen3vl_processor(tokenizer: PreTrainedTokenizerFast, min_pixels: int = 64 * 64,
                           max_pixels: int = 128 * 128) -> ImageOnlyQwen3VLProcessor:
    """Qwen3-VL's image handling (16-pixel patches merged 2 x 2: sides are multiples of 32, mean = std = 0.5)."""
    image_processor = Qwen2VLImageProcessorPil(
        size={"shortest_edge": min_pixels, "longest_edge": max_pixels}, patch_size=16, temporal_patch_size=2,
        merge_size=2, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    )
    return ImageOnlyQwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=QWEN3_CHAT_TEMPLATE)


def tiny_qwen3vl(seed: int = 0, extra_special_tokens: list[str] = (), words=None, **config_kwargs):
    """(model, processor): a random Qwen3VLForConditionalGeneration and its processor, in eval mode."""
    tokenizer = tiny_qwen_tokenizer(extra_special_tokens, words)
    config = tiny_qwen3vl_config(tokenizer, **config_kwargs)
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).eval()
    return model, tiny_qwen3vl_processor(tokenizer)


def tiny_clip_text_encoder() -> tuple[CLIPTextModel, PreTrainedTokenizerFast]:
    """A random CLIP text encoder (77 positions) and its byte-level tokenizer, shared by the tiny Kontext and
    InstructPix2Pix pipelines; its weights come from the caller's current torch seed."""
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=300, hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, projection_dim=32,
        bos_token_id=256, eos_token_id=257, pad_token_id=258, max_position_embeddings=77, hidden_act="gelu",
    ))
    tokenizer = byte_level_tokenizer(["<|startoftext|>", "<|endoftext|>", "<pad>"], 77, bos_token="<|startoftext|>",
                                     eos_token="<|endoftext|>", pad_token="<pad>", unk_token="<|endoftext|>")
    return text_encoder, tokenizer


def tiny_flux_vae(latent_channels: int, channels: int = 8):
    """A random FLUX-style AutoencoderKL: four blocks (scale factor 8), FLUX's shift and scale, no quant convs."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels, block_out_channels=(channels,) * 4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1, norm_num_groups=4, sample_size=64, use_quant_conv=False, use_post_quant_conv=False,
        shift_factor=0.1159, scaling_factor=0.3611,
    )


def tiny_flux_kontext(
    seed: int = 0,
    num_layers: int = 1,
    num_single_layers: int = 1,
    attention_head_dim: int = 16,
    num_attention_heads: int = 2,
    vae_channels: int = 8,
):
    """A random FluxKontextPipeline: VAE with scale factor 8 (like FLUX), CLIP + T5 text encoders."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxKontextPipeline, FluxTransformer2DModel

    torch.manual_seed(seed)
    rope = [attention_head_dim // 4, attention_head_dim // 4, attention_head_dim // 2]  # sums to head dim
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=num_layers, num_single_layers=num_single_layers,
        attention_head_dim=attention_head_dim, num_attention_heads=num_attention_heads, joint_attention_dim=32,
        pooled_projection_dim=32, axes_dims_rope=rope, guidance_embeds=True,
    )
    text_encoder, tokenizer = tiny_clip_text_encoder()
    text_encoder_2 = T5EncoderModel(T5Config(
        vocab_size=300, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, relative_attention_num_buckets=8,
        dropout_rate=0.0, pad_token_id=258, eos_token_id=257, decoder_start_token_id=258,
    ))
    tokenizer_2 = tiny_t5_tokenizer()
    # four blocks give the FLUX VAE scale factor 8; 4 latent channels packed 2x2 give in_channels 16
    vae = tiny_flux_vae(4, vae_channels)
    for module in (transformer, text_encoder, text_encoder_2, vae):
        module.eval()  # built from a config they start in train mode, and T5 dropout would make outputs random
    return FluxKontextPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
        text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2, transformer=transformer,
        image_encoder=None, feature_extractor=None,
    )


def tiny_qwen_image_edit(plus: bool = False, seed: int = 0, zero_cond_t: bool = False):
    """A random QwenImageEditPipeline (or the Plus variant) with a tiny Qwen2.5-VL text encoder; ``zero_cond_t``
    as Qwen-Image-Edit-2511's transformer (the condition tokens modulated at timestep 0)."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPipeline,
        QwenImageEditPlusPipeline,
        QwenImageTransformer2DModel,
    )

    text_encoder, processor = tiny_qwen25vl(seed=seed)
    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=3,
        joint_attention_dim=32, guidance_embeds=False, axes_dims_rope=(8, 4, 4), zero_cond_t=zero_cond_t,
    ).eval()
    z = 4
    vae = AutoencoderKLQwenImage(
        base_dim=z * 6, z_dim=z, dim_mult=[1, 2, 4], num_res_blocks=1, temperal_downsample=[False, True],
        latents_mean=[0.0] * z, latents_std=[1.0] * z,
    ).eval()
    cls = QwenImageEditPlusPipeline if plus else QwenImageEditPipeline
    return cls(transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(), text_encoder=text_encoder,
               tokenizer=processor.tokenizer, processor=processor)


def tiny_instruct_pix2pix(seed: int = 0):
    """A random StableDiffusionInstructPix2PixPipeline (8-channel UNet input: noise + source latents)."""
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        StableDiffusionInstructPix2PixPipeline,
        UNet2DConditionModel,
    )

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=8, in_channels=8, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=8, attention_head_dim=4,
    ).eval()
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1, norm_num_groups=4, sample_size=64,
    ).eval()
    text_encoder, tokenizer = tiny_clip_text_encoder()
    text_encoder.eval()
    return StableDiffusionInstructPix2PixPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=EulerAncestralDiscreteScheduler(), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )


QWEN3_TEXT_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)
"""Qwen3's chat template, reduced to the text-only turns and the no-thinking prefix FLUX.2 Klein renders."""

MISTRAL_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}[SYSTEM_PROMPT]{% else %}[INST]{% endif %}"
    "{% for content in message['content'] %}{{ content['text'] }}{% endfor %}"
    "{% if message['role'] == 'system' %}[/SYSTEM_PROMPT]{% else %}[/INST]{% endif %}{% endfor %}"
)
"""Mistral-Small-3's chat template, reduced to the system and user text turns FLUX.2 dev renders."""


FLUX2_TINY = {
    "transformer": dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
                        num_attention_heads=2, joint_attention_dim=3 * 16, timestep_guidance_channels=32,
                        axes_dims_rope=(4, 4, 4, 4)),
    # scale factor 8 as the released VAE; 4 latent channels, 2x2 patchified to the transformer's 16
    "vae": dict(latent_channels=4, block_out_channels=(8,) * 4, layers_per_block=1, norm_num_groups=4, sample_size=64),
    # 27 layers: Klein reads hidden states 9, 18 and 27 (dev: 10, 20, 30, hence 30 there); joint_attention_dim = 3 x hidden
    "text": dict(hidden_size=16, intermediate_size=24, num_attention_heads=2, num_key_value_heads=1, head_dim=8,
                 max_position_embeddings=1024),
    "vision": dict(hidden_size=16, intermediate_size=24, num_hidden_layers=1, num_attention_heads=2, head_dim=8,
                   image_size=64, patch_size=16),
}
"""A toy FLUX.2 (``flux2_pipeline``'s size arguments); ``benchmarks/sizes.py`` holds the released sizes."""

MISTRAL_SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[IMG]", "<pad>"]


def flux2_pipeline(klein: bool, transformer: dict, vae: dict, text: dict, vision: dict | None = None,
                   text_layers: int = 27, vocab_size: int = 0, is_distilled: bool = False):
    """A random Flux2KleinPipeline (Qwen3 text encoder, ``klein``) or Flux2Pipeline (Mistral3) of the given sizes,
    with a byte-level tokenizer and a reduced chat template; weights from the current torch seed, on the current
    default device and dtype (``benchmarks/sizes.built_on``). ``vocab_size``: embedding rows (at least the tokenizer's)."""
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Pipeline,
        Flux2Transformer2DModel,
    )

    if klein:
        from transformers import Qwen3Config, Qwen3ForCausalLM

        tokenizer = tiny_qwen_tokenizer()
        tokenizer.chat_template = QWEN3_TEXT_CHAT_TEMPLATE
        text_encoder = Qwen3ForCausalLM(Qwen3Config(vocab_size=max(len(tokenizer), vocab_size), num_hidden_layers=text_layers,
                                                    pad_token_id=tokenizer.pad_token_id, **text))
    else:
        from transformers import Mistral3Config, Mistral3ForConditionalGeneration

        tokenizer = tiny_tokenizer(MISTRAL_SPECIAL_TOKENS, 4096, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>")
        tokenizer.chat_template = MISTRAL_CHAT_TEMPLATE
        text_encoder = Mistral3ForConditionalGeneration(Mistral3Config(
            text_config=dict(model_type="mistral", vocab_size=max(len(tokenizer), vocab_size), num_hidden_layers=text_layers,
                             pad_token_id=tokenizer.pad_token_id, **text),
            vision_config=dict(model_type="pixtral", **vision), image_token_index=tokenizer.convert_tokens_to_ids("[IMG]"),
        ))
    transformer = Flux2Transformer2DModel(guidance_embeds=not klein, **transformer)
    vae = AutoencoderKLFlux2(**vae)
    with torch.no_grad():  # a batch-norm that is not the identity, so its use in encode/decode is tested
        vae.bn.running_mean.uniform_(-0.5, 0.5)
        vae.bn.running_var.uniform_(0.5, 2.0)
    # dynamic shifting as the released schedulers, so the sigmas depend on the image size (mu)
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, shift=3.0)
    parts = dict(scheduler=scheduler, vae=vae.eval(), text_encoder=text_encoder.eval(), tokenizer=tokenizer,
                 transformer=transformer.eval())
    return Flux2KleinPipeline(**parts, is_distilled=is_distilled) if klein else Flux2Pipeline(**parts)


def tiny_flux2_klein(seed: int = 0, is_distilled: bool = False):
    """A random Flux2KleinPipeline of ``FLUX2_TINY``: a 27-layer Qwen3 text encoder (the pipeline reads layers 9, 18, 27)."""
    torch.manual_seed(seed)
    sizes = {k: v for k, v in FLUX2_TINY.items() if k != "vision"}
    return flux2_pipeline(True, **sizes, is_distilled=is_distilled)


def tiny_flux2(seed: int = 0):
    """A random Flux2Pipeline of ``FLUX2_TINY``: a 30-layer Mistral3 text encoder (the pipeline reads layers 10, 20, 30)."""
    torch.manual_seed(seed)
    return flux2_pipeline(False, **FLUX2_TINY, text_layers=30)


def tiny_longcat_image_edit(seed: int = 0):
    """A random LongCatImageEditPipeline: a tiny Qwen2.5-VL text encoder, a FLUX-style VAE with the 16 latent
    channels the pipeline assumes (packed 2x2 into the transformer's 64)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, LongCatImageEditPipeline, LongCatImageTransformer2DModel

    text_encoder, processor = tiny_qwen25vl(seed=seed)
    torch.manual_seed(seed)
    transformer = LongCatImageTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 6, 6],
    ).eval()
    vae = tiny_flux_vae(16).eval()
    return LongCatImageEditPipeline(scheduler=FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True), vae=vae,
                                    text_encoder=text_encoder, tokenizer=processor.tokenizer, text_processor=processor,
                                    transformer=transformer)


TINY_BACKBONES.register("qwen2.5-vl", tiny_qwen25vl)  # a reward config's ``model.tiny`` with ``model.tiny_backbone``
TINY_BACKBONES.register("qwen3-vl", tiny_qwen3vl)
