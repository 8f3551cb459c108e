"""Learning rate, batch and KL of the world RL recipes from a sweep (issue #25). One JSON object per line.

Each point of the grid is one ``benchmarks/rl_world.py`` run of GRPO or DiffusionNFT against ``--reward`` (default
``world``, the world EditReward), the recipe of ``configs/{grpo,nft}/world.yaml`` with the point's config overrides,
the same number of sampled images (1920) and the same ``--eval-prompts`` held-out prompts, paired before and after.
A point's record is rl_world's own (``paired_change``, ``goal_beyond_2se``, within-group reward std, seconds) plus
``algorithm``, ``point`` and ``overrides``. The last line per algorithm is a summary: the points ranked by the change
of exact edits, ``best`` the highest among those that gained exact edits while their lost objects rose by at most
``--max-lost-rise`` points, and whether any point met #25's goal (exact edits +10 points, beyond 2 SE).

Points run ``--jobs`` at a time as separate processes (one thread each); a point whose record is already in
``--out`` is read back, not rerun, so a stopped sweep resumes where it was. A record made by another command (another
``--reward``, seed or override) or from other inputs (the world config, editor or reward files) is refused with one
line before anything runs. ``--point`` applies to every algorithm of ``--algorithms``.

    python benchmarks/rl_sweep.py --eval-prompts 256                      # the grid below, ~60 min on 2 cores
    python benchmarks/rl_sweep.py --algorithms grpo --point lr3e-3=learning_rate=3e-3,kl_beta=0   # one point
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from editrl.files import content_digest  # noqa: E402

# One change from the recipe per point along each axis: the learning rate 3x down and up, the KL 10x weaker and 10x
# (GRPO) or 100x (NFT) stronger. GRPO also: the learning rate crossed with the weaker KL, and a filter of the groups
# by their spread (as Edit-R1 and DAPO train on the groups that carry signal). The batch point doubles the groups
# per optimizer step and halves the iterations: the same sampled images.
GRID = {
    "grpo": {
        "recipe": {},
        "lr3e-4": {"learning_rate": 3e-4},
        "lr3e-3": {"learning_rate": 3e-3},
        "kl4e-3": {"kl_beta": 4e-3},
        "kl0.4": {"kl_beta": 0.4},
        "lr3e-4-kl4e-3": {"learning_rate": 3e-4, "kl_beta": 4e-3},
        "lr3e-3-kl4e-3": {"learning_rate": 3e-3, "kl_beta": 4e-3},
        "groups8": {"groups_per_step": 8, "num_iterations": 30},
        # train only on groups that spread (about half of them: the world EditReward's within-group std is ~0.5)
        "minstd0.5": {"min_group_std": 0.5},
    },
    "nft": {
        "recipe": {},
        "lr3e-4": {"learning_rate": 3e-4},
        "lr3e-3": {"learning_rate": 3e-3},
        "beta0.1": {"beta": 0.1},
        "kl1e-2": {"kl_beta": 1e-2},
    },
}


def parse_point(text: str) -> tuple[str, dict[str, str]]:
    """``NAME=KEY=VALUE,KEY=VALUE`` (``NAME=`` alone: the recipe) -> (name, overrides); one line names a bad one."""
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"--point {text!r}: expected NAME=KEY=VALUE[,KEY=VALUE...]")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise SystemExit(f"--point {text!r}: {item!r} is not KEY=VALUE")
        overrides[key] = value
    return name, overrides


def command(algorithm: str, overrides: dict, args, out: Path) -> list[str]:
    """The rl_world.py invocation of one point (its overrides win over the recipe's settings)."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "rl_world.py"), "--reward", args.reward,
           "--runs", f"{algorithm}_learned", "--eval-prompts", str(args.eval_prompts), "--eval-every",
           str(args.eval_every), "--no-best-of-4", "--seed", str(args.seed), "--out", str(out)]
    for key, value in overrides.items():
        cmd += ["--set", f"{key}={value}"]
    return cmd


def inputs(algorithm: str, reward: str) -> str:
    """Digest of what a point is made from besides its command: the algorithm's world config and the world's models
    (editor, EditReward, VLM; a reward given as a local folder too), which are replaced under the same paths. A reward
    served elsewhere (a Hub id, a URL, ``module:factory``) is known by its spec alone: rerun into a fresh ``--out``
    when it changes."""
    folders = [ROOT / "editrl" / "world" / "models"] + ([Path(reward)] if Path(reward).is_dir() else [])
    return content_digest([ROOT / "configs" / algorithm / "world.yaml"], folders)


def finished(algorithm: str, name: str, overrides: dict, args) -> dict | None:
    """The record of a point already run by this very command from the same inputs (None if not run); a record made
    otherwise is refused with one line, not read back."""
    out = Path(args.out) / algorithm / name
    record_path = out / "record.json"
    if not record_path.exists():
        return None
    record = json.loads(record_path.read_text())
    shown = shown_command(command(algorithm, overrides, args, out / "rl_world"))
    if record.get("command") != shown:
        raise SystemExit(f"{record_path} was made by `{record.get('command')}`, not `{shown}`: remove it or choose "
                         "another --out")
    if record.get("inputs") != inputs(algorithm, args.reward):
        raise SystemExit(f"{record_path} was made from another world config, editor or reward than those here now: "
                         "remove it or choose another --out")
    return record


def shown_command(cmd: list[str]) -> str:
    return " ".join(["python", "benchmarks/rl_world.py", *cmd[2:]])


def run_point(algorithm: str, name: str, overrides: dict, args) -> dict:
    """Run one point (or read back its record) and return rl_world's record with the point named in it."""
    record = finished(algorithm, name, overrides, args)
    if record is not None:
        return record
    out = Path(args.out) / algorithm / name
    cmd = command(algorithm, overrides, args, out / "rl_world")
    digest = inputs(algorithm, args.reward)
    done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    runs = [r for r in records if r.get("run") == f"{algorithm}_learned"]
    if done.returncode or not runs:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"{algorithm} point {name!r} failed (rc {done.returncode}): {tail[0]}")
    record = {**runs[0], "algorithm": algorithm, "point": name, "overrides": overrides, "reward": args.reward,
              "command": shown_command(cmd), "inputs": digest}
    out.mkdir(parents=True, exist_ok=True)
    (out / "record.json").write_text(json.dumps(record))
    return record


def summarise(algorithm: str, records: list[dict], max_lost_rise: float, goal_points: float = 10.0) -> dict:
    """Points ranked by the paired change of exact edits (points, ± SE; lost objects likewise, the judge in its
    units). ``best`` is the first that gained exact edits (mean above 0) while its lost objects rose by at most
    ``max_lost_rise`` points (None: no such point); ``goal_met`` names those whose exact edits rose by at least
    ``goal_points`` with the whole rl_world goal beyond 2 SE."""
    def change(record, measure, scale):
        paired = record["paired_change"][measure]
        return round(scale * paired["mean"], 3), round(scale * paired["se"], 3)

    ranked = sorted(records, key=lambda r: r["paired_change"]["exact_edit"]["mean"], reverse=True)
    rows = [{"point": r["point"], "overrides": r["overrides"], "exact_edit_points": change(r, "exact_edit", 100),
             "lost_object_points": change(r, "lost_object", 100), "judge": change(r, "oracle", 1),
             "group_reward_std": r.get("group_reward_std"), "goal_beyond_2se": r.get("goal_beyond_2se"),
             "seconds": r.get("seconds")} for r in ranked]
    allowed = [row for row in rows if row["exact_edit_points"][0] > 0 and row["lost_object_points"][0] <= max_lost_rise]
    return {"summary": "rl_sweep", "algorithm": algorithm, "ranked_by_exact_edit": rows,
            "best": allowed[0]["point"] if allowed else None, "max_lost_rise_points": max_lost_rise,
            "goal_met": [row["point"] for row in rows
                         if row["goal_beyond_2se"] and row["exact_edit_points"][0] >= goal_points]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithms", nargs="+", choices=sorted(GRID), default=sorted(GRID))
    parser.add_argument("--point", action="append", default=[], metavar="NAME=KEY=VALUE,...",
                        help="sweep these points instead of the built-in grid (config keys of the algorithm's config)")
    parser.add_argument("--reward", default="world", help="reward spec the runs train against (default: the world "
                        "EditReward)")
    parser.add_argument("--eval-prompts", type=int, default=256, help="held-out prompts, paired before/after")
    parser.add_argument("--eval-every", type=int, default=30, help="iterations between held-out evaluations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="points run at a time (one thread each)")
    parser.add_argument("--max-lost-rise", type=float, default=2.0, help="points of lost objects a best point may add")
    parser.add_argument("--out", default="runs/bench-rl-sweep")
    args = parser.parse_args()
    for name in ("eval_prompts", "eval_every", "jobs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    custom = dict(parse_point(p) for p in args.point)
    grid = {algorithm: custom or GRID[algorithm] for algorithm in args.algorithms}
    jobs = [(algorithm, name, overrides) for algorithm, points in grid.items() for name, overrides in points.items()]
    for job in jobs:  # a record made otherwise stops the sweep now, not after the points before it have run
        finished(*job, args)
    with ThreadPoolExecutor(args.jobs) as pool:
        records = list(pool.map(lambda job: run_point(*job, args), jobs))
    for record in records:
        print(json.dumps(record), flush=True)
    for algorithm in grid:
        print(json.dumps(summarise(algorithm, [r for r in records if r["algorithm"] == algorithm],
                                   args.max_lost_rise)), flush=True)


if __name__ == "__main__":
    main()
