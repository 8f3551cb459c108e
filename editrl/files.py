"""Files and folders: an input that exists and an output that can be written, checked before any work, and every
write done so that a kill at any moment leaves either the old file or folder or the new one, never half of one."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import EditRLError

FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left on the device / over the user's disk quota


class DiskFull(EditRLError):
    """The disk (or the quota) filled up while ``path`` was written; its half-written temporary is gone.
    ``then`` says what the user can do (a resumable writer says what it kept)."""

    def __init__(self, path: str | os.PathLike, then: str = "free space and rerun") -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: the disk is full (no space left on the device, or over the quota); {then}")


def _disk_full(err: BaseException, path: Path) -> None:
    """Raise ``DiskFull`` for ``path`` if ``err`` says the disk is full (from any writer: open, write, pyarrow)."""
    if isinstance(err, OSError) and err.errno in FULL:
        raise DiskFull(path) from None


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary sibling of ``path`` (``<name>.tmp``) to write to; renamed over ``path`` when the block
    ends, removed if it raises. The rename is atomic on one filesystem, so readers see old or new."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        _disk_full(err, path)
        raise


def temporary_folder(path: str | os.PathLike) -> Path:
    """The sibling ``.tmp-<name>`` that ``atomic_folder`` fills (every process of a run can name it)."""
    path = Path(path)
    return path.with_name(f".tmp-{path.name}")


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A fresh, empty ``temporary_folder(path)`` to fill; it replaces ``path`` when the block ends and is
    removed if it raises. ``path`` is never half written: a kill leaves the old folder or the new one (or,
    between removing the old and the rename, no folder and a complete temporary)."""
    path, tmp = Path(path), temporary_folder(path)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        _disk_full(err, path)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """``path`` holding ``text`` (UTF-8), written through ``atomic_path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def fresh_folder(base: str | os.PathLike) -> Path:
    """The first of ``base``, ``base-2``, ``base-3``, ... that does not exist yet, created empty.

    For a command's *default* output folder: running it twice must not be refused (nor overwrite the first
    run), so each run claims its own folder. Creating it with ``exist_ok=False`` is the claim: two runs at once
    never get the same one. An output folder the user named is never renamed (the commands refuse one that
    holds a previous run)."""
    base = Path(base)
    base.parent.mkdir(parents=True, exist_ok=True)
    number = 1
    while True:
        folder = base if number == 1 else base.with_name(f"{base.name}-{number}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            number += 1

def check_link(path: str | os.PathLike, label: str) -> None:
    """One line for a symbolic link that leads nowhere (a missing target, or a loop such as a -> b -> a), before
    anything tries to open it. (These checks use ``os.path``, which answers False where ``Path.exists`` of Python
    3.11 raises, e.g. inside a folder the user may not read: that path is then refused in one line.)"""
    path = Path(path)
    if os.path.islink(path) and not os.path.exists(path):  # exists() follows the link: False for both
        raise EditRLError(f"{label} {str(path)!r}: a symbolic link whose target is missing or that loops "
                          f"(-> {os.readlink(path)!r}); fix or remove the link")


def check_input(path: str | os.PathLike, flag: str, folder_ok: bool = True) -> Path:
    """``path`` as a Path if it exists (a file, or also a folder when ``folder_ok``); else one line naming ``flag``
    and the path as given."""
    given, path = os.fspath(path), Path(path).expanduser()
    check_link(path, flag)
    if not os.path.exists(path):
        raise EditRLError(f"{flag} {given!r}: no such file{' or folder' if folder_ok else ''}")
    if os.path.isdir(path) and not folder_ok:
        raise EditRLError(f"{flag} {given!r}: is a folder; expected a file")
    return path


def check_output(path: str | os.PathLike, flag: str = "--out", folder: bool = False) -> Path:
    """Refuse, before any work, an output that cannot be written: a file where a folder is wanted (or the reverse),
    a location inside a file, or one where nothing can be created (no permission, a read-only or virtual file
    system such as /proc). Creating and removing a temporary folder in the nearest existing folder is the test,
    since permission bits say nothing to root or about /proc."""
    given, path = os.fspath(path), Path(path).expanduser()
    if os.path.exists(path) and os.path.isdir(path) != folder:
        kind = "a folder" if os.path.isdir(path) else "a file"
        raise EditRLError(f"{flag} {given!r}: is {kind}; expected {'an output folder' if folder else 'an output file path'}")
    ancestor = path if folder and os.path.isdir(path) else path.parent
    while not os.path.exists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not os.path.isdir(ancestor):
        raise EditRLError(f"{flag} {given!r}: {str(ancestor)!r} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".editrl-check-", dir=ancestor))
    except OSError as err:
        raise EditRLError(f"{flag} {given!r}: cannot create anything in {str(ancestor)!r} ({err.strerror})") from None
    return path


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
"""A Hugging Face repository id, ``owner/name``."""


def is_hub_id(text: str) -> bool:
    """Whether ``text`` has the form of a Hugging Face id (``owner/name``, no ``..``)."""
    return bool(HUB_ID.fullmatch(text)) and ".." not in text


def check_model_source(source: str, flag: str) -> None:
    """``source`` is an existing file or folder or has the form of a Hugging Face id; else one line naming ``flag``.
    A typo in a local path (``./runs/lora``, ``runs/x/final``) or a bare word is refused before any model loads;
    whether a Hub id is in the local cache is known only when it is loaded."""
    if not os.path.exists(Path(source).expanduser()) and not is_hub_id(source):
        raise EditRLError(f"{flag} {source!r}: no such file or folder, and not a Hugging Face id (owner/name)")


def content_digest(files: Iterable[str | os.PathLike] = (), folders: Iterable[str | os.PathLike] = ()) -> str:
    """16 hex digits of a SHA-256 over the bytes of ``files`` and of every file under ``folders`` (with its name
    relative to its folder): what a cached result was made from, so a rerun that reuses it can check the inputs
    are still the same (models and data are replaced under the same paths)."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(Path(file).read_bytes())
    for folder in map(Path, folders):
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(folder)).encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]
