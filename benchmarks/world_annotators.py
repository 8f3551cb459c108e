"""Agreement of the world's simulated annotators (Krippendorff's alpha) and the oracle on corruptions.

Prints one JSON object per line:
- {"figure": "annotator_alpha", ...}: three-annotator alpha (interval and ordinal) per dimension on the
  candidate mix of ``editrl world make-data`` (paper: 0.67 instruction following, 0.60 visual quality);
- {"figure": "oracle_by_corruption", ...}: mean oracle values per candidate "model" (corruption).

    python benchmarks/world_annotators.py --n 400 --seed 0
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np

from editrl.world import AnnotatorPanel, Oracle, krippendorff_alpha, make_examples
from editrl.world.datasets import corrupted_candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400, help="world examples (2 candidates each)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    oracle, values, names = Oracle(), [], []
    for i, example in enumerate(make_examples(args.n, args.seed, "train")):
        candidates = corrupted_candidates(example, 2, i)
        values += oracle.evaluate([example.source] * 2, [example.instruction] * 2, [im for _, im in candidates])
        names += [name for name, _ in candidates]
    values = np.array(values)
    _, ratings = AnnotatorPanel(seed=args.seed).label(values, np.random.default_rng(args.seed))
    record = {"figure": "annotator_alpha", "items": len(values), "annotators_per_item": 3}
    for d, dim in enumerate(("instruction_following", "visual_quality")):
        for level in ("interval", "ordinal"):
            record[f"alpha_{level}_{dim}"] = round(krippendorff_alpha(ratings[:, :, d].astype(float), level), 4)
    print(json.dumps(record))
    by_name = defaultdict(list)
    for name, value in zip(names, values):
        by_name[name].append(value)
    print(json.dumps({"figure": "oracle_by_corruption", "mean_if_vq": {
        k: [round(float(x), 3) for x in np.mean(v, 0)] + [len(v)] for k, v in sorted(by_name.items())}}))


if __name__ == "__main__":
    main()
