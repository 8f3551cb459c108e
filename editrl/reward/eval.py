"""Evaluating a reward on the public benchmark schemas, with the paper's metrics.

Formats (``editrl reward eval --format``):

* ``editreward-bench``: TIGER-Lab/EditReward-Bench Parquet files (2pair/3pair/4pair), one row per
  pairwise comparison with ``id``, ``instruction``, ``source_image``, ``candidate_1``,
  ``candidate_2``, ``ranking`` (``A>B`` / ``B>A`` / ``A=B...``). K-way groups are rebuilt from the id
  prefix (the id up to its last ``group_sep``); K comes from the file name (``3pair``) or from the
  number of pairs in the group (K(K-1)/2).
* ``pairs``: GenAI-Bench / AURORA-Bench style pairs: a source, an instruction, two edits (``edit_a`` /
  ``left_output`` / ``candidate_1`` ...) and the human judgement as ``vote_type``
  (leftvote/rightvote/tie/bothbad_vote), ``ranking``, ``label`` (+1/-1/0) or two human scores.
* ``pointwise``: ImagenHub style: a source, an instruction, an edit, a human ``score`` (or ``rating`` /
  ``human_score``) and the editing ``model``.

Each edit is scored once even when it appears in several pairs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from ..errors import EditRLError
from ..files import check_output, write_text_atomic
from ..images import check_instruction, open_image
from ..tables import image_cell, read_rows, table_files
from . import metrics
from .output import RewardFunction, check_positive
from .score import (
    EDIT_COLUMNS,
    INSTRUCTION_COLUMNS,
    SOURCE_COLUMNS,
    pick,
)

FORMATS = ("editreward-bench", "pairs", "pointwise")
EDIT_A_COLUMNS = ("candidate_1", "edit_a", "left_output", "left_output_image", "left_image", "image_1", "path1")
EDIT_B_COLUMNS = ("candidate_2", "edit_b", "right_output", "right_output_image", "right_image", "image_2", "path2")
HUMAN_SCORE_COLUMNS = ("human_score", "score", "rating", "human_rating")
MODEL_COLUMNS = ("model", "editing_model", "model_name")
ORACLE_COLUMNS = ("oracle_1", "oracle_2")
"""Exact quality of each candidate, where the bench has it (the world's benches do): the metrics of these
values against the human (or simulated-annotator) labels are the ``ceiling`` a reward can hope to reach."""
CHANCE_DRAWS = 20
"""Random scorers averaged for the ``chance`` reference: what the metrics give a reward that ignores the images."""
VOTES = {"leftvote": 1, "rightvote": -1, "tievote": 0, "tie": 0, "bothbad_vote": 0, "bothgood_vote": 0}


def ranking_label(ranking: str, where: str, comparison_type: str | None = None) -> int:
    """+1 / -1 / 0 for candidate_1 against candidate_2 from an EditReward-Bench ranking string.

    Rankings name the candidates by their letters in the group (``A>B``, ``C>A``, ``A=C``, ``A=B=Good``);
    candidate_1's letter is the first of ``comparison_type`` (``AvsC``), else the earlier letter.
    """
    match = re.match(r"^([A-Z])([<>=])([A-Z])", str(ranking).replace(" ", ""))
    if not match:
        raise EditRLError(f"{where}: ranking {ranking!r} not understood; expected e.g. A>B, B>A, A=B or C>A")
    x, op, y = match.groups()
    pair = re.match(r"^([A-Z])vs([A-Z])$", str(comparison_type or ""))
    first = pair.group(1) if pair else min(x, y)
    if op == "=":
        return 0
    winner = x if op == ">" else y
    return 1 if winner == first else -1


def ranking_letters(row: Mapping) -> str:
    """The candidate letters a row's ``ranking`` and ``comparison_type`` name (empty without a ranking)."""
    if row.get("vote_type") is not None or row.get("ranking") is None:
        return ""
    return "".join(sorted(set(re.findall(r"[A-Z]", re.sub(r"=Good|=Bad|vs", "", f"{row['ranking']} {row.get('comparison_type') or ''}")))))


def check_candidates(letters: str, k: int, ranking, where: str) -> None:
    """A ranking may only name the first ``k`` letters (a K-candidate group has A..)."""
    allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:k]
    outside = [c for c in letters if c not in allowed]
    if outside:
        raise EditRLError(f"{where}: ranking {ranking!r} names candidate {outside[0]}, but the group has {k} candidates "
                          f"({'/'.join(allowed)})")


def pair_label(row: Mapping, where: str) -> int:
    """The human preference of a pair row: vote_type, ranking, label, or the sign of two human scores."""
    if row.get("vote_type") is not None:
        vote = str(row["vote_type"]).lower()
        if vote not in VOTES:
            raise EditRLError(f"{where}: vote_type {row['vote_type']!r} not understood; expected one of {sorted(VOTES)}")
        return VOTES[vote]
    if row.get("ranking") is not None:
        return ranking_label(row["ranking"], where, row.get("comparison_type"))
    if row.get("label") is not None:
        return int(np.sign(float(row["label"])))
    for a, b in (("score_1", "score_2"), ("score_a", "score_b"), ("left_score", "right_score"),
                 ("left_overall_score", "right_overall_score")):
        if row.get(a) is not None and row.get(b) is not None:
            return int(np.sign(float(row[a]) - float(row[b])))
    raise EditRLError(f"{where}: no human judgement; expected vote_type, ranking, label or two human scores")


def _digest(cell) -> str:
    data = cell if isinstance(cell, bytes) else str(cell).encode()
    return hashlib.sha1(data).hexdigest()


class _EditCache:
    """Collects (source, instruction, edit) triples, scoring each distinct one once."""

    def __init__(self):
        self.keys: dict[tuple, int] = {}
        self.items: list[tuple] = []

    def add(self, source, instruction: str, edit, where: str) -> int:
        key = (_digest(source), instruction, _digest(edit))
        if key not in self.keys:
            self.keys[key] = len(self.items)
            self.items.append((source, instruction, edit, where))
        return self.keys[key]

    def score(self, reward: RewardFunction, batch_size: int, progress: bool) -> np.ndarray:
        from tqdm.auto import tqdm

        scores = np.empty(len(self.items))
        chunk = max(batch_size, 1) * 8
        for start in tqdm(range(0, len(self.items), chunk), desc="scoring", disable=not progress, unit="chunk"):
            part = self.items[start: start + chunk]
            sources = [open_image(s, f"{w} source") for s, _, _, w in part]
            edits = [open_image(e, f"{w} edit") for _, _, e, w in part]
            out = reward.score(sources, [i for _, i, _, _ in part], edits, batch_size=batch_size)
            scores[start: start + len(part)] = out.score.numpy()
        return scores


def _k_from_name(path: str) -> int | None:
    match = re.search(r"(\d)[-_]?pair", Path(path).name, flags=re.IGNORECASE)
    return int(match.group(1)) if match else None


def _k_from_pairs(n_pairs: int) -> int:
    k = (1 + math.isqrt(1 + 8 * n_pairs)) // 2
    return k if k * (k - 1) // 2 == n_pairs else 0


def _rows_with_file(path: Path, fmt: str) -> Iterable[tuple[str, dict]]:
    files = table_files(path)
    if fmt == "editreward-bench" and path.is_dir() and any(_k_from_name(str(f)) for f in files):
        files = [f for f in files if _k_from_name(str(f))]  # the K-pair files, not other tables beside them
    for file in files:
        for row in read_rows(file):
            yield str(file), row


def _pairwise(reward, path: Path, fmt: str, batch_size: int, group_sep: str, progress: bool) -> tuple[dict, list[dict]]:
    cache = _EditCache()
    pairs, oracle = [], []
    for number, (file, row) in enumerate(_rows_with_file(path, fmt)):
        where = f"{Path(file).name} row {number}" + (f" (id {row['id']})" if row.get("id") is not None else "")
        base = row["_base"]
        source = image_cell(pick(row, SOURCE_COLUMNS, "source image", where), base)
        instruction = check_instruction(pick(row, INSTRUCTION_COLUMNS, "instruction", where), f"{where} instruction")
        a = cache.add(source, instruction, image_cell(pick(row, EDIT_A_COLUMNS, "first edit", where), base), where)
        b = cache.add(source, instruction, image_cell(pick(row, EDIT_B_COLUMNS, "second edit", where), base), where)
        row_id = str(row.get("id", number))
        group = row_id.rsplit(group_sep, 1)[0] if group_sep in row_id else row_id
        if all(row.get(column) is not None for column in ORACLE_COLUMNS):
            oracle.append(float(row[ORACLE_COLUMNS[0]]) - float(row[ORACLE_COLUMNS[1]]))
        pairs.append({"id": row_id, "file": Path(file).name, "group": f"{file}:{group}", "a": a, "b": b,
                      "label": pair_label(row, where), "k": _k_from_name(file), "where": where,
                      "ranking": row.get("ranking"), "letters": ranking_letters(row)})
    if not pairs:
        raise EditRLError(f"bench {str(path)!r}: no rows")
    if fmt == "pairs":
        ks = [2] * len(pairs)
    else:
        sizes: dict[str, int] = {}
        for p in pairs:
            sizes[p["group"]] = sizes.get(p["group"], 0) + 1
        ks = [p["k"] or _k_from_pairs(sizes[p["group"]]) for p in pairs]
    for p, k in zip(pairs, ks):  # before scoring: a label that does not fit its group is a broken benchmark
        check_candidates(p["letters"], max(k, 2), p["ranking"], p["where"])
    if len(oracle) != len(pairs):
        oracle = []  # a ceiling only where every row carries the exact values
    scores = cache.score(reward, batch_size, progress)
    labels = np.array([p["label"] for p in pairs])
    if fmt == "pairs":
        def pair_metrics(deltas):
            acc, eps = metrics.tie_calibrated_accuracy(labels, deltas)
            return {"pairs": len(pairs), "accuracy_with_ties": acc, "epsilon": eps,
                    "accuracy_without_ties": metrics.accuracy_without_ties(labels, deltas)}
    else:
        def pair_metrics(deltas):
            return metrics.kway_accuracy(ks, [p["group"] for p in pairs], labels, deltas)

    def deltas_of(values):
        return np.array([values[p["a"]] - values[p["b"]] for p in pairs])

    deltas = deltas_of(scores)
    result = {"format": fmt, **pair_metrics(deltas)}
    epsilons = [result["epsilon"]] * len(pairs) if fmt == "pairs" else [result[f"k{k}"]["epsilon"] for k in ks]
    rng = np.random.default_rng(0)
    result["chance"] = _mean_metrics([pair_metrics(deltas_of(rng.standard_normal(len(scores)))) for _ in range(CHANCE_DRAWS)])
    if oracle:
        result["ceiling"] = pair_metrics(np.array(oracle))
    predictions = [
        {"id": p["id"], "file": p["file"], "group": p["group"].split(":", 1)[1], "label": p["label"],
         "score_1": float(scores[p["a"]]), "score_2": float(scores[p["b"]]), "delta": float(d),
         "correct": bool(metrics.pair_correct([p["label"]], [d], eps)[0])}
        for p, d, eps in zip(pairs, deltas, epsilons)
    ]
    return result, predictions


def _mean_metrics(results: list[dict]):
    """Leaf-wise mean of metric dicts of one shape (counts and names are equal across them)."""
    first = results[0]
    if isinstance(first, dict):
        return {key: _mean_metrics([r[key] for r in results]) for key in first}
    if isinstance(first, float):
        return float(np.nanmean(results)) if not all(math.isnan(r) for r in results) else float("nan")
    return first


def _pointwise(reward, path: Path, batch_size: int, progress: bool) -> tuple[dict, list[dict]]:
    cache = _EditCache()
    items = []
    for number, (file, row) in enumerate(_rows_with_file(path, "pointwise")):
        where = f"{Path(file).name} row {number}"
        base = row["_base"]
        index = cache.add(image_cell(pick(row, SOURCE_COLUMNS, "source image", where), base),
                          check_instruction(pick(row, INSTRUCTION_COLUMNS, "instruction", where), f"{where} instruction"),
                          image_cell(pick(row, EDIT_COLUMNS, "edited image", where), base), where)
        items.append({"id": str(row.get("id", number)), "model": str(pick(row, MODEL_COLUMNS, "editing model", where)),
                      "human": float(pick(row, HUMAN_SCORE_COLUMNS, "human score", where)), "index": index})
    if not items:
        raise EditRLError(f"bench {str(path)!r}: no rows")
    scores = cache.score(reward, batch_size, progress)
    predictions = [{"id": it["id"], "model": it["model"], "human": it["human"], "score": float(scores[it["index"]])} for it in items]
    result = metrics.spearman_per_model([p["model"] for p in predictions], [p["score"] for p in predictions], [p["human"] for p in predictions])
    return {"format": "pointwise", "items": len(items), "spearman_average": result["average"],
            "spearman_overall": result["overall"], "spearman_per_model": result["per_model"]}, predictions


def evaluate(
    reward: RewardFunction,
    bench: str | os.PathLike,
    fmt: str,
    predictions_path: str | os.PathLike | None = None,
    batch_size: int = 8,
    group_sep: str = "_",
    progress: bool = True,
) -> dict:
    """Score a benchmark and return its metrics (JSON-ready); per-item predictions go to a JSONL file."""
    if fmt not in FORMATS:
        raise EditRLError(f"format {fmt!r}: expected one of {list(FORMATS)}")
    check_positive(batch_size, "batch_size")
    path = Path(bench)
    if not path.exists():
        raise EditRLError(f"bench {str(bench)!r}: no such file or folder")
    if predictions_path is not None:
        check_output(predictions_path, "--predictions")
    if fmt == "pointwise":
        result, predictions = _pointwise(reward, path, batch_size, progress)
    else:
        result, predictions = _pairwise(reward, path, fmt, batch_size, group_sep, progress)
    if predictions_path is not None:
        predictions_path = Path(predictions_path)
        predictions_path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(predictions_path, "".join(json.dumps(record) + "\n" for record in predictions))
        result["predictions"] = str(predictions_path)
    return _json_ready(result)


def _json_ready(value):
    """NaN -> None so the printed object is valid JSON."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
