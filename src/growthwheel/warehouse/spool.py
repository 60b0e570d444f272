"""The event spool: captured events, durable before the API answers, waiting for the warehouse.

Append-only JSON Lines segments in ``<data_dir>/events-spool/``; see :class:`EventSpool`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

SPOOL_DIR = "events-spool"
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _now() -> datetime:
    return datetime.now(UTC)


class EventSpool:
    """Captured events waiting for the warehouse, in ``<data_dir>/events-spool/*.jsonl``.

    Each append writes whole lines and returns once they are on disk (``fdatasync``). Appends
    running at the same time share one sync (group commit): a sync that starts after a write
    covers it. :meth:`rotate` closes the segment being written so that it can be imported;
    :meth:`done` deletes imported segments.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()  # the open segment, counters
        self._sync_lock = threading.Lock()  # one fdatasync at a time; closing a segment waits for it
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._seq = 0
        self._written = 0  # appends written to the open segment(s)
        self._synced = 0  # appends known to be on disk
        self._lines: dict[Path, int] = {}
        self._pending = 0

    def _open_segment(self) -> IO[bytes]:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        name = f"{_now():%Y%m%dT%H%M%S%f}-{os.getpid()}-{self._seq:06d}.jsonl"
        self._path = self.folder / name
        self._file = open(self._path, "ab")  # kept open across appends
        self._lines[self._path] = 0
        self._sync_dir()
        return self._file

    def _sync_dir(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write ``rows`` as JSON lines and make them durable before returning."""
        if not rows:
            return
        data = "".join([_ENCODE(row) + "\n" for row in rows]).encode("utf-8")
        with self._lock:
            handle = self._file or self._open_segment()
            handle.write(data)
            handle.flush()
            self._written += 1
            mine = self._written
            assert self._path is not None
            self._lines[self._path] += len(rows)
            self._pending += len(rows)
        with self._sync_lock:
            if self._synced >= mine:
                return  # a sync that started after our write has covered it
            with self._lock:
                target = self._written
                assert self._file is not None  # closing syncs first, so ours would be covered
                fd = self._file.fileno()
            os.fdatasync(fd)
            self._synced = target

    def _close_segment(self) -> None:
        """Sync and close the open segment (caller holds both locks)."""
        if self._file is not None:
            self._file.flush()
            os.fdatasync(self._file.fileno())
            self._synced = self._written
            self._file.close()
            self._file = None
            self._path = None

    def rotate(self) -> list[Path]:
        """Close the segment being written; return every closed segment, oldest first."""
        with self._sync_lock, self._lock:
            self._close_segment()
            return sorted(p for p in self.folder.glob("*.jsonl")) if self.folder.is_dir() else []

    def done(self, segments: Sequence[Path]) -> None:
        """Forget segments whose events are committed to the warehouse."""
        with self._lock:
            for path in segments:
                path.unlink(missing_ok=True)
                self._pending -= self._lines.pop(path, 0)
            if self.folder.is_dir():
                self._sync_dir()

    def set_aside(self, path: Path) -> Path:
        """Move a segment that cannot be imported to ``failed/`` (kept for a person to look at)."""
        target = self.folder / "failed" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            os.replace(path, target)
            self._pending -= self._lines.pop(path, 0)
        return target

    def pending(self) -> int:
        """Events appended and not yet committed to the warehouse."""
        return self._pending

    def recover(self) -> list[Path]:
        """Segments left by an earlier process, repaired: a torn last line (a crash part-way
        through an append that was never acknowledged) is cut off."""
        if not self.folder.is_dir():
            return []
        found = sorted(self.folder.glob("*.jsonl"))
        for path in found:
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                keep = data.rfind(b"\n") + 1
                with open(path, "r+b") as handle:
                    handle.truncate(keep)
                    handle.flush()
                    os.fsync(handle.fileno())
                log.warning("%s: cut a torn last line (%d bytes)", path, len(data) - keep)
                data = data[:keep]
            with self._lock:
                self._lines[path] = data.count(b"\n")
                self._pending += self._lines[path]
        return found

    def close(self) -> None:
        """Close the segment being written (its events stay for the next flush or start)."""
        with self._sync_lock, self._lock:
            self._close_segment()

