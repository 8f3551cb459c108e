"""Saving and loading EditReward models: our folders and the official EditReward release.

Our folder (``save_pretrained``): ``model.safetensors`` (full state dict, official key layout),
``config.json`` (the backbone's Qwen2.5-VL or Qwen3-VL config), ``editreward_config.json`` (EditRewardConfig) and
the processor/tokenizer files, so it loads with nothing else.

The official release (TIGER-Lab/EditReward-Qwen2.5-VL-7B, ...): one ``model.safetensors`` holding the
full state dict; config and processor come from the base model (Qwen/Qwen2.5-VL-7B-Instruct, ...).
It is loaded strictly, after renaming the keys of the older transformers layout (``model.layers.*``,
``visual.*``) to the current one (``model.language_model.*``, ``model.visual.*``). The official Qwen3-VL code
saves the same way (``model.language_model.*``, ``model.visual.*`` with its deepstack mergers, ``lm_head.*``,
``rm_heads.*``) on top of Qwen/Qwen3-VL-8B-Instruct or another Qwen3-VL base; without an
``editreward_config.json`` such a checkpoint is read as that code reads it (``official_config``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import torch

from ..config import build_dataclass
from ..errors import EditRLError
from ..files import atomic_path
from .model import EditReward, EditRewardConfig

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "editreward_config.json"
# released checkpoints -> the base model whose config and processor they need
OFFICIAL_BASE_MODELS = {
    "TIGER-Lab/EditReward-Qwen2.5-VL-7B": "Qwen/Qwen2.5-VL-7B-Instruct",
    "TIGER-Lab/EditReward-MiMo-VL-7B-SFT-2508": "XiaomiMiMo/MiMo-VL-7B-SFT-2508",
}
# older transformers layout -> current layout (checked in order, first match wins)
_KEY_RENAMES = (
    ("model.language_model.", "model.language_model."),
    ("model.visual.", "model.visual."),
    ("model.", "model.language_model."),
    ("visual.", "model.visual."),
)
_CONFIG_FILES = ["*.json", "*.jinja", "*.txt", "*.model", "*.tiktoken"]
# config.json model_type -> (config class, model class) in transformers, and the processor class in editrl.reward.processor
BACKBONES = {
    "qwen2_5_vl": ("Qwen2_5_VLConfig", "Qwen2_5_VLForConditionalGeneration", "ImageOnlyQwen2_5_VLProcessor"),
    "qwen3_vl": ("Qwen3VLConfig", "Qwen3VLForConditionalGeneration", "ImageOnlyQwen3VLProcessor"),
}


def backbone_type(folder: Path) -> str:
    """The model_type of a backbone folder's config.json (Qwen2.5-VL when it has none); one line for an unknown one."""
    config = folder / "config.json"
    model_type = json.loads(config.read_text()).get("model_type", "qwen2_5_vl") if config.is_file() else "qwen2_5_vl"
    if model_type not in BACKBONES:
        raise EditRLError(f"{config}: model_type {model_type!r} is not an EditReward backbone; expected one of {sorted(BACKBONES)}")
    return model_type


def backbone_classes(folder: Path) -> tuple[type, type]:
    """(config class, model class) of the backbone in ``folder``."""
    import transformers

    config_name, model_name, _ = BACKBONES[backbone_type(folder)]
    return getattr(transformers, config_name), getattr(transformers, model_name)


def official_config(base: str, processor, model_type: str) -> EditRewardConfig:
    """How the official code reads a checkpoint of ``model_type``: Qwen2.5-VL-family ones at 200704 pixels with
    sequential positions (the defaults); Qwen3-VL ones with the 3-D positions of its stock forward and images resized by
    the base processor's own size rule (its chat-template call ignores the per-image pixel bounds in the messages)."""
    if model_type != "qwen3_vl":
        return EditRewardConfig(base_model=base)
    size = processor.image_processor.size
    return EditRewardConfig(base_model=base, positions="mrope", min_pixels=int(size["shortest_edge"]),
                            max_pixels=int(size["longest_edge"]))


def hub_offline() -> bool:
    """True when Hugging Face downloads are switched off (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return bool(constants.HF_HUB_OFFLINE) or any(f.lower() in ("1", "true", "yes", "on") for f in flags)


def resolve_folder(path_or_id: str, what: str, allow_patterns: list[str] | None = None) -> Path:
    """A local folder for a folder path or Hugging Face id (from the cache when offline).

    Fails with one line naming the model and how to provide it.
    """
    path = Path(os.path.expanduser(str(path_or_id)))
    if path.is_dir():
        return path
    if path.is_file():
        return path.parent
    looks_local = str(path_or_id).startswith((".", "/", "~")) or str(path_or_id).count("/") != 1
    if looks_local:
        raise EditRLError(f"{what} {str(path_or_id)!r}: no such folder; pass an existing local folder or a Hugging Face id")
    from huggingface_hub import snapshot_download

    offline = hub_offline()
    try:
        return Path(snapshot_download(str(path_or_id), allow_patterns=allow_patterns, local_files_only=offline))
    except Exception as err:  # network, auth, missing repo: all end in the same advice
        where = "in the local Hugging Face cache (offline mode)" if offline else "on the Hugging Face Hub"
        raise EditRLError(
            f"{what} {str(path_or_id)!r} is not available {where} ({type(err).__name__}); download it with "
            f"`hf download {path_or_id}` or pass a local folder"
        ) from None


def remap_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename keys of the older transformers layout to the current one; ``rm_heads.*`` and
    ``lm_head.*`` are unchanged."""
    out = {}
    for key, value in state_dict.items():
        new = key
        for old_prefix, new_prefix in _KEY_RENAMES:
            if key.startswith(old_prefix):
                new = new_prefix + key[len(old_prefix):]
                break
        out[new] = value
    return out


def load_processor(folder: Path):
    """The image-only processor of the backbone in ``folder`` (Qwen2.5-VL's or Qwen3-VL's, by its config.json)."""
    from . import processor as processors

    kind = BACKBONES[backbone_type(folder)][2]
    try:
        return getattr(processors, kind).from_pretrained(str(folder), local_files_only=True)
    except Exception as err:
        raise EditRLError(f"processor files in {str(folder)!r} could not be loaded ({type(err).__name__}: {err}); "
                          "the folder needs the tokenizer and preprocessor files of a Qwen2.5-VL or Qwen3-VL model") from None


def load_editreward(
    path_or_id: str,
    base_model: str | None = None,
    config: EditRewardConfig | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> EditReward:
    """Load our ``save_pretrained`` folder, or an official checkpoint (folder/id with
    ``model.safetensors``) on top of ``base_model`` (default: known for the released ids, else
    ``config.base_model``). ``dtype`` casts the backbone (heads stay fp32); default: as stored."""
    from accelerate import init_empty_weights
    from safetensors.torch import load_file

    from ..loading import quiet_loading

    folder = resolve_folder(path_or_id, "reward model", [WEIGHTS_NAME, *_CONFIG_FILES])
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise EditRLError(f"reward model {str(path_or_id)!r}: {weights} is missing; the folder must hold the {WEIGHTS_NAME} "
                          "of an EditReward checkpoint (`hf download TIGER-Lab/EditReward-Qwen2.5-VL-7B`)")
    ours = (folder / CONFIG_NAME).is_file()
    if ours:
        config_folder = folder
    else:
        base = base_model or OFFICIAL_BASE_MODELS.get(str(path_or_id)) or (config.base_model if config else None)
        if base is None:
            raise EditRLError(f"reward model {str(path_or_id)!r} is an official-style checkpoint without {CONFIG_NAME}: "
                              "pass base_model= (e.g. Qwen/Qwen2.5-VL-7B-Instruct) so its config and processor can be loaded")
        config_folder = resolve_folder(base, "base model", _CONFIG_FILES)
    config_class, model_class = backbone_classes(config_folder)
    with quiet_loading():
        processor = load_processor(config_folder)
        backbone_config = config_class.from_pretrained(str(config_folder), local_files_only=True)
    if config is not None:
        cfg = config
    elif ours:
        cfg = build_dataclass(EditRewardConfig, json.loads((folder / CONFIG_NAME).read_text()))
    else:
        cfg = official_config(base, processor, backbone_config.model_type)
    tokenizer = processor.tokenizer
    if cfg.reward_token not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [cfg.reward_token]}, replace_extra_special_tokens=False)
    backbone_config.text_config.vocab_size = len(tokenizer)  # the official code resizes to len(tokenizer)
    with init_empty_weights():
        backbone = model_class(backbone_config)
        model = EditReward.from_backbone(backbone, processor, cfg)
    state_dict = remap_state_dict(load_file(str(weights), device="cpu"))
    try:
        model.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise EditRLError(f"reward model {str(weights)!r} does not match the model built from {str(config_folder)!r} "
                          f"(head_type={cfg.head_type!r}, head sizes {cfg.head_hidden_sizes}): " + " ".join(line.strip() for line in first[1:3])[:400]) from None
    if dtype is not None:
        model.to(dtype)
    model.rm_heads.float()
    if device is not None:
        model.to(device)
    logger.info("loaded EditReward from %s (base %s)", folder, config_folder)
    return model.eval()


def save_editreward(model: EditReward, directory: str | os.PathLike) -> None:
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state, seen = {}, set()
    for key, tensor in model.state_dict().items():
        ptr = tensor.data_ptr()
        state[key] = tensor.detach().clone().contiguous() if ptr in seen else tensor.detach().contiguous()
        seen.add(ptr)
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    model.backbone.config.save_pretrained(str(directory))
    model.processor.save_pretrained(str(directory))
    (directory / CONFIG_NAME).write_text(json.dumps(dataclasses.asdict(model.config), indent=2) + "\n")
