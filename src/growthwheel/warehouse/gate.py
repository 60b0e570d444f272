"""Keeps warehouse reads and commits apart inside one process (DuckDB only).

DuckDB 1.5.6 does not isolate a query from a large ``COMMIT`` that runs at the same time: a
query that runs while another connection commits 600,000 appended rows can count part of them
(multiples of 2,048, one vector at a time), and a read transaction begun before the commit sees
its rows in its next statement. DuckDB 2.0.1 does not show either, but ibis 12 does not run on
it (it calls ``fetch_arrow_table``, which 2.0 removed). So the warehouse owner keeps them apart
itself: every read block (:meth:`WarehouseOwner.read`) holds a share of the
:class:`CommitGate` and every commit holds it alone.

The gate prefers readers: a commit that finds reads running waits for a moment when none is,
and new reads still start meanwhile; only after ``patience`` seconds (10 by default) does it let
no new read start until the running ones have ended and it has committed. So reads wait for
nothing but ``COMMIT`` statements (an import's staging, validation and writing all run before the
gate is taken); a long analysis holds back the commits behind it (the event flush, an import) but
not the other pages, unless reads have overlapped without a gap for the whole patience; and a
steady stream of reads delays a commit by ``patience`` at most, plus the longest read then
running. (A shorter patience bounds the commit's delay more tightly, but then one long read stalls
every page that starts after the patience ran out, until that read ends.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["CommitGate", "ReadInCommitError", "gate_for"]


class ReadInCommitError(RuntimeError):
    """A thread that holds a read share asked to commit: it would wait for itself forever."""


class CommitGate:
    """Many readers or one committer; readers may nest on their thread."""

    def __init__(self, patience: float = 10.0) -> None:
        self.patience = patience
        self._cond = threading.Condition()
        self._readers = 0
        self._committer = False  # a commit is waiting or running
        self._closed = False  # no new reader may start
        self._local = threading.local()

    def _depth(self) -> int:
        depth: int = getattr(self._local, "depth", 0)
        return depth

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold a share for the block: no commit runs while it is held."""
        depth = self._depth()
        if depth == 0:
            with self._cond:
                while self._closed:
                    self._cond.wait()
                self._readers += 1
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                with self._cond:
                    self._readers -= 1
                    if self._readers == 0:
                        self._cond.notify_all()

    @contextmanager
    def committing(self) -> Iterator[None]:
        """Hold the gate alone for the block, once the reads under way have ended."""
        if self._depth():
            raise ReadInCommitError(
                "a warehouse write was asked for inside a read block on the same thread; "
                "leave the read block first")
        with self._cond:
            while self._committer:
                self._cond.wait()
            self._committer = True
            deadline = time.monotonic() + self.patience
            while self._readers:
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                else:
                    self._closed = True
                    self._cond.wait()
            self._closed = True
        try:
            yield
        finally:
            with self._cond:
                self._committer = self._closed = False
                self._cond.notify_all()

    def held(self) -> bool:
        """Whether this thread holds a read share."""
        return self._depth() > 0

    def readers(self) -> int:
        """Read blocks open now (for tests and diagnostics)."""
        with self._cond:
            return self._readers


_GATES: dict[str, CommitGate] = {}
_GATES_LOCK = threading.Lock()


def gate_for(path: Path) -> CommitGate:
    """The one gate of the warehouse file at ``path`` in this process."""
    key = str(path.resolve())
    with _GATES_LOCK:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = CommitGate()
        return gate
