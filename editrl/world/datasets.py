"""Generators of world data in the public EditReward schemas (Parquet, images as PNG struct columns).

- ``make_preference_data``: EditReward-Data rows (one pair of edits of one instruction, with three-
  annotator Likert scores per dimension, overall = IF + VQ in 2..8, and vote_type left/right/tie).
- ``make_benchmark``: EditReward-Bench rows (one row per pairwise comparison; K = 2, 3, 4 candidate
  groups share the id prefix before "_"; comparison_type "AvsC" and ranking "A>C"/"C>A"/"A=C" use the
  group's letters, as the official files do).

Candidate edits come from an edits source ``candidates(example, n, seed) -> list[(model, PIL)]``. The
default, ``corrupted_candidates``, corrupts the exact target in content (one of the clean wrong
outcomes of ``editrl.world.audit``: the object deleted, another object edited, a wrong value, nothing
done, ...) and/or quality (noise, blur, JPEG, 1-pixel shift), naming the "model" after the corruption. ``editor_candidates`` wraps any callable ``(example, n, seed) -> list[PIL]``
(e.g. the shipped world editor). Labels come from simulated annotators; the exact oracle values are
kept beside them (``*_oracle_*`` columns) to measure the annotator ceiling.
"""

from __future__ import annotations

import io
import itertools
import logging
import random
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageFilter
from tqdm.auto import tqdm

from ..errors import EditRLError
from ..files import atomic_path
from .annotators import AnnotatorPanel
from .audit import CATEGORIES, wrong_outcome
from .examples import WorldExample, make_examples
from .oracle import Oracle

logger = logging.getLogger(__name__)

Candidates = Callable[[WorldExample, int, int], list[tuple[str, Image.Image]]]

# the exact target 30% of the time, else one of the audit's clean wrong outcomes
CONTENT = {"exact": 0.3, **{category: 0.7 / len(CATEGORIES) for category in CATEGORIES}}
QUALITY = {"clean": 0.4, "noise": 0.2, "blur": 0.2, "jpeg": 0.1, "shift": 0.1}


# -- candidate edits --------------------------------------------------------------------------------
def _content(example: WorldExample, kind: str, rng: random.Random) -> Image.Image | None:
    """The exact target, or one clean wrong outcome of ``editrl.world.audit`` (None if it does not apply)."""
    if kind == "exact":
        return example.target
    if kind not in CONTENT:
        raise EditRLError(f"content corruption: expected one of {sorted(CONTENT)}, got {kind!r}")
    return wrong_outcome(example, kind, rng)


def _quality(image: Image.Image, kind: str, rng: random.Random, noise_std: tuple[float, float] = (6, 30),
             blur_radius: tuple[float, float] = (0.5, 1.4), jpeg_quality: tuple[int, int] = (15, 50)) -> Image.Image:
    """``image`` with one quality corruption of ``kind``, its strength drawn from the given ranges."""
    if kind == "clean":
        return image
    if kind == "noise":
        noise = np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(*noise_std), (image.height, image.width, 3))
        return Image.fromarray((np.asarray(image) + noise).clip(0, 255).astype(np.uint8))
    if kind == "blur":
        return image.filter(ImageFilter.GaussianBlur(rng.uniform(*blur_radius)))
    if kind == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=rng.randint(*jpeg_quality))
        return Image.open(buffer).convert("RGB")
    if kind == "shift":
        return Image.fromarray(np.roll(np.asarray(image), rng.choice([-1, 1]), axis=rng.randint(0, 1)))
    raise EditRLError(f"quality corruption: expected one of {sorted(QUALITY)}, got {kind!r}")


def corrupted_candidates(example: WorldExample, n: int, seed: int) -> list[tuple[str, Image.Image]]:
    """``n`` procedural candidate edits with pairwise different corruption names ("model" names)."""
    rng = random.Random(f"candidates-{seed}-{example.instruction}")
    out: dict[str, Image.Image] = {}
    for _ in range(200):
        if len(out) == n:
            break
        content = rng.choices(list(CONTENT), weights=list(CONTENT.values()))[0]
        quality = rng.choices(list(QUALITY), weights=list(QUALITY.values()))[0]
        name = content if quality == "clean" else f"{content}+{quality}"
        if name in out:
            continue
        image = _content(example, content, rng)
        if image is not None:
            out[name] = _quality(image, quality, rng)
    if len(out) < n:
        raise EditRLError(f"candidates: could only make {len(out)} distinct corruptions of {example.instruction!r}, asked {n}")
    return list(out.items())


def editor_candidates(candidates: Callable[[WorldExample, int, int], list[Image.Image]], name: str = "editor") -> Candidates:
    """An edits source from any callable ``(example, n, seed) -> list[PIL]``; candidates are named "<name>-<i>"."""

    def source(example: WorldExample, n: int, seed: int) -> list[tuple[str, Image.Image]]:
        images = candidates(example, n, seed)
        if len(images) != n:
            raise EditRLError(f"editor: asked for {n} candidates, got {len(images)}")
        return [(f"{name}-{i}", image) for i, image in enumerate(images)]

    return source


# -- rows ---------------------------------------------------------------------------------------------
def png_cell(image: Image.Image) -> dict:
    """An image cell as Hugging Face datasets stores it in Parquet: {"bytes": PNG, "path": None}."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def _annotate(examples_images: list[tuple[WorldExample, Image.Image]], oracle: Oracle, panel: AnnotatorPanel, rng: np.random.Generator):
    values = np.array(oracle.evaluate([e.source for e, _ in examples_images], [e.instruction for e, _ in examples_images], [i for _, i in examples_images]))
    labels, _ = panel.label(values, rng)
    return values, labels


def write_parquet(rows: list[dict], path: Path) -> None:
    """Write atomically (``files.atomic_path``) so an interrupted run never leaves a half table."""
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.Table.from_pylist(rows)
    schema = pa.schema([pa.field(f.name, image) if pa.types.is_struct(f.type) else f for f in table.schema])
    table = table.cast(schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def preference_rows(
    n: int, seed: int = 0, split: str = "train", size: int = 64, edits: Candidates = corrupted_candidates,
    panel: AnnotatorPanel | None = None, oracle: Oracle | None = None,
) -> list[dict]:
    """``n`` EditReward-Data rows, one pair of candidate edits per world example."""
    oracle, panel = oracle or Oracle(), panel or AnnotatorPanel()
    rng = np.random.default_rng(seed)
    rows = []
    for i, example in enumerate(tqdm(make_examples(n, seed, split, size), desc="preference pairs", leave=False)):
        (left_model, left), (right_model, right) = edits(example, 2, seed * 1_000_003 + i)
        values, labels = _annotate([(example, left), (example, right)], oracle, panel, rng)
        overall = labels.sum(1)
        rows.append({
            "id": f"world-{split}-{seed}-{i:06d}",
            "instruction": example.instruction,
            "task": example.task,
            "source_img": png_cell(example.source),
            "left_output_image": png_cell(left),
            "right_output_image": png_cell(right),
            "left_model": left_model,
            "right_model": right_model,
            "left_instruction_following_score": int(labels[0, 0]),
            "left_quality_aesthetic_score": int(labels[0, 1]),
            "left_overall_score": int(overall[0]),
            "right_instruction_following_score": int(labels[1, 0]),
            "right_quality_aesthetic_score": int(labels[1, 1]),
            "right_overall_score": int(overall[1]),
            "vote_type": "left" if overall[0] > overall[1] else "right" if overall[1] > overall[0] else "tie",
            "left_oracle_instruction_following": float(values[0, 0]),
            "left_oracle_quality": float(values[0, 1]),
            "right_oracle_instruction_following": float(values[1, 0]),
            "right_oracle_quality": float(values[1, 1]),
        })
    return rows


def benchmark_rows(
    n_groups: int, seed: int = 0, ks: tuple[int, ...] = (2, 3, 4), size: int = 64, edits: Candidates = corrupted_candidates,
    hard_fraction: float = 0.3, panel: AnnotatorPanel | None = None, oracle: Oracle | None = None,
) -> dict[int, list[dict]]:
    """EditReward-Bench rows per K: ``n_groups`` groups of K candidates each, from the test split.

    A ``hard_fraction`` of the groups only admit candidates whose oracle overall values lie within
    0.25 of each other (small score gaps: e.g. the right edit with different degradations).
    """
    oracle, panel = oracle or Oracle(), panel or AnnotatorPanel(seed=1)
    rng = np.random.default_rng(seed + 7)
    out: dict[int, list[dict]] = {}
    examples = make_examples(n_groups * len(ks), seed, "test", size)
    progress = tqdm(total=n_groups * len(ks), desc="benchmark groups", leave=False)
    for j, k in enumerate(ks):
        rows = []
        for g in range(n_groups):
            example = examples[j * n_groups + g]
            hard = g < round(hard_fraction * n_groups)
            pool = edits(example, k + (4 if hard else 0), seed * 1_000_003 + j * 100_000 + g)
            values = np.array(oracle.evaluate([example.source] * len(pool), [example.instruction] * len(pool), [im for _, im in pool]))
            chosen = list(range(k))
            if hard:  # the k candidates with the smallest spread of oracle overall value
                overall = values.mean(1)
                chosen = min(itertools.combinations(range(len(pool)), k), key=lambda c: np.ptp(overall[list(c)]))
            labels, _ = panel.label(values[list(chosen)], rng)
            letters = "ABCD"
            group = f"world{k}x{g:05d}"
            for a, b in itertools.combinations(range(k), 2):
                ia, ib = chosen[a], chosen[b]
                sa, sb = int(labels[a].sum()), int(labels[b].sum())
                la, lb = letters[a], letters[b]
                ranking = f"{la}>{lb}" if sa > sb else f"{lb}>{la}" if sb > sa else f"{la}={lb}"
                rows.append({
                    "id": f"{group}_{la}{lb}",
                    "dataset": "world",
                    "instruction": example.instruction,
                    "source_image": png_cell(example.source),
                    "candidate_1": png_cell(pool[ia][1]),
                    "candidate_2": png_cell(pool[ib][1]),
                    "ranking": ranking,
                    "comparison_type": f"{la}vs{lb}",
                    "score_1": sa,
                    "score_2": sb,
                    "model_1": pool[ia][0],
                    "model_2": pool[ib][0],
                    "hard": bool(hard),
                    "oracle_1": float(values[ia].mean()),
                    "oracle_2": float(values[ib].mean()),
                })
            progress.update()
        out[k] = rows
    progress.close()
    return out


def make_preference_data(out: str | Path, n: int, seed: int = 0, size: int = 64, edits: Candidates = corrupted_candidates,
                         split: str = "train") -> Path:
    """Write ``out/train.parquet`` (EditReward-Data schema) from ``split``'s examples; returns its path."""
    path = Path(out) / "train.parquet"
    write_parquet(preference_rows(n, seed, split, size, edits), path)
    logger.info("wrote %d preference pairs to %s", n, path)
    return path


def make_benchmark(out: str | Path, n_groups: int, seed: int = 0, size: int = 64, edits: Candidates = corrupted_candidates) -> list[Path]:
    """Write ``out/{2,3,4}pair.parquet`` (EditReward-Bench schema); returns their paths."""
    paths = []
    for k, rows in benchmark_rows(n_groups, seed, size=size, edits=edits).items():
        path = Path(out) / f"{k}pair.parquet"
        write_parquet(rows, path)
        paths.append(path)
        logger.info("wrote %d comparisons (%d groups of %d) to %s", len(rows), n_groups, k, path)
    return paths
