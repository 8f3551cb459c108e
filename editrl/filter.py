"""``editrl filter``: keep the best examples of an editing dataset by reward (the paper's data curation).

Every (source, instruction, edit) row of a JSONL/Parquet table (or a folder of them; the columns and
image cells ``editrl.tables.read_rows`` reads) is scored once with
``editrl.reward.score.score_table``, whose append-only part files let a killed run resume without
rescoring. Under ``accelerate launch`` rank r scores ``rows[r::world]`` into its own table
``scores/shard-<r>-of-<world>.parquet`` (resume with the same number of processes); rank 0 waits
for the others and merges. Rank 0 then selects the rows to keep:

1. rows whose instruction-following / visual-quality mu is below ``min_if`` / ``min_vq`` are dropped;
2. the rest are ranked by ``by`` (the fused score, or one dimension's mu), ties by row order;
3. the best ``top_k`` rows, or the best ``ceil(top_fraction * N)`` of all N rows, are kept (all of
   them when neither is given).

Written to ``out``: ``kept.jsonl`` or ``kept.parquet`` (the kept rows in the input's format and
order, relative image paths made absolute, plus ``reward_*`` score columns and ``reward_rank``),
``scores.parquet`` (every row's scores, ``row`` = position in the input), ``histogram.png`` (the
ranking scores with the cut marked) and ``summary.json``. Changing only the cut and rerunning
rescores nothing.

Several processes: ``accelerate launch --multi_gpu --num_processes 2 -m editrl.cli filter ...`` (or
``torchrun --nproc_per_node 2 -m editrl.cli filter ...``); without CUDA the ranks run on CPU.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from .config import REQUIRED, Config, config_field
from .errors import EditRLError
from .files import atomic_path, check_input, check_output, write_text_atomic

if TYPE_CHECKING:  # torch-free at import: the command checks its inputs before torch loads
    from .reward.output import RewardFunction

logger = logging.getLogger(__name__)

BY = {"fused": "score", "instruction_following": "mu_instruction_following", "visual_quality": "mu_visual_quality"}


@dataclass
class Selection:
    """Which rows to keep and why (indices into the scored rows, best first)."""

    kept: list[int]
    column: str
    threshold: float | None  # the ranking score of the last kept row (the cut); None if nothing kept
    eligible: int  # rows passing the per-dimension minimums


def check_cut(by: str, top_k: int | None, top_fraction: float | None) -> None:
    if by not in BY:
        raise EditRLError(f"--select: expected one of {sorted(BY)}, got {by!r}")
    if top_k is not None and top_fraction is not None:
        raise EditRLError("--top-k and --top-fraction: give at most one of them")
    if top_k is not None and top_k < 0:
        raise EditRLError(f"--top-k: expected a count >= 0, got {top_k}")
    if top_fraction is not None and not 0 <= top_fraction <= 1:
        raise EditRLError(f"--top-fraction: expected a fraction in [0, 1], got {top_fraction}")


def select_rows(
    scores: dict[str, np.ndarray],
    by: str = "fused",
    top_k: int | None = None,
    top_fraction: float | None = None,
    min_if: float | None = None,
    min_vq: float | None = None,
) -> Selection:
    """Apply the minimums, rank by ``by``, then cut (see the module docstring)."""
    check_cut(by, top_k, top_fraction)
    column = BY[by]
    needed = [column] + ["mu_instruction_following"] * (min_if is not None) + ["mu_visual_quality"] * (min_vq is not None)
    for name in needed:
        if name not in scores:
            raise EditRLError(f"filter: the reward gives no {name!r} (it gives {sorted(scores)}); choose another --select / minimum")
    values = np.asarray(scores[column], dtype=np.float64)
    n = len(values)
    ok = np.ones(n, dtype=bool)
    if min_if is not None:
        ok &= np.asarray(scores["mu_instruction_following"]) >= min_if
    if min_vq is not None:
        ok &= np.asarray(scores["mu_visual_quality"]) >= min_vq
    eligible = np.flatnonzero(ok)
    order = eligible[np.argsort(-values[eligible], kind="stable")]  # best first, ties by row order
    if top_k is not None:
        order = order[:top_k]
    elif top_fraction is not None:
        order = order[: math.ceil(top_fraction * n - 1e-9)]
    kept = [int(i) for i in order]
    return Selection(kept=kept, column=column, threshold=float(values[kept[-1]]) if kept else None, eligible=int(ok.sum()))


def histogram_png(
    values: np.ndarray,
    path: str,
    cut: float | None,
    title: str,
    bins: int = 30,
    size: tuple[int, int] = (640, 380),
    x_label: str = "score",
    y_label: str = "rows",
) -> None:
    """A bar histogram of ``values`` with a red line at ``cut`` and labelled axes, drawn with PIL (no
    plotting library)."""
    values = np.asarray(values, dtype=np.float64)
    width, height = size
    left, right, top, bottom = 60, 20, 30, 56
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if cut is not None:
        lo, hi = min(lo, cut), max(hi, cut)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    plot_w, plot_h = width - left - right, height - top - bottom
    x = lambda v: left + (v - lo) / (hi - lo) * plot_w  # noqa: E731 - data -> pixel
    peak = max(int(counts.max()) if counts.size else 0, 1)
    for count, a, b in zip(counts, edges[:-1], edges[1:]):
        if count:
            draw.rectangle([x(a) + 1, top + plot_h * (1 - count / peak), x(b) - 1, top + plot_h], fill=(70, 110, 180))
    draw.line([left, top + plot_h, left + plot_w, top + plot_h], fill="black")
    draw.line([left, top, left, top + plot_h], fill="black")
    for v in np.linspace(lo, hi, 5):
        draw.text((x(v) - 15, top + plot_h + 6), f"{v:.3g}", fill="black")
    draw.text((5, top - 4), str(peak), fill="black")
    draw.text((5, top + plot_h - 10), "0", fill="black")
    draw.text((left, 8), title, fill="black")
    draw.text((left + plot_w / 2 - 3 * len(x_label), height - 18), x_label, fill="black")
    label = Image.new("RGB", (8 * len(y_label) + 4, 14), "white")
    ImageDraw.Draw(label).text((2, 1), y_label, fill="black")
    label = label.rotate(90, expand=True)
    image.paste(label, (18, int(top + plot_h / 2 - label.height / 2)))
    if cut is not None:
        draw.line([x(cut), top, x(cut), top + plot_h], fill=(220, 30, 30), width=3)
        draw.text((min(x(cut) + 4, width - 90), top + 2), f"cut {cut:.3g}", fill=(220, 30, 30))
    image.save(path)


@dataclass
class FilterConfig(Config):
    """What ``editrl filter`` reads, how it cuts, and where it writes (each key is a CLI flag)."""

    data: str = config_field(REQUIRED, "A JSONL or Parquet table of (source, instruction, edit) rows, or a folder of such tables.")
    out: str = config_field(REQUIRED, "Output folder (also holds the resumable score tables).")
    by: str = config_field("fused", "Ranking score: fused, instruction_following or visual_quality (that dimension's mu).")
    top_k: int | None = config_field(None, "Keep the best K rows (after the minimums).")
    top_fraction: float | None = config_field(None, "Keep the best ceil(F * N) of all N rows (after the minimums).")
    min_if: float | None = config_field(None, "Drop rows whose instruction-following mu is below this.")
    min_vq: float | None = config_field(None, "Drop rows whose visual-quality mu is below this.")
    batch_size: int = config_field(8, "Edits per reward call.")
    chunk_size: int = config_field(256, "Rows per checkpointed part file: a killed run loses at most this many scores.")
    bins: int = config_field(30, "Histogram bins.")

    def validate(self) -> None:
        super().validate()
        check_cut(self.by, self.top_k, self.top_fraction)
        self.require_positive("batch_size", "chunk_size", "bins")
        for name in ("min_if", "min_vq", "top_fraction"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise EditRLError(f"{name}: expected a finite number, got {value!r}")


def _count_rows(path: Path) -> int:
    """Row count from Parquet metadata / JSONL lines, without decoding any image."""
    from .tables import open_arrow, parquet_file, table_files

    total = 0
    for file in table_files(path):
        if file.suffix == ".parquet":
            total += parquet_file(file).metadata.num_rows
        elif file.suffix == ".arrow":
            total += open_arrow(file).num_rows
        else:
            with open(file, "rb") as handle:
                total += sum(1 for line in handle if line.strip())
    return total


def check_inputs(config: FilterConfig) -> int:
    """The data's row count, after refusing (before any model loads) empty data and an unusable --out."""
    check_output(config.out, folder=True)
    total = _count_rows(check_input(config.data, "--data"))
    if total == 0:
        raise EditRLError(f"--data {config.data!r}: the table has no rows; nothing to score")
    return total


def _together(state, work):
    """Run ``work()`` on every rank; if it fails with an ``EditRLError`` on any rank, every rank raises
    that error (a rank that failed alone would leave the others waiting for it forever)."""
    from accelerate.utils import gather_object

    try:
        result, problem = work(), None
    except EditRLError as err:
        result, problem = None, str(err)
    problems = gather_object([problem]) if state.num_processes > 1 else [problem]
    failed = [p for p in problems if p is not None]
    if failed:
        raise EditRLError(failed[0])
    return result


def _merge_shards(scores_dir: Path, world: int, total: int):
    """All shards' tables as one pyarrow table with the global row number, sorted by it."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tables = []
    for rank in range(min(world, total)):  # a rank past the last row has no table
        table = pq.read_table(scores_dir / f"shard-{rank}-of-{world}.parquet")
        global_row = pc.add(pc.multiply(table.column("row"), world), rank)
        tables.append(table.set_column(table.schema.get_field_index("row"), "row", global_row))
    return pa.concat_tables(tables).sort_by("row")


def _absolute_images(row: dict) -> dict:
    """The row without ``_base``, its relative image paths resolved so the output works from anywhere (each
    of a list of sources too)."""
    from .reward.score import EDIT_COLUMNS, SOURCE_COLUMNS

    base = row.pop("_base", ".")
    for column in (*SOURCE_COLUMNS, *EDIT_COLUMNS):
        if column in row:
            row[column] = _absolute_cell(row[column], base)
    return row


def _absolute_cell(value, base: str):
    if isinstance(value, list):
        return [_absolute_cell(v, base) for v in value]
    if isinstance(value, str) and value and not os.path.isabs(value):
        return os.path.abspath(os.path.join(base, value))
    if isinstance(value, dict) and not value.get("bytes") and isinstance(value.get("path"), str) and not os.path.isabs(value["path"]):
        return {**value, "path": os.path.abspath(os.path.join(base, value["path"]))}
    return value


def _write_kept(data: Path, kept_rows: dict[int, int], scores, out: Path) -> Path:
    """Stream the input again and write the kept rows (input order) with their scores; a kept row that
    changed since it was scored stops the run (its scores would be attached to another row)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .reward.score import table_row_digest
    from .tables import read_rows, table_files

    score_columns = [c for c in scores.column_names if c in ("score", "score_sigma") or c.startswith(("mu_", "sigma_"))]
    by_row = {r: i for i, r in enumerate(scores.column("row").to_pylist())}
    columns = {c: scores.column(c).to_pylist() for c in score_columns}
    hashes = scores.column("row_hash").to_pylist()
    records = []
    for index, row in enumerate(read_rows(data)):
        if index in kept_rows:
            if table_row_digest(row, index) != hashes[by_row[index]]:
                raise EditRLError(f"data {str(data)!r}: {row.get('_where')} changed while the run was scoring; rerun to rescore")
            record = _absolute_images(row)
            record.update({f"reward_{c}": columns[c][by_row[index]] for c in score_columns})
            record["reward_rank"] = kept_rows[index] + 1
            records.append(record)
    as_jsonl = all(f.suffix == ".jsonl" for f in table_files(data))
    path = out / ("kept.jsonl" if as_jsonl else "kept.parquet")
    if as_jsonl:
        write_text_atomic(path, "".join(json.dumps(record) + "\n" for record in records))
    else:
        with atomic_path(path) as tmp:
            pq.write_table(pa.Table.from_pylist(records), tmp)
    return path


def process_state():
    """accelerate's ``PartialState``; ranks started by ``accelerate launch --multi_gpu`` or ``torchrun`` on a
    machine without CUDA run as CPU processes (gloo) instead of each believing it is alone."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU") or (launched and not torch.cuda.is_available()))


def filter_dataset(reward: RewardFunction, config: FilterConfig, reward_name: str = "reward") -> dict | None:
    """Score (resumably, sharded by process rank) and cut; returns the summary on rank 0, None elsewhere."""
    from .reward.identity import reward_identity
    from .reward.score import score_table
    from .tables import read_rows

    data, out, total = Path(config.data), Path(config.out), check_inputs(config)
    state = process_state()
    rank, world = state.process_index, state.num_processes
    scores_dir = out / "scores"
    if state.is_main_process:
        scores_dir.mkdir(parents=True, exist_ok=True)
    state.wait_for_everyone()
    shard_total = len(range(rank, total, world))
    identity = reward_identity(reward)
    stats = _together(state, lambda: score_table(
        reward, lambda: islice(read_rows(data), rank, None, world), scores_dir / f"shard-{rank}-of-{world}.parquet",
        batch_size=config.batch_size, chunk_size=config.chunk_size, total=shard_total, progress=state.is_local_main_process,
        identity=identity,
    ))
    logger.info("rank %d/%d: %d rows scored now, %d already scored", rank, world, stats["scored"], stats["skipped"])
    write_text_atomic(scores_dir / f"shard-{rank}-of-{world}.json", json.dumps(stats))
    state.wait_for_everyone()
    if not state.is_main_process:
        return None

    scores = _merge_shards(scores_dir, world, total)
    scored_now = sum(json.loads((scores_dir / f"shard-{r}-of-{world}.json").read_text())["scored"] for r in range(world))
    if scores.num_rows != total:
        raise EditRLError(f"data {config.data!r}: {total} rows but {scores.num_rows} scored; was the data changed during the run?")
    import pyarrow.parquet as pq

    with atomic_path(out / "scores.parquet") as tmp:
        pq.write_table(scores, tmp)
    values = {c: np.asarray(scores.column(c).to_pylist(), dtype=np.float64) for c in BY.values() if c in scores.column_names}
    selection = select_rows(values, config.by, config.top_k, config.top_fraction, config.min_if, config.min_vq)
    kept_path = _write_kept(data, {row: position for position, row in enumerate(selection.kept)}, scores, out)
    histogram_png(values[selection.column], str(out / "histogram.png"), selection.threshold,
                  f"{config.by} score of {total} rows, kept {len(selection.kept)} (red: cut)", bins=config.bins,
                  x_label=f"{config.by} score (reward mu: higher is better, no fixed scale)", y_label="rows")
    summary = {
        "rows": total, "kept": len(selection.kept), "eligible": selection.eligible, "cut": selection.threshold,
        "scored_now": scored_now, "processes": world, "reward": reward_name, **asdict(config),
        "kept_file": str(kept_path), "scores_file": str(out / "scores.parquet"), "histogram": str(out / "histogram.png"),
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2))
    return summary
