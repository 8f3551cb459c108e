"""RL post-training in the world, measured against the exact oracle. One JSON object per line.

Starting from the shipped world editor, each run sees the same number of sampled training images:

- ``grpo_learned``: Flow-GRPO with the learned reward ``--reward`` (default ``world-describe``; ``world`` is the
  shipped world EditReward) and the settings of configs/grpo/world.yaml;
- ``grpo_oracle``: Flow-GRPO with the oracle itself as reward (an upper reference);
- ``grpo_oracle_if``: Flow-GRPO with the oracle's instruction following alone as reward (``oracle-if``);
- ``dpo_learned``: online flow Diffusion-DPO with ``--reward`` (configs/dpo/world.yaml);
- ``grpo_hacking``: GRPO with ``--reward``, no KL, no EMA and a high learning rate — the run
  the reward-hacking monitor should flag;
- ``grpo_fewer_objects``: GRPO against ``editrl.world.hackable.FewerObjectsReward`` (pays for deleted
  objects: the failure the second shipped reward had), no KL, no EMA, ``--hacking-lr``; the monitor
  must flag it from the oracle's lost-object and exact-edit shares;
- ``nft_learned``: DiffusionNFT with ``--reward`` (configs/nft/world.yaml), the same number of
  sampled images per iteration as GRPO.

``--reward oracle-exact`` (1 for an exactly right edit) or ``oracle-exact-kept`` (minus 1 for a lost object) gives
``grpo_learned`` / ``nft_learned`` a verifiable reward: what the trainers make of a clean signal
(``docs/rl_world_verifiable.jsonl``; ``benchmarks/rl_signal.py`` measures how much of it a group carries).

For each: the oracle score of the editor on held-out world prompts (test split, one ODE sample per
prompt, fixed seeds; the trainer's own monitor evaluation) before, after and along training. Next to
them, ``best_of_4``: the oracle score of the *initial* editor when ``--reward`` picks the best
of 4 samples per prompt (the test-time alternative to RL). Goal: GRPO with the learned reward raises
the held-out oracle score at least as much as best-of-4 does. At every evaluation the parsed scene of
each held-out sample is also compared with the exact target scene: ``exact_edit`` is the share equal
to it, ``lost_object`` the share missing the colour of an object of the target. ``paired_change`` gives, per measure, the mean change per held-out
prompt from before to after training (the same prompts and noise) with its standard error, and
``goal_beyond_2se`` the goal judged with it (use ``--eval-prompts 256``: at 64 one prompt is 1.6 points). With both GRPO and NFT
run, ``nft_vs_grpo`` reports the sampled images each needs to reach GRPO's final oracle score (goal:
NFT with at most a quarter of GRPO's).

    python benchmarks/rl_world.py --runs grpo_learned nft_learned --iterations 3 --eval-every 1 --eval-prompts 8   # pilot

    python benchmarks/rl_world.py                       # CPU: ~40 min on one core (4 runs x 60 iterations)
    python benchmarks/rl_world.py --runs grpo_learned dpo_learned --out runs/rl-a   # or split the runs
    python benchmarks/rl_world.py --runs grpo_oracle grpo_hacking --out runs/rl-b   # over two processes

Seconds per iteration and peak memory at FLUX.1-Kontext size are measured by ``benchmarks/gpu_suite.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from editrl.reward.specs import build_reward  # noqa: E402
from editrl.rl import DPOConfig, DPOTrainer, GRPOConfig, GRPOTrainer, NFTConfig, NFTTrainer, load_config  # noqa: E402


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def eval_outcomes(trainer, oracle) -> dict[str, np.ndarray]:
    """Per held-out prompt, the oracle's score, exact edit and lost object of the trainer's evaluation sample
    (``eval_samples``: the same prompts and seeds at every evaluation, so two calls are paired)."""
    sources, instructions, images = trainer.eval_samples()
    measures = oracle.measures(sources, instructions, images)
    return {"oracle": oracle.score(sources, instructions, images).score.numpy(),
            **{name: measures[name].numpy() for name in ("exact_edit", "lost_object")}}


def paired_change(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Mean change per prompt (after - before) and its standard error, per measure: the same prompt and noise
    on both sides, so a change of one prompt in 64 is not mistaken for an effect."""
    out = {}
    for name in before:
        diff = np.asarray(after[name], dtype=np.float64) - np.asarray(before[name], dtype=np.float64)
        se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
        out[name] = {"mean": float(diff.mean()), "se": se, "n": len(diff)}
    return out


def beyond_noise(change: dict[str, dict[str, float]]) -> bool | None:
    """The RL goal with its noise: the oracle and exact edits rise by more than 2 SE, lost objects do not rise by
    more than 2 SE; None with fewer than two prompts (no standard error)."""
    if any(c["n"] < 2 for c in change.values()):
        return None
    def lower(name):
        return change[name]["mean"] - 2 * change[name]["se"]
    return lower("oracle") > 0 and lower("exact_edit") > 0 and lower("lost_object") <= 0


def train_measured(trainer, oracle) -> tuple[dict[str, dict[str, float]], float]:
    """Train, and return the paired change of the held-out measures over training (``eval_outcomes`` before and
    after) and the training's own wall seconds (the two extra evaluations excluded)."""
    before = eval_outcomes(trainer, oracle)
    start = time.time()
    trainer.train()
    seconds = time.time() - start
    return paired_change(before, eval_outcomes(trainer, oracle)), seconds


def images_to_reach(curve: list[tuple[int, float]], target: float, images_per_step: int) -> int | None:
    """Sampled images at the first evaluation whose oracle score reaches ``target`` (None if never)."""
    return next((step * images_per_step for step, score in curve if score >= target), None)


def run_world(args) -> None:
    from editrl.rl.trainer import load_prompts
    from editrl.sampler.best_of_n import best_of_n
    from editrl.sampler.editors import load_editor
    from editrl.world import Oracle
    from editrl.world.hackable import FewerObjectsReward

    oracle = Oracle()
    reward = build_reward(args.reward)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)

    def editor():
        settings = {"default_steps": args.eval_steps} if args.eval_steps else {}
        if args.max_sequence_length:
            settings["max_sequence_length"] = args.max_sequence_length
        return load_editor("world", model=args.editor_model, device="cpu", **settings)

    # the world configs' own settings unless overridden here (every run sees the same number of images)
    given = {"num_iterations": args.iterations, "groups_per_step": args.groups, "group_size": args.k,
             "eval_prompts": args.eval_prompts, "eval_every": args.eval_every}
    common = [f"{k}={v}" for k, v in given.items() if v is not None] + ["judge=oracle", f"seed={args.seed}"]
    if args.groups and args.k:
        common.append(f"batch_size={args.groups * args.k}")
    runs = {
        "grpo_learned": (GRPOConfig, "grpo", {"rewards": json.dumps({args.reward: 1.0})}),
        "grpo_oracle": (GRPOConfig, "grpo", {"rewards": "{oracle: 1.0}"}),
        "grpo_oracle_if": (GRPOConfig, "grpo", {"rewards": "{oracle-if: 1.0}"}),
        "dpo_learned": (DPOConfig, "dpo", {"rewards": json.dumps({args.reward: 1.0})}),
        "grpo_hacking": (GRPOConfig, "grpo", {"rewards": json.dumps({args.reward: 1.0}), "kl_beta": 0, "ema_decay": 0,
                                               "learning_rate": args.hacking_lr, "clip_range": 0.01}),
        "grpo_fewer_objects": (GRPOConfig, "grpo", {"kl_beta": 0, "ema_decay": 0, "learning_rate": args.hacking_lr}),
        "nft_learned": (NFTConfig, "nft", {"rewards": json.dumps({args.reward: 1.0})}),
        "nft_oracle": (NFTConfig, "nft", {"rewards": "{oracle: 1.0}"}),
    }
    trainers = {GRPOConfig: GRPOTrainer, DPOConfig: DPOTrainer, NFTConfig: NFTTrainer}
    eval_prompts = None
    results = {}
    for name in args.runs:
        cls, algo, extra = runs[name]
        overrides = common + args.set + [f"output_dir={out / name}"] + [f"{k}={v}" for k, v in extra.items()]
        config = load_config(cls, ROOT / "configs" / algo / "world.yaml", overrides)
        # the trainer builds the held-out world prompts itself (the same for every run: same seed and count),
        # and then also logs the exact-edit and lost-object shares of its evaluation samples
        run_reward = (build_reward("oracle-if") if name.endswith("oracle_if") else oracle if "oracle" in name
                      else FewerObjectsReward() if name == "grpo_fewer_objects" else reward)
        trainer = trainers[cls](config, editor=editor(), reward=run_reward, judge=oracle)
        eval_prompts = eval_prompts or trainer.eval_prompts
        change, seconds = train_measured(trainer, oracle)
        log = [json.loads(line) for line in trainer.log_path.read_text().splitlines()]
        judged = [(r["step"], r["judge_score"], r["eval_reward"], r["exact_edit"], r["lost_object"])
                  for r in log if "judge_score" in r]
        results[name] = {
            "run": name,
            "seed": args.seed,
            "images": log[-1]["images"],
            "iterations": config.num_iterations,
            "oracle_before": judged[0][1],
            "oracle_after": judged[-1][1],
            "oracle_gain": judged[-1][1] - judged[0][1],
            "oracle_curve": [[s, j] for s, j, *_ in judged],
            "exact_edit_curve": [[s, x] for s, _, _, x, _ in judged],
            "lost_object_curve": [[s, lost] for s, *_, lost in judged],
            "images_per_iteration": log[-1]["images"] // config.num_iterations,
            "train_reward_on_eval_curve": [[s, round(e, 4)] for s, _, e, *_ in judged],
            "train_reward_first_last": [log[1]["reward_mean"], log[-1]["reward_mean"]],
            # the mean over iterations of the reward's within-group std: how much signal a group carries
            "group_reward_std": float(np.mean(spreads)) if (spreads := [r["group_reward_std"] for r in log
                                                                          if "group_reward_std" in r]) else None,
            "curves_png": str(out / name / "curves.png"),
            "hacking_warnings_at": [r["step"] for r in log if "hacking_warning" in r],
            # the goal of a real improvement: the judge rises, exact edits rise, lost objects do not
            "judge_up_exact_up_lost_not_up": judged[-1][1] > judged[0][1] and judged[-1][3] > judged[0][3]
            and judged[-1][4] <= judged[0][4],
            # per held-out prompt, paired: mean and standard error of the change of each measure
            "paired_change": change,
            "goal_beyond_2se": beyond_noise(change),
            "seconds": round(seconds, 1),
            "config": {k: v for k, v in dataclasses.asdict(config).items() if k in (
                "learning_rate", "kl_beta", "ema_decay", "ema_update_every", "num_steps", "group_size", "groups_per_step", "rewards", "beta")},
        }
        emit(results[name])

    for reward_name in ("learned", "oracle"):  # NFT against GRPO with the same reward, at equal sampled images
        if f"grpo_{reward_name}" not in results or f"nft_{reward_name}" not in results:
            continue
        grpo, nft = results[f"grpo_{reward_name}"], results[f"nft_{reward_name}"]
        target = grpo["oracle_after"]
        need = {name: images_to_reach([tuple(p) for p in r["oracle_curve"]], target, r["images_per_iteration"])
                for name, r in (("grpo", grpo), ("nft", nft))}
        emit({
            "summary": "nft_vs_grpo", "reward": reward_name, "images_per_run": [grpo["images"], nft["images"]],
            "grpo_final_oracle": target, "nft_final_oracle": nft["oracle_after"],
            "grpo_images_to_reach": need["grpo"], "nft_images_to_reach": need["nft"],
            "nft_over_grpo_images": need["nft"] / need["grpo"] if need["nft"] and need["grpo"] else None,
            "final_exact_edit": [grpo["exact_edit_curve"][-1][1], nft["exact_edit_curve"][-1][1]],
            "final_lost_object": [grpo["lost_object_curve"][-1][1], nft["lost_object_curve"][-1][1]],
            "seconds": [grpo["seconds"], nft["seconds"]],
            "goal_nft_le_quarter": bool(need["nft"] and need["grpo"] and need["nft"] <= need["grpo"] / 4),
        })

    if args.no_best_of_4:
        return
    # best-of-4 of the initial editor, picked by the learned reward, judged by the oracle
    ed = editor()
    eval_prompts = eval_prompts or load_prompts("world", args.eval_prompts or 32, "test", args.seed, ed.resolution)
    start = time.time()
    single, best = [], []
    for i, (source, instruction) in enumerate(eval_prompts):
        seeds = [i] + [10_000 * j + i for j in range(1, 4)]  # seed i = the single sample the trainers evaluate
        result = best_of_n(ed, reward, source, instruction, n=4, seeds=seeds)
        by_seed = {c.seed: c.image for c in result.candidates}
        single.append(float(oracle.score([source], [instruction], [by_seed[i]]).score[0]))
        best.append(float(oracle.score([source], [instruction], [result.best.image]).score[0]))
    bo4 = {
        "run": "best_of_4", "reward": args.reward, "oracle_single": float(np.mean(single)),
        "oracle_best_of_4": float(np.mean(best)), "oracle_gain": float(np.mean(best) - np.mean(single)),
        "eval_prompts": len(eval_prompts), "seconds": round(time.time() - start, 1),
    }
    emit(bo4)
    if "grpo_learned" in results:
        emit({
            "summary": "rl_world",
            "grpo_learned_oracle_gain": results["grpo_learned"]["oracle_gain"],
            "best_of_4_oracle_gain": bo4["oracle_gain"],
            "goal_grpo_learned_ge_best_of_4": results["grpo_learned"]["oracle_gain"] >= bo4["oracle_gain"],
            "monitor_flagged": sorted(n for n, r in results.items() if r["hacking_warnings_at"]),
            "images_per_run": results["grpo_learned"]["images"],
        })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--editor-model", default=None, help="world editor folder (default: the shipped one)")
    parser.add_argument("--reward", default="world-describe", help="learned reward spec (default: the world description "
                        "judge; `world` is the shipped world EditReward)")
    parser.add_argument("--runs", nargs="+", default=["grpo_learned", "grpo_oracle", "dpo_learned", "grpo_hacking",
                                                      "grpo_fewer_objects", "nft_learned"],
                        help="grpo_learned grpo_oracle grpo_oracle_if dpo_learned grpo_hacking grpo_fewer_objects nft_learned nft_oracle")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--groups", type=int, default=None, help="groups per iteration")
    parser.add_argument("--k", type=int, default=None, help="samples per group")
    parser.add_argument("--eval-prompts", type=int, default=None)
    parser.add_argument("--eval-every", type=int, default=None)
    parser.add_argument("--eval-steps", type=int, default=None, help="sampling steps at evaluation (default: editor's)")
    parser.add_argument("--max-sequence-length", type=int, default=None,
                        help="T5 text length of the world editor (default: the length it was trained with)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every run (the hacking run's own keys win), e.g. --set learning_rate=1e-3")
    parser.add_argument("--hacking-lr", type=float, default=5e-2)
    parser.add_argument("--no-best-of-4", action="store_true", help="skip the best-of-4 reference (e.g. while the reward is retrained)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench-rl-world")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    run_world(args)


if __name__ == "__main__":
    main()
