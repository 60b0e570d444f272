"""How the worker's jobs reach the warehouse.

DuckDB lets one process write its file. While ``growthwheel serve`` runs on the same data
directory the server owns the warehouse, so the worker hands warehouse work to it over the
loopback, token-protected routes of ``jobs.internal`` (the token and port are in the server's
``server.json``, readable only by the same user); when no server runs, the worker opens the
warehouse itself for the length of the job and lets go right after.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from growthwheel.config import Settings
from growthwheel.errors import GrowthwheelError

SERVER_FILE = "server.json"


class WarehouseUnavailableError(GrowthwheelError):
    """The server that owns the warehouse did not answer (the job is retried)."""

    code = "warehouse_unavailable"
    status = 503


@dataclass(frozen=True)
class _Server:
    url: str
    token: str


def _server(cfg: Settings) -> _Server | None:
    """The live server of this data directory, from ``server.json`` (``None`` when none runs)."""
    try:
        data = json.loads((cfg.data_dir / SERVER_FILE).read_text(encoding="utf-8"))
        pid, host, port, token = int(data["pid"]), str(data["host"]), int(data["port"]), str(data["token"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    return _Server(url=url, token=token)


def _call(server: _Server, method: str, path: str, params: Mapping[str, str | None] | None = None,
          timeout: float = 600.0) -> Any:
    query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})
    request = urllib.request.Request(
        f"{server.url}/api/v1/internal/jobs{path}" + (f"?{query}" if query else ""),
        data=b"{}" if method == "POST" else None, method=method,
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json",
                 "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        error = GrowthwheelError(str(body.get("detail") or f"the server answered {exc.code}"))
        error.code = str(body.get("code") or "server_error")
        error.status = int(exc.code)
        raise error from None
    except OSError as exc:
        raise WarehouseUnavailableError(f"the server at {server.url} did not answer ({exc})") from None


@contextmanager
def _direct(cfg: Settings) -> Iterator[Any]:
    from growthwheel.warehouse.db import open_duckdb

    con = open_duckdb(cfg)
    con.execute("SET enable_progress_bar = false")
    try:
        yield con
    finally:
        con.close()


def refresh_segment(cfg: Settings, session: Session, segment_id: str) -> dict[str, Any]:
    """Refresh a saved segment (through the server when one owns the warehouse). ``session`` is
    the job's transaction (used when the worker writes the warehouse itself)."""
    server = _server(cfg)
    if server is not None:
        result: dict[str, Any] = _call(server, "POST", f"/segments/{urllib.parse.quote(segment_id)}/refresh")
        return result
    from ibis import duckdb as ibis_duckdb

    from growthwheel.segments import service

    seg = service.get_segment(session, segment_id)
    with _direct(cfg) as con:
        ctx = service.context(cfg, ibis_duckdb.from_connection(con))
        out = service.refresh_segment(session, seg, ctx, service.direct_writer(con), principal=None,
                                      actor_name="worker")
    return out.model_dump(mode="json")


def drain_facts(cfg: Settings, open_session: Any) -> dict[str, Any]:
    """Record the message facts since the last sweep, then move every pending acting fact into the
    warehouse (on the server's writer thread when a server owns the warehouse)."""
    from growthwheel.facts import service

    with open_session() as session:
        swept = service.sweep_messages(session)
        service.purge_done(session)
    server = _server(cfg)
    if server is not None:
        found: dict[str, Any] = _call(server, "POST", "/facts/drain")
        return {**found, "messages_swept": swept}
    done = service.drain_all(open_session, service.direct_importer(cfg))
    return {"facts": done.facts, "orders": done.orders, "events": done.events, "messages_swept": swept}


def sync_members(cfg: Settings, open_session: Any) -> dict[str, Any]:
    """Members from the shop's history (``loyalty.history``): read on the server when one owns the
    warehouse, else here (the warehouse opened read-only for the length of the job)."""
    server = _server(cfg)
    if server is not None:
        found: dict[str, Any] = _call(server, "POST", "/loyalty/sync")
        return found
    from dataclasses import asdict

    from growthwheel.loyalty import history
    from growthwheel.warehouse.db import connect

    backend = connect(cfg)
    try:
        return asdict(history.sync_from_warehouse(open_session, backend))
    finally:
        backend.disconnect()


def review_html(cfg: Settings, period: str, as_of: date | None) -> str:
    """The periodic review as HTML (rendered by the server when one owns the warehouse)."""
    server = _server(cfg)
    if server is not None:
        found = _call(server, "GET", "/review", {"period": period,
                                                 "as_of": as_of.isoformat() if as_of else None})
        return str(found["html"])
    from ibis import duckdb as ibis_duckdb

    from growthwheel.reports.review import render_review

    shop = cfg.shop()
    with _direct(cfg) as con:
        return render_review(ibis_duckdb.from_connection(con), period=period, as_of=as_of,
                             shop_name=shop.name, currency=shop.currency, cfg=cfg)
