"""``editrl reward train``: train an EditReward model from a YAML config.

Multi-GPU / DeepSpeed / FSDP: run the same command under accelerate, e.g.
``accelerate launch --config_file configs/accelerate/zero2.yaml -m editrl.cli reward train --config ...``.
"""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train an EditReward model on preference pairs (single process or under accelerate launch)",
        description="Train an EditReward model as configured in a YAML file (see configs/reward/). Writes "
        "checkpoints, metrics.jsonl and the final model (final/) under the config's output_dir and prints a "
        "JSON summary.",
        epilog="""examples:
  editrl reward train --config configs/reward/tiny.yaml
  editrl reward train --config configs/reward/tiny.yaml --set learning_rate=1e-3 --resume""",
    )
    parser.add_argument("--config", required=True, help="YAML config, e.g. configs/reward/tiny.yaml")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest complete checkpoint in output_dir/checkpoints")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (dotted for sections, value parsed as YAML), e.g. "
                        "--set learning_rate=1e-5 --set model.fusion=min; repeatable")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad data row (data.strict=true)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ...files import check_input

    check_input(args.config, "--config", folder_ok=False)  # before torch is imported
    from ...reward.train import train
    from ...reward.train_config import load_config

    overrides = list(args.overrides) + (["data.strict=true"] if args.strict else [])
    config = load_config(args.config, overrides)
    config.check_before_loading()
    summary = train(config, resume=args.resume)
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(json.dumps(summary))
    return 0
