"""Can an RL trainer fit a handful of prompts? The sanity check before any claim about generalisation. One JSON
object per algorithm.

Prompts: the first ``--prompts`` world training prompts (of ``--candidates``) on which the shipped editor is exactly
right on some but not most of 8 ODE seeds (1-3 of seeds 0-7): groups there carry signal, and there is room to gain.
Each algorithm trains on those prompts alone (its world config, ``--set`` overrides) against ``--reward`` (default
``oracle-exact``: 1 for an exactly right edit) and is evaluated on the same prompts, 8 seeds each (the trainer's
evaluation: EMA weights, ODE, seed = row: prompt j on seeds 8j..8j+7, not the seeds it was chosen on), so
``exact_edit_curve`` says whether training moves exactness where it trained. A trainer that cannot raise it here,
with a perfect reward, will not raise it on held-out prompts.

    python benchmarks/rl_overfit.py --algorithms grpo nft
    python benchmarks/rl_overfit.py --algorithms grpo --set learning_rate=1e-2 --set kl_beta=0
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from editrl.reward.specs import build_reward, check_reward_spec  # noqa: E402
from editrl.rl import GRPOConfig, GRPOTrainer, NFTConfig, NFTTrainer, load_config  # noqa: E402
from editrl.rl.trainer import load_prompts  # noqa: E402

TRAINERS = {"grpo": (GRPOConfig, GRPOTrainer), "nft": (NFTConfig, NFTTrainer)}
SEEDS = 8


def mixed_prompts(editor, oracle, candidates: list, n: int) -> list[int]:
    """Indices of the first ``n`` candidates exactly right on 1-3 of ``SEEDS`` ODE seeds."""
    chosen = []
    with torch.no_grad():
        for i, (source, instruction) in enumerate(candidates):
            images = editor.sample([source] * SEEDS, [instruction] * SEEDS, seeds=list(range(SEEDS))).images
            if 1 <= int(oracle.measures([source] * SEEDS, [instruction] * SEEDS, images)["exact_edit"].sum()) <= 3:
                chosen.append(i)
            if len(chosen) == n:
                return chosen
    raise SystemExit(f"only {len(chosen)} of {len(candidates)} candidates are mixed: raise --candidates")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithms", nargs="+", default=["grpo", "nft"], choices=sorted(TRAINERS))
    parser.add_argument("--reward", default="oracle-exact", help="reward spec (default: the verifiable oracle-exact)")
    parser.add_argument("--prompts", type=int, default=6, help="training prompts")
    parser.add_argument("--candidates", type=int, default=48, help="world training prompts searched for mixed ones")
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.prompts < 1 or args.candidates < args.prompts or args.iterations < 1:
        parser.error("expected --prompts >= 1, --candidates >= --prompts and --iterations >= 1")
    check_reward_spec(args.reward, "--reward")
    from editrl.sampler.editors import load_editor
    from editrl.world import Oracle

    oracle, reward = Oracle(), build_reward(args.reward)
    editor = load_editor("world", device="cpu")
    candidates = load_prompts("world", args.candidates, "train", args.seed, editor.resolution)
    ids = mixed_prompts(editor, oracle, candidates, args.prompts)
    train = [candidates[i] for i in ids]
    for name in args.algorithms:
        cls, trainer_cls = TRAINERS[name]
        with tempfile.TemporaryDirectory() as tmp:
            overrides = [f"output_dir={tmp}/run", f"num_iterations={args.iterations}", f"eval_every={args.eval_every}",
                         f"eval_prompts={len(train) * SEEDS}", "judge=oracle", f"seed={args.seed}", *args.set]
            config = load_config(cls, ROOT / "configs" / name / "world.yaml", overrides)
            trainer = trainer_cls(config, editor=load_editor("world", device="cpu"), reward=reward, judge=oracle,
                                  train_prompts=train, eval_prompts=[p for p in train for _ in range(SEEDS)])
            start = time.time()
            trainer.train()
            log = [json.loads(line) for line in trainer.log_path.read_text().splitlines()]
        judged = [r for r in log if "exact_edit" in r]
        print(json.dumps({
            "benchmark": "rl_overfit", "algorithm": name, "reward": args.reward, "set": args.set,
            "prompt_ids": ids, "instructions": [p[1] for p in train], "seeds_per_prompt": SEEDS,
            "images": log[-1]["images"], "seconds": round(time.time() - start, 1),
            "exact_edit_curve": [[r["step"], r["exact_edit"]] for r in judged],
            "lost_object_curve": [[r["step"], r["lost_object"]] for r in judged],
            "judge_curve": [[r["step"], round(r["judge_score"], 4)] for r in judged],
        }), flush=True)


if __name__ == "__main__":
    main()
