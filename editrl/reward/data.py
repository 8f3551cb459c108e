"""Human preference data for EditReward: readers, pair construction, tie disentangling.

Every reader turns its schema into ``EditComparison`` rows (two edits of one source, each with
per-dimension Likert scores), and ``build_pairs`` turns rows into training ``PreferencePair``s.
Images stay *references* (a path, encoded bytes, or a cell of an Arrow/Parquet file) until a batch
needs them; ``load_pair_images`` decodes them through ``editrl.images.load_image``.

Schemas read:

- **EditReward-Data** (``format: editreward``; the public TIGER-Lab/EditReward-Data Parquet/Arrow
  files and what ``editrl world make-data`` writes): ``instruction``, ``source_img``,
  ``left_output_image``, ``right_output_image``,
  ``{left,right}_{instruction_following,quality_aesthetic,overall}_score``, and optionally ``id``,
  ``vote_type``, ``left_model``, ``right_model``. Image cells may be HF-datasets dicts
  ``{"bytes", "path"}``, raw bytes, or path strings (relative paths resolve against the file's folder).
- **official train.json** (``format: train_json``): a JSON list of objects with ``path1`` (the
  preferred edit), ``path2``, ``path_src``, ``prompt``, ``model{1,2}_dim{1,2}_score`` (dim1 =
  instruction following, dim2 = visual quality), optional ``model{1,2}_overall_score`` and
  ``tie_case``. Without scores, path1 wins (or, with a truthy ``tie_case``, it is a tie).
- **editrl JSONL** (``format: jsonl``), one object per line::

      {"id": "optional-string", "source": "src.png", "instruction": "make the sky red",
       "edit_a": "a.png", "edit_b": "b.png", "scores_a": [4, 3], "scores_b": [2, 3],
       "overall_a": 7, "overall_b": 5}

  ``scores_*`` are per-dimension Likert scores (instruction following, visual quality);
  ``overall_*`` are optional (default: the sum). Image paths resolve against the JSONL's folder.
- **synthetic** (``format: synthetic``): generated in memory for tests and the tiny config; see
  ``synthetic_comparisons`` for exactly how the scores depend on the images.

Pair construction (``build_pairs``): the winner is the edit with the higher overall score. A tie
(equal overall) is, by ``ties``: ``"drop"``; ``"keep"`` (one pair with label 0.5, i.e. both orders
weighted equally); or ``"disentangle"`` (paper section 3.3: a tie where A is better on one dimension
and B on another becomes two pairs, A>B and B>A, each with label 1; ties equal on every dimension
carry no preference signal and are dropped). The summary counts every kind.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import logging
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image

from ..config import Config, config_field
from ..errors import EditRLError
from ..images import load_image
from ..tables import image_cell, open_arrow, parquet_file, read_rows, table_files

logger = logging.getLogger(__name__)

FORMATS = ("editreward", "train_json", "jsonl", "synthetic")
TIE_POLICIES = ("disentangle", "keep", "drop")
HARD_NEGATIVES = ("unchanged_source", "other_instruction", "swapped_word")
# Word classes of ``swapped_word`` negatives: generic words an edit instruction uses for attributes that exclude one
# another (an edit that makes the car red does not make it blue; a side is swapped within its axis). Synonyms
# (grey/gray, big/large) are left out, as are shapes (a "cross", a "ring", a "square" are often no shape in real
# captions): a swap that the edit still follows is no negative. A dataset names its own (the world:
# ``editrl.world.instructions.SWAP_WORDS``).
SWAP_WORDS = (
    ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "gray"),
    ("small", "medium", "large"),
    ("left", "right"),
    ("top", "bottom"),
)
SWAP_WORDS_KEY = [list(words) for words in SWAP_WORDS]  # the config key's default (YAML lists)
EDITREWARD_DIMENSIONS = ("instruction_following", "quality_aesthetic")


@dataclass(frozen=True)
class ArrowCell:
    """An image stored in column ``column``, row ``row`` of an Arrow/Parquet file, read on demand."""

    path: str
    column: str
    row: int


ImageRef = Any  # str path | bytes | ArrowCell


@dataclass(frozen=True)
class EditComparison:
    """One annotated row: two edits of the same source with per-dimension scores."""

    row_id: str
    source: ImageRef
    instruction: str
    edit_a: ImageRef
    edit_b: ImageRef
    scores_a: tuple[float, ...] | None
    scores_b: tuple[float, ...] | None
    overall_a: float | None = None
    overall_b: float | None = None
    a_preferred: bool | None = None
    """Only for rows without scores: the annotated winner (True: a, False: b, None: tie)."""


@dataclass(frozen=True)
class PreferencePair:
    """A training sample: ``chosen`` is preferred to ``rejected`` with probability ``label``."""

    pair_id: str
    source: ImageRef
    instruction: str
    chosen: ImageRef
    rejected: ImageRef
    chosen_scores: tuple[float, ...] | None
    rejected_scores: tuple[float, ...] | None
    label: float
    kind: str  # "strict" | "tie" | "disentangled" | "negative" (add_hard_negatives)
    rejected_instruction: str | None = None
    """The instruction the rejected edit is scored under (None: ``instruction``): a hard negative scores the
    chosen edit under an instruction it does not follow."""
    mirrored: bool = False
    """True for the second pair of a disentangled tie, the first one mirrored: a metric counts the tie once."""


# --------------------------------------------------------------------------- image references


class _ArrowFiles:
    """Open Arrow files memory-mapped and Parquet row groups on demand (a small cache of row groups)."""

    def __init__(self, max_row_groups: int = 6):
        self._tables: dict[str, Any] = {}
        self._parquet: dict[str, tuple[Any, np.ndarray]] = {}
        self._row_groups: OrderedDict[tuple[str, str, int], Any] = OrderedDict()
        self._max_row_groups = max_row_groups

    def table(self, path: str):
        if path not in self._tables:
            self._tables[path] = open_arrow(path)
        return self._tables[path]

    def cell(self, ref: ArrowCell):
        if not ref.path.endswith(".parquet"):
            return self.table(ref.path).column(ref.column)[ref.row].as_py()
        if ref.path not in self._parquet:
            parquet = parquet_file(Path(ref.path))
            sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
            self._parquet[ref.path] = parquet, np.cumsum([0] + sizes)
        parquet, offsets = self._parquet[ref.path]
        group = int(np.searchsorted(offsets, ref.row, side="right") - 1)
        key = (ref.path, ref.column, group)
        if key not in self._row_groups:
            self._row_groups[key] = parquet.read_row_group(group, columns=[ref.column]).column(0)
            while len(self._row_groups) > self._max_row_groups:
                self._row_groups.popitem(last=False)
        self._row_groups.move_to_end(key)
        return self._row_groups[key][ref.row - int(offsets[group])].as_py()


_FILES = _ArrowFiles()


def resolve_image_ref(ref: ImageRef, base: Path = Path(".")) -> ImageRef | None:
    """Bytes or a path for ``ref`` (reading an ``ArrowCell`` from its file)."""
    if isinstance(ref, ArrowCell):
        return image_cell(_FILES.cell(ref), Path(ref.path).parent)
    return image_cell(ref, base)


def load_pair_images(pair: PreferencePair):
    """(source, chosen, rejected) as RGB PIL images; errors name the pair and the image."""
    return tuple(
        load_image(resolve_image_ref(getattr(pair, name)), f"pair {pair.pair_id} {name}")
        for name in ("source", "chosen", "rejected")
    )


def _check_image(ref: ImageRef, verify: bool) -> str | None:
    """Why ``ref`` is unusable (missing / unreadable), or None."""
    resolved = resolve_image_ref(ref)
    if resolved is None:
        return "missing image"
    if isinstance(resolved, str) and not Path(resolved).is_file():
        return f"no image file at {resolved!r}"
    if verify:
        try:
            with Image.open(io.BytesIO(resolved) if isinstance(resolved, bytes) else resolved) as image:
                image.verify()
        except Exception as err:  # PIL raises many types for corrupt data
            return f"unreadable image ({type(err).__name__}: {err})"
    return None


# --------------------------------------------------------------------------- readers


def _score(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def read_editreward_data(path: str | Path) -> Iterable[EditComparison]:
    """Rows of EditReward-Data Parquet/Arrow files (one file or a folder of them)."""
    image_columns = ("source_img", "left_output_image", "right_output_image")
    for file in table_files(path, (".parquet", ".arrow")):
        if file.suffix == ".parquet":
            schema_names = parquet_file(file).schema_arrow.names
            table = parquet_file(file).read(columns=[c for c in schema_names if c not in image_columns])
        else:
            table = _FILES.table(str(file))
            schema_names = table.column_names
        required = ["instruction", *image_columns] + [
            f"{side}_{dim}_score" for side in ("left", "right") for dim in EDITREWARD_DIMENSIONS
        ]
        missing = [c for c in required if c not in schema_names]
        if missing:
            raise EditRLError(f"{file}: not EditReward-Data schema, missing columns {missing}")
        columns = {name: table.column(name).to_pylist() for name in table.column_names if name not in image_columns}
        for i in range(table.num_rows):
            row_id = str(columns["id"][i]) if "id" in columns else f"{file.name}:{i}"
            yield EditComparison(
                row_id=row_id,
                source=ArrowCell(str(file), "source_img", i),
                instruction=columns["instruction"][i],
                edit_a=ArrowCell(str(file), "left_output_image", i),
                edit_b=ArrowCell(str(file), "right_output_image", i),
                scores_a=tuple(_score(columns[f"left_{d}_score"][i]) for d in EDITREWARD_DIMENSIONS),
                scores_b=tuple(_score(columns[f"right_{d}_score"][i]) for d in EDITREWARD_DIMENSIONS),
                overall_a=_score(columns.get("left_overall_score", [None] * table.num_rows)[i]),
                overall_b=_score(columns.get("right_overall_score", [None] * table.num_rows)[i]),
            )


def _official_scores(sample: dict, model: int) -> tuple[float, ...] | None:
    scores = [sample.get(f"model{model}_dim{d}_score") for d in (1, 2)]
    if all(s is None for s in scores):
        return None
    return tuple(_score(s) for s in scores)


def read_train_json(path: str | Path) -> Iterable[EditComparison]:
    """Rows of the official training repo's train.json (path1 is the annotated winner)."""
    path = Path(path)
    try:
        samples = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise EditRLError(f"train.json {str(path)!r}: not a readable JSON list ({err})") from None
    if not isinstance(samples, list):
        raise EditRLError(f"train.json {str(path)!r}: expected a JSON list of objects, got {type(samples).__name__}")
    for i, sample in enumerate(samples):
        scores_a, scores_b = _official_scores(sample, 1), _official_scores(sample, 2)
        yield EditComparison(
            row_id=str(sample.get("id", f"{path.name}:{i}")),
            source=image_cell(sample.get("path_src"), path.parent),
            instruction=sample.get("prompt", ""),
            edit_a=image_cell(sample.get("path1"), path.parent),
            edit_b=image_cell(sample.get("path2"), path.parent),
            scores_a=scores_a,
            scores_b=scores_b,
            overall_a=_score(sample.get("model1_overall_score")),
            overall_b=_score(sample.get("model2_overall_score")),
            a_preferred=None if sample.get("tie_case") else True,
        )


def read_jsonl(path: str | Path) -> Iterable[EditComparison]:
    """Rows of editrl's own JSONL schema (see the module docstring)."""
    for obj in read_rows(path, (".jsonl",)):
        base = obj["_base"]
        yield EditComparison(
            row_id=str(obj.get("id", Path(obj["_where"]).name)),  # <file name>:<line>
            source=image_cell(obj.get("source"), base),
            instruction=obj.get("instruction", ""),
            edit_a=image_cell(obj.get("edit_a"), base),
            edit_b=image_cell(obj.get("edit_b"), base),
            scores_a=tuple(_score(s) for s in obj["scores_a"]) if obj.get("scores_a") is not None else None,
            scores_b=tuple(_score(s) for s in obj["scores_b"]) if obj.get("scores_b") is not None else None,
            overall_a=_score(obj.get("overall_a")),
            overall_b=_score(obj.get("overall_b")),
        )


def _encode_png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def synthetic_comparisons(num_rows: int, seed: int = 0, size: int = 64) -> list[EditComparison]:
    """Comparisons whose human scores are a known function of the edited images.

    Each source is a random blocky colour image. Each edit scales the source's brightness by a
    factor b in [0.25, 1] and adds a green colour cast of level n in {0, 1, 2, 3} (+30 n on the green
    channel, clipped). The scores are ``instruction_following = 1 + min(3, floor(4 (b - 0.25) / 0.75))``
    ("make it brighter") and ``visual_quality = 4 - n`` (the cast is the defect). A model can only
    predict the preference by looking at the edits; pairs tie on overall score often enough to
    exercise the tie policies.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(num_rows):
        coarse = rng.uniform(40, 255, size=(4, 4, 3))
        source = np.kron(coarse, np.ones((size // 4, size // 4, 1)))

        def edit() -> tuple[bytes, tuple[float, float]]:
            b, n = rng.uniform(0.25, 1.0), int(rng.integers(0, 4))
            pixels = source * b
            pixels[..., 1] += 30 * n
            return (_encode_png(pixels.clip(0, 255).astype(np.uint8)),
                    (float(1 + min(3, math.floor(4 * (b - 0.25) / 0.75))), float(4 - n)))

        (a, scores_a), (b_, scores_b) = edit(), edit()
        rows.append(EditComparison(
            row_id=f"synthetic-{seed}:{i}", source=_encode_png(source.astype(np.uint8)),
            instruction="make the image brighter without changing its colours",
            edit_a=a, edit_b=b_, scores_a=scores_a, scores_b=scores_b,
        ))
    return rows


# --------------------------------------------------------------------------- validation and pairs


def check_comparison(
    row: EditComparison, score_range: tuple[float, float], num_dimensions: int, verify_images: bool
) -> str | None:
    """Why ``row`` cannot be used, or None."""
    if not isinstance(row.instruction, str) or not row.instruction.strip():
        return "empty instruction"
    low, high = score_range
    for side, scores in (("a", row.scores_a), ("b", row.scores_b)):
        if scores is None:
            continue
        if len(scores) != num_dimensions:
            return f"scores_{side} has {len(scores)} values, expected {num_dimensions}"
        for s in scores:
            if s is None or not low <= s <= high:
                return f"score {s} of edit {side} outside [{low}, {high}]"
    if (row.scores_a is None) != (row.scores_b is None):
        return "scores given for one edit only"
    for overall in (row.overall_a, row.overall_b):
        if overall is not None and not num_dimensions * low <= overall <= num_dimensions * high:
            return f"overall score {overall} outside [{num_dimensions * low}, {num_dimensions * high}]"
    for name in ("source", "edit_a", "edit_b"):
        reason = _check_image(getattr(row, name), verify_images)
        if reason:
            return f"{name}: {reason}"
    return None


def build_pairs(
    rows: Iterable[EditComparison],
    ties: str = "disentangle",
    score_range: tuple[float, float] = (1.0, 4.0),
    num_dimensions: int = 2,
    strict: bool = False,
    verify_images: bool = True,
) -> tuple[list[PreferencePair], dict[str, int]]:
    """Training pairs from annotated rows, and a summary of how many of each kind were built.

    Bad rows are logged with their row id and skipped (counted in ``summary["bad_rows"]``), or raise
    ``EditRLError`` on the first one when ``strict``.
    """
    if ties not in TIE_POLICIES:
        raise EditRLError(f"data.ties {ties!r}: expected one of {TIE_POLICIES}")
    pairs: list[PreferencePair] = []
    summary = dict(rows=0, bad_rows=0, strict_pairs=0, ties=0, ties_kept=0, ties_dropped=0,
                   ties_disentangled=0, ties_without_dimension_preference=0, pairs=0)

    def add(row: EditComparison, suffix: str, a_first: bool, label: float, kind: str, mirrored: bool = False) -> None:
        chosen, rejected = ("a", "b") if a_first else ("b", "a")
        pairs.append(PreferencePair(
            pair_id=row.row_id + suffix, source=row.source, instruction=row.instruction,
            chosen=getattr(row, f"edit_{chosen}"), rejected=getattr(row, f"edit_{rejected}"),
            chosen_scores=getattr(row, f"scores_{chosen}"), rejected_scores=getattr(row, f"scores_{rejected}"),
            label=label, kind=kind, mirrored=mirrored,
        ))

    for row in rows:
        summary["rows"] += 1
        reason = check_comparison(row, score_range, num_dimensions, verify_images)
        if reason:
            if strict:
                raise EditRLError(f"row {row.row_id}: {reason} (strict mode stops at the first bad row)")
            logger.warning("skipping row %s: %s", row.row_id, reason)
            summary["bad_rows"] += 1
            continue
        if row.scores_a is None:
            winner = row.a_preferred
        else:
            overall_a = row.overall_a if row.overall_a is not None else sum(row.scores_a)
            overall_b = row.overall_b if row.overall_b is not None else sum(row.scores_b)
            winner = None if overall_a == overall_b else overall_a > overall_b
        if winner is not None:
            add(row, "", winner, 1.0, "strict")
            summary["strict_pairs"] += 1
            continue
        summary["ties"] += 1
        if ties == "keep":
            add(row, "", True, 0.5, "tie")
            summary["ties_kept"] += 1
        elif ties == "drop":
            summary["ties_dropped"] += 1
        else:
            a_wins = row.scores_a is not None and any(x > y for x, y in zip(row.scores_a, row.scores_b))
            b_wins = row.scores_a is not None and any(y > x for x, y in zip(row.scores_a, row.scores_b))
            if a_wins and b_wins:
                add(row, "#a>b", True, 1.0, "disentangled")
                add(row, "#b>a", False, 1.0, "disentangled", mirrored=True)
                summary["ties_disentangled"] += 1
            else:
                summary["ties_without_dimension_preference"] += 1
    summary["pairs"] = len(pairs)
    if summary["bad_rows"]:
        logger.warning("skipped %d bad rows of %d", summary["bad_rows"], summary["rows"])
    return pairs, summary


def check_hard_negatives(kinds: Sequence[str]) -> None:
    """One line unless ``kinds`` are distinct names of ``HARD_NEGATIVES`` (the config key and the function alike)."""
    if any(k not in HARD_NEGATIVES for k in kinds) or len(set(kinds)) != len(kinds):
        raise EditRLError(f"data.hard_negatives {list(kinds)}: expected distinct names among {list(HARD_NEGATIVES)}")


def check_swap_words(classes: Sequence[Sequence[str]], required: bool = True) -> None:
    """One line unless ``classes`` is a list of classes, each at least two distinct single words (strings), and no
    word is in two classes; empty only when no ``swapped_word`` negative is ``required`` from it."""
    seen: set[str] = set()
    if not isinstance(classes, (list, tuple)) or (required and not classes):
        raise EditRLError(f"data.swap_words: expected a non-empty list of word lists (data.hard_negatives has "
                          f"swapped_word), got {classes!r}" if required else
                          f"data.swap_words: expected a list of word lists, got {classes!r}")
    for words in classes:
        ok = isinstance(words, (list, tuple)) and all(isinstance(w, str) and re.fullmatch(r"[A-Za-z]+", w) for w in words)
        lowered = [w.lower() for w in words] if ok else []
        if len(lowered) < 2 or len(lowered) != len(set(lowered)):
            raise EditRLError(f"data.swap_words: each class must be a list of at least two distinct single words, got {words!r}")
        if seen & set(lowered):
            raise EditRLError(f"data.swap_words: {sorted(seen & set(lowered))} in two classes")
        seen |= set(lowered)


def swap_classes(classes: Sequence[Sequence[str]]) -> dict[str, list[str]]:
    """word -> the other words of its class (lower case), the lookup ``swap_word`` uses."""
    return {w.lower(): [v.lower() for v in words if v.lower() != w.lower()] for words in classes for w in words}


def swap_word(instruction: str, classes: Sequence[Sequence[str]] | dict[str, list[str]], rng) -> str | None:
    """``instruction`` with one word of a ``classes`` class (or a ``swap_classes`` lookup) replaced by another word of
    that class (drawn with ``rng``; lower case, Capitalised and UPPER case kept), or None where it holds no such word."""
    others = classes if isinstance(classes, dict) else swap_classes(classes)
    found = [m for m in re.finditer(r"[A-Za-z]+", instruction) if m.group().lower() in others]
    if not found:
        return None
    match = rng.choice(found)
    word, new = match.group(), rng.choice(others[match.group().lower()])
    new = new.upper() if word.isupper() and len(word) > 1 else new.capitalize() if word[0].isupper() else new
    return instruction[:match.start()] + new + instruction[match.end():]


def add_hard_negatives(pairs: Sequence[PreferencePair], kinds: Sequence[str], min_score: float | None = None,
                       seed: int = 0, swap_words: Sequence[Sequence[str]] = SWAP_WORDS,
                       ) -> tuple[list[PreferencePair], dict[str, int]]:
    """``pairs`` plus label-free hard negatives built from the data itself, and how many of each were added.

    For every strict pair whose chosen edit is good enough (its instruction-following score at least
    ``min_score``; every strict pair when None or when the row has no scores), one pair per kind:

    - ``unchanged_source``: the chosen edit over the source returned unchanged (an edit that does nothing
      follows no edit instruction);
    - ``other_instruction``: the chosen edit under its own instruction over the same edit under another
      row's instruction (drawn with ``seed``), so the score must read the instruction, not only the images;
    - ``swapped_word``: the chosen edit under its own instruction over the same edit under that instruction with one
      attribute word swapped for another of its class (``swap_words``; by default a colour, a size or a side), as
      NegCLIP swaps words of captions. Another row's instruction mostly names objects the scene lacks; this one names
      the wrong value or the wrong object of the same scene, the errors that need the instruction read word by word.
      Instructions with no such word give none.

    Annotated pairs teach the reward what annotators prefer; where both edits of a row failed alike, they
    never show it an edit that ignores the instruction, and a reward can rank them by image cleanliness
    alone (the world's first rewards preferred deleting the edited object to the exact target). These pairs
    carry no human scores (kind ``negative``): the pairwise losses use them, the regression loss cannot. They train
    the fused score, as every pair does, so the visual-quality head learns from them too (``loss.per_dimension``
    adds an instruction-following term for them). Without ``min_score`` a pair decided by visual quality alone also
    yields negatives whose winner may not follow its instruction; ``other_instruction`` excludes only the identical
    string, so a paraphrase of the row's own instruction can be drawn.
    """
    import random

    check_hard_negatives(kinds)
    check_swap_words(swap_words, required="swapped_word" in kinds)
    # one generator per kind that draws, so adding a kind leaves the others' draws as they were
    rngs = {kind: random.Random(seed if kind == "other_instruction" else f"{seed}-{kind}") for kind in kinds}
    others = swap_classes(swap_words)
    instructions = sorted({p.instruction for p in pairs})
    out, added = list(pairs), {kind: 0 for kind in kinds}
    for pair in pairs:
        if pair.kind != "strict" or pair.label != 1.0:
            continue
        if min_score is not None and pair.chosen_scores is not None and pair.chosen_scores[0] < min_score:
            continue
        for kind in kinds:
            if kind == "unchanged_source":
                if pair.chosen == pair.source:  # the chosen edit is the source itself: nothing to prefer
                    continue
                change = dict(pair_id=f"{pair.pair_id}#unchanged", rejected=pair.source)
            elif kind == "other_instruction":
                if len(instructions) < 2:
                    continue
                other = pair.instruction
                while other == pair.instruction:
                    other = rngs[kind].choice(instructions)
                change = dict(pair_id=f"{pair.pair_id}#instruction", rejected=pair.chosen, rejected_instruction=other)
            else:
                swapped = swap_word(pair.instruction, others, rngs[kind])
                if swapped is None:
                    continue
                change = dict(pair_id=f"{pair.pair_id}#swapped", rejected=pair.chosen, rejected_instruction=swapped)
            out.append(dataclasses.replace(pair, **change, chosen_scores=None, rejected_scores=None, kind="negative"))
            added[kind] += 1
    return out, added


@dataclass
class DataSource(Config):
    """Where a split's rows come from (``train`` / ``validation`` sections of the data config)."""

    format: str = config_field("synthetic", "One of editreward (Parquet/Arrow), train_json, jsonl, synthetic.")
    path: str | None = config_field(None, "File or folder (editreward) of the data; unused for synthetic.")
    num_rows: int = config_field(256, "synthetic only: how many comparisons to generate.")
    seed: int = config_field(0, "synthetic only: generator seed (use different seeds for train and validation).")
    size: int = config_field(64, "synthetic only: image side in pixels.")
    limit: int | None = config_field(None, "Read at most this many rows (null: all).")

    def validate(self) -> None:
        super().validate()
        if self.format not in FORMATS:
            raise EditRLError(f"data format {self.format!r}: expected one of {FORMATS}")
        if self.format != "synthetic" and not self.path:
            raise EditRLError(f"data format {self.format!r} needs a path")

    def read(self) -> Iterable[EditComparison]:
        if self.format == "synthetic":
            rows: Iterable[EditComparison] = synthetic_comparisons(self.num_rows, self.seed, self.size)
        else:
            reader = {"editreward": read_editreward_data, "train_json": read_train_json, "jsonl": read_jsonl}
            rows = reader[self.format](self.path)
        if self.limit is not None:
            rows = itertools.islice(rows, self.limit)
        return rows


def load_preference_pairs(
    source: DataSource, ties: str, score_range: Sequence[float], strict: bool, verify_images: bool
) -> tuple[list[PreferencePair], dict[str, int]]:
    """Read ``source`` and build its pairs (see ``build_pairs``)."""
    return build_pairs(source.read(), ties=ties, score_range=tuple(score_range), strict=strict,
                       verify_images=verify_images)
