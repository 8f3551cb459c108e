"""``editrl reward eval``: a reward's accuracy on EditReward-Bench, GenAI-Bench/AURORA pairs or ImagenHub ratings."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from .score import add_model_arguments, check_model_arguments, reward_from_args

EPILOG = """examples:
  editrl world make-bench --out data/world && editrl reward eval --bench data/world --format editreward-bench
  editrl reward eval --bench genai_bench_edit.parquet --format pairs --reward TIGER-Lab/EditReward-Qwen2.5-VL-7B

Reading the numbers: accuracies are fractions of pairs (or K-way groups) ordered as the human labels
order them. "chance" is what a reward that ignores the images gets on the same rows (random scores,
tie threshold calibrated the same way): 1/2 for untied pairs, about 1/K! for K-way groups. "ceiling",
where the bench carries exact values (oracle_1/oracle_2 columns, as the world's benches do), is what
the exact truth gets against these (noisy) labels: no reward can be expected to beat it."""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a reward on a benchmark; prints a table and one JSON object of metrics",
        description="Scores every edit of the benchmark once and prints the paper's metrics: "
        "editreward-bench: tie-calibrated pairwise and K-way group accuracy for K=2,3,4 and overall; pairs: "
        "accuracy with tie calibration and without ties; pointwise: Spearman per editing model, averaged. "
        "A rounded table (with chance and ceiling where known) goes to stderr, the JSON object to stdout. "
        "Per-item predictions are written as JSONL.",
        epilog=EPILOG,
    )
    p.add_argument("--bench", required=True, help="benchmark .parquet/.jsonl file or folder of them")
    p.add_argument("--format", required=True, choices=("editreward-bench", "pairs", "pointwise"), help="schema of the benchmark rows")
    p.add_argument("--predictions", default=None,
                   help="per-item predictions JSONL (default: next to the bench, <bench>.<model>.predictions.jsonl, "
                   "so that evaluations of different rewards keep their own file)")
    p.add_argument("--group-sep", default="_", help="editreward-bench: a group id is the row id up to its last separator")
    add_model_arguments(p)
    p.set_defaults(func=run)


def default_predictions(bench: str, model: str) -> Path:
    """``<bench without suffix>.<model slug>.predictions.jsonl`` beside the bench file or folder."""
    path = Path(bench)
    stem = path.name.split(".")[0] if path.is_file() else path.name
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", model.rstrip("/")).strip("-.") or "reward"
    return path.parent / f"{stem}.{slug}.predictions.jsonl"


def format_table(result: dict) -> str:
    """The metrics as aligned rows (3 decimals): one line per metric, chance and ceiling beside it."""
    chance, ceiling = result.get("chance", {}), result.get("ceiling", {})
    rows = []

    def walk(values: dict, refs: tuple[dict, dict], prefix: str) -> None:
        for key, value in values.items():
            if key in ("format", "chance", "ceiling", "predictions", "epsilon"):
                continue
            name = f"{prefix}{key}"
            sub = tuple(ref.get(key, {}) if isinstance(ref, dict) else {} for ref in refs)
            if isinstance(value, dict):
                walk(value, sub, f"{name} ")
            elif isinstance(value, float) or value is None:
                rows.append((name, value, *(ref if isinstance(ref, float) else None for ref in sub)))
            else:
                rows.append((name, value, None, None))

    walk(result, (chance, ceiling), "")
    cell = lambda v: "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    width = max(len(r[0]) for r in rows)
    lines = [f"{'metric':<{width}}  {'reward':>8}  {'chance':>8}  {'ceiling':>8}"]
    lines += [f"{name:<{width}}  {cell(v):>8}  {cell(c):>8}  {cell(e):>8}" for name, v, c, e in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ...files import check_input, check_output

    check_input(args.bench, "--bench")  # before torch is imported
    predictions = args.predictions or default_predictions(args.bench, args.reward)
    check_output(predictions, "--predictions")
    check_model_arguments(args)
    from ...reward.eval import evaluate

    result = evaluate(reward_from_args(args), args.bench, args.format, predictions, batch_size=args.batch_size, group_sep=args.group_sep)
    print(format_table(result), file=sys.stderr)
    print(json.dumps(result))
    return 0
