"""One GRPO iteration on the world editor with the reward behind a loopback ``editrl reward serve``: its seconds
with and without ``overlap_reward`` (rollout batch k scored while batch k+1 is sampled), their ratio, and the share
of the iteration each phase takes. Prints one JSON object.

Both trainers (same config but ``overlap_reward``) run the same iterations, alternating so machine load hits both
alike, each against its own server (the world rewards cache what they read of a source); the first iteration
of each is a warm-up, the figures are the median iteration's of ``--repeats``. Phases per iteration:
``sampling`` (rollouts), ``reward`` (what the trainer waited for the reward: all of it without the overlap, what
sampling did not hide with it) and ``training`` (the rest: advantages, the policy update). The overlap needs
several rollout batches: ``--batch-size`` 8 of the 32 rollouts (configs/grpo/world.yaml samples all 32 in one).
The server runs in this process: on a CPU its reward shares the cores and the GIL with sampling, so the overlap
gains little there (sampling slows by what the reward takes); ``--latency`` makes the server answer that much
later per request, as a reward on another machine or a busy GPU does (the wait the overlap hides).

    python benchmarks/rl_throughput.py                       # world-describe served on 127.0.0.1
    python benchmarks/rl_throughput.py --latency 0.5         # ... answering 0.5 s later per request
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from editrl.reward.serve import ServeConfig, serve_in_thread  # noqa: E402
from editrl.reward.specs import build_reward  # noqa: E402
from editrl.rl import GRPOConfig, GRPOTrainer, load_config  # noqa: E402


class Delayed:
    """``reward`` answering ``latency`` seconds later (the server's wait for a remote model)."""

    def __init__(self, reward, latency: float):
        self.reward, self.latency = reward, latency

    def score(self, *args, **kwargs):
        time.sleep(self.latency)
        return self.reward.score(*args, **kwargs)


def timed_iteration(trainer: GRPOTrainer, step: int) -> dict[str, float]:
    """Seconds of one iteration and of its phases (``RolloutScoring``'s timings)."""
    start = time.perf_counter()
    trainer.iteration(step)
    total = time.perf_counter() - start
    scoring = trainer.last_scoring
    return {"seconds": total, "sampling": scoring.sampling_seconds, "reward": scoring.blocked_seconds,
            "reward_busy": scoring.reward_seconds,
            "training": total - scoring.sampling_seconds - scoring.blocked_seconds}


def summary(times: list[dict[str, float]]) -> dict:
    """The median iteration (by seconds; the upper one of an even count) and its phases, which sum to it."""
    med = sorted(times, key=lambda t: t["seconds"])[len(times) // 2]
    return {"seconds": round(med["seconds"], 3), "reward_seconds_inside_reward": round(med["reward_busy"], 3),
            "phase_share": {key: round(med[key] / med["seconds"], 3) for key in ("sampling", "reward", "training")},
            "all_seconds": [round(t["seconds"], 3) for t in times]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs/grpo/world.yaml"))
    parser.add_argument("--reward", default="world-describe", help="reward spec served on loopback (default: the config's)")
    parser.add_argument("--batch-size", type=int, default=8, help="rollouts per sampling batch (the overlap's unit)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds the server waits per request")
    parser.add_argument("--repeats", type=int, default=3, help="timed iterations per setting (after one warm-up)")
    parser.add_argument("--out", default="runs/rl-throughput")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with ExitStack() as stack:
        trainers = {}
        for overlap in (False, True):  # a server (and reward) each: a reward's caches must not serve the other run
            reward = Delayed(build_reward(args.reward), args.latency)
            url = stack.enter_context(serve_in_thread(reward, ServeConfig(port=0)))
            cfg = load_config(GRPOConfig, args.config, [
                f"rewards={json.dumps({url: 1.0})}", f"batch_size={args.batch_size}", f"overlap_reward={overlap}",
                "eval_every=0", f"output_dir={args.out}/overlap-{overlap}"])
            trainers[overlap] = GRPOTrainer(cfg)
        times: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for step in range(args.repeats + 1):
            for overlap in (False, True) if step % 2 else (True, False):  # who goes first alternates
                t = timed_iteration(trainers[overlap], step)
                if step:  # step 0 warms up
                    times[overlap].append(t)
    sequential, overlapped = summary(times[False]), summary(times[True])
    print(json.dumps({
        "benchmark": "rl_throughput", "algorithm": "grpo", "editor": "world", "reward": f"{args.reward} (loopback server)",
        "latency_per_request_s": args.latency,
        "rollouts_per_iteration": cfg.group_size * cfg.groups_per_step, "batch_size": args.batch_size,
        "repeats": args.repeats, "torch_threads": torch.get_num_threads(),
        "sequential": sequential, "overlapped": overlapped,
        "seconds_ratio_sequential_over_overlapped": round(sequential["seconds"] / overlapped["seconds"], 3),
    }), flush=True)


if __name__ == "__main__":
    main()
