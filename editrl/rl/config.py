"""The keys of every RL trainer (loaded with ``editrl.config.load_config``: YAML plus ``--set key=value``).

Torch-free, so that ``editrl grpo --help`` lists the keys without loading torch. Each key is a dataclass field whose ``metadata["help"]`` documents it; an unknown key in a YAML
file or an override is an error naming the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..config import Config, config_field, load_config
from ..errors import EditRLError
from ..files import check_input
from ..registry import PROMPT_SETS
from ..runs import REPORT_TO

__all__ = ["DPOConfig", "GRPOConfig", "GroupConfig", "NFTConfig", "RLConfig", "check_optimizer_installed", "check_prompt_source",
           "load_config"]

LOG_FILE = "log.jsonl"
"""The run's log in ``output_dir``; its presence marks a folder holding an earlier run."""

ADVANTAGE_MODES = ("global_std", "group", "batch")
"""How rewards become advantages (``editrl.rl.advantages``), the choices of ``advantage_mode``."""
SDE_TYPES = ("flow_grpo", "cps")
"""The SDE step forms of ``editrl.rl.sde`` (flow_grpo's Euler-Maruyama, or Coefficients-Preserving Sampling)."""
OPTIMIZERS = {"adamw": None, "adamw_8bit": "bitsandbytes"}
"""The choices of ``optimizer`` (``editrl.rl.memory.optimizer_class``) and the package each needs beyond torch."""


def check_optimizer_installed(name: str) -> None:
    """One line if the optimizer ``name`` needs a package that is not installed (bitsandbytes is not a dependency of
    editrl); looked up without importing it, so a config is checked before torch loads."""
    package = OPTIMIZERS[name]
    if package is not None and importlib.util.find_spec(package) is None:
        raise EditRLError(f"config key optimizer: {name} needs {package}, which is not installed: pip install {package}")


def check_prompt_source(spec: str, label: str = "data") -> None:
    """``spec`` names prompts: a registered prompt set (``world``), else an existing table file or folder. A bare word
    is taken for a set name (an unknown one lists them and suggests the closest), anything with a suffix or a
    folder separator for a path."""
    if Path(spec).exists():
        return
    if Path(spec).suffix or "/" in spec:
        check_input(spec, label)
    PROMPT_SETS.check(spec, label, ", or a JSONL/Parquet/Arrow table with 'source' and 'instruction' columns")


@dataclass
class RLConfig(Config):
    """Keys shared by ``editrl grpo`` and ``editrl dpo`` (the world defaults run on a laptop CPU)."""

    KEYS_ADDED: ClassVar[dict[str, Any]] = {"ema_update_every": 1, "optimizer": "adamw"}
    """Keys added after checkpoints were written without them, each with the value that behaves as those runs did
    (``editrl.runs.check_resume_config``): such a checkpoint resumes when the config says that value."""

    # --- model
    editor: str = config_field("world", "Editor registry name (world, flux-kontext, flux2, flux2-klein, qwen-image-edit, "
                       "qwen-image-edit-plus, qwen-image-edit-2511, instruct-pix2pix) or a diffusers pipeline folder; "
                       "longcat-image-edit samples only (its pipeline cannot save LoRA).")
    model: str | None = config_field(None, "Hugging Face id or local folder of the editor's pipeline; null = the editor's default.")
    resolution: int | None = config_field(None, "Square image side the editor works at; null = the editor's default (world: 64).")
    device: str | None = config_field(None, "Device (cpu, cuda, cuda:1); null = the accelerate process's device.")
    dtype: str | None = config_field(None, "Weights dtype of the editor: float32 | bfloat16 | float16; null = bf16 on GPU, fp32 on CPU.")
    editor_settings: dict[str, Any] = config_field({}, "Extra keyword arguments of the editor adapter, e.g. {max_sequence_length: 128} "
                                           "for FLUX.1-Kontext (shorter T5 text: faster; the world editor is trained for 128).")
    guidance: float | None = config_field(None, "Guidance scale of the editor; null = its default (Kontext 2.5, Qwen-Image-Edit 4.0).")
    gradient_checkpointing: bool = config_field(False, "Recompute the denoiser's activations in backward (less memory at large sizes).")
    offload_text_encoder: bool = config_field(False, "Keep the editor's text encoder(s) on the CPU except while prompts are "
                                              "encoded (moved to the accelerator for it): frees their memory for training, "
                                              "at two weight transfers per encode; the results are the same.")
    # --- LoRA
    lora_rank: int = config_field(8, "LoRA rank r.")
    lora_alpha: float = config_field(8.0, "LoRA alpha (scale = alpha / r).")
    lora_target_modules: list[str] | None = config_field(None, "Module names LoRA adapts; null = the editor's own list.")
    lora_init: str = config_field("gaussian", "peft init_lora_weights ('gaussian' as Flow-GRPO; B starts at zero either way).")
    # --- data
    train_data: str = config_field("world", "'world' (procedural world train split) or a JSONL file with 'source' "
                           "(image path, relative to the file; or a list of them for an editor that takes several) and "
                           "'instruction' per line.")
    eval_data: str = config_field("world", "'world' (the held-out world test split) or a JSONL file like train_data.")
    world_train_examples: int = config_field(256, "Number of world train examples to draw prompts from (train_data: world).")
    eval_prompts: int = config_field(8, "Number of fixed evaluation prompts for the monitor (first N of eval_data).")
    # --- rewards
    rewards: dict[str, float] = config_field({"world": 1.0}, "Training reward as {spec: weight}; spec = world | oracle | "
                                     "http(s)://host:port | an EditReward folder/Hub id. Several are summed with their weights.")
    judge: str | None = config_field("oracle", "Held-out judge spec for the reward-hacking monitor (world: oracle; elsewhere a "
                             "second reward model); null disables the monitor.")
    reward_batch_size: int = config_field(16, "Batch size for reward scoring.")
    overlap_reward: bool = config_field(True, "Score each rollout batch in a background thread while the next is sampled, "
                                "and the rewards of a mix at the same time (a remote reward never stalls sampling); "
                                "the results are identical either way, false scores inline.")
    # --- sampling
    group_size: int = config_field(8, "k: samples per (source, instruction) group.")
    groups_per_step: int = config_field(4, "Groups per iteration per process.")
    batch_size: int = config_field(8, "Samples per forward pass; rollouts and training use the same batches (some models' "
                           "outputs depend on batch composition, and ratio == 1 on-policy needs identical forwards).")
    num_steps: int = config_field(8, "Sampling steps of training rollouts (fewer than at inference is fine: Kontext 6-8).")
    eval_steps: int | None = config_field(None, "Sampling steps at evaluation; null = the editor's default.")
    # --- optimisation
    num_iterations: int = config_field(20, "Iterations (rollout + update) to train.")
    optimizer: str = config_field("adamw", "Optimizer of the LoRA weights: adamw (torch, fp32 moments) | adamw_8bit "
                                  "(bitsandbytes' AdamW8bit: 8-bit moments, a quarter of the state; pip install bitsandbytes).")
    learning_rate: float = config_field(3e-4, "AdamW learning rate of the LoRA weights.")
    adam_betas: list[float] = config_field([0.9, 0.999], "AdamW betas.")
    weight_decay: float = config_field(1e-4, "AdamW weight decay.")
    max_grad_norm: float = config_field(1.0, "Gradient clipping norm (0 = no clipping).")
    ema_decay: float = config_field(0.9, "EMA decay of the LoRA weights (0 = no EMA); the EMA weights are evaluated and saved.")
    ema_update_every: int = config_field(8, "The EMA moves on every N-th optimizer step (flow_grpo's GRPO and DPO: 8, so with "
                                         "decay 0.9 it averages over about 80 steps; 1 = every step).")
    seed: int = config_field(0, "Seed of prompt order, rollout noise and timestep choice.")
    # --- monitor / logging / checkpoints
    eval_every: int = config_field(5, "Evaluate the training reward and the judge every N iterations (0 = never).")
    monitor_window: int = config_field(3, "Evaluations over which the monitor fits the reward and judge trends.")
    monitor_min_rise: float = config_field(0.0, "Training-reward slope (per evaluation) above which it counts as rising.")
    monitor_min_fall: float = config_field(0.0, "Judge slope (per evaluation) below minus this counts as falling.")
    output_dir: str = config_field("runs/rl", "Where config.yaml, log.jsonl, samples/, curves.png, checkpoints/ and lora/ go.")
    report_to: str = config_field("auto", "Experiment tracker through accelerate: auto (tensorboard when installed, else none) | "
                                  "tensorboard | wandb | none. log.jsonl is written either way.")
    save_every: int = config_field(10, "Checkpoint every N iterations (and at the end).")
    keep_checkpoints: int = config_field(2, "Checkpoints kept on disk (oldest deleted).")

    def validate(self) -> None:
        """Range checks with one clear message per key."""
        super().validate()
        self.require_positive("lora_rank", "group_size", "groups_per_step", "batch_size", "num_steps", "num_iterations",
                              "save_every", "monitor_window", "reward_batch_size", "eval_prompts", "keep_checkpoints",
                              "ema_update_every")
        if self.group_size < 2:
            raise EditRLError(f"config key group_size: GRPO/DPO need at least 2 samples per group, got {self.group_size}")
        if not 0 <= self.ema_decay < 1:
            raise EditRLError(f"config key ema_decay: expected 0 <= decay < 1, got {self.ema_decay}")
        if self.dtype not in (None, "float32", "bfloat16", "float16"):
            raise EditRLError(f"config key dtype: expected float32, bfloat16 or float16, got {self.dtype!r}")
        if self.report_to not in REPORT_TO:
            raise EditRLError(f"config key report_to: expected one of {REPORT_TO}, got {self.report_to!r}")
        if not isinstance(self.rewards, dict) or not self.rewards:
            raise EditRLError(f"config key rewards: expected a mapping {{spec: weight}}, got {self.rewards!r}")
        if self.optimizer not in OPTIMIZERS:
            raise EditRLError(f"config key optimizer: expected one of {tuple(OPTIMIZERS)}, got {self.optimizer!r}")

    def check_before_loading(self, resume: bool | str = False) -> None:
        """What ``validate`` cannot see, checked before any model loads so that a typo stops the run at once with
        one line naming the key: the editor and its model, each reward spec, the prompt sources, the optimizer's
        package, and an ``output_dir`` that can be created and holds no earlier run (unless resuming)."""
        from ..reward.specs import check_reward_spec
        from ..runs import check_run_folder

        check_optimizer_installed(self.optimizer)
        for spec in self.rewards:
            check_reward_spec(spec, "config key rewards")
        if self.judge:
            check_reward_spec(self.judge, "config key judge")
        check_prompt_source(self.train_data, "config key train_data")
        check_prompt_source(self.eval_data, "config key eval_data")
        check_run_folder(self.output_dir, resume, LOG_FILE)
        from ..sampler.editors import check_editor, check_lora_trainable, pipeline_class  # with torch: checked last

        spec, _ = check_editor(self.editor, self.model, labels=("config key editor", "config key model", "lora"))
        check_lora_trainable(pipeline_class(spec.pipeline), f"editor {self.editor}")


@dataclass
class GroupConfig(RLConfig):
    """Keys shared by the trainers that learn from group-normalised advantages (``editrl grpo``, ``editrl nft``)."""

    KEYS_ADDED: ClassVar[dict[str, Any]] = {**RLConfig.KEYS_ADDED, "max_group_mean": None}

    timestep_fraction: float = config_field(1.0, "Fraction of the trainable timesteps trained per sample and iteration (random subset).")
    kl_beta: float = config_field(0.01, "Weight of the pull to the reference (the denoiser with LoRA disabled); 0 = none, no reference forward.")
    advantage_mode: str = config_field("global_std", "Reward normalisation: global_std (the group's mean, the std of the whole "
                                       "gathered batch: flow_grpo's default) | group (per-group mean and std) | batch (global mean and std).")
    advantage_clip: float = config_field(5.0, "Advantages are clipped to [-c, c].")
    min_group_std: float = config_field(1e-4, "Groups whose reward std is below this are dropped (no signal).")
    max_group_mean: float | None = config_field(None, "Groups whose mean reward is above this are dropped (Edit-R1: 0.9 with "
                                                 "rewards in [0, 1], prompts already solved); null = none dropped.")
    num_minibatches: int = config_field(1, "Optimizer steps per iteration, over disjoint batches of the rollout.")

    def validate(self) -> None:
        super().validate()
        if self.advantage_mode not in ADVANTAGE_MODES:
            raise EditRLError(f"config key advantage_mode: expected one of {ADVANTAGE_MODES}, got {self.advantage_mode!r}")
        if not 0 < self.timestep_fraction <= 1:
            raise EditRLError(f"config key timestep_fraction: expected 0 < f <= 1, got {self.timestep_fraction}")
        if self.kl_beta < 0 or self.advantage_clip <= 0:
            raise EditRLError(f"config keys kl_beta >= 0 and advantage_clip > 0 expected, got {self.kl_beta} and {self.advantage_clip}")
        if self.max_group_mean is not None and not math.isfinite(self.max_group_mean):
            raise EditRLError(f"config key max_group_mean: expected a finite number or null, got {self.max_group_mean}")
        n_batches = -(-self.groups_per_step * self.group_size // self.batch_size)
        if not 1 <= self.num_minibatches <= n_batches:
            raise EditRLError(f"config key num_minibatches: expected 1..{n_batches} (rollout batches per process), got {self.num_minibatches}")


@dataclass
class GRPOConfig(GroupConfig):
    """``editrl grpo`` keys (on top of ``GroupConfig``)."""

    noise_level: float = config_field(0.7, "SDE noise level a (Flow-GRPO: 0.7 SD3, 0.9 FLUX/Kontext, 1.0 Qwen-Image-Edit).")
    sde_type: str = config_field("flow_grpo", "SDE form: flow_grpo | cps (coefficient-preserving).")
    sde_window_size: int = config_field(0, "Noise on this many consecutive steps only (ODE elsewhere); 0 = every step but the last.")
    sde_window_range: list[int] | None = config_field(None, "[lo, hi): steps the whole window lies in; null = every step but the last.")
    timestep_fraction: float = config_field(1.0, "Fraction of the window's SDE steps trained per iteration (random subset).")
    clip_range: float = config_field(1e-4, "PPO ratio clip c (ratios of mean log-probs stay very close to 1).")
    kl_beta: float = config_field(0.01, "Weight of the KL to the reference (LoRA disabled) on the step mean (0 = no KL, no ref forward).")
    num_minibatches: int = config_field(1, "Optimizer steps per iteration, over disjoint batches of the rollout (1 = on-policy).")

    def validate(self) -> None:
        super().validate()
        if self.sde_type not in SDE_TYPES:
            raise EditRLError(f"config key sde_type: expected one of {SDE_TYPES}, got {self.sde_type!r}")
        if self.num_steps < 2:
            raise EditRLError("config key num_steps: GRPO needs at least 2 steps (the last step is never trained)")
        if not 0 <= self.sde_window_size <= self.num_steps - 1:
            raise EditRLError(f"config key sde_window_size: expected 0..num_steps-1={self.num_steps - 1}, got {self.sde_window_size}")


@dataclass
class DPOConfig(RLConfig):
    """``editrl dpo`` keys (on top of ``RLConfig``)."""

    beta: float = config_field(100.0, "Constant DPO beta (flow_grpo uses ~100 for flows with mean-squared errors).")
    ref_update_every: int = config_field(0, "0 = offline DPO (pairs and reference from the frozen initial policy); K > 0 = "
                                 "online: pairs from the current policy, reference = copy of the LoRA refreshed every K iterations.")
    timesteps_per_pair: int = config_field(2, "Flow times t drawn per pair and iteration (each a separate accumulated backward).")
    noise_level: float = config_field(0.7, "SDE noise level of the pair rollouts (flow_grpo samples DPO pairs with its SDE "
                                      "sampler); 0 = the deterministic ODE sampler.")
    min_reward_gap: float = config_field(1e-4, "Groups whose best-worst reward gap is below this give no pair.")

    def validate(self) -> None:
        super().validate()
        if self.noise_level < 0:
            raise EditRLError(f"config key noise_level: expected >= 0, got {self.noise_level}")
        if self.beta <= 0:
            raise EditRLError(f"config key beta: expected a positive number, got {self.beta}")
        if self.ref_update_every < 0 or self.timesteps_per_pair < 1:
            raise EditRLError("config keys ref_update_every >= 0 and timesteps_per_pair >= 1 expected, got "
                              f"{self.ref_update_every} and {self.timesteps_per_pair}")


@dataclass
class NFTConfig(GroupConfig):
    """``editrl nft`` keys (on top of ``GroupConfig``); defaults from NVlabs/DiffusionNFT's configs."""

    beta: float = config_field(1.0, "Implicit-policy strength beta: v_pos = beta v + (1 - beta) v_old, v_neg = (1 + beta) v_old - beta v "
                                    "(DiffusionNFT: 1.0 GenEval/PickScore, 0.1 OCR).")
    timestep_fraction: float = config_field(0.99, "Fraction of the sampling schedule's timesteps each sample is trained at per "
                                                  "iteration (a random subset per sample; DiffusionNFT: 0.99).")
    kl_beta: float = config_field(1e-4, "Weight of the pull ||v - v_ref||^2 to the reference (LoRA disabled); 0 = none.")
    min_group_std: float = config_field(0.0, "Groups whose reward std is below this are dropped; DiffusionNFT keeps them "
                                             "(advantage 0 -> r = 0.5, a pull towards the old policy).")
    old_decay_rate: float = config_field(0.001, "Old-policy decay grows by this per optimizer step (DiffusionNFT decay_type 1: 0.001; 2: 0.0075).")
    old_decay_max: float = config_field(0.5, "Cap of the old-policy decay (decay_type 1: 0.5; 2: 0.999).")
    ema_update_every: int = config_field(1, "The EMA moves on every N-th optimizer step (DiffusionNFT: every step).")
    old_decay_delay: int = config_field(0, "Optimizer steps during which the old policy is a plain copy (decay 0; decay_type 2: 75).")
    rollout_noise_level: float = config_field(0.0, "0 = deterministic ODE rollouts (DiffusionNFT); > 0 = flow_grpo's SDE sampler.")

    def validate(self) -> None:
        super().validate()
        if self.beta <= 0:
            raise EditRLError(f"config key beta: expected a positive number, got {self.beta}")
        if not 0 <= self.old_decay_max < 1 or self.old_decay_rate < 0 or self.old_decay_delay < 0:
            raise EditRLError("config keys old_decay_rate >= 0, 0 <= old_decay_max < 1 and old_decay_delay >= 0 expected, got "
                              f"{self.old_decay_rate}, {self.old_decay_max} and {self.old_decay_delay}")
        if self.rollout_noise_level < 0:
            raise EditRLError(f"config key rollout_noise_level: expected >= 0, got {self.rollout_noise_level}")
