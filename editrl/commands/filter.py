"""``editrl filter``: keep the best rows of an editing dataset by reward (see ``editrl.filter``)."""

from __future__ import annotations

import argparse
import json

from ..argtypes import DeprecatedFlag, finite_float, fraction, nonnegative_int, positive_int, select_rule


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "filter",
        help="score every (source, instruction, edit) row of a dataset and keep the best",
        description="Score a JSONL/Parquet table (or a folder of them) with a reward, resumably, and keep the top "
        "rows. Shard across processes with `accelerate launch --multi_gpu --num_processes N -m editrl.cli filter ...` "
        "(CPU processes where there is no CUDA).",
        epilog="""examples:
  editrl filter --data edits.jsonl --out filtered --top-fraction 0.2      # best 20% by fused score
  editrl filter --data edits.parquet --out filtered --top-k 1000 --select instruction_following --min-vq 0.5""",
    )
    p.add_argument("--data", required=True, help="JSONL or Parquet table, or a folder of them")
    p.add_argument("--out", required=True, help="output folder: kept.jsonl|parquet, scores.parquet, histogram.png, summary.json")
    p.add_argument("--reward", default="world",
                   help="reward: 'world' (shipped tiny model), 'oracle', http(s)://host:port of `editrl reward serve`, openai:URL#model=NAME (a generative judge), "
                   "or an EditReward folder / Hub id (default: world)")
    p.add_argument("--model", dest="reward", action=DeprecatedFlag, new="--reward")
    cut = p.add_mutually_exclusive_group()
    cut.add_argument("--top-k", type=nonnegative_int, default=None, help="keep the best K rows")
    cut.add_argument("--top-fraction", type=fraction, default=None, help="keep the best ceil(F * rows) rows")
    p.add_argument("--select", default="fused", type=select_rule, choices=["fused", "instruction_following", "visual_quality"],
                   help="score to rank by: the fused score or one dimension's mu (default: fused)")
    p.add_argument("--by", dest="select", type=select_rule, action=DeprecatedFlag, new="--select")
    p.add_argument("--min-if", type=finite_float, default=None, help="drop rows whose instruction-following mu is below this")
    p.add_argument("--min-vq", type=finite_float, default=None, help="drop rows whose visual-quality mu is below this")
    p.add_argument("--batch-size", type=positive_int, default=8, help="edits per reward call (default: 8)")
    p.add_argument("--chunk-size", type=positive_int, default=256, help="rows per checkpoint (default: 256)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..reward.specs import build_reward, check_reward_spec

    check_reward_spec(args.reward, "--reward")  # before torch is imported
    from ..filter import FilterConfig, check_inputs, filter_dataset, process_state

    config = FilterConfig(
        data=args.data, out=args.out, by=args.select, top_k=args.top_k, top_fraction=args.top_fraction,
        min_if=args.min_if, min_vq=args.min_vq, batch_size=args.batch_size, chunk_size=args.chunk_size,
    )
    check_inputs(config)  # before the model loads
    summary = filter_dataset(build_reward(args.reward, device=process_state().device), config, reward_name=args.reward)
    if summary is not None:
        print(json.dumps(summary))
    return 0
