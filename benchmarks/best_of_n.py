"""Best-of-N in the world: oracle score against compute (NFE), and the pruned search.

Over held-out world pairs (``make_examples(split="test")``), for the same editor and seeds:

- ``single``: one sample (best-of-1);
- ``best_of_n``: best-of-N, N = 1..max-n, ranked by the reward (default: the shipped world reward);
- ``oracle_best_of_n``: best-of-N ranked by the oracle itself (the ceiling of any reward);
- ``oracle_if_best_of_n``: best-of-N ranked by the oracle's instruction following alone (the ceiling of a
  reward that judges instruction following only, such as ``world-describe``);
- ``halving``: the pruned search (successive halving on x0 previews scored by the reward), for each
  setting in --halving;
- ``adaptive``: the adaptive search (``editrl.sampler.adaptive``: rounds of pruned searches within a budget
  in NFE, stopping once an edit is confidently good), for each setting in --adaptive, with the paired
  difference in exact edits against best-of-8 and best-of-16 on the same pairs.

Every figure is the oracle's fused score of the selected edit, averaged over pairs (with its standard
error), against the NFE per pair, beside the oracle's instruction following of the same edit (``oracle_if``). Best-of-N for all N comes from one run of max-n candidates per pair
(the first N seeds), so the curves share their samples. Per-pair results are appended to
``--pairs-file`` as they finish and reused on a rerun with the same settings (resume). Summary JSON
lines go to stdout and ``--out``; the plot to ``--plot`` (matplotlib if installed, else PIL).

    python benchmarks/best_of_n.py                          # 200 pairs, shipped world editor + reward
    python benchmarks/best_of_n.py --n-pairs 20             # a quick run

The adaptive search's curves (``docs/best_of_n_adaptive_describe.*``; the first 100 pairs' best-of-16 and halving
records come from ``docs/best_of_n_describe_pairs.jsonl``, copied to the new pairs file first)::

    python benchmarks/best_of_n.py --reward world-describe --halving 8/0.5 16@0:4,2:1 \
        --adaptive 32 64 64/-0.05 96/-0.05 --plot-metric exact_edit --pairs-file docs/best_of_n_adaptive_describe_pairs.jsonl \
        --out docs/best_of_n_adaptive_describe.jsonl --plot docs/best_of_n_adaptive_describe.png
    python benchmarks/best_of_n.py --reward world --halving 16@0:4,2:1 --adaptive 32 64 --plot-metric exact_edit \
        --pairs-file docs/best_of_n_adaptive_world_pairs.jsonl --out docs/best_of_n_adaptive_world.jsonl \
        --plot docs/best_of_n_adaptive_world.png

Two processes share a run with ``--first-pair`` and their own ``--pairs-file`` (concatenate the files, then
rerun for the summary). To choose among settings, compare them on other held-out pairs (``--seed 1``) and report
``--seed 0``; the settings above were fixed before their run (the defaults, and -0.05: the judge's likelihood 0.95).

Wall time at FLUX.1-Kontext size (best-of-8 and the pruned search with a 7B EditReward) is measured
by ``benchmarks/gpu_suite.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from editrl.sampler.adaptive import AdaptiveConfig, run_adaptive
from editrl.sampler.editors import Editor, load_editor
from editrl.sampler.search import HalvingConfig, run_search

logger = logging.getLogger("benchmarks.best_of_n")
DOCS = Path(__file__).resolve().parents[1] / "docs"


# ----------------------------------------------------------------------------- world benchmark
def pair_record(editor: Editor, reward, oracle, example, args) -> dict:
    """Everything one pair contributes: reward and oracle scores of max-n candidates, and each halving run."""
    cond = editor.encode([example.source], [example.instruction])
    seeds = list(range(args.max_n))
    full = run_search(editor, reward, cond.repeat_interleave(args.max_n), seeds, num_steps=args.steps, select=args.select,
                      progress=False)
    images = [t.image for t in full.candidates]
    judged = oracle.score([example.source] * len(images), [example.instruction] * len(images), images)
    measures = oracle.measures([example.source] * len(images), [example.instruction] * len(images), images)
    record = {
        "reward_values": [t.value for t in full.candidates],
        "oracle": judged.score.tolist(),
        "oracle_if": judged.mu[:, 0].tolist(),
        "exact_edit": measures["exact_edit"].tolist(),
        "lost_object": measures["lost_object"].tolist(),
        "nfe_per_candidate": full.candidates[0].nfe,
        "halving": [],
    }
    for spec in args.halving:
        n, config = parse_halving(spec, args.keep)
        result = run_search(editor, reward, cond.repeat_interleave(n), seeds[:n], num_steps=args.steps,
                            search="halving", select=args.select, halving=config, progress=False)
        best = max((t for t in result.candidates if t.pruned_at is None), key=lambda t: t.value)
        judged = oracle.score([example.source], [example.instruction], [best.image])
        picked = oracle.measures([example.source], [example.instruction], [best.image])
        record["halving"].append({"spec": spec, "n": n, "nfe": result.nfe, "reward_calls": result.reward_calls,
                                  "oracle": float(judged.score[0]), "oracle_if": float(judged.mu[0, 0]), "seed": best.seed, "exact_edit": float(picked["exact_edit"][0]),
                                  "lost_object": float(picked["lost_object"][0])})
    return record


def adaptive_record(editor: Editor, reward, oracle, example, spec: str, args, rounds_run: dict) -> dict:
    """One adaptive search of ``example`` under ``spec``: its cost (counted as if run alone), rounds, why it
    stopped, and the oracle's judgement of the edit it selected. ``rounds_run`` (one per pair) shares the rounds
    that several settings run identically (same seeds, same plan)."""
    cond = editor.encode([example.source], [example.instruction])
    result = run_adaptive(editor, reward, cond, 0, num_steps=args.steps, select=args.select,
                          config=parse_adaptive(spec), progress=False, rounds_run=rounds_run)
    best = max((t for t in result.candidates if t.pruned_at is None), key=lambda t: t.value)
    judged = oracle.score([example.source], [example.instruction], [best.image])
    picked = oracle.measures([example.source], [example.instruction], [best.image])
    return {"spec": spec, "nfe": result.nfe, "reward_calls": result.reward_calls, "rounds": len(result.rounds),
            "stopped_because": result.stopped_because, "seed": best.seed, "oracle": float(judged.score[0]),
            "oracle_if": float(judged.mu[0, 0]), "exact_edit": float(picked["exact_edit"][0]),
            "lost_object": float(picked["lost_object"][0])}


def parse_adaptive(spec: str) -> AdaptiveConfig:
    """``"BUDGET[/GOOD][@ROUND:K1,K2]"``: a budget in NFE; with GOOD, stop once a finished candidate's score
    minus its sigma reaches GOOD (stop rule lcb), else spend the whole budget; ROUND seeds a round, of which K1
    survive the preview at step 0 and K2 the one a quarter through (default 8:2,1)."""
    spec, _, plan = spec.partition("@")
    budget, _, good = spec.partition("/")
    rounds = {}
    if plan:
        size, survivors = plan.split(":")
        rounds = {"round_size": int(size), "survivors": tuple(int(k) for k in survivors.split(","))}
    return AdaptiveConfig.until(int(budget), float(good) if good else None, **rounds)


def parse_halving(spec: str, keep: float) -> tuple[int, HalvingConfig]:
    """``"N/H"``: N candidates, successive halving spread over the first H of the steps;
    ``"N@s1:k1,s2:k2"``: prune at step s1 to k1 candidates, at s2 to k2, ... (step 0 prunes on the
    very first prediction's preview)."""
    if "@" in spec:
        n, plan = spec.split("@")
        steps, survivors = zip(*(tuple(int(v) for v in item.split(":")) for item in plan.split(",")))
        return int(n), HalvingConfig(prune_steps=steps, survivors=survivors)
    n, horizon = spec.split("/")
    return int(n), HalvingConfig(keep=keep, horizon=float(horizon))


def _mean_se(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else 0.0


def summarise(records: list[dict], args) -> list[dict]:
    """The figures: one JSON object per (method, N) and per halving setting, then the goal check."""
    rows = []
    nfe1 = records[0]["nfe_per_candidate"]
    for n in range(1, args.max_n + 1):
        by_reward = [int(np.argmax(r["reward_values"][:n])) for r in records]
        by_oracle = [int(np.argmax(r["oracle"][:n])) for r in records]
        by_oracle_if = [int(np.argmax(r["oracle_if"][:n])) for r in records]
        for method, picks in (("best_of_n", by_reward), ("oracle_best_of_n", by_oracle), ("oracle_if_best_of_n", by_oracle_if)):
            mean, se = _mean_se([r["oracle"][i] for r, i in zip(records, picks)])
            rows.append({"method": "single" if (n == 1 and method == "best_of_n") else method, "n": n, "nfe": n * nfe1,
                         "reward_calls": n if method == "best_of_n" else 0, "oracle_score": mean, "oracle_se": se,
                         "oracle_if": float(np.mean([r["oracle_if"][i] for r, i in zip(records, picks)])),
                         # measures that depend on no scoring rule, of the selected edit
                         "exact_edit": float(np.mean([r["exact_edit"][i] for r, i in zip(records, picks)])),
                         "lost_object": float(np.mean([r["lost_object"][i] for r, i in zip(records, picks)])),
                         # the most any selection among these n could reach: pairs with an exactly right candidate
                         "exact_available": float(np.mean([max(r["exact_edit"][:n]) for r in records]))})
    for j, h in enumerate(records[0]["halving"]):
        values = [r["halving"][j]["oracle"] for r in records]
        mean, se = _mean_se(values)
        rows.append({"method": "halving", "spec": h["spec"], "n": h["n"],
                     "nfe": float(np.mean([r["halving"][j]["nfe"] for r in records])),
                     "reward_calls": float(np.mean([r["halving"][j]["reward_calls"] for r in records])),
                     "oracle_score": mean, "oracle_se": se,
                     "oracle_if": float(np.mean([r["halving"][j]["oracle_if"] for r in records])),
                     "exact_edit": float(np.mean([r["halving"][j]["exact_edit"] for r in records])),
                     "lost_object": float(np.mean([r["halving"][j]["lost_object"] for r in records]))})
    rows += adaptive_rows(records)
    for row in rows:
        row["n_pairs"] = len(records)
    bo8 = next((r for r in rows if r["method"] == "best_of_n" and r["n"] == 8), None)
    if bo8 is not None:
        one = next(r for r in rows if r["method"] == "single")
        top = next(r for r in rows if r["method"] == "oracle_best_of_n" and r["n"] == 8)
        closed = {key: (bo8[key] - one[key]) / (top[key] - one[key]) if top[key] > one[key] else None
                  for key in ("oracle_score", "exact_edit")}
        # a reward that judges instruction following only, measured on that dimension against its own ceiling
        top_if = next(r for r in rows if r["method"] == "oracle_if_best_of_n" and r["n"] == 8)
        closed_if = (bo8["oracle_if"] - one["oracle_if"]) / (top_if["oracle_if"] - one["oracle_if"]) if top_if["oracle_if"] > one["oracle_if"] else None
        rows.append({"goal": "best-of-8 with the reward closes >= 60% of the gap between one sample and the oracle's "
                             "best-of-8, in oracle score and in exact edits",
                     "gap_closed": closed, "met": all(v is not None and v >= 0.6 for v in closed.values()),
                     "instruction_following_gap_closed": closed_if,
                     "lost_object": {"single": one["lost_object"], "best_of_8": bo8["lost_object"],
                                     "oracle_best_of_8": top["lost_object"], "oracle_if_best_of_8": top_if["lost_object"]},
                     "n_pairs": len(records)})
        halving = [r for r in rows if r.get("method") == "halving"]
        within_half = [r for r in halving if r["nfe"] <= bo8["nfe"] / 2]
        best = max(within_half, key=lambda r: r["oracle_score"], default=None)
        met = best is not None and best["oracle_score"] >= bo8["oracle_score"]
        paired = None
        if best is not None:  # same pairs and seeds on both sides: the paired difference is the sharp test
            j = [h["spec"] for h in records[0]["halving"]].index(best["spec"])
            bo8_pick = [r["oracle"][int(np.argmax(r["reward_values"][:8]))] for r in records]
            paired = _mean_se([r["halving"][j]["oracle"] - b for r, b in zip(records, bo8_pick)])
        rows.append({
            "goal": "pruned search reaches best-of-8's oracle score with at most half its NFE",
            "best_of_8_oracle": bo8["oracle_score"], "best_of_8_se": bo8["oracle_se"], "best_of_8_nfe": bo8["nfe"],
            "met": met, "best_halving_within_half_nfe": None if best is None else {k: best[k] for k in ("spec", "nfe", "oracle_score", "oracle_se")},
            "nfe_ratio": None if best is None else best["nfe"] / bo8["nfe"],
            "paired_difference": None if paired is None else {"mean": paired[0], "se": paired[1]}, "n_pairs": len(records),
        })
    return rows


def adaptive_rows(records: list[dict]) -> list[dict]:
    """One row per adaptive setting (mean NFE, exact edits, oracle score, how often it stopped confident), its
    paired difference in exact edits against best-of-8 and best-of-16 (the reward's pick among seeds 0..N-1 of the
    same pair), then the goal check: at no more than best-of-8's mean NFE, an exact share at least best-of-16's and
    more than 5 points and 2 paired SE above best-of-8's."""
    specs = [a["spec"] for a in records[0].get("adaptive", [])]
    if not specs:
        return []
    picks = {n: [r["exact_edit"][int(np.argmax(r["reward_values"][:n]))] for r in records]
             for n in (8, 16) if len(records[0]["reward_values"]) >= n}
    rows = []
    for j, spec in enumerate(specs):
        runs = [r["adaptive"][j] for r in records]
        exact = [a["exact_edit"] for a in runs]
        row = {"method": "adaptive", "spec": spec, "nfe": float(np.mean([a["nfe"] for a in runs])),
               "nfe_max": max(a["nfe"] for a in runs), "reward_calls": float(np.mean([a["reward_calls"] for a in runs])),
               "rounds": float(np.mean([a["rounds"] for a in runs])),
               "stopped_confident": float(np.mean([a["stopped_because"] == "confident" for a in runs])),
               "oracle_score": _mean_se([a["oracle"] for a in runs])[0], "oracle_se": _mean_se([a["oracle"] for a in runs])[1],
               "oracle_if": float(np.mean([a["oracle_if"] for a in runs])), "exact_edit": float(np.mean(exact)),
               "exact_se": _mean_se(exact)[1], "lost_object": float(np.mean([a["lost_object"] for a in runs]))}
        for n, base in picks.items():
            mean, se = _mean_se([a - b for a, b in zip(exact, base)])
            row[f"exact_minus_best_of_{n}"] = {"mean": mean, "se": se}
        rows.append(row)
    if 8 in picks and 16 in picks:
        bo8_nfe = 8 * records[0]["nfe_per_candidate"]
        within = [r for r in rows if r["nfe"] <= bo8_nfe]
        best = max(within, key=lambda r: r["exact_edit"], default=None)
        gain = None if best is None else best["exact_minus_best_of_8"]
        rows.append({
            "goal": "adaptive search at best-of-8's NFE: exact share >= best-of-16's, and >= 5 points above best-of-8 "
                    "beyond 2 paired SE",
            "best_of_8_exact": float(np.mean(picks[8])), "best_of_16_exact": float(np.mean(picks[16])),
            "best_of_8_nfe": bo8_nfe, "best_adaptive_within_best_of_8_nfe": None if best is None else
            {k: best[k] for k in ("spec", "nfe", "exact_edit", "exact_se")},
            "paired_gain_over_best_of_8": gain,
            "met": best is not None and best["exact_edit"] >= float(np.mean(picks[16]))
            and gain["mean"] >= 0.05 and gain["mean"] > 2 * gain["se"],
        })
    return rows


def settings_key(args, editor=None, reward=None) -> str:
    """The cache key of the per-pair records: the settings, and what the editor and reward *are* (a digest of the
    editor's denoiser weights, ``reward_identity``), so a retrained model under the same name (the shipped world
    editor or reward replaced) gets a new key and its stale records are not reused."""
    from editrl.reward.identity import reward_identity, weights_digest

    keys = ("editor", "model", "reward", "steps", "max_n", "halving", "keep", "select", "seed")
    settings = {"record": 3, **{k: getattr(args, k) for k in keys}}  # 3: records with the oracle's instruction following
    if editor is not None:
        settings["editor_weights"] = weights_digest(editor.transformer)
    if reward is not None:
        settings["reward_identity"] = reward_identity(reward)
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def load_done(path: Path, key: str, spec: str | None = None) -> dict[int, dict]:
    """The cached records of ``key``: a pair's full and halving runs, or with ``spec`` its adaptive run of that
    setting (kept apart, so adding an adaptive setting reuses the rest)."""
    done = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                if entry.get("settings") == key and entry.get("adaptive_spec") == spec:
                    done[entry["pair"]] = entry
    return done


def run_world(args) -> None:
    from editrl.reward.specs import build_reward
    from editrl.world import Oracle, make_examples

    editor = load_editor(args.editor, model=args.model, device=args.device)
    reward, oracle = build_reward(args.reward, device=args.device), Oracle()
    examples = make_examples(args.n_pairs, seed=args.seed, split="test")
    key = settings_key(args, editor, reward)
    pairs_file = Path(args.pairs_file)
    pairs_file.parent.mkdir(parents=True, exist_ok=True)
    done = load_done(pairs_file, key)
    logger.info("%d of %d pairs already done (settings %s)", len(done), len(examples), key)
    start = time.perf_counter()
    adaptive = {spec: load_done(pairs_file, key, spec) for spec in args.adaptive}
    with pairs_file.open("a") as log:
        for i, example in enumerate(tqdm(examples, desc="pairs")):
            if i < args.first_pair:
                continue
            if i not in done:
                done[i] = {"settings": key, "pair": i, **pair_record(editor, reward, oracle, example, args)}
                log.write(json.dumps(done[i]) + "\n")
            rounds_run: dict = {}
            for spec, runs in adaptive.items():
                if i not in runs:
                    runs[i] = {"settings": key, "pair": i, "adaptive_spec": spec,
                               **adaptive_record(editor, reward, oracle, example, spec, args, rounds_run)}
                    log.write(json.dumps(runs[i]) + "\n")
            log.flush()
    ready = [i for i in range(len(examples)) if i in done and all(i in runs for runs in adaptive.values())]
    if len(ready) < len(examples):
        logger.warning("summarising the %d of %d pairs with every record in %s", len(ready), len(examples), pairs_file)
    records = [{**done[i], "adaptive": [adaptive[spec][i] for spec in args.adaptive]} for i in ready]
    rows = summarise(records, args)
    setup = {"benchmark": "best_of_n", "editor": args.editor, "reward": args.reward, "steps": args.steps or editor.default_steps,
             "step_nfe": editor.nfe_per_step, "halving_keep": args.keep, "seed": args.seed, "n_pairs": len(records),
             "seconds_this_run": round(time.perf_counter() - start, 1)}
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in [setup, *rows]))
    tmp.replace(out)
    for row in [setup, *rows]:
        print(json.dumps(row))
    plot(rows, Path(args.plot), args.plot_metric)


# ----------------------------------------------------------------------------- plot
SERIES = {"best_of_n": ((40, 90, 200), "best-of-N (the reward)"), "oracle_best_of_n": ((150, 150, 150), "best-of-N (oracle, ceiling)"),
          "halving": ((220, 80, 40), "pruned search (halving)"), "adaptive": ((40, 160, 60), "adaptive search")}
METRICS = {"oracle_score": "oracle score of the selected edit", "exact_edit": "exact edits (share of pairs)"}


def plot(rows: list[dict], path: Path, metric: str = "oracle_score") -> None:
    """``metric`` against NFE per pair: the two best-of-N curves, halving and adaptive points, the single sample."""
    series = {m: sorted(((r["nfe"], r[metric]) for r in rows if r.get("method") in (m, "single" if m == "best_of_n" else m)))
              for m in SERIES}
    series = {m: points for m, points in series.items() if points}
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _plot_pil(series, path, METRICS[metric])
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, points in series.items():
        color, label = SERIES[method]
        xs, ys = zip(*points)
        ax.plot(xs, ys, "o" if method in ("halving", "adaptive") else "-o", color=[c / 255 for c in color], label=label, ms=4)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("NFE per pair")
    ax.set_ylabel(METRICS[metric])
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=150)


def _plot_pil(series: dict, path: Path, ylabel: str, width: int = 720, height: int = 480) -> None:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 70, width - 20, 20, height - 50 - 14 * len(series)  # room for the legend
    points = [p for pts in series.values() for p in pts]
    x_lo, x_hi = math.log2(min(p[0] for p in points)), math.log2(max(p[0] for p in points))
    y_lo, y_hi = min(p[1] for p in points), max(p[1] for p in points)
    y_pad = (y_hi - y_lo) * 0.05 or 0.01
    y_lo, y_hi = y_lo - y_pad, y_hi + y_pad

    def xy(nfe: float, score: float) -> tuple[float, float]:
        fx = (math.log2(nfe) - x_lo) / ((x_hi - x_lo) or 1)
        return left + fx * (right - left), bottom - (score - y_lo) / (y_hi - y_lo) * (bottom - top)

    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    for k in range(int(math.floor(x_lo)), int(math.ceil(x_hi)) + 1):
        x, _ = xy(2**k, y_lo)
        if left <= x <= right:
            draw.line([x, bottom, x, bottom + 4], fill=(0, 0, 0))
            draw.text((x - 8, bottom + 6), str(2**k), fill=(0, 0, 0))
    for k in range(5):
        score = y_lo + (y_hi - y_lo) * k / 4
        _, y = xy(2 ** x_lo, score)
        draw.line([left - 4, y, left, y], fill=(0, 0, 0))
        draw.text((8, y - 6), f"{score:.3f}", fill=(0, 0, 0))
    draw.text(((left + right) // 2 - 40, bottom + 22), "NFE per pair (log2)", fill=(0, 0, 0))
    draw.text((left + 6, top + 4), ylabel, fill=(0, 0, 0))
    for i, (method, pts) in enumerate(series.items()):
        color, label = SERIES[method]
        coords = [xy(*p) for p in pts]
        if method not in ("halving", "adaptive") and len(coords) > 1:
            draw.line(coords, fill=color, width=2)
        for x, y in coords:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
        draw.rectangle([left + 10, bottom + 42 + 14 * i, left + 20, bottom + 52 + 14 * i], fill=color)
        draw.text((left + 26, bottom + 41 + 14 * i), label, fill=(0, 0, 0))
    image.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-pairs", type=int, default=200, help="held-out world pairs (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the world test pairs")
    parser.add_argument("--editor", default="world")
    parser.add_argument("--model", default=None)
    parser.add_argument("--reward", default="world", help="the reward that ranks candidates and previews (default: shipped)")
    parser.add_argument("--select", default="mean", choices=("mean", "lcb", "if", "vq"))
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: the editor's)")
    parser.add_argument("--max-n", type=int, default=16)
    parser.add_argument("--halving", nargs="+", default=["8/0.25", "8/0.5", "16/0.25", "16@0:4,2:1", "12@0:3,2:1", "8@0:2,2:1"],
                        help="pruned-search settings: N/H (halving over the first H of the steps) or N@s1:k1,s2:k2 "
                        "(at step s1 keep k1 candidates, ...)")
    parser.add_argument("--adaptive", nargs="*", default=[],
                        help="adaptive-search settings: BUDGET[/GOOD][@ROUND:K1,K2] (NFE budget; stop once a finished "
                        "candidate's score - sigma >= GOOD; ROUND seeds a round, K1 kept at step 0, K2 a quarter through)")
    parser.add_argument("--first-pair", type=int, default=0,
                        help="compute pairs from this index on (a second process, with its own --pairs-file, shares the "
                        "work; concatenate the pairs files and rerun to summarise them all)")
    parser.add_argument("--plot-metric", choices=tuple(METRICS), default="oracle_score", help="the plot's y axis")
    parser.add_argument("--keep", type=float, default=0.5)
    parser.add_argument("--device", default=None)
    parser.add_argument("--pairs-file", default=str(DOCS / "best_of_n_pairs.jsonl"), help="append-only per-pair results (resume)")
    parser.add_argument("--out", default=str(DOCS / "best_of_n.jsonl"))
    parser.add_argument("--plot", default=str(DOCS / "best_of_n.png"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_world(args)


if __name__ == "__main__":
    main()
