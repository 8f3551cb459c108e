"""Simulated human annotators and Krippendorff's alpha.

An annotator's Likert score is the oracle's continuous value on the 1-4 scale plus the annotator's own
bias and per-item noise, rounded and clipped. The noise levels are calibrated (see
``benchmarks/world_annotators.py``) so that three annotators agree about as much as the paper's
humans: Krippendorff's alpha (interval) ~0.67 on instruction following and ~0.60 on visual quality,
on the candidate mix the world's data generators produce. Three-annotator groups give one label per
item: the median, cross-checked by a fourth annotator when the three spread over more than one point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import EditRLError

LEVELS = ("nominal", "ordinal", "interval")


def krippendorff_alpha(ratings: np.ndarray, level: str = "interval") -> float:
    """Krippendorff's alpha of a (coders, units) array; NaN marks a missing rating.

    Built on the coincidence matrix: every ordered pair of values given to the same unit by two
    different coders adds 1/(m_u - 1), where m_u is the unit's number of ratings; units with fewer than
    two ratings are not pairable. alpha = 1 - (n - 1) * sum(o_ck d_ck) / sum(n_c n_k d_ck).
    """
    if level not in LEVELS:
        raise EditRLError(f"level: expected one of {LEVELS}, got {level!r}")
    data = np.asarray(ratings, dtype=np.float64)
    if data.ndim != 2:
        raise EditRLError(f"ratings: expected a (coders, units) array, got shape {data.shape}")
    values = np.unique(data[~np.isnan(data)])
    index = {v: i for i, v in enumerate(values)}
    coincidence = np.zeros((len(values), len(values)))
    for unit in data.T:
        present = unit[~np.isnan(unit)]
        m = len(present)
        if m < 2:
            continue
        for a in range(m):
            for b in range(m):
                if a != b:
                    coincidence[index[present[a]], index[present[b]]] += 1.0 / (m - 1)
    totals = coincidence.sum(1)
    n = totals.sum()
    if n < 2 or len(values) < 2:
        return 1.0  # a single value everywhere: no disagreement possible
    if level == "nominal":
        delta = 1.0 - np.eye(len(values))
    elif level == "interval":
        delta = (values[:, None] - values[None, :]) ** 2
    else:
        cum = np.concatenate([[0.0], np.cumsum(totals)])
        lo = np.minimum.outer(np.arange(len(values)), np.arange(len(values)))
        hi = np.maximum.outer(np.arange(len(values)), np.arange(len(values)))
        delta = (cum[hi + 1] - cum[lo] - (totals[lo] + totals[hi]) / 2.0) ** 2
    observed = (coincidence * delta).sum()
    expected = (np.outer(totals, totals) * delta).sum()
    return float(1.0 - (n - 1) * observed / expected) if expected > 0 else 1.0


@dataclass
class AnnotatorPanel:
    """A pool of simulated annotators; each has a fixed bias per dimension drawn from ``seed``.

    ``noise``/``bias`` are standard deviations on the 1-4 scale per dimension (instruction following,
    visual quality); the defaults are the calibrated ones.
    """

    noise: tuple[float, float] = (0.95, 0.64)
    bias: tuple[float, float] = (0.15, 0.15)
    n_annotators: int = 20
    seed: int = 0

    def __post_init__(self):
        rng = np.random.default_rng(self.seed)
        self.biases = rng.normal(0.0, 1.0, (self.n_annotators, 2)) * np.asarray(self.bias)

    def rate(self, values: np.ndarray, annotators: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Likert scores (len(annotators), B, 2) of oracle ``values`` (B, 2) in [0, 1]."""
        values = np.asarray(values, dtype=np.float64)
        latent = 1.0 + 3.0 * values[None] + self.biases[np.asarray(annotators)][:, None, :]
        latent = latent + rng.normal(0.0, 1.0, latent.shape) * np.asarray(self.noise)
        return np.clip(np.rint(latent), 1, 4).astype(np.int64)

    def label(self, values: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(labels (B, 2), ratings (3, B, 2)): three distinct annotators per item rate it; the label is
        their median, or the median of four when a cross-checking fourth annotator was needed
        (the three spread over more than one point)."""
        values = np.asarray(values, dtype=np.float64)
        batch = len(values)
        ratings = np.empty((3, batch, 2), dtype=np.int64)
        labels = np.empty((batch, 2), dtype=np.int64)
        for i in range(batch):
            who = rng.choice(self.n_annotators, size=4, replace=False)
            four = self.rate(values[i : i + 1], who, rng)[:, 0]  # (4, 2)
            ratings[:, i] = four[:3]
            three = four[:3]
            spread = three.max(0) - three.min(0)
            labels[i] = np.where(spread > 1, np.floor(np.median(four, 0) + 0.5), np.median(three, 0)).astype(np.int64)
        return labels, ratings
