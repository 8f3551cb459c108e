"""``editrl reward score``: score a table of (source, instruction, edit) rows into a Parquet file, resumably."""

from __future__ import annotations

import argparse
import json

from ...argtypes import DeprecatedFlag, positive_int

DTYPES = ("float32", "bfloat16", "float16")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--reward / --base-model / --device / --dtype, shared with ``editrl reward eval``."""
    parser.add_argument("--model", dest="reward", action=DeprecatedFlag, new="--reward")
    parser.add_argument("--reward", default="world",
                        help="reward: an EditReward folder or Hub id (ours or the official release), 'world' (the "
                        "world's shipped tiny reward), 'oracle', or an http(s) URL of `editrl reward serve` (default: world)")
    parser.add_argument("--base-model", default=None,
                        help="for an official checkpoint folder without editreward_config.json: the backbone id or "
                        "folder (e.g. Qwen/Qwen2.5-VL-7B-Instruct; known for the TIGER-Lab release ids)")
    parser.add_argument("--device", default=None, help="torch device for an EditReward model (default: cuda if available, else cpu)")
    parser.add_argument("--dtype", default=None, choices=DTYPES, help="backbone dtype of an EditReward model (default: as stored)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="edits per forward pass (default: 8)")


def check_model_arguments(args: argparse.Namespace) -> None:
    """--reward and --base-model name something that exists (see ``editrl.reward.specs``), checked before torch
    is imported."""
    from ...files import check_model_source
    from ...reward.specs import check_reward_spec

    check_reward_spec(args.reward, "--reward")
    if args.base_model:
        check_model_source(args.base_model, "--base-model")


def reward_from_args(args: argparse.Namespace):
    """The RewardFunction the model arguments name; a missing shipped world reward is one clear error."""
    import torch

    from ...errors import EditRLError

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.base_model or args.dtype:
        from ...reward import EditReward

        dtype = getattr(torch, args.dtype) if args.dtype else None
        return EditReward.from_pretrained(args.reward, base_model=args.base_model, device=device, dtype=dtype)
    from ...reward.specs import build_reward

    try:
        return build_reward(args.reward, device=device)
    except ImportError as err:
        raise EditRLError(f"--reward {args.reward}: not available in this install ({err}); pass --reward with an EditReward folder or Hub id") from None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "score",
        help="score a JSONL/Parquet table of edits into a Parquet file (resumes after a kill)",
        description="Scores every (source, instruction, edit) row of --data with the reward and writes --out, a "
        "Parquet table with row, id, instruction, score, score_sigma, mu_<dim>, sigma_<dim>. Scored chunks are kept "
        "in <out>.parts/ while running, so a rerun after a kill skips the rows already scored. Columns: source "
        "(or source_image, source_img, ...), instruction (or prompt), edit (or edited_image, image, ...); image "
        "cells are paths relative to the table, bytes, or {'bytes', 'path'} dicts.",
        epilog="""examples:
  editrl reward score --data edits.jsonl --out scores.parquet                 # the shipped world reward
  editrl reward score --data edits.parquet --out scores.parquet --reward TIGER-Lab/EditReward-Qwen2.5-VL-7B --dtype bfloat16""",
    )
    p.add_argument("--data", required=True, help="a .jsonl or .parquet table, or a folder of them")
    p.add_argument("--out", required=True, help="output .parquet file")
    p.add_argument("--chunk-size", type=positive_int, default=256, help="rows per saved chunk (default: 256)")
    add_model_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...errors import EditRLError
    from ...files import check_input, check_output

    check_output(args.out)  # before any work (and before torch is imported): a folder or an unwritable place is refused now
    check_input(args.data, "--data")
    check_model_arguments(args)
    from ...reward.score import score_table
    from ...tables import read_rows

    if next(read_rows(args.data), None) is None:  # the data path and its first row, before loading a model
        raise EditRLError(f"--data {args.data!r}: the table has no rows; nothing to score")
    reward = reward_from_args(args)
    summary = score_table(reward, lambda: read_rows(args.data), args.out, batch_size=args.batch_size, chunk_size=args.chunk_size)
    print(json.dumps(summary))
    return 0
