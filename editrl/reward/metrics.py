"""Agreement between reward scores and human judgements, with the conventions of the EditReward paper.

* Pairwise accuracy **with tie calibration** (arXiv 2305.14324): sweep a threshold eps over the
  predicted |score difference|; pairs with |delta| <= eps are predicted ties; report the best accuracy
  over eps in {0} + {|delta_i|} (the official evaluation's candidate set).
* Pairwise accuracy **without ties**: over pairs humans did not tie; a zero predicted difference
  counts as wrong.
* EditReward-Bench K-way **group accuracy**: a group of K candidates (K(K-1)/2 pairs) is correct only
  when every one of its pairs is: non-tied pairs by sign, tied pairs by |delta| <= eps (the eps
  calibrated on that K's pairs).
* **Spearman** correlation with human ratings per editing model, averaged over models (ImagenHub).

Human labels are +1 (first preferred), -1 (second preferred) or 0 (tie); deltas are score(first) -
score(second).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Hashable, Sequence

import numpy as np


def _arrays(labels: Sequence[int], deltas: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    labels, deltas = np.asarray(labels, dtype=np.int64), np.asarray(deltas, dtype=np.float64)
    if labels.shape != deltas.shape or labels.ndim != 1:
        raise ValueError(f"labels and deltas must be 1-D of the same length, got {labels.shape} and {deltas.shape}")
    if not np.isin(labels, (-1, 0, 1)).all():
        raise ValueError("labels must be -1, 0 or 1")
    return labels, deltas


def pair_correct(labels: Sequence[int], deltas: Sequence[float], epsilon: float | None) -> np.ndarray:
    """Per-pair correctness: ties need |delta| <= epsilon (never, if epsilon is None), others the sign."""
    labels, deltas = _arrays(labels, deltas)
    tie_ok = np.abs(deltas) <= epsilon if epsilon is not None else np.zeros_like(labels, dtype=bool)
    return np.where(labels == 0, tie_ok, np.sign(deltas) == labels)


def accuracy_without_ties(labels: Sequence[int], deltas: Sequence[float]) -> float:
    """Fraction of human-untied pairs whose predicted difference has the human's sign (NaN if none)."""
    labels, deltas = _arrays(labels, deltas)
    keep = labels != 0
    return float(np.mean(np.sign(deltas[keep]) == labels[keep])) if keep.any() else float("nan")


def tie_calibrated_accuracy(labels: Sequence[int], deltas: Sequence[float]) -> tuple[float, float]:
    """(best accuracy over all pairs, its eps): ties predicted for |delta| <= eps, eps in {0} + {|delta|}.

    Sorted once: with pairs ordered by |delta|, the pairs at or below a threshold are predicted ties,
    so accuracy(eps) = human ties among them + sign-correct non-ties above them.
    """
    labels, deltas = _arrays(labels, deltas)
    if labels.size == 0:
        return float("nan"), 0.0
    magnitude = np.abs(deltas)
    order = np.argsort(magnitude, kind="stable")
    magnitude, labels, deltas = magnitude[order], labels[order], deltas[order]
    ties_below = np.cumsum(labels == 0)  # human ties among the first k + 1 pairs
    sign_ok = (labels != 0) & (np.sign(deltas) == labels)
    correct_above = sign_ok.sum() - np.cumsum(sign_ok)
    best_acc, best_eps = -1.0, 0.0
    for eps in np.concatenate([[0.0], np.unique(magnitude)]):
        k = np.searchsorted(magnitude, eps, side="right")  # pairs with |delta| <= eps
        correct = (ties_below[k - 1] + correct_above[k - 1]) if k > 0 else sign_ok.sum()
        acc = correct / labels.size
        if acc > best_acc:
            best_acc, best_eps = float(acc), float(eps)
    return best_acc, best_eps


def group_accuracy(groups: Sequence[Hashable], labels: Sequence[int], deltas: Sequence[float], epsilon: float | None) -> tuple[int, int]:
    """(correct groups, groups): a group is correct when all its pairs are (see ``pair_correct``)."""
    correct = pair_correct(labels, deltas, epsilon)
    all_ok: dict[Hashable, bool] = {}
    for group, ok in zip(groups, correct):
        all_ok[group] = all_ok.get(group, True) and bool(ok)
    return sum(all_ok.values()), len(all_ok)


def kway_accuracy(ks: Sequence[int], groups: Sequence[Hashable], labels: Sequence[int], deltas: Sequence[float]) -> dict:
    """EditReward-Bench metrics per K and overall.

    For each K: ``pairwise_accuracy`` (tie-calibrated), ``pairwise_accuracy_without_ties``,
    ``epsilon``, ``group_accuracy``, ``groups``, ``pairs``. Overall: tie-calibrated pairwise accuracy on
    all pairs and group accuracy over all groups (correct groups / groups).
    """
    ks, labels, deltas = np.asarray(ks), *_arrays(labels, deltas)
    groups = np.asarray([str(g) for g in groups], dtype=object)
    out: dict = {}
    total_correct = total_groups = 0
    for k in sorted(set(ks.tolist())):
        sel = ks == k
        acc, eps = tie_calibrated_accuracy(labels[sel], deltas[sel])
        n_correct, n_groups = group_accuracy([(k, g) for g in groups[sel]], labels[sel], deltas[sel], eps)
        total_correct, total_groups = total_correct + n_correct, total_groups + n_groups
        out[f"k{k}"] = {
            "pairwise_accuracy": acc, "pairwise_accuracy_without_ties": accuracy_without_ties(labels[sel], deltas[sel]),
            "epsilon": eps, "group_accuracy": n_correct / n_groups, "groups": n_groups, "pairs": int(sel.sum()),
        }
    out["overall"] = {
        "pairwise_accuracy": tie_calibrated_accuracy(labels, deltas)[0],
        "group_accuracy": total_correct / total_groups if total_groups else float("nan"),
        "groups": total_groups, "pairs": int(labels.size),
    }
    return out


def rankdata(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (as scipy's default)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size, dtype=np.float64)
    sorted_values = values[order]
    start = 0
    for end in range(1, values.size + 1):
        if end == values.size or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0  # mean of ranks start+1 .. end
            start = end
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho (Pearson correlation of average ranks); NaN when either side is constant."""
    rx, ry = rankdata(x), rankdata(y)
    if rx.size < 2 or rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def spearman_per_model(models: Sequence[str], predictions: Sequence[float], humans: Sequence[float]) -> dict:
    """{"per_model": {model: rho}, "average": mean over models with a defined rho, "overall": rho on all}."""
    by_model: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for model, pred, human in zip(models, predictions, humans):
        by_model[str(model)][0].append(pred)
        by_model[str(model)][1].append(human)
    per_model = {model: spearman(p, h) for model, (p, h) in sorted(by_model.items())}
    defined = [r for r in per_model.values() if not np.isnan(r)]
    return {
        "per_model": {m: (None if np.isnan(r) else r) for m, r in per_model.items()},
        "average": float(np.mean(defined)) if defined else float("nan"),
        "overall": spearman(predictions, humans),
    }
