"""The one atomic writer: a failed write leaves the old file and no temporary behind."""

from __future__ import annotations

import pytest

from editrl.files import atomic_path, write_text_atomic


def test_a_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "scores.json"
    path.write_text("old")
    assert write_text_atomic(path, "new") == path
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["scores.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "table.parquet"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["table.parquet"]


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    from editrl.files import atomic_folder

    folder = tmp_path / "lora"
    folder.mkdir()
    (folder / "old.bin").write_text("old")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_folder(folder) as tmp:
            (tmp / "new.bin").write_text("half")
            raise RuntimeError("killed")
    assert [p.name for p in folder.iterdir()] == ["old.bin"] and sorted(p.name for p in tmp_path.iterdir()) == ["lora"]
    with atomic_folder(folder) as tmp:
        (tmp / "new.bin").write_text("new")
    assert [p.name for p in folder.iterdir()] == ["new.bin"] and sorted(p.name for p in tmp_path.iterdir()) == ["lora"]


def test_a_default_folder_taken_by_a_run_or_a_file_gets_the_next_number(tmp_path):
    from editrl.files import fresh_folder

    base = tmp_path / "runs" / "best-of-n"
    first = fresh_folder(base)  # runs/ is created too
    assert first == base and first.is_dir() and list(first.iterdir()) == []
    (first / "scores.json").write_text("{}")
    assert fresh_folder(base) == tmp_path / "runs" / "best-of-n-2"
    (tmp_path / "runs" / "best-of-n-3").write_text("a file, not a run folder")
    assert fresh_folder(base) == tmp_path / "runs" / "best-of-n-4"
    assert (first / "scores.json").read_text() == "{}"  # nothing written before is touched
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["best-of-n", "best-of-n-2", "best-of-n-3", "best-of-n-4"]
