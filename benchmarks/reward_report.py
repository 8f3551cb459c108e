"""One report on rewards: accuracy on the benches given, best-of-8 lift in the world, and hackability under GRPO.

For each reward spec (an EditReward folder, a world reward, a served judge ``http://...`` or ``openai:...``):

- ``benches``: ``editrl reward eval``'s metrics on each ``--bench FILE:NAME`` (names below; two benchmarks are
  called EditReward-Bench, so each is named by its authors). Its headline figure goes in the table.
- ``best_of_8``: in the world (held-out prompts, 8 ODE samples of the shipped editor per prompt, the same
  candidates for every reward), the share of exact edits (``Oracle().measures``) of the candidate the reward ranks
  first against that of one sample (the mean over the 8: what one random sample scores on average); ``lift`` is
  their per-prompt paired difference with its standard error.
- ``hackability``: a short GRPO run against the reward from the shipped editor, held back less than
  configs/grpo/world.yaml holds it (``HACKING``: learning rate 3e-3, KL 0.01, no EMA, the recipe under which the
  world's rewards differed in how fast they lost objects), and the change of the held-out share of edits that
  lose an object, per 1000 sampled training images (paired over the held-out prompts, with its standard error).
  A reward that pays for deleting objects loses them fast; the oracle must not. (At rl_world.py's hacking
  settings, learning rate 5e-2 and no KL, the editor collapses within 256 images whatever the reward, the oracle
  included: no reward is told apart.)

Prints one JSON object, then the markdown table; ``--doc`` also writes both, with the command, to a file.

    python benchmarks/reward_report.py world world-describe world-verifier oracle --doc docs/reward_report.md
    python benchmarks/reward_report.py ./my-editreward --bench 4pair.parquet:editreward-bench-tiger \\
        --bench genai.parquet:genai-bench-edit
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shlex
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from rl_world import paired_change, train_measured  # noqa: E402

from editrl.errors import EditRLError  # noqa: E402
from editrl.files import write_text_atomic  # noqa: E402
from editrl.reward.eval import evaluate  # noqa: E402
from editrl.reward.specs import build_reward  # noqa: E402
from editrl.rl import GRPOConfig, GRPOTrainer, load_config  # noqa: E402

BENCHES = {
    # name: (editrl reward eval format, what the report calls it, the headline metric's path in its result)
    "genai-bench-edit": ("pairs", "GenAI-Bench-Edit", ("accuracy_with_ties",)),
    "aurora": ("pairs", "AURORA-Bench", ("accuracy_with_ties",)),
    "imagenhub": ("pointwise", "ImagenHub (Spearman)", ("spearman_average",)),
    "editreward-bench-tiger": ("editreward-bench", "EditReward-Bench (TIGER-Lab, K-way)", ("overall", "group_accuracy")),
}
UNSUPPORTED = {
    "editreward-bench-editscore": "EditReward-Bench (EditScore, 13 subtasks) is not supported: its file schema is "
                                  "not documented where editrl could read it",
}
CANDIDATES = 8
HACKING = {"kl_beta": 0.01, "ema_decay": 0, "eval_every": 0, "judge": None}
"""The GRPO settings of the hackability run beside ``--lr`` (the rest: configs/grpo/world.yaml's)."""


def parse_bench(text: str) -> tuple[Path, str]:
    """``FILE:NAME`` -> (file, name), one line naming what is wrong otherwise."""
    path, sep, name = text.rpartition(":")
    if name in UNSUPPORTED:
        raise EditRLError(f"--bench {text!r}: {UNSUPPORTED[name]}")
    if not sep or name not in BENCHES:
        raise EditRLError(f"--bench {text!r}: expected FILE:NAME with NAME one of {sorted(BENCHES)}")
    if not Path(path).exists():
        raise EditRLError(f"--bench {text!r}: no such file or folder {path!r}")
    return Path(path), name


def bench_metrics(reward, benches: list[tuple[Path, str]], batch_size: int) -> list[dict]:
    out = []
    for path, name in benches:
        fmt, title, headline = BENCHES[name]
        result = evaluate(reward, path, fmt, batch_size=batch_size, progress=False)
        value = result
        for key in headline:
            value = value[key]
        out.append({"bench": title, "file": str(path), "headline": ".".join(headline), "value": value, "metrics": result})
    return out


def world_candidates(editor, prompts: list[tuple], oracle) -> dict:
    """``CANDIDATES`` ODE samples per held-out prompt (seeds 0..7) and the oracle's exact-edit flag of each."""
    sources, instructions, images = [], [], []
    for source, instruction in prompts:
        result = editor.sample([source] * CANDIDATES, [instruction] * CANDIDATES, seeds=list(range(CANDIDATES)))
        sources += [source] * CANDIDATES
        instructions += [instruction] * CANDIDATES
        images += result.images
    exact = oracle.measures(sources, instructions, images)["exact_edit"].numpy().reshape(len(prompts), CANDIDATES)
    return {"sources": sources, "instructions": instructions, "images": images, "exact": exact}


def best_of_8(reward, candidates: dict, batch_size: int) -> dict:
    """Exact share of the reward's pick of 8 against one sample's (the mean of the 8), paired per prompt."""
    exact = candidates["exact"]
    scores = reward.score(candidates["sources"], candidates["instructions"], candidates["images"],
                          batch_size=batch_size).score.float().numpy().reshape(exact.shape)
    picked = exact[np.arange(len(exact)), scores.argmax(1)]  # ties: the lowest seed
    one = exact.mean(1)
    lift = paired_change({"exact_edit": one}, {"exact_edit": picked})["exact_edit"]
    return {"exact_one_sample": float(one.mean()), "exact_best_of_8": float(picked.mean()),
            "lift": lift["mean"], "lift_se": lift["se"], "prompts": len(exact)}


def hackability(reward, slug: str, args, oracle) -> dict:
    """Held-out lost-object share change per 1000 sampled images of a GRPO run against ``reward`` (``HACKING``)."""
    out = Path(args.work) / slug
    shutil.rmtree(out, ignore_errors=True)
    overrides = [f"{k}={json.dumps(v)}" for k, v in HACKING.items()] + [
        f"learning_rate={args.lr}", f"eval_prompts={args.prompts}", f"seed={args.seed}", f"output_dir={out}"]
    base = load_config(GRPOConfig, ROOT / "configs/grpo/world.yaml", overrides + args.set)
    per_iteration = base.group_size * base.groups_per_step
    iterations = max(1, math.ceil(args.rl_images / per_iteration))
    config = load_config(GRPOConfig, ROOT / "configs/grpo/world.yaml",
                         overrides + args.set + [f"num_iterations={iterations}"])
    trainer = GRPOTrainer(config, reward=reward)
    change, seconds = train_measured(trainer, oracle)
    images = iterations * per_iteration
    lost = change["lost_object"]
    return {"images": images, "iterations": iterations, "lost_object_change": lost["mean"], "lost_object_se": lost["se"],
            "lost_object_per_1000_images": lost["mean"] * 1000 / images,
            "lost_object_per_1000_images_se": lost["se"] * 1000 / images,
            "exact_edit_change": change["exact_edit"]["mean"], "exact_edit_se": change["exact_edit"]["se"],
            "seconds": round(seconds, 1), "prompts": lost["n"]}


def report(args) -> dict:
    from editrl.rl.trainer import load_prompts
    from editrl.sampler.editors import load_editor
    from editrl.world import Oracle

    benches = [parse_bench(b) for b in args.bench]
    oracle = Oracle()
    editor = load_editor("world", device="cpu")
    prompts = load_prompts("world", args.prompts, "test", args.seed, editor.resolution)
    start = time.time()
    candidates = world_candidates(editor, prompts, oracle)
    rewards = {}
    for spec in args.rewards:
        reward = build_reward(spec)
        row = {"benches": bench_metrics(reward, benches, args.batch_size), "best_of_8": best_of_8(reward, candidates, args.batch_size)}
        if args.rl_images:
            slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in spec)
            row["hackability"] = hackability(reward, slug, args, oracle)
        rewards[spec] = row
        print(json.dumps({"reward": spec, **row}), file=sys.stderr, flush=True)  # progress; stdout stays one object
    return {"benchmark": "reward_report", "prompts": args.prompts, "candidates": CANDIDATES, "rl_images": args.rl_images,
            "rl_settings": {**HACKING, "learning_rate": args.lr, "set": args.set}, "seed": args.seed,
            "seconds": round(time.time() - start, 1), "rewards": rewards}


def _cell(value: float, se: float | None = None, scale: float = 1.0, digits: int = 3) -> str:
    if value is None:
        return "—"
    text = f"{value * scale:+.{digits}f}" if se is not None else f"{value * scale:.{digits}f}"
    return text + (f" ± {se * scale:.{digits}f}" if se is not None and not math.isnan(se) else "")


def markdown(result: dict) -> str:
    """The table: one row per reward; bench columns in the order given, then the world's two."""
    titles = list(dict.fromkeys(b["bench"] for r in result["rewards"].values() for b in r["benches"]))
    head = ["reward", *titles, "exact one sample", "exact best-of-8", "best-of-8 lift (± SE)"]
    hacked = any("hackability" in r for r in result["rewards"].values())
    if hacked:
        head.append(f"lost objects / 1000 images under GRPO (± SE, {result['rl_images']} images)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for spec, r in result["rewards"].items():
        bench = {b["bench"]: _cell(b["value"]) for b in r["benches"]}
        bo = r["best_of_8"]
        cells = [f"`{spec}`", *(bench.get(t, "—") for t in titles), _cell(bo["exact_one_sample"]),
                 _cell(bo["exact_best_of_8"]), _cell(bo["lift"], bo["lift_se"])]
        if hacked:
            h = r.get("hackability")
            cells.append(_cell(h["lost_object_per_1000_images"], h["lost_object_per_1000_images_se"]) if h else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rewards", nargs="+", metavar="REWARD", help="reward specs (as --reward takes them)")
    parser.add_argument("--bench", action="append", default=[], metavar="FILE:NAME",
                        help=f"a bench file or folder and its name: {', '.join(BENCHES)}")
    parser.add_argument("--prompts", type=int, default=32, help="held-out world prompts (best-of-8 and the GRPO evaluation)")
    parser.add_argument("--rl-images", type=int, default=512, help="sampled images of each GRPO run (0: no hackability)")
    parser.add_argument("--lr", type=float, default=3e-3, help="GRPO learning rate of the hackability run")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="GRPO config override of the hackability run (configs/grpo/world.yaml's keys)")
    parser.add_argument("--batch-size", type=int, default=16, help="reward scoring batch size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="runs/reward-report", help="where the GRPO runs are written")
    parser.add_argument("--doc", default=None, help="also write the table, the JSON and the command to this markdown file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    result = report(args)
    table = markdown(result)
    print(json.dumps(result), flush=True)
    print(table, flush=True)
    if args.doc:
        command = "python benchmarks/reward_report.py " + shlex.join(sys.argv[1:] if argv is None else argv)
        write_text_atomic(Path(args.doc), f"# Reward report\n\n```\n{command}\n```\n\n{table}\n```json\n"
                                          f"{json.dumps(result, indent=1)}\n```\n")
    return result


if __name__ == "__main__":
    try:
        main()
    except EditRLError as err:
        sys.exit(f"error: {err}")
