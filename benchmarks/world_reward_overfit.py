"""Can a reward recipe fit a handful of its own training pairs? A check that the pipeline learns at all.

When a reward's training loss sits at ln 2 on the full data (as the world reward fine-tuned from the
world VLM did), two causes look alike: a broken pipeline (the edit never reaches the reward token, a
gradient cut, a frozen head) or a model that cannot find the rule that generalises. A pipeline that
works drives the loss on a few repeated pairs well below ln 2 within tens of steps; a broken one cannot.

Prints one JSON object per logged step and a final summary::

    OMP_NUM_THREADS=1 python benchmarks/world_reward_overfit.py --config configs/reward/world.yaml --pairs 32 --steps 60
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from editrl.reward.data import load_preference_pairs
from editrl.reward.train import PairDataset, batch_loss, build_reward_model, collate_pairs, prepare_for_training
from editrl.reward.train_config import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/reward/world.yaml", help="a reward training config (its model, loss and data)")
    parser.add_argument("--pairs", type=int, default=32, help="strict training pairs to fit, in batches of 16")
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps (AdamW, the config's learning rate, no schedule)")
    parser.add_argument("--set", action="append", default=[], help="config override key=value (repeatable)")
    args = parser.parse_args()
    torch.manual_seed(0)
    config = load_config(args.config, args.set)
    model = build_reward_model(config.model)
    prepare_for_training(model, config)
    pairs, _ = load_preference_pairs(config.data.train, config.data.ties, config.data.score_range, config.data.strict, False)
    pairs = [p for p in pairs if p.label != 0.5][: args.pairs]
    dataset = PairDataset(pairs)
    batches = [collate_pairs([dataset[i] for i in range(b, min(b + 16, len(pairs)))]) for b in range(0, len(pairs), 16)]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate, weight_decay=0.0)
    start, losses = time.perf_counter(), []
    for step in range(args.steps):
        batch = batches[step % len(batches)]
        loss, chosen, rejected = batch_loss(model, model.fuse, batch, config)
        loss = loss.mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        losses.append(loss.item())
        if step % 10 == 0 or step == args.steps - 1:
            right = (model.fuse(chosen)[:, 0] > model.fuse(rejected)[:, 0]).float() == batch.labels
            print(json.dumps({"step": step, "loss": round(loss.item(), 4), "batch_accuracy": round(right.float().mean().item(), 4),
                              "elapsed_s": round(time.perf_counter() - start, 1)}), flush=True)
    last = losses[-len(batches):]
    print(json.dumps({"config": args.config, "overrides": args.set, "pairs": len(pairs), "steps": args.steps,
                      "first_loss": round(losses[0], 4), "final_loss": round(sum(last) / len(last), 4),
                      "ln2": round(math.log(2), 4), "learns": sum(last) / len(last) < 0.6}))


if __name__ == "__main__":
    main()
