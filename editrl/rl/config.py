"""The keys every RL trainer shares, and loading a config from YAML plus ``--set key=value`` overrides.

Each key is a dataclass field whose ``metadata["help"]`` documents it; an unknown key in a YAML
file or an override is an error naming the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ..errors import EditRLError

C = TypeVar("C", bound="RLConfig")


def _key(default, help: str, **kwargs):
    """A config field with its documentation."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kwargs)
    return field(default=default, metadata={"help": help}, **kwargs)


@dataclass
class RLConfig:
    """Keys shared by ``editrl grpo`` and ``editrl dpo`` (the world defaults run on a laptop CPU)."""

    # --- model
    editor: str = _key("world", "Editor registry name (world, flux-kontext, qwen-image-edit, qwen-image-edit-plus, "
                       "instruct-pix2pix) or a diffusers pipeline folder.")
    model: str | None = _key(None, "Hugging Face id or local folder of the editor's pipeline; null = the editor's default.")
    resolution: int | None = _key(None, "Square image side the editor works at; null = the editor's default (world: 64).")
    device: str | None = _key(None, "Device (cpu, cuda, cuda:1); null = the accelerate process's device.")
    dtype: str | None = _key(None, "Weights dtype of the editor: float32 | bfloat16 | float16; null = bf16 on GPU, fp32 on CPU.")
    editor_settings: dict[str, Any] = _key({}, "Extra keyword arguments of the editor adapter, e.g. {max_sequence_length: 128} "
                                           "for FLUX.1-Kontext (shorter T5 text: faster; the world editor is trained for 128).")
    guidance: float | None = _key(None, "Guidance scale of the editor; null = its default (Kontext 2.5, Qwen-Image-Edit 4.0).")
    gradient_checkpointing: bool = _key(False, "Recompute the denoiser's activations in backward (less memory at large sizes).")
    # --- LoRA
    lora_rank: int = _key(8, "LoRA rank r.")
    lora_alpha: float = _key(8.0, "LoRA alpha (scale = alpha / r).")
    lora_target_modules: list[str] | None = _key(None, "Module names LoRA adapts; null = the editor's own list.")
    lora_init: str = _key("gaussian", "peft init_lora_weights ('gaussian' as Flow-GRPO; B starts at zero either way).")
    # --- data
    train_data: str = _key("world", "'world' (procedural world train split) or a JSONL file with 'source' "
                           "(image path, relative to the file) and 'instruction' per line.")
    eval_data: str = _key("world", "'world' (the held-out world test split) or a JSONL file like train_data.")
    world_train_examples: int = _key(256, "Number of world train examples to draw prompts from (train_data: world).")
    eval_prompts: int = _key(8, "Number of fixed evaluation prompts for the monitor (first N of eval_data).")
    # --- rewards
    rewards: dict[str, float] = _key({"world": 1.0}, "Training reward as {spec: weight}; spec = world | oracle | "
                                     "http(s)://host:port | an EditReward folder/Hub id. Several are summed with their weights.")
    judge: str | None = _key("oracle", "Held-out judge spec for the reward-hacking monitor (world: oracle; elsewhere a "
                             "second reward model); null disables the monitor.")
    reward_batch_size: int = _key(16, "Batch size for reward scoring.")
    # --- sampling
    group_size: int = _key(8, "k: samples per (source, instruction) group.")
    groups_per_step: int = _key(4, "Groups per iteration per process.")
    batch_size: int = _key(8, "Samples per forward pass; rollouts and training use the same batches (some models' "
                           "outputs depend on batch composition, and ratio == 1 on-policy needs identical forwards).")
    num_steps: int = _key(8, "Sampling steps of training rollouts (fewer than at inference is fine: Kontext 6-8).")
    eval_steps: int | None = _key(None, "Sampling steps at evaluation; null = the editor's default.")
    # --- optimisation
    num_iterations: int = _key(20, "Iterations (rollout + update) to train.")
    learning_rate: float = _key(3e-4, "AdamW learning rate of the LoRA weights.")
    adam_betas: list[float] = _key([0.9, 0.999], "AdamW betas.")
    weight_decay: float = _key(1e-4, "AdamW weight decay.")
    max_grad_norm: float = _key(1.0, "Gradient clipping norm (0 = no clipping).")
    ema_decay: float = _key(0.9, "EMA decay of the LoRA weights (0 = no EMA); the EMA weights are evaluated and saved.")
    seed: int = _key(0, "Seed of prompt order, rollout noise and timestep choice.")
    # --- monitor / logging / checkpoints
    eval_every: int = _key(5, "Evaluate the training reward and the judge every N iterations (0 = never).")
    monitor_window: int = _key(3, "Evaluations over which the monitor fits the reward and judge trends.")
    monitor_min_rise: float = _key(0.0, "Training-reward slope (per evaluation) above which it counts as rising.")
    monitor_min_fall: float = _key(0.0, "Judge slope (per evaluation) below minus this counts as falling.")
    output_dir: str = _key("runs/rl", "Where log.jsonl, checkpoints/ and the final lora/ go.")
    save_every: int = _key(10, "Checkpoint every N iterations (and at the end).")
    keep_checkpoints: int = _key(2, "Checkpoints kept on disk (oldest deleted).")

    def validate(self) -> None:
        """Range checks with one clear message per key."""
        positive = ["lora_rank", "group_size", "groups_per_step", "batch_size", "num_steps", "num_iterations", "save_every",
                    "monitor_window", "reward_batch_size", "eval_prompts", "keep_checkpoints"]
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise EditRLError(f"config key {name}: expected a positive integer, got {getattr(self, name)!r}")
        if self.group_size < 2:
            raise EditRLError(f"config key group_size: GRPO/DPO need at least 2 samples per group, got {self.group_size}")
        if not 0 <= self.ema_decay < 1:
            raise EditRLError(f"config key ema_decay: expected 0 <= decay < 1, got {self.ema_decay}")
        if self.dtype not in (None, "float32", "bfloat16", "float16"):
            raise EditRLError(f"config key dtype: expected float32, bfloat16 or float16, got {self.dtype!r}")
        if not isinstance(self.rewards, dict) or not self.rewards:
            raise EditRLError(f"config key rewards: expected a mapping {{spec: weight}}, got {self.rewards!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check/convert a YAML value to the field's type (int -> float allowed, '1e-4' strings as YAML gives them)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        annotation = next(a for a in args if a is not type(None))
        origin = typing.get_origin(annotation)
    expected = origin or annotation
    if expected is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    elif expected is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif expected is bool and isinstance(value, bool):
        return value
    elif expected is str and isinstance(value, str):
        return value
    elif expected is list and isinstance(value, list):
        return value
    elif expected is dict and isinstance(value, dict):
        return value
    raise EditRLError(f"config key {key}: expected {getattr(expected, '__name__', expected)}, got {value!r}")


def parse_overrides(overrides: list[str] | None) -> dict[str, Any]:
    """``["key=value", ...]`` -> dict; values are parsed as YAML (numbers, lists, mappings, null)."""
    out = {}
    for item in overrides or []:
        if "=" not in item:
            raise EditRLError(f"--set {item!r}: expected key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def build_config(cls: type[C], values: dict[str, Any], source: str = "config") -> C:
    """A validated ``cls`` from a dict; unknown keys and wrong types raise ``EditRLError`` naming the key."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise EditRLError(f"{source}: unknown key(s) {unknown} for {cls.__name__}; known keys: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    config = cls(**{k: _coerce(v, hints[k], k) for k, v in values.items()})
    config.validate()
    return config


def load_config(cls: type[C], path: str | Path | None = None, overrides: list[str] | None = None) -> C:
    """``cls`` from a YAML file (or defaults when ``path`` is None), then ``key=value`` overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise EditRLError(f"--config: no such file {str(path)!r}")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise EditRLError(f"--config {str(path)!r}: not valid YAML ({err})") from None
        if not isinstance(loaded, dict):
            raise EditRLError(f"--config {str(path)!r}: expected a mapping of keys to values")
        values.update(loaded)
    values.update(parse_overrides(overrides))
    return build_config(cls, values, source=str(path) if path else "--set")
