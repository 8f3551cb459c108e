"""``editrl reward eval``: a reward's accuracy on EditReward-Bench, GenAI-Bench/AURORA pairs or ImagenHub ratings."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .score import add_model_arguments, reward_from_args


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a reward on a benchmark; prints one JSON object of metrics",
        description="Scores every edit of the benchmark once and prints the paper's metrics as one JSON object: "
        "editreward-bench: tie-calibrated pairwise and K-way group accuracy for K=2,3,4 and overall; pairs: "
        "accuracy with tie calibration and without ties; pointwise: Spearman per editing model, averaged. "
        "Per-item predictions are written as JSONL.",
    )
    p.add_argument("--bench", required=True, help="benchmark .parquet/.jsonl file or folder of them")
    p.add_argument("--format", required=True, choices=("editreward-bench", "pairs", "pointwise"), help="schema of the benchmark rows")
    p.add_argument("--predictions", default=None,
                   help="per-item predictions JSONL (default: <bench name>.predictions.jsonl in the current folder)")
    p.add_argument("--group-sep", default="_", help="editreward-bench: a group id is the row id up to its last separator (default: _)")
    add_model_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...errors import EditRLError
    from ...reward.eval import evaluate
    from ...reward.score import check_output

    if not Path(args.bench).exists():
        raise EditRLError(f"--bench {args.bench}: no such file or folder")
    predictions = args.predictions or f"{Path(args.bench).name.split('.')[0]}.predictions.jsonl"
    check_output(predictions, "--predictions")  # before the model loads
    result = evaluate(reward_from_args(args), args.bench, args.format, predictions, batch_size=args.batch_size, group_sep=args.group_sep)
    print(json.dumps(result))
    return 0
