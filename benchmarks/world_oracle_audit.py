"""Attack the world oracle: score clean wrong outcomes beside the exact targets (one JSON line per category).

For ``--n`` held-out world examples (test split) every category of ``editrl.world.audit`` that applies is
rendered cleanly and scored by the oracle on instruction following. Printed per category: how many
cases, the mean (and the lowest and highest) instruction-following score, and the share rated Likert 4
(the goal: 0 for every wrong category) and Likert 1-2; the exact targets (goal: 100% Likert 4) and the targets with quality-only
damage (noise, blur, JPEG, a 1-pixel shift) are printed beside them. The held-out categories (never used to
train any world model) are drawn from a generator of their own, so the training categories' cases are the same
as before they existed; their rows say ``"held_out": true`` and the summary gives their worst share apart.

    python benchmarks/world_oracle_audit.py --n 300
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict

import numpy as np

from editrl.world.audit import AUDIT_CATEGORIES, CATEGORIES, HELD_OUT_CATEGORIES, wrong_outcome
from editrl.world.datasets import _quality
from editrl.world.examples import make_examples
from editrl.world.oracle import Oracle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="held-out examples")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the examples and of the wrong outcomes")
    args = parser.parse_args()
    oracle = Oracle()
    rng, held_out_rng = random.Random(args.seed), random.Random(f"{args.seed}-held-out")
    cases = defaultdict(list)  # category -> [(source, instruction, image)]
    for example in make_examples(args.n, seed=args.seed, split="test"):
        cases["target"].append((example, example.target))
        for quality in ("noise", "blur", "jpeg", "shift"):
            cases[f"target+{quality}"].append((example, _quality(example.target, quality, rng)))
        for category in AUDIT_CATEGORIES:
            image = wrong_outcome(example, category, held_out_rng if category in HELD_OUT_CATEGORIES else rng)
            if image is not None:
                cases[category].append((example, image))
    summary = {}
    for category, items in cases.items():
        values = np.array(oracle.evaluate([e.source for e, _ in items], [e.instruction for e, _ in items], [im for _, im in items]))
        likert = oracle.to_likert(__import__("torch").tensor(values)).numpy()
        row = {"category": category, "n": len(items), "mean_if": round(float(values[:, 0].mean()), 4),
               "likert4_share": round(float((likert[:, 0] == 4).mean()), 4),
               "likert12_share": round(float((likert[:, 0] <= 2).mean()), 4), "mean_vq": round(float(values[:, 1].mean()), 4),
               "min_if": round(float(values[:, 0].min()), 4), "max_if": round(float(values[:, 0].max()), 4),
               "held_out": category in HELD_OUT_CATEGORIES}
        summary[category] = row
        print(json.dumps(row))
    wrong = [summary[c] for c in CATEGORIES if c in summary]
    held_out = [summary[c] for c in HELD_OUT_CATEGORIES if c in summary]
    print(json.dumps({"summary": True, "targets_likert4": summary["target"]["likert4_share"],
                      "targets_min_if": summary["target"]["min_if"],
                      "worst_wrong_category_likert4": max(r["likert4_share"] for r in wrong),
                      "categories": len(wrong), "wrong_cases": sum(r["n"] for r in wrong),
                      "worst_held_out_category_likert4": max(r["likert4_share"] for r in held_out),
                      "held_out_max_if": max(r["max_if"] for r in held_out),
                      "held_out_categories": len(held_out), "held_out_cases": sum(r["n"] for r in held_out)}))


if __name__ == "__main__":
    main()
