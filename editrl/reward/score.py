"""Scoring tables of edits with any reward, resumably.

``score_table`` reads rows of (source, instruction, edit), scores them in chunks and appends each
scored chunk as its own Parquet part file (``<out>.parts/part-<first row>.parquet``, written to a
temporary name then renamed), so a killed run loses at most the chunk in flight and a rerun skips
every row already scored. When all rows are scored the parts are consolidated into ``<out>`` (again
through a temporary file) and removed. ``editrl reward score`` and ``editrl filter`` both use it.

Input tables: a JSONL file, a Parquet file, or a folder of them. Image cells may be paths (relative
to the table's folder), bytes, or Hugging Face ``{"bytes", "path"}`` dicts.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from ..errors import EditRLError
from ..images import load_image
from .output import RewardFunction

logger = logging.getLogger(__name__)

SOURCE_COLUMNS = ("source", "source_image", "source_img", "image_src", "path_src", "src")
INSTRUCTION_COLUMNS = ("instruction", "prompt", "instruct_prompt", "text")
EDIT_COLUMNS = ("edit", "edited", "edited_image", "output_image", "image", "path")
TABLE_SUFFIXES = (".jsonl", ".parquet")


def _table_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in TABLE_SUFFIXES)
        if not files:
            raise EditRLError(f"data {str(path)!r}: a folder without .jsonl or .parquet files")
        return files
    if not path.is_file():
        raise EditRLError(f"data {str(path)!r}: no such file or folder; expected a JSONL or Parquet table, or a folder of them")
    if path.suffix not in TABLE_SUFFIXES:
        raise EditRLError(f"data {str(path)!r}: expected a .jsonl or .parquet file")
    return [path]


def read_rows(path: str | os.PathLike) -> Iterator[dict]:
    """Rows of a JSONL/Parquet table or folder, as dicts; image cells resolved to paths or bytes.

    Each row gets ``_base`` (the folder its relative paths resolve against). Parquet files are read
    batch by batch, so large tables with embedded images stream.
    """
    for file in _table_files(Path(path)):
        if file.suffix == ".jsonl":
            with open(file, encoding="utf-8") as handle:
                for line_number, line in enumerate(handle, 1):
                    if line.strip():
                        try:
                            row = json.loads(line)
                        except json.JSONDecodeError as err:
                            raise EditRLError(f"{file}:{line_number}: not valid JSON ({err.msg})") from None
                        yield {**row, "_base": str(file.parent)}
        else:
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(file).iter_batches(batch_size=64):
                for row in batch.to_pylist():
                    yield {**row, "_base": str(file.parent)}


def pick(row: Mapping, names: Iterable[str], what: str, where: str):
    """The first of ``names`` present in ``row``; a clear error naming the row otherwise."""
    for name in names:
        if name in row and row[name] is not None:
            return row[name]
    raise EditRLError(f"{where}: no {what} column; expected one of {list(names)}")


def image_cell(value, base: str):
    """A table cell as something ``load_image`` reads: bytes, or a path resolved against ``base``."""
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if isinstance(value, str) and not os.path.isabs(value):
        return os.path.join(base, value)
    return value


def _describe(value) -> str | None:
    """Paths are kept in the output table (bytes are not)."""
    return value if isinstance(value, str) else None


def _result_files(out_path: Path, parts: Path) -> list[Path]:
    """The consolidated table (if any) and the part files of an unfinished run."""
    files = [out_path] if out_path.is_file() else []
    return files + (sorted(parts.glob("part-*.parquet")) if parts.is_dir() else [])


def _done_rows(out_path: Path, parts: Path) -> set[int]:
    import pyarrow.parquet as pq

    done: set[int] = set()
    for file in _result_files(out_path, parts):
        done.update(pq.read_table(file, columns=["row"]).column("row").to_pylist())
    return done


def _write_parquet(records: list[dict], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(records), tmp)
    os.replace(tmp, path)


def _consolidate(out_path: Path, parts: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.concat_tables([pq.read_table(f) for f in _result_files(out_path, parts)], promote_options="default")
    table = table.sort_by("row")
    tmp = out_path.with_name(out_path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, out_path)
    shutil.rmtree(parts)
    return table.num_rows


def score_table(
    reward: RewardFunction,
    rows: Iterable[Mapping],
    out_path: str | os.PathLike,
    batch_size: int = 8,
    chunk_size: int = 256,
    total: int | None = None,
    progress: bool = True,
) -> dict:
    """Score every row not yet in ``out_path`` and write one Parquet table sorted by row number.

    ``rows``: dicts with a source, an instruction and an edit (column aliases in ``SOURCE_COLUMNS``,
    ``INSTRUCTION_COLUMNS``, ``EDIT_COLUMNS``; optional ``id``). Output columns: ``row`` (position in
    ``rows``), ``id``, ``instruction``, ``source``/``edit`` (paths only), ``score``, ``score_sigma``,
    ``mu_<dim>``, ``sigma_<dim>``. Returns ``{"rows", "scored", "skipped", "out"}``.
    """
    from tqdm.auto import tqdm

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    parts = out_path.with_name(out_path.name + ".parts")
    done = _done_rows(out_path, parts)
    if total is None and hasattr(rows, "__len__"):
        total = len(rows)  # type: ignore[arg-type]
    scored = seen = 0
    pending: list[tuple[int, Mapping]] = []

    def flush() -> None:
        nonlocal scored
        if not pending:
            return
        sources, instructions, edits, meta = [], [], [], []
        for index, row in pending:
            where = f"row {index}" + (f" (id {row['id']})" if row.get("id") is not None else "")
            base = row.get("_base", ".")
            source = image_cell(pick(row, SOURCE_COLUMNS, "source image", where), base)
            edit = image_cell(pick(row, EDIT_COLUMNS, "edited image", where), base)
            sources.append(load_image(source, f"{where} source"))
            edits.append(load_image(edit, f"{where} edit"))
            instructions.append(pick(row, INSTRUCTION_COLUMNS, "instruction", where))
            meta.append({"row": index, "id": None if row.get("id") is None else str(row["id"]),
                         "instruction": instructions[-1], "source": _describe(source), "edit": _describe(edit)})
        output = reward.score(sources, instructions, edits, batch_size=batch_size)
        records = [{**m, **r} for m, r in zip(meta, output.to_records())]
        parts.mkdir(exist_ok=True)
        _write_parquet(records, parts / f"part-{pending[0][0]:09d}.parquet")
        scored += len(pending)
        bar.update(len(pending))
        pending.clear()

    with tqdm(total=total, initial=len(done), desc="scoring", unit="edit", disable=not progress) as bar:
        for index, row in enumerate(rows):
            seen += 1
            if index in done:
                continue
            pending.append((index, row))
            if len(pending) >= chunk_size:
                flush()
        flush()
    written = _consolidate(out_path, parts) if parts.is_dir() else len(done)
    logger.info("scored %d rows (%d already in %s)", scored, seen - scored, out_path)
    return {"rows": written, "scored": scored, "skipped": seen - scored, "out": str(out_path)}
