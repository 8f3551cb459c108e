"""The signal a group of RL rollouts carries about exact edits, per sampler and reward. One JSON object per line.

GRPO and NFT learn only from differences *within* a group of samples of one (source, instruction). This measures,
on world training prompts (``--split test``: held-out ones), for each sampler the trainers use (``ode``: the Euler ODE from k seeds, as NFT's
rollouts and best-of-N; ``sde``: flow_grpo's SDE at ``--noise-level``, as GRPO's) and each reward:

- ``exact_edit`` / ``lost_object``: the share of samples exactly right / missing an object (the oracle's parsed
  scenes, no scoring rule);
- ``mixed_groups``: the share of groups holding both an exact and a wrong sample: the only groups from which a
  trainer can learn exactness;
- ``auc_exact``: within those groups, how often the reward ranks an exact sample above a wrong one (0.5 = chance:
  the group's advantages say nothing about exactness); ``auc_kept_objects`` likewise for a sample that kept every
  object over one that lost one;
- ``group_reward_std``: the reward's mean within-group std (what the trainers log).

A reward of several dimensions (EditReward) is also measured per dimension, as ``spec:dimension`` (its mu).

``--checkpoint`` measures a trained policy (an RL run's ``checkpoints/step-N``, its EMA weights as its evaluation uses
them) on the same prompts and seeds: did training change exact edits on the prompts it trains on?

    python benchmarks/rl_signal.py --rewards world oracle-exact --prompts 64 --k 8
    python benchmarks/rl_signal.py --rewards oracle-exact --checkpoint runs/grpo-world/checkpoints/step-000060
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "benchmarks"))

from world_vlm_probe import auc  # noqa: E402

from editrl.reward.specs import build_reward, check_reward_spec  # noqa: E402
from editrl.rl import GRPOConfig, GRPOTrainer, load_config  # noqa: E402
from editrl.rl.lora import load_lora_state  # noqa: E402
from editrl.rl.sde import SDESampler  # noqa: E402
from editrl.rl.trainer import load_prompts  # noqa: E402


def within_group_auc(values: np.ndarray, positive: np.ndarray) -> list[float]:
    """Per group (rows of ``values``) holding both kinds: P(a positive sample outscores a negative one), ties 1/2."""
    return [auc(v[p], v[~p]) for v, p in zip(values, positive.astype(bool)) if p.any() and (~p).any()]


def reward_values(spec: str, out, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """The fused score as ``spec``, and each dimension's mu as ``spec:dimension`` where there are several (which
    dimension alone would carry the signal: a trainer can be given one through a reward of its own)."""
    values = {spec: out.score.float().numpy().reshape(shape)}
    if out.mu.shape[1] > 1:
        values.update({f"{spec}:{name}": out.mu[:, i].float().numpy().reshape(shape) for i, name in enumerate(out.dimensions)})
    return values


def signal(rewards: dict[str, np.ndarray], exact: np.ndarray, lost: np.ndarray) -> dict:
    """The figures of the module docstring from (groups, k) arrays."""
    record = {"exact_edit": float(exact.mean()), "lost_object": float(lost.mean()),
              "mixed_groups": float(((exact.sum(1) > 0) & (exact.sum(1) < exact.shape[1])).mean()),
              "groups_with_an_exact_sample": float((exact.sum(1) > 0).mean())}
    for name, values in rewards.items():
        exact_auc, kept_auc = within_group_auc(values, exact), within_group_auc(values, 1 - lost)
        record[name] = {"auc_exact": float(np.mean(exact_auc)) if exact_auc else None, "groups": len(exact_auc),
                        "auc_kept_objects": float(np.mean(kept_auc)) if kept_auc else None,
                        "group_reward_std": float(values.std(1).mean()),
                        "top_pick_exact": float(exact[np.arange(len(values)), values.argmax(1)].mean())}
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rewards", nargs="+", default=["world", "oracle-exact"], help="reward specs to measure")
    parser.add_argument("--prompts", type=int, default=64, help="training prompts (groups)")
    parser.add_argument("--k", type=int, default=8, help="samples per group")
    parser.add_argument("--noise-level", type=float, nargs="+", default=[0.7], help="SDE noise levels (GRPO's a)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="configs/grpo/world.yaml override (e.g. sde_window_size=2)")
    parser.add_argument("--split", default="train", choices=["train", "test"],
                        help="world prompts to draw the groups from (train: what RL trains on)")
    parser.add_argument("--checkpoint", default=None, help="an RL checkpoint folder (or its trainer_state.pt) to load")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for spec in args.rewards:
        check_reward_spec(spec, "--rewards")
    checkpoint = None
    if args.checkpoint:
        checkpoint = Path(args.checkpoint) / "trainer_state.pt" if Path(args.checkpoint).is_dir() else Path(args.checkpoint)
        if not checkpoint.is_file():
            raise SystemExit(f"--checkpoint {args.checkpoint}: no trainer_state.pt there (expected checkpoints/step-N of an RL run)")
    torch.set_grad_enabled(False)
    from editrl.world import Oracle

    oracle = Oracle()
    rewards = {spec: build_reward(spec) for spec in args.rewards}
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"group_size={args.k}", f"groups_per_step={args.prompts}", f"batch_size={args.k * 4}",
                     f"seed={args.seed}", f"output_dir={tmp}/run", "eval_prompts=4"] + args.set
        config = load_config(GRPOConfig, ROOT / "configs" / "grpo" / "world.yaml", overrides)
        if args.prompts > config.world_train_examples:
            raise SystemExit(f"--prompts {args.prompts}: at most world_train_examples={config.world_train_examples} "
                             "(more would repeat groups); raise it with --set world_train_examples=N")
        trainer = GRPOTrainer(config, reward=rewards[args.rewards[0]])
        if args.split == "test":  # the trainer's own draw, from held-out prompts
            trainer.train_prompts = load_prompts("world", config.world_train_examples, "test", args.seed, trainer.editor.resolution)
        if checkpoint:
            state = torch.load(checkpoint, map_location="cpu", weights_only=False)
            saved = {k: state["config"].get(k) for k in ("editor", "model", "lora_rank", "lora_alpha", "lora_target_modules")}
            if saved != {k: getattr(config, k) for k in saved}:
                raise SystemExit(f"--checkpoint {args.checkpoint}: trained with {saved}, not this config's editor and "
                                  "LoRA (pass them with --set)")
            # the EMA weights, as the run's evaluation and its saved adapter use them
            load_lora_state(trainer.transformer, state["ema"]["shadow"] if state.get("ema") else state["lora"])
        prompts = trainer.step_prompts(0)
        cond = trainer.encode(prompts).repeat_interleave(args.k)  # the step's groups (``step_groups``), drawn once
        sigmas = trainer.editor.sigmas(config.num_steps)
        seeds = trainer.sample_seeds(0, len(cond))
        sources = [p[0] for p in prompts for _ in range(args.k)]
        instructions = [p[1] for p in prompts for _ in range(args.k)]
        samplers = {"ode": 0.0, **{f"sde_{a}": a for a in args.noise_level}}
        for name, level in samplers.items():  # GRPO's own SDE: its type and window (--set sde_window_size=...)
            sde = SDESampler(level, config.sde_type, trainer.sde_steps(0)) if level > 0 else None
            _, images = trainer.sample(cond, seeds, sigmas, sde=sde)
            measures = oracle.measures(sources, instructions, images)
            shape = (len(prompts), args.k)
            values = {}
            for spec, r in rewards.items():
                values.update(reward_values(spec, r.score(sources, instructions, images), shape))
            print(json.dumps({"benchmark": "rl_signal", "sampler": name, "noise_level": level, "prompts": len(prompts),
                              "k": args.k, "checkpoint": args.checkpoint, "num_steps": config.num_steps, "seed": args.seed,
                              "split": args.split, "set": args.set,
                              **signal(values, measures["exact_edit"].numpy().reshape(shape),
                                       measures["lost_object"].numpy().reshape(shape))}), flush=True)


if __name__ == "__main__":
    main()
