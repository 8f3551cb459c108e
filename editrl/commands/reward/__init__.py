"""``editrl reward {train,score,eval,serve}``: each sub-command lives in its own module here and
exposes ``register(subparsers)`` like the top-level command modules."""

from __future__ import annotations

import importlib
import pkgutil


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "reward", help="train, score with, evaluate and serve EditReward models",
        epilog="""examples:
  editrl reward score --data edits.jsonl --out scores.parquet
  editrl reward eval --bench data/world --format editreward-bench
  editrl reward serve --reward world --port 8765""",
    )
    reward_subparsers = parser.add_subparsers(dest="reward_command", metavar="REWARD_COMMAND")
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{info.name}").register(reward_subparsers)
