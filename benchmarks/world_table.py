"""The world's one table: does a reward make the editor better? One sample, best-of-8 and RL, in exact edits.

Reads records other benchmarks wrote (nothing is sampled here) and prints one JSON object per row, then the
markdown table the README shows:

- ``--pairs REWARD=FILE``: a ``benchmarks/best_of_n.py --pairs-file`` (per held-out pair, every candidate's reward
  value, oracle score, exact edit and lost object; ``FILE@SETTINGS`` picks one run of a file holding several). Rows:
  one sample (the first candidate: what one run of the editor gives), best-of-8 by REWARD, and best-of-8 by the
  oracle (the ceiling of the oracle's score, not of exact edits or lost objects); each measure's mean over the
  pairs with its standard error, and the paired change against one sample with its standard error. The files of one
  table must hold the same pairs (the same editor, seeds and prompts: checked on every candidate).
- ``--rl FILE``: a ``benchmarks/rl_world.py`` JSONL; one row per run record: the held-out shares after training and
  the paired change per held-out prompt (after - before, same prompts and noise) with its standard error.

Exact edits and lost objects depend on no scoring rule (``Oracle().measures``: the parsed scene equals the target;
an object of the target is missing); the judge is the oracle's fused score.

    python benchmarks/world_table.py --pairs world=docs/best_of_n_world_pairs.jsonl \\
        --pairs world-describe=docs/best_of_n_adaptive_describe_pairs.jsonl --rl docs/rl_world_editreward.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

MEASURES = ("exact_edit", "lost_object", "oracle")
N = 8


def mean_se(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def read_pairs(spec: str) -> list[dict]:
    """Per-pair records with at least N candidates of one run (``FILE`` or ``FILE@SETTINGS``: a pairs file is
    append-only across runs, each marked by its ``settings`` key), one per pair, in pair order."""
    path, _, wanted = spec.partition("@")
    runs: dict[str, dict[int, dict]] = {}
    for line in Path(path).read_text().splitlines():
        record = json.loads(line)
        if len(record.get("reward_values", [])) >= N:
            runs.setdefault(record["settings"], {})[record["pair"]] = record
    if wanted:
        runs = {wanted: runs[wanted]} if wanted in runs else {}
    if len(runs) != 1:
        raise SystemExit(f"{path}: {len(runs)} runs with {N} candidates per pair (settings {sorted(runs)}); "
                         f"name one as FILE@SETTINGS")
    records = next(iter(runs.values()))
    return [records[k] for k in sorted(records)]


def picks(records: list[dict], key: str | None) -> dict[str, np.ndarray]:
    """Per pair, each measure of the candidate picked: the first one (key None) or the argmax of ``key``."""
    chosen = [0 if key is None else int(np.argmax(r[key][:N])) for r in records]
    return {m: np.array([r[m][c] for r, c in zip(records, chosen)], dtype=np.float64) for m in MEASURES}


def row(method: str, reward: str, values: dict[str, np.ndarray], base: dict[str, np.ndarray] | None, source: str) -> dict:
    out = {"method": method, "reward": reward, "n": len(values["exact_edit"]), "source": source}
    for m in MEASURES:
        out[m] = dict(zip(("mean", "se"), mean_se(values[m])))
        if base is not None:
            out[m]["change"], out[m]["change_se"] = mean_se(values[m] - base[m])
    return out


def pair_rows(specs: list[str]) -> list[dict]:
    rows, base, base_file = [], None, None
    for spec in specs:
        reward, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"--pairs {spec!r}: expected REWARD=FILE")
        records = read_pairs(path)
        first = picks(records, None)
        candidates = {m: np.array([r[m][:N] for r in records]) for m in MEASURES}
        if base is None:
            base, base_candidates, base_file = first, candidates, path
            rows.append(row("one sample", "-", first, None, path))
            rows.append(row("best-of-8", "oracle (its score's ceiling)", picks(records, "oracle"), base, path))
        elif not (candidates["exact_edit"].shape == base_candidates["exact_edit"].shape
                  and all(np.array_equal(candidates[m], base_candidates[m]) for m in ("exact_edit", "lost_object"))
                  and np.allclose(candidates["oracle"], base_candidates["oracle"], atol=1e-3)):  # reruns: ~1e-5
            raise SystemExit(f"{path}: its candidates differ from {base_file}'s: not the same pairs")
        rows.append(row("best-of-8", reward, picks(records, "reward_values"), base, path))
    return rows


def rl_rows(paths: list[str]) -> list[dict]:
    rows = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            record = json.loads(line)
            if "paired_change" not in record:
                continue
            change = record["paired_change"]
            after = {"exact_edit": record["exact_edit_curve"][-1][1], "lost_object": record["lost_object_curve"][-1][1],
                     "oracle": record["oracle_after"]}
            algorithm, seed = record["run"].split("_")[0].upper(), record.get("seed")
            out = {"method": algorithm if seed is None else f"{algorithm}, seed {seed}",
                   "reward": next(iter(record["config"]["rewards"])),
                   "n": change["exact_edit"].get("n"), "images": record["images"], "source": path,
                   "label": record.get("label"), "group_reward_std": record.get("group_reward_std"), "seed": seed}
            for m in MEASURES:
                out[m] = {"mean": after[m], "change": change[m]["mean"], "change_se": change[m]["se"]}
            rows.append(out)
    return sorted(rows, key=lambda r: (r["method"], r["reward"]))  # an algorithm's seeds together


def markdown(rows: list[dict]) -> str:
    def cell(r, m, scale):
        value = f"{r[m]['mean'] * scale:.1f}" if scale == 100 else f"{r[m]['mean']:.3f}"
        if "change" in r[m]:
            d, se = r[m]["change"] * scale, r[m]["change_se"] * scale
            value += f" ({d:+.1f} ± {se:.1f})" if scale == 100 else f" ({d:+.3f} ± {se:.3f})"
        return value

    lines = ["| method | reward | exact edits, % (change ± SE) | lost an object, % | judge (oracle) | prompts |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        reward = r["reward"] if r["reward"] == "-" or r["reward"].startswith("oracle") else f"`{r['reward']}`"
        lines.append(f"| {r['method']} | {reward} | {cell(r, 'exact_edit', 100)} | {cell(r, 'lost_object', 100)} | "
                     f"{cell(r, 'oracle', 1)} | {r['n'] or '-'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", action="append", default=[], metavar="REWARD=FILE",
                        help="a best_of_n.py pairs file and the reward that ranked it (the first also gives one sample)")
    parser.add_argument("--rl", action="append", default=[], metavar="FILE", help="an rl_world.py JSONL")
    args = parser.parse_args()
    rows = pair_rows(args.pairs) + rl_rows(args.rl)
    for r in rows:
        print(json.dumps(r))
    print(markdown(rows))


if __name__ == "__main__":
    main()
