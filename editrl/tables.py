"""Reading tables (JSONL, Parquet, Arrow; a file or a folder of them) and their image cells, for every reader.

Rows come out as dicts with two extra keys: ``_base`` (the folder relative image paths resolve against) and
``_where`` (file and line or row, so every error about a row is one line naming it). Parquet and Arrow files
stream batch by batch, so tables with embedded images need not fit in memory.

An image cell is a path (relative to the table's folder), encoded bytes, or a Hugging Face datasets dict
``{"bytes", "path"}``; ``image_cell`` turns any of them into what ``editrl.images.open_image`` reads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from .errors import EditRLError
from .files import check_link

TABLE_SUFFIXES = (".jsonl", ".parquet", ".arrow")


def table_files(path: str | os.PathLike, suffixes: tuple[str, ...] = TABLE_SUFFIXES) -> list[Path]:
    """``path`` itself, or the table files of the folder ``path`` (sorted, searched recursively)."""
    path, kinds = Path(path), " or ".join(suffixes)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in suffixes and not p.is_dir())
        if not files:
            raise EditRLError(f"data {str(path)!r}: a folder without {kinds} files")
        for file in files:
            check_link(file, "data")
        return files
    check_link(path, "data")
    if not path.is_file():
        raise EditRLError(f"data {str(path)!r}: no such file or folder; expected a {kinds} table, or a folder of them")
    if path.suffix not in suffixes:
        raise EditRLError(f"data {str(path)!r}: expected a {kinds} file")
    return [path]


def parquet_file(file: Path):
    """``pyarrow.parquet.ParquetFile``, or one line naming the file if it is not Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as err:
        raise EditRLError(f"{file}: not a readable Parquet file ({err})") from None


def open_arrow(path: str | os.PathLike):
    """An Arrow IPC file or stream (Hugging Face datasets writes streams), memory-mapped, as a pyarrow Table."""
    import pyarrow as pa

    try:
        try:
            return pa.ipc.open_file(pa.memory_map(str(path))).read_all()
        except pa.ArrowInvalid:
            return pa.ipc.open_stream(pa.memory_map(str(path))).read_all()
    except (pa.ArrowException, OSError) as err:
        raise EditRLError(f"{path}: not a readable Arrow file ({err})") from None


def _jsonl_rows(file: Path) -> Iterator[dict]:
    try:
        handle = open(file, "rb")  # bytes, so a bad byte is reported with its own line number
    except OSError as err:
        raise EditRLError(f"{file}: cannot be read ({err.strerror or err})") from None
    with handle:
        for line_number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise EditRLError(f"{file}:{line_number}: not UTF-8 text (byte {raw[err.start]:#04x} at column {err.start + 1}); "
                                  "save the table as UTF-8") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise EditRLError(f"{file}:{line_number}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise EditRLError(f"{file}:{line_number}: expected a JSON object per line, got a {type(row).__name__}")
            yield {**row, "_base": str(file.parent), "_where": f"{file}:{line_number}"}


def _bad_text(batch) -> tuple[int, str]:
    """(row in ``batch``, column) of the first text cell that is not UTF-8 (a writer that did not validate it)."""
    for k in range(batch.num_rows):
        for name in batch.schema.names:
            try:
                batch.column(name).slice(k, 1).to_pylist()
            except UnicodeDecodeError:
                return k, name
    raise AssertionError("to_pylist failed on the batch but on none of its cells")


def _columnar_rows(file: Path) -> Iterator[dict]:
    batches = parquet_file(file).iter_batches(batch_size=64) if file.suffix == ".parquet" else open_arrow(file).to_batches(64)
    number = 0
    for batch in batches:
        try:
            rows = batch.to_pylist()
        except UnicodeDecodeError:
            k, column = _bad_text(batch)
            raise EditRLError(f"{file} row {number + k}: the {column!r} cell is not valid UTF-8 text; save the table's "
                              "text as UTF-8") from None
        for row in rows:
            yield {**row, "_base": str(file.parent), "_where": f"{file} row {number}"}
            number += 1


def read_rows(path: str | os.PathLike, suffixes: tuple[str, ...] = TABLE_SUFFIXES) -> Iterator[dict]:
    """Rows of a table file or folder (``suffixes``: the kinds of file taken), as dicts with ``_base`` and ``_where``."""
    for file in table_files(path, suffixes):
        yield from (_jsonl_rows(file) if file.suffix == ".jsonl" else _columnar_rows(file))


def image_cell(value: Any, base: str | os.PathLike = ".") -> Any:
    """A table cell as something ``open_image`` reads: bytes, a path resolved against ``base``, or (an image,
    an array) the value itself; None for an empty cell. A list cell (a prompt's several source images) gives
    the list of its cells."""
    if isinstance(value, (list, tuple)):
        return [image_cell(v, base) for v in value]
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if isinstance(value, (bytes, bytearray, str)) and not value:
        return None
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, str) and not os.path.isabs(value):
        return os.path.join(base, value)
    return value
