"""Best-of-8 ranked by two rewards mixed, from two ``best_of_n.py`` runs on the same candidates.

Does a visual-quality reward beside the description judge close the gap in the oracle's *fused* score? Both
pairs files must come from the same editor, examples and seeds (checked: every candidate's oracle score must
agree); no image is generated again. For each weight w, the best of the first 8 candidates under

- ``log``: first + w * second (the RL configs' ``rewards: {a: 1, b: w}``);
- ``prob``: exp(first) + w * second (the first read as a probability that the edit is exactly right: for a
  log-likelihood judge such as ``world-describe``, candidates all unlikely to be right are then ranked by the
  second reward alone)

is judged by the oracle: fused score, exactly right, lost object. One JSON object per line.

    python benchmarks/best_of_n_mix.py --first docs/best_of_n_describe_pairs.jsonl --second docs/best_of_n_pairs.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

FUSIONS = {"log": lambda a, b, w: a + w * b, "prob": lambda a, b, w: math.exp(a) + w * b}


def newest_records(path: Path) -> dict[int, dict]:
    """The per-pair records of the file's last settings (a pairs file keeps the records of earlier settings)."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not records:
        raise SystemExit(f"{path}: no per-pair records")
    key = records[-1]["settings"]
    return {r["pair"]: r for r in records if r["settings"] == key}


def select(first: dict, second: dict, fusion: str, weight: float, n: int = 8) -> int:
    values = [FUSIONS[fusion](a, b, weight) for a, b in zip(first["reward_values"][:n], second["reward_values"][:n])]
    return int(np.argmax(values))


def summary(first: dict[int, dict], second: dict[int, dict], fusion: str, weight: float) -> dict:
    picks = {p: select(first[p], second[p], fusion, weight) for p in first}
    return {"fusion": fusion, "weight": weight, "n_pairs": len(picks),
            **{name: float(np.mean([first[p][key][i] for p, i in picks.items()]))
               for name, key in (("oracle_score", "oracle"), ("exact_edit", "exact_edit"), ("lost_object", "lost_object"))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", required=True, help="pairs file of the first reward (e.g. world-describe)")
    parser.add_argument("--second", required=True, help="pairs file of the second reward (e.g. the shipped world reward)")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0])
    args = parser.parse_args()
    first, second = newest_records(Path(args.first)), newest_records(Path(args.second))
    if set(first) != set(second):
        raise SystemExit(f"--first and --second cover different pairs ({len(first)} vs {len(second)})")
    for p in first:
        sizes = {len(first[p]["oracle"]), len(second[p]["oracle"])}
        if len(sizes) > 1 or min(sizes) < 8:
            raise SystemExit(f"pair {p}: expected at least 8 candidates in both files, the same number, got {sorted(sizes)}")
        if not np.allclose(first[p]["oracle"], second[p]["oracle"], atol=1e-6):
            raise SystemExit(f"pair {p}: the two files' candidates differ (oracle scores disagree): not the same editor and seeds")
    print(json.dumps({"first": args.first, "first_settings": next(iter(first.values()))["settings"],
                      "second": args.second, "second_settings": next(iter(second.values()))["settings"]}))
    print(json.dumps({"single": {name: float(np.mean([r[key][0] for r in first.values()]))
                                 for name, key in (("oracle_score", "oracle"), ("exact_edit", "exact_edit"), ("lost_object", "lost_object"))}}))
    for fusion in FUSIONS:
        for weight in [0.0, *args.weights]:
            print(json.dumps(summary(first, second, fusion, weight)))


if __name__ == "__main__":
    main()
