"""``editrl grpo``, ``editrl dpo`` and ``editrl nft``: post-train an editor with a reward (LoRA), from a YAML config.

Several processes / GPUs: run the same command under accelerate, e.g.
``accelerate launch --num_processes 8 -m editrl.cli grpo --config configs/grpo/flux-kontext.yaml``
(``--config_file configs/accelerate/<fsdp|zero2>.yaml`` for the big models).
"""

from __future__ import annotations

import json

ALGORITHMS = {
    "grpo": ("Flow-GRPO: SDE rollouts in groups, group-normalised advantages, PPO-clipped update with a KL to the base model",
             "configs/grpo/world.yaml"),
    "dpo": ("flow Diffusion-DPO on best-vs-worst pairs scored by the reward (offline or online reference)",
            "configs/dpo/world.yaml"),
    "nft": ("DiffusionNFT: deterministic rollouts of an old policy, positive/negative implicit policies on re-noised "
            "samples weighted by the reward's advantage, CFG-free", "configs/nft/world.yaml"),
}


def register(subparsers) -> None:
    for name, (what, example) in ALGORITHMS.items():
        parser = subparsers.add_parser(
            name, help=f"post-train an editor with {name.upper()} (LoRA)",
            description=f"{what}. Writes log.jsonl (one JSON line per iteration), checkpoints/step-N/ (LoRA in "
            "diffusers format + trainer state) and the final lora/ (load it with `editrl best-of-n --lora`) "
            "under the config's output_dir, and prints the last log record as JSON.",
        )
        parser.add_argument("--config", default=None, help=f"YAML config (every key is documented in the config dataclass), e.g. {example}; "
                            "default: the world defaults")
        parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                            help="override a config key (value parsed as YAML), e.g. --set learning_rate=1e-4 "
                            "--set 'rewards={world: 1.0, oracle: 0.5}'; repeatable")
        parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in output_dir")
        parser.set_defaults(func=run, algorithm=name)


def run(args) -> int:
    from ..rl import DPOConfig, DPOTrainer, GRPOConfig, GRPOTrainer, NFTConfig, NFTTrainer, load_config

    config_cls, trainer_cls = {"grpo": (GRPOConfig, GRPOTrainer), "dpo": (DPOConfig, DPOTrainer),
                               "nft": (NFTConfig, NFTTrainer)}[args.algorithm]
    config = load_config(config_cls, args.config, args.overrides)
    trainer = trainer_cls(config)
    record = trainer.train(resume=args.resume)
    if trainer.accelerator.is_main_process:
        print(json.dumps(record))
    return 0
