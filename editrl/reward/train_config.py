"""The configuration of ``editrl reward train``: one dataclass per YAML section, every key documented.

A YAML file maps onto ``RewardTrainingConfig``; an unknown key anywhere stops with an ``EditRLError``
naming it (``data.train.pth``), and ``--set section.key=value`` overrides any key after loading.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..config import Config, config_field
from ..config import load_config as load_dataclass_config
from ..errors import EditRLError
from ..files import check_input, check_model_source, check_output
from ..registry import TINY_BACKBONES, TOKENIZER_WORDS
from ..runs import REPORT_TO
from .data import SWAP_WORDS_KEY, TIE_POLICIES, DataSource, check_hard_negatives, check_swap_words
from .losses import LossConfig
from .model import EditRewardConfig


@dataclass
class LoraSection(Config):
    """LoRA adapters (peft) on the language model instead of a full fine-tune."""

    r: int = config_field(64, "Adapter rank.")
    alpha: int = config_field(128, "LoRA scaling numerator (scale = alpha / r).")
    dropout: float = config_field(0.05, "Dropout on the adapter input.")
    target_modules: list[str] = config_field(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                                             "Names of the language model's linear layers that get adapters (the vision "
                                             "tower gets none).")


@dataclass
class ModelSection(EditRewardConfig):
    """Which backbone to train, plus every ``EditRewardConfig`` key (how the reward model reads it)."""

    base_model: str | None = config_field(None, "Hugging Face id or folder of the Qwen2.5-VL-family or Qwen3-VL backbone (real runs).")
    tiny: dict | None = config_field(None, "Instead of base_model: keyword arguments of editrl.tiny.tiny_qwen25vl_config or "
                                     "tiny_qwen3vl_config (hidden_size, num_hidden_layers, ...) to build a tiny random backbone in "
                                     "code ({} = its defaults).")
    tiny_backbone: str = config_field("qwen2.5-vl", "Which tiny backbone model.tiny builds: qwen2.5-vl or qwen3-vl (set "
                                      "positions: mrope with it).")
    tokenizer: str = config_field("bytes", "Tokenizer of a tiny backbone: bytes (any text, one token per byte) or world (one "
                                  "token per word of the world's instructions and prompts: a tiny model reads them far more "
                                  "easily; other words are unknown).")
    seed: int = config_field(0, "Initialisation seed of the tiny backbone and of the reward heads.")
    lora: LoraSection | None = config_field(None, "LoRA settings; null = full fine-tune.")
    train_vision: bool = config_field(True, "Full fine-tune only: train the vision tower too (official: yes). With LoRA it stays frozen.")
    train_backbone: bool = config_field(True, "false: the backbone (embeddings, vision tower, language model) stays frozen "
                                        "and only the heads train: a probe of what the backbone already holds, far "
                                        "cheaper per step; pair it with read_at: before_reward_token (the untrained "
                                        "reward token carries nothing). Official: true.")
    gradient_checkpointing: bool = config_field(True, "Recompute activations in the backward pass to save memory.")
    dtype: str = config_field("auto", "Dtype the backbone is loaded in: auto = bfloat16 for a frozen LoRA base on GPU, else "
                              "float32 (trainable weights are always float32 masters; bf16 compute comes from mixed_precision).")

    def validate(self) -> None:
        super().validate()
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise EditRLError(f"model.dtype {self.dtype!r}: expected auto, float32 or bfloat16")
        if (self.base_model is None) == (self.tiny is None):
            raise EditRLError("model: set exactly one of model.base_model (id or folder) or model.tiny ({...} kwargs)")
        if not self.train_backbone and self.lora is not None:
            raise EditRLError("model.train_backbone: false trains the heads only; remove model.lora (it adapts the backbone)")
        if self.tiny_backbone not in TINY_BACKBONES:
            raise EditRLError(f"model.tiny_backbone: expected one of {', '.join(sorted(TINY_BACKBONES))}, got {self.tiny_backbone!r}")
        if self.tokenizer not in TOKENIZER_WORDS:
            raise EditRLError(f"model.tokenizer: expected one of {', '.join(sorted(TOKENIZER_WORDS))}, got {self.tokenizer!r}")

    def reward_config(self) -> EditRewardConfig:
        """The section's ``EditRewardConfig`` keys (``base_model`` "tiny" for a backbone built in code)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(EditRewardConfig)}
        return EditRewardConfig(**{**values, "base_model": self.base_model or "tiny"})


@dataclass
class DataSection(Config):
    """Training and validation data, and how rows become pairs."""

    train: DataSource = config_field(DataSource(), "Training rows: format (editreward | train_json | jsonl | synthetic), "
                                     "path, ... (see DataSource).")
    validation: DataSource | None = config_field(None, "Held-out rows for validation (null: no validation).")
    ties: str = config_field("disentangle", "Tied pairs: disentangle (paper 3.3), keep (label 0.5) or drop.")
    score_range: list[float] = config_field([1.0, 4.0], "Valid per-dimension Likert scores; rows outside are bad rows.")
    strict: bool = config_field(False, "Stop at the first bad row instead of skipping it.")
    verify_images: bool = config_field(True, "Check every image decodes (PIL verify) while reading, so bad rows are found before training.")
    num_workers: int = config_field(0, "DataLoader worker processes decoding images.")
    hard_negatives: list[str] = config_field([], "Label-free hard negatives added to the training pairs "
                                             "(editrl.reward.data.add_hard_negatives): unchanged_source (the chosen edit "
                                             "over the source left unchanged), other_instruction (the chosen edit "
                                             "over itself under another row's instruction) and/or swapped_word (over itself "
                                             "under its instruction with one attribute word swapped, see swap_words). Not in "
                                             "the paper's recipe; [] trains as the paper.")
    hard_negatives_min_score: float | None = config_field(None, "Only chosen edits whose instruction-following score "
                                                          "is at least this win a hard negative (null: every strict "
                                                          "pair's chosen edit).")
    swap_words: list[list[str]] = config_field(SWAP_WORDS_KEY, "Word classes of the swapped_word negatives: a word "
                                               "of an instruction found in a class is replaced by another of that class "
                                               "(default: generic colours, sizes and the two side axes; name your data's "
                                               "attributes, leave synonyms out: a swap to a synonym is no negative).")

    def validate(self) -> None:
        super().validate()
        check_hard_negatives(self.hard_negatives)
        check_swap_words(self.swap_words, required="swapped_word" in self.hard_negatives)
        if self.ties not in TIE_POLICIES:
            raise EditRLError(f"data.ties {self.ties!r}: expected one of {TIE_POLICIES}")
        if len(self.score_range) != 2 or self.score_range[0] >= self.score_range[1]:
            raise EditRLError(f"data.score_range {self.score_range}: expected [low, high] with low < high")


@dataclass
class RewardTrainingConfig(Config):
    """Everything ``editrl reward train`` needs; the YAML mirrors it key by key."""

    # keys added after runs were saved, with the value that behaves as those runs did (editrl.runs.check_resume_config)
    KEYS_ADDED: ClassVar[dict[str, Any]] = {"model.read_at": "reward_token", "model.train_backbone": True,
                                            "data.hard_negatives": [], "data.hard_negatives_min_score": None,
                                            "data.swap_words": SWAP_WORDS_KEY,
                                            "loss.per_dimension": 0.0}

    model: ModelSection = config_field(ModelSection(tiny={}), "The backbone and reward-model settings.")
    loss: LossConfig = config_field(LossConfig(), "The training loss (uncertainty | bt | regression) and its estimator.")
    data: DataSection = config_field(DataSection(), "Training/validation data and pair construction.")
    output_dir: str = config_field("runs/reward", "Where checkpoints, metrics.jsonl and the final model (final/) are written.")
    seed: int = config_field(0, "Seed of the data order and of every RNG.")
    learning_rate: float = config_field(2e-6, "Peak learning rate (paper: 2e-6).")
    weight_decay: float = config_field(0.0, "AdamW weight decay (never applied to the input embeddings).")
    adam_beta1: float = config_field(0.9, "AdamW beta1.")
    adam_beta2: float = config_field(0.999, "AdamW beta2.")
    lr_scheduler: str = config_field("constant_with_warmup", "Any transformers.get_scheduler name: constant_with_warmup "
                                     "(official), cosine, linear, constant.")
    warmup_ratio: float = config_field(0.05, "Fraction of max_steps spent warming up (paper: 0.05).")
    per_device_batch_size: int = config_field(2, "Pairs per process per micro-batch (paper: 2).")
    gradient_accumulation_steps: int = config_field(4, "Micro-batches per optimizer step (paper: 4).")
    num_epochs: float = config_field(2.0, "Passes over the training pairs, used when max_steps is null.")
    max_steps: int | None = config_field(None, "Optimizer steps to train (overrides num_epochs).")
    stop_after_steps: int | None = config_field(None, "Stop (with a checkpoint) after this many steps without changing the "
                                                "schedule: a planned interruption, continued with --resume.")
    max_grad_norm: float | None = config_field(1.0, "Gradient clipping norm (null: no clipping).")
    mixed_precision: str = config_field("auto", "auto (bf16 on GPU, fp32 on CPU), bf16, fp16 or no.")
    disable_dropout: bool = config_field(True, "Set every dropout to 0 (as TRL's reward trainer): the loss is deterministic "
                                         "and DDP ranks agree.")
    save_every: int = config_field(500, "Checkpoint every N optimizer steps (and at the end).")
    save_total_limit: int | None = config_field(3, "Keep only the newest N checkpoints (null: all).")
    eval_every: int = config_field(500, "Validate every N optimizer steps (and at the end).")
    eval_batch_size: int = config_field(8, "Pairs per process per validation batch.")
    log_every: int = config_field(10, "Write a training line to metrics.jsonl every N optimizer steps.")
    report_to: str = config_field("auto", "Experiment tracker through accelerate: auto (tensorboard when installed, else none) "
                                  "| tensorboard | wandb | none. metrics.jsonl is written either way.")

    def validate(self) -> None:
        super().validate()
        self.require_positive("per_device_batch_size", "gradient_accumulation_steps", "save_every", "eval_every",
                              "eval_batch_size", "log_every")
        if self.report_to not in REPORT_TO:
            raise EditRLError(f"report_to {self.report_to!r}: expected one of {REPORT_TO}")
        if self.mixed_precision not in ("auto", "bf16", "fp16", "no"):
            raise EditRLError(f"mixed_precision {self.mixed_precision!r}: expected auto, bf16, fp16 or no")
        if not 0 <= self.warmup_ratio < 1:
            raise EditRLError(f"warmup_ratio={self.warmup_ratio}: expected 0 <= warmup_ratio < 1")
        if self.data.hard_negatives and self.loss.type == "regression":
            raise EditRLError("data.hard_negatives carry no human scores; loss.type regression needs them (use "
                              "uncertainty or bt)")

    def check_before_loading(self) -> None:
        """What ``validate`` cannot see, checked before the backbone loads so that a typo stops the run at once with
        one line naming the key: the data files, the backbone's folder or Hub id, and an output_dir that can be created."""
        for name, source in (("data.train", self.data.train), ("data.validation", self.data.validation)):
            if source is not None and source.format != "synthetic":
                check_input(source.path, f"config key {name}.path")
        if self.model.base_model is not None:
            check_model_source(self.model.base_model, "config key model.base_model")
        check_output(self.output_dir, "config key output_dir", folder=True)


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> RewardTrainingConfig:
    """Read a YAML config (or start from the defaults), apply ``--set`` overrides, validate."""
    return load_dataclass_config(RewardTrainingConfig, path, overrides)
