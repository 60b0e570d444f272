"""Import jobs handed to the warehouse owner: their status, progress and outcome."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from growthwheel.errors import GrowthwheelError
from growthwheel.warehouse import ingest

JobStatus = Literal["queued", "running", "done", "failed"]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ImportJob:
    """An import handed to the owner: its status, progress and outcome.

    ``status`` moves queued → running → done | failed. While running, ``phase`` and ``fraction``
    (0–1, ``None`` when unknown) follow the import's own progress reports (large files only).
    ``result`` is the ``ImportResult`` once done; ``error`` / ``error_code`` when failed.
    """

    id: str
    table: str
    format: str
    files: list[str]
    status: JobStatus = "queued"
    phase: str | None = None
    fraction: float | None = None
    result: ingest.ImportResult | None = None
    error: str | None = None
    error_code: str | None = None
    error_status: int | None = None
    error_file: str | None = None
    """The file a failure is about (when the error names one)."""
    error_values: dict[str, str] = field(default_factory=dict)
    """What a failure's message says besides the file (the missing columns …), for a translation."""
    error_key: str | None = None
    """The catalogue key of a failure's words (``web/i18n/<lang>/imports.json``), when it has one."""
    names: list[str] = field(default_factory=list)
    """How clients see the files (an upload's names as given); empty: the files' own names."""
    submitted_at: datetime = field(default_factory=_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def state(self) -> JobStatus:
        """Same as ``status`` (the console's name for it)."""
        return self.status

    @property
    def shown_files(self) -> list[str]:
        """The files as clients see them: the upload's names, else the files' own names (never a
        server path)."""
        return list(self.names) if self.names else [Path(f).name for f in self.files]

    @property
    def error_file_shown(self) -> str | None:
        """The file a failure is about, as clients see it (never a server path)."""
        if not self.error_file:
            return None
        shown = dict(zip(self.files, self.shown_files, strict=False))
        return shown.get(self.error_file, Path(self.error_file).name)

    def error_in(self, t: Callable[..., str]) -> str | None:
        """A failure in the language of the translator ``t`` (``t(key, **values)``) when its words
        are in the catalogues, naming the file as clients see it; else ``None``."""
        file = self.error_file_shown
        if self.error_key is None or file is None:
            return None
        return t(self.error_key, file=file, **self.error_values)

    @property
    def paths(self) -> list[str]:
        """Same as ``files``."""
        return self.files

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (times as ISO 8601 text, the result as ``ImportResult.to_dict()``)."""
        data: dict[str, Any] = {
            name: getattr(self, name) for name in (
                "id", "table", "format", "files", "status", "phase", "fraction", "error",
                "error_code", "error_status", "error_key", "error_values",
            )
        }
        data["error_file"] = self.error_file_shown
        data["files"] = list(self.files)
        data["result"] = self.result.to_dict() if self.result is not None else None
        for name in ("submitted_at", "started_at", "finished_at"):
            value = getattr(self, name)
            data[name] = value.isoformat() if value is not None else None
        return data

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job is done or failed; ``False`` on timeout."""
        return self.done.wait(timeout)



class JobNotFoundError(GrowthwheelError):
    """No import job with that id (on this server, since it started)."""

    code = "import_not_found"
    status = 404

