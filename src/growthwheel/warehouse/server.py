"""Finding the running server from another process, and handing it an import or a read.

The server announces itself in ``<data_dir>/server.json`` (pid, host, port and a random token, mode
0600; written by the :class:`~growthwheel.warehouse.owner.WarehouseOwner`). ``growthwheel import``
finds it (:func:`find_server`: the pid is alive and the port answers with that pid) and hands its
import over (:func:`import_via_server`, through the loopback-only, token-protected
``/api/v1/internal/imports``); ``kpi`` and ``report`` ask it to compute (:func:`read_via_server`).
This module is a stdlib HTTP client: it needs nothing from the API layer.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from growthwheel.errors import ConfigError, GrowthwheelError

if TYPE_CHECKING:  # both load pydantic, DuckDB and Ibis; a CLI asking the server needs neither
    from growthwheel.config import Settings
    from growthwheel.warehouse import ingest

SERVER_FILE = "server.json"


@dataclass(frozen=True)
class ServerInfo:
    """What ``server.json`` says about the running server."""

    pid: int
    host: str
    port: int
    token: str

    @property
    def url(self) -> str:
        """Base URL on the loopback interface."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"


class ServerError(GrowthwheelError):
    """An error reported by the running server (its own code and status kept)."""

    def __init__(self, message: str, code: str = "server_error", status: int = 500) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def read_server_file(cfg: Settings) -> ServerInfo | None:
    """``server.json`` of the data directory, or ``None`` when absent or unreadable."""
    try:
        data = json.loads((cfg.data_dir / SERVER_FILE).read_text(encoding="utf-8"))
        return ServerInfo(int(data["pid"]), str(data["host"]), int(data["port"]), str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _call(info: ServerInfo, method: str, path: str, body: Mapping[str, Any] | None = None,
          timeout: float = 10.0) -> tuple[int, Any]:
    """One JSON request to the server (stdlib only, so the CLI needs no HTTP client)."""
    data = json.dumps(body).encode("utf-8") if body is not None else None
    request = urllib.request.Request(
        info.url + path, data=data, method=method,
        headers={"Authorization": f"Bearer {info.token}", "Content-Type": "application/json",
                 "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            payload = json.loads(exc.read() or b"{}")
        except ValueError:
            payload = {}
        return int(exc.code), payload if isinstance(payload, dict) else {}


def find_server(cfg: Settings, wait: float = 10.0) -> ServerInfo | None:
    """The server holding this data directory, if one is running and answering.

    ``server.json`` must name a live process that answers ``/api/v1/internal/ping`` with the same
    pid and accepts the token; a server still starting up is waited for up to ``wait`` seconds.
    A stale file (the process is gone) is ignored.
    """
    info = read_server_file(cfg)
    if info is None or not _pid_alive(info.pid):
        return None
    deadline = time.monotonic() + wait
    while True:
        try:
            code, body = _call(info, "GET", "/api/v1/internal/ping", timeout=2.0)
        except (OSError, ValueError):
            if time.monotonic() >= deadline or not _pid_alive(info.pid):
                return None
            time.sleep(0.2)
            continue
        return info if code == 200 and body.get("pid") == info.pid else None


def _result_from_dict(data: Mapping[str, Any]) -> ingest.ImportResult:
    from growthwheel.warehouse import ingest
    from growthwheel.warehouse.ingest_merge import TableCounts

    tables = {k: TableCounts(**v) for k, v in data["tables"].items()}
    return ingest.ImportResult(**{**data, "tables": tables})


def _problem(code: int, body: Mapping[str, Any]) -> ServerError:
    return ServerError(str(body.get("detail") or f"the server answered {code}"),
                       str(body.get("code") or "server_error"), code)


def import_via_server(
    info: ServerInfo,
    table: str,
    paths: Sequence[Path | str],
    fmt: str = "generic",
    *,
    progress: ingest.Progress | None = None,
    waiting: Callable[[str], None] | None = None,
    poll: float = 0.2,
) -> ingest.ImportResult:
    """Run an import in the server that owns the warehouse and return its result.

    Paths are sent absolute (the server reads the files itself). ``progress`` receives the same
    ``(phase, fraction)`` reports as a direct import; ``waiting`` is told once if the import waits
    behind other writes.
    """
    files = [os.path.abspath(p) for p in paths]
    try:
        code, body = _call(info, "POST", "/api/v1/internal/imports",
                           {"table": table, "paths": files, "format": fmt})
        if code != 202:
            raise _problem(code, body)
        job_id = str(body["id"])
        told = False
        seen: tuple[str | None, float | None] = (None, None)
        while True:
            code, body = _call(info, "GET", f"/api/v1/internal/imports/{job_id}")
            if code != 200:
                raise _problem(code, body)
            if body["status"] == "queued" and waiting is not None and not told:
                waiting("waiting for the server to finish earlier writes…")
                told = True
            now = (body.get("phase"), body.get("fraction"))
            if progress is not None and now[0] not in (None, "done") and now != seen:
                progress(str(now[0]), now[1])
            seen = now
            if body["status"] == "done":
                return _result_from_dict(body["result"])
            if body["status"] == "failed":
                failure = ServerError(str(body.get("error")), str(body.get("error_code") or "server_error"),
                                      int(body.get("error_status") or 500))
                if body.get("error_key") and body.get("error_file"):  # words the CLI can translate
                    failure.key = str(body["error_key"])
                    failure.params = {**(body.get("error_values") or {}), "file": str(body["error_file"])}
                raise failure
            time.sleep(poll)
    except OSError as exc:
        raise ServerError(
            f"lost contact with the server at {info.url} during the import ({exc}); if it stopped, "
            "import again (imports are atomic and re-importing is idempotent)", "server_unreachable", 503,
        ) from None


def warehouse_in_use_error(cfg: Settings, exc: BaseException | None = None) -> ConfigError:
    """The one-line error for a process that cannot open the warehouse because another holds it."""
    info = read_server_file(cfg)
    if info is not None and _pid_alive(info.pid):
        return ConfigError(
            f"the Growthwheel server (pid {info.pid}, {info.url}) holds the warehouse "
            f"{cfg.warehouse_path}; read it through the server (console or /api/v1), "
            "or stop the server first (imports are handed to it automatically)"
        )
    detail = str(exc).splitlines()[0] if exc is not None else ""
    return ConfigError(
        f"the warehouse {cfg.warehouse_path} is in use by another process; wait for it to finish "
        f"and try again ({detail})"
    )


def read_via_server(info: ServerInfo, path: str, params: Mapping[str, str | None]) -> Any:
    """A read-only computation (``kpis`` or ``report``) run by the server that owns the warehouse."""
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    try:
        code, body = _call(info, "GET", f"/api/v1/internal/{path}?{query}", timeout=300.0)
    except OSError as exc:
        raise ServerError(f"cannot reach the server at {info.url} ({exc})", "server_unreachable",
                          503) from None
    if code != 200:
        raise _problem(code, body)
    return body


def compute_via_server(info: ServerInfo, name: str, params: Mapping[str, Any]) -> Any:
    """A named read-only computation (``growthwheel.analyst.READS``) run by the server that owns
    the warehouse; ``params`` and the answer are plain JSON."""
    try:
        code, body = _call(info, "POST", f"/api/v1/internal/reads/{urllib.parse.quote(name)}",
                           {"params": dict(params)}, timeout=600.0)
    except OSError as exc:
        raise ServerError(f"cannot reach the server at {info.url} ({exc})", "server_unreachable",
                          503) from None
    if code != 200:
        raise _problem(code, body)
    return body["answer"]
