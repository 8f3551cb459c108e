"""Oracle figures of the world editor: one sample vs the oracle's best of k, on held-out world examples.

The editor is loaded exactly as users get it (``load_editor("world")``, or ``--model FOLDER``).
Prints one JSON object: oracle_1_sample, oracle_best_of_k, oracle_worst_of_k (mean of the two oracle
dimensions), if/vq of one sample, and the share of examples with an instruction-following sample.

    python benchmarks/world_editor.py --n 50 --k 8
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from editrl.sampler.editors import load_editor
from editrl.world.train_editor import evaluate_editor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="pipeline folder (default: the shipped world editor)")
    parser.add_argument("--n", type=int, default=50, help="held-out world examples")
    parser.add_argument("--k", type=int, default=8, help="samples per example")
    parser.add_argument("--steps", type=int, default=None, help="Euler steps (default: the editor's)")
    parser.add_argument("--guidance", type=float, default=None, help="guidance value (default: the editor's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    start = time.perf_counter()
    editor = load_editor("world", model=args.model, **({"default_guidance": args.guidance} if args.guidance is not None else {}))
    load_s = time.perf_counter() - start
    record = {"figure": "world_editor_oracle", "model": args.model or "shipped", "guidance": editor.default_guidance,
              "load_s": round(load_s, 2)}
    record.update(evaluate_editor(editor, n=args.n, k=args.k, seed=args.seed, num_steps=args.steps))
    print(json.dumps(record))


if __name__ == "__main__":
    main()
