"""``editrl grpo``, ``editrl dpo`` and ``editrl nft``: post-train an editor with a reward (LoRA), from a YAML config.

Several processes / GPUs: run the same command under accelerate, e.g.
``accelerate launch --num_processes 8 -m editrl.cli grpo --config configs/grpo/flux-kontext.yaml``
(``--config_file configs/accelerate/<fsdp|zero2>.yaml`` for the big models).
"""

from __future__ import annotations

import argparse
import json

from ..config import config_help
from ..rl.config import DPOConfig, GRPOConfig, NFTConfig  # torch-free: the trainers load in run()

CONFIGS = {"grpo": GRPOConfig, "dpo": DPOConfig, "nft": NFTConfig}

ALGORITHMS = {
    "grpo": ("Flow-GRPO: SDE rollouts in groups, group-normalised advantages, PPO-clipped update with a KL to the base model",
             "configs/grpo/world.yaml"),
    "dpo": ("flow Diffusion-DPO on best-vs-worst pairs scored by the reward (offline or online reference)",
            "configs/dpo/world.yaml"),
    "nft": ("DiffusionNFT: deterministic rollouts of an old policy, positive/negative implicit policies on re-noised "
            "samples weighted by the reward's advantage, CFG-free", "configs/nft/world.yaml"),
}


class ConfigHelp(argparse.Action):
    """``--help`` that lists every config key with its default and help, read off the config dataclass."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="show this help, with every config key, and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        parser.epilog = "config keys (YAML or --set KEY=VALUE):\n" + config_help(CONFIGS[parser.algorithm])
        parser.print_help()
        parser.exit()


def register(subparsers) -> None:
    for name, (what, example) in ALGORITHMS.items():
        parser = subparsers.add_parser(
            name, help=f"post-train an editor with {name.upper()} (LoRA)", add_help=False,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            description=f"{what}. Writes config.yaml (the resolved config), log.jsonl (one JSON line per iteration), "
            "samples/step-N.png (per evaluation, the first 8 held-out prompts: source, instruction, sample with its scores), "
            "curves.png, checkpoints/step-N/ (LoRA in diffusers format + "
            "trainer state) and lora/ (the latest checkpoint's; load it with `editrl best-of-n --lora`) under the "
            "config's output_dir, and prints the last log record as JSON.",
            epilog=f"""examples:
  editrl {name} --config {example}
  editrl {name} --config {example} --set learning_rate=1e-4 --set output_dir=runs/try
  editrl {name} --config {example} --resume            # continue from the newest checkpoint""",
        )
        parser.algorithm = name
        parser.add_argument("-h", "--help", action=ConfigHelp)
        parser.add_argument("--config", default=None, help=f"YAML config (every key is documented in the config dataclass), e.g. {example}; "
                            "default: the world defaults")
        parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                            help="override a config key (value parsed as YAML; default: none), e.g. --set learning_rate=1e-4 "
                            "--set 'rewards={world: 1.0, oracle: 0.5}'; repeatable")
        parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                            help="continue from the newest checkpoint in output_dir, or from CHECKPOINT (a checkpoints/step-N "
                            "folder); the config may differ only in logging keys and num_iterations")
        parser.set_defaults(func=run, algorithm=name)


def run(args) -> int:
    from .. import rl

    config = rl.load_config(CONFIGS[args.algorithm], args.config, args.overrides)
    config.check_before_loading(args.resume)  # names, files, output_dir: before any model loads
    trainer_cls = getattr(rl, f"{args.algorithm.upper()}Trainer")
    trainer = trainer_cls(config)
    record = trainer.train(resume=args.resume)
    if trainer.accelerator.is_main_process:
        print(json.dumps(record))
    return 0
