"""Scoring tables of edits with any reward, resumably.

``score_table`` reads rows of (source, instruction, edit), scores them in chunks and appends each
scored chunk as its own Parquet part file (``<out>.parts/part-<first row>.parquet``, written to a
temporary name then renamed), so a killed run loses at most the chunk in flight and a rerun skips
every row already scored. When all rows are scored the parts are consolidated into ``<out>`` (again
through a temporary file) and removed. ``editrl reward score`` and ``editrl filter`` both use it.

A rerun continues only the same run: every part stores the reward's identity (Parquet metadata) and
every row the digest of its content (``row_hash``; see ``editrl.reward.identity``). If the reward or
any already-scored row changed, the rerun stops before scoring anything with one line saying what
changed, so a table never mixes two runs; appending rows to the data is fine.

Input rows: any iterable of dicts, usually ``editrl.tables.read_rows`` of a JSONL/Parquet/Arrow table or
folder; image cells as ``editrl.tables.image_cell`` reads them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable, Mapping, Union

import numpy as np

from ..errors import EditRLError
from ..files import DiskFull, atomic_path, check_output
from ..images import check_instruction, open_image
from ..tables import image_cell, parquet_file
from .identity import describe_change, reward_identity, row_digest
from .output import RewardFunction, check_positive, sources_for

logger = logging.getLogger(__name__)

SOURCE_COLUMNS = ("source", "source_image", "source_img", "image_src", "path_src", "src")
INSTRUCTION_COLUMNS = ("instruction", "prompt", "instruct_prompt", "text")
EDIT_COLUMNS = ("edit", "edited", "edited_image", "output_image", "image", "path")


RUN_KEY = b"editrl.run"  # Parquet metadata key holding the reward identity of a score table
Rows = Union[Iterable[Mapping], Callable[[], Iterable[Mapping]]]


def pick(row: Mapping, names: Iterable[str], what: str, where: str):
    """The first of ``names`` present in ``row``; a clear error naming the row otherwise."""
    names = list(names)
    for name in names:
        if row.get(name) is not None:
            return row[name]
    empty = [name for name in names if name in row]
    if empty:
        raise EditRLError(f"{where}: the {what} ({empty[0]}) is empty (null)")
    raise EditRLError(f"{where}: no {what} column; expected one of {names}")


def _describe(value) -> str | None:
    """Paths are kept in the output table (bytes are not); several sources as a JSON list of theirs."""
    if isinstance(value, list):
        return json.dumps([_describe(v) for v in value])
    return value if isinstance(value, str) else None


def _result_files(out_path: Path, parts: Path) -> list[Path]:
    """The consolidated table (if any) and the part files of an unfinished run."""
    files = [out_path] if out_path.is_file() else []
    return files + (sorted(parts.glob("part-*.parquet")) if parts.is_dir() else [])


def _stored_rows(out_path: Path, parts: Path, identity: dict) -> dict[int, str]:
    """row -> content digest of every row already scored in ``out_path``; one line if another reward wrote them."""
    stored: dict[int, str] = {}
    for file in _result_files(out_path, parts):
        pf = parquet_file(file)
        meta = (pf.schema_arrow.metadata or {}).get(RUN_KEY)
        if meta is None or "row_hash" not in pf.schema_arrow.names:
            raise EditRLError(f"--out {str(out_path)!r}: {file.name} holds scores without a run fingerprint (written by an older "
                              "editrl or another tool); use another --out")
        previous = json.loads(meta)["reward"]
        if previous != identity:
            raise EditRLError(f"--out {str(out_path)!r}: holds scores of another run ({describe_change(previous, identity)}); "
                              "use another --out, or delete it to rescore")
        table = pf.read(columns=["row", "row_hash"])
        stored.update(zip(table.column("row").to_pylist(), table.column("row_hash").to_pylist()))
    return stored


def _row_parts(row: Mapping, index: int) -> tuple[str, object, str, object]:
    """(where, source cell, instruction, edit cell) of a row, each checked."""
    where = row.get("_where") or f"row {index}"
    if row.get("id") is not None:
        where += f" (id {row['id']})"
    source = pick(row, SOURCE_COLUMNS, "source image", where)
    edit = pick(row, EDIT_COLUMNS, "edited image", where)
    instruction = check_instruction(pick(row, INSTRUCTION_COLUMNS, "instruction", where), f"{where} instruction")
    return where, source, instruction, edit


def table_row_digest(row: Mapping, index: int) -> str:
    """The content digest ``row_hash`` of a table row (see ``editrl.reward.identity.row_digest``)."""
    where, source, instruction, edit = _row_parts(row, index)
    source, edit = (v.get("bytes") or v.get("path") if isinstance(v, dict) else v for v in (source, edit))
    return row_digest(row.get("id"), instruction, source, edit, row.get("_base", "."))


def _check_rows(rows: Iterable[Mapping], stored: dict[int, str], out_path: Path) -> None:
    """Every stored row must still be the same row of the data (appending rows is fine)."""
    seen = changed = 0
    first = None
    for index, row in enumerate(rows):
        seen += 1
        if index in stored and table_row_digest(row, index) != stored[index]:
            changed += 1
            first = first or (row.get("_where") or f"row {index}")
    if changed:
        raise EditRLError(f"--out {str(out_path)!r}: {changed} of the {len(stored)} rows scored there changed in the data since "
                          f"(first: {first}); use another --out, or delete it to rescore")
    extra = sorted(r for r in stored if r >= seen)
    if extra:
        raise EditRLError(f"--out {str(out_path)!r}: holds scores of row {extra[0]} but the data now has {seen} rows; "
                          "use another --out, or delete it to rescore")


def _write_parquet(records: list[dict], path: Path, identity: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(records)
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata({RUN_KEY: json.dumps({"reward": identity})}), tmp)


def _consolidate(out_path: Path, parts: Path, identity: dict) -> int:
    """One table sorted by row, each row once (a kill between the rename and the removal of the parts
    leaves both; the rows they share are the same rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.concat_tables([pq.read_table(f) for f in _result_files(out_path, parts)], promote_options="default")
    table = table.replace_schema_metadata(None).sort_by("row")
    rows = table.column("row").to_numpy()
    first = np.ones(len(rows), dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    table = table.filter(pa.array(first)) if not first.all() else table
    with atomic_path(out_path) as tmp:
        pq.write_table(table.replace_schema_metadata({RUN_KEY: json.dumps({"reward": identity})}), tmp)
    shutil.rmtree(parts)
    return table.num_rows


def score_table(
    reward: RewardFunction,
    rows: Rows,
    out_path: str | os.PathLike,
    batch_size: int = 8,
    chunk_size: int = 256,
    total: int | None = None,
    progress: bool = True,
    identity: dict | None = None,
) -> dict:
    """Score every row not yet in ``out_path`` and write one Parquet table sorted by row number.

    ``rows``: dicts with a source, an instruction and an edit (column aliases in ``SOURCE_COLUMNS``,
    ``INSTRUCTION_COLUMNS``, ``EDIT_COLUMNS``; optional ``id``), or a function returning a fresh
    iterator of them (then a resume checks every stored row before scoring anything; with a plain
    iterable it checks them as they stream by). ``identity``: the reward's identity (default
    ``reward_identity(reward)``). Output columns: ``row`` (position in ``rows``), ``id``,
    ``instruction``, ``source``/``edit`` (paths only), ``score``, ``score_sigma``, ``mu_<dim>``,
    ``sigma_<dim>``, ``row_hash``. Returns ``{"rows", "scored", "skipped", "out"}``.
    """
    from tqdm.auto import tqdm

    check_positive(batch_size, "batch_size")
    check_positive(chunk_size, "chunk_size")
    out_path = check_output(out_path)
    identity = reward_identity(reward) if identity is None else identity
    parts = out_path.with_name(out_path.name + ".parts")
    stored = _stored_rows(out_path, parts, identity)
    verified = False
    if callable(rows):
        if stored:
            _check_rows(rows(), stored, out_path)
            verified = True
        rows = rows()
    if total is None and hasattr(rows, "__len__"):
        total = len(rows)  # type: ignore[arg-type]
    scored = seen = 0
    pending: list[tuple[int, Mapping, str]] = []

    def flush() -> None:
        nonlocal scored
        if not pending:
            return
        sources, instructions, edits, meta = [], [], [], []
        for index, row, digest in pending:
            where, source, instruction, edit = _row_parts(row, index)
            base = row.get("_base", ".")
            source, edit = image_cell(source, base), image_cell(edit, base)
            sources.append([open_image(s, f"{where} source[{j}]") for j, s in enumerate(source)]
                           if isinstance(source, list) else open_image(source, f"{where} source"))
            edits.append(open_image(edit, f"{where} edit"))
            instructions.append(instruction)
            meta.append({"row": index, "id": None if row.get("id") is None else str(row["id"]), "instruction": instruction,
                         "source": _describe(source), "edit": _describe(edit), "row_hash": digest})
        sources = sources_for(reward, sources)  # a row may list several sources
        output = _score_chunk(reward, sources, instructions, edits, [m["row"] for m in meta], pending, batch_size)
        records = [{**m, **r} for m, r in zip(meta, output.to_records())]
        parts.mkdir(parents=True, exist_ok=True)
        _write_parquet(records, parts / f"part-{pending[0][0]:09d}.parquet", identity)
        scored += len(pending)
        bar.update(len(pending))
        pending.clear()

    try:
        with tqdm(total=total, initial=len(stored), desc="scoring", unit="edit", disable=not progress) as bar:
            for index, row in enumerate(rows):
                seen += 1
                if index in stored:
                    if not verified and table_row_digest(row, index) != stored[index]:
                        raise EditRLError(f"--out {str(out_path)!r}: {row.get('_where') or f'row {index}'} changed in the data "
                                          "since it was scored there; use another --out, or delete it to rescore")
                    continue
                pending.append((index, row, table_row_digest(row, index)))
                if len(pending) >= chunk_size:
                    flush()
            flush()
        if not verified and any(r >= seen for r in stored):
            raise EditRLError(f"--out {str(out_path)!r}: holds scores of row {max(stored)} but the data now has {seen} rows; "
                              "use another --out, or delete it to rescore")
        if seen == 0 and not stored:
            return {"rows": 0, "scored": 0, "skipped": 0, "out": None}  # nothing to score: nothing written
        written = _consolidate(out_path, parts, identity) if parts.is_dir() else len(stored)
    except DiskFull as err:  # every complete part is kept: say so, so the user reruns instead of starting over
        raise DiskFull(err.path, f"the {len(stored) + scored} rows scored so far are kept in {str(parts)!r}; free space and "
                                 "rerun the same command to continue from them") from None
    logger.info("scored %d rows (%d already in %s)", scored, seen - scored, out_path)
    return {"rows": written, "scored": scored, "skipped": seen - scored, "out": str(out_path)}


def _score_chunk(reward, sources, instructions, edits, rows, pending, batch_size):
    """Score one chunk; if the reward refuses it, find the row it refuses so the error names it."""
    try:
        return reward.score(sources, instructions, edits, batch_size=batch_size)
    except EditRLError:
        if len(sources) == 1:
            raise
    for k, (index, row, _) in enumerate(pending):
        try:
            reward.score(sources[k:k + 1], instructions[k:k + 1], edits[k:k + 1], batch_size=batch_size)
        except EditRLError as err:
            raise EditRLError(f"{row.get('_where') or f'row {index}'}: {err}") from None
    raise EditRLError("the reward refused a chunk of rows but accepted each row alone")
