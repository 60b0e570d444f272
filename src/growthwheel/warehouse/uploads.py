"""Uploaded files waiting for their import: one folder per upload, gone when the import ends.

The API's and the console's uploads save their files under ``<data dir>/uploads/<random id>/``
and hand them to the warehouse owner with the names the client gave them (:func:`display_name`):
results, quarantine entries and errors name the file as uploaded, never its server path. The
folder is deleted when the import job ends, whether it succeeded or failed (quarantined rows keep
their values in the warehouse, so nothing needs the file afterwards); a server that was killed
half-way leaves folders behind, which :func:`sweep` removes when the next one starts.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
import unicodedata
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

UPLOADS_DIR = "uploads"
#: Longest file name kept for display.
MAX_NAME = 120


def uploads_root(data_dir: Path) -> Path:
    """``<data dir>/uploads``."""
    return data_dir / UPLOADS_DIR


def new_folder(data_dir: Path) -> Path:
    """A fresh, empty folder for one upload's files."""
    folder = uploads_root(data_dir) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    return folder


def display_name(filename: str | None, index: int = 1) -> str:
    """The name a client gave a file, fit to show: no directories, no control characters, at most
    :data:`MAX_NAME` characters (``upload-<index>`` when it gave none)."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if len(base) > MAX_NAME:
        stem, dot, suffix = base.rpartition(".")
        base = (stem[: MAX_NAME - len(suffix) - 2] + "…" + dot + suffix) if dot and len(suffix) < 10 \
            else base[:MAX_NAME]
    return base or f"upload-{index}"


def stored_name(filename: str | None, index: int) -> str:
    """The name a file is saved under: ``NN_`` and the client's name reduced to safe characters
    (the extension is kept: it decides how the file is read)."""
    base = Path((filename or "").replace("\\", "/")).name
    base = re.sub(r"[^\w.\-]", "_", base).lstrip(".")[-100:]
    return f"{index:02d}_{base or 'upload'}"


def save(source: BinaryIO, folder: Path, filename: str | None, index: int) -> Path:
    """Copy one uploaded file into ``folder``; returns where it is."""
    path = folder / stored_name(filename, index)
    source.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(source, out, 1024 * 1024)
    return path


def discard(folder: Path) -> None:
    """Delete an upload's folder (its import has ended, or never started)."""
    shutil.rmtree(folder, ignore_errors=True)


def discard_files(paths: Sequence[Path | str]) -> None:
    """Delete the upload folders holding ``paths`` (only folders directly under ``uploads/``)."""
    for folder in {Path(p).parent for p in paths}:
        if folder.parent.name == UPLOADS_DIR:
            discard(folder)


def sweep(data_dir: Path, before: float | None = None) -> int:
    """Delete what earlier servers left in ``uploads/`` (entries last changed before ``before``,
    a ``time.time()``; default now). Returns how many entries went."""
    root = uploads_root(data_dir)
    if not root.is_dir():
        return 0
    cutoff = time.time() if before is None else before
    removed = 0
    for entry in root.iterdir():
        try:
            if entry.lstat().st_mtime >= cutoff:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except OSError as exc:  # another process may be removing it too
            log.warning("could not remove the leftover upload %s: %s", entry.name, exc)
    if removed:
        log.info("removed %d leftover upload(s) from %s", removed, root)
    return removed
