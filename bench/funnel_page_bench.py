"""Benchmark: the funnel console page (``/insight/funnel``) on a demo-size shop, as a browser asks
for it, against the funnel computation it replaced (measured in the same run).

Builds (or reuses, ``--db``) the demo shop's behaviour events as :mod:`funnel_bench` does, puts them
in a data directory with a migrated store and an admin, and asks the whole application (FastAPI
``TestClient``, the real page: version check, funnel, "stopped here" counts, drill-down links,
template) for the page. Times, each the best of ``--repeat``:

* **baseline** — what the page computed per question before this change (a copy of the former
  ``funnel_with_stops`` on DuckDB, :func:`previous_with_stops`, with the identity links known),
  on the server's own read connection: the 30-day default range (checked: the same frame and
  "stopped here" counts as now);
* **page, cold** — the first visit after the server started (identity links, event types and the
  funnel all computed);
* **page, warm** — a question not asked before on a server that has answered others since the
  warehouse last changed (a new conversion window each time: the links are known, the funnel is
  not): what an operator meets when trying ranges and windows;
* **page, warm, after a write** — the same right after the warehouse changed (an import logs a
  row in ``_imports``): every remembered result is stale (the write only added an event: the
  identity links are grown from the kept ones with the new event's, not found again);
* **page, revisit** — the same question again (remembered until the warehouse changes);
* **page, first visit after a restart** — a new server process on the same data directory (its own
  Python, DuckDB buffers and memory empty) asked for the default page once, twice over: *with the
  cache* (the events' facts the last server kept in the data directory's ``cache`` folder:
  identity links, event types, last day) and *without* (the folder removed first: everything
  computed from the events, as before the facts were kept on disk). Best of ``--repeat`` processes
  each; the ratio between the two is the restart's saving.

Prints wall and CPU seconds (CPU of the whole process: the page runs in the app's threads) and
the ratio of each against the baseline, and the load average. Run it with ``PYTHONPATH`` set to an
older checkout's ``src`` to time that code the same way (it then has no cache to read).

Usage::

    nice -n 5 python bench/funnel_page_bench.py [--customers 50000] [--repeat 3] [--db FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from funnel_bench import build_demo_files, load

from growthwheel.accounts import service as accounts
from growthwheel.config import Settings
from growthwheel.insight import funnels
from growthwheel.insight.funnels import DEFAULT_STEPS, funnel_with_stops, identity_links
from growthwheel.store import db as store
from growthwheel.warehouse import db as warehouse_db

ADMIN = ("bench@example.com", "pw-bench-0123456789")


def previous_with_stops(events: Any, steps: Any, *, window: timedelta, start: date, end: date,
                        links: Any) -> tuple[Any, list[int]]:
    """What ``funnel_with_stops`` did on DuckDB before actors were kept as integer codes (a copy,
    kept as the baseline): every entrant as a row of a DataFrame with its actor's name."""
    people = funnels.funnel_entrants_local(events, steps, window=window, start=start, end=end,
                                           links=links)
    frame = funnels._dense(funnels._step_table_of(people, list(steps), None), list(steps), None)
    known = people[~people["actor"].str.startswith(funnels.ANONYMOUS_PREFIX)]
    counts = known["steps_reached"].value_counts().to_dict()
    return frame, [int(counts.get(k, 0)) for k in range(1, len(steps) + 1)]


def timed(work: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Best wall and CPU seconds of ``work()`` over ``repeat`` runs, and its last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        result = work()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def _write(owner: Any, folder: Path, n: int) -> None:
    """A write as the shop makes them: one event imported through the server's warehouse owner
    (every write logs a row in ``_imports``, which changes the warehouse's version)."""
    path = folder / f"flush-{n}.csv"
    path.write_text("event_id,type,occurred_at,anonymous_id\n"
                    f"bench-{n},view,2020-01-01T00:00:00Z,bench-anon-{n}\n", encoding="utf-8")
    job = owner.job(owner.submit_import("events", [path]))
    assert job is not None
    job.wait(120)
    assert job.status == "done", job.error


def _login(client: Any, cfg: Settings) -> None:
    secret = accounts.server_secret(cfg.data_dir)
    done = client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1],
                                       "csrf_token": accounts.anonymous_csrf_token(secret)},
                       follow_redirects=False)
    assert done.status_code == 303, done.text


def visit_once(data_dir: Path) -> None:
    """A new server on ``data_dir``: print the wall and CPU seconds of its first page."""
    from fastapi.testclient import TestClient

    from growthwheel.api.app import create_app

    cfg = Settings(data_dir=data_dir, database_url=None)
    with TestClient(create_app(cfg)) as client:
        _login(client, cfg)
        started, cpu = time.perf_counter(), time.process_time()
        response = client.get("/insight/funnel", params={"days": "30"})
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert response.status_code == 200, response.text[:500]
    print(f"VISIT {wall} {cpu}")


def after_restart(data_dir: Path, repeat: int, *, keep_cache: bool) -> tuple[float, float]:
    """Best wall and CPU seconds of the first page of ``repeat`` new server processes on
    ``data_dir`` (with the cache folder the last server left, or removed before each)."""
    walls, cpus = [], []
    for _ in range(repeat):
        if not keep_cache:
            shutil.rmtree(data_dir / "cache", ignore_errors=True)
        done = subprocess.run([sys.executable, __file__, "--visit", str(data_dir)], check=True,
                              capture_output=True, text=True)
        line = next(x for x in done.stdout.splitlines() if x.startswith("VISIT "))
        walls.append(float(line.split()[1]))
        cpus.append(float(line.split()[2]))
    return min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, help="events warehouse to keep and reuse (as funnel_bench)")
    parser.add_argument("--visit", type=Path, help=argparse.SUPPRESS)  # a restart's first visit
    args = parser.parse_args()
    if args.visit:
        visit_once(args.visit)
        return
    tmp = Path(tempfile.mkdtemp(prefix="funnel-page-bench-"))
    try:
        events_db = args.db or tmp / "events.duckdb"
        if not events_db.exists():
            files = build_demo_files(tmp / "files", customers=args.customers, seed=7)
            load(files.paths["events"], events_db)
        cfg = Settings(data_dir=tmp / "data", database_url=None)
        cfg.data_dir.mkdir(parents=True)
        shutil.copyfile(events_db, cfg.warehouse_path)
        con = duckdb.connect(str(cfg.warehouse_path))
        warehouse_db.ensure_schema(con)
        n_events = int(con.execute("SELECT count(*) FROM events").fetchone()[0])  # type: ignore[index]
        last: date = con.execute("SELECT max(event_date) FROM events").fetchone()[0]  # type: ignore[index]
        con.close()
        store.migrate(cfg)
        with store.session_scope(cfg) as session:
            accounts.create_user(session, ADMIN[0], "admin", ADMIN[1])
        print(f"shop: {n_events:,} events; last day {last}")

        from fastapi.testclient import TestClient

        from growthwheel.api.app import create_app

        app = create_app(cfg)
        with TestClient(app) as client:
            _login(client, cfg)
            windows = iter(range(1, 31))

            def page(window: int | None = None) -> str:
                params = {"days": "30"} | ({"window_days": str(window)} if window else {})
                response = client.get("/insight/funnel", params=params)
                assert response.status_code == 200, response.text[:500]
                return response.text

            cold_t, cold_c, first = timed(page, 1)
            assert "data-testid" in first
            owner = app.state.warehouse  # the server's warehouse owner

            def baseline() -> Any:
                with owner.read() as backend:
                    events = backend.table("events")
                    links = identity_links(events)
                    started, cpu = time.perf_counter(), time.process_time()
                    result = previous_with_stops(events, DEFAULT_STEPS, window=timedelta(days=14),
                                                 start=last - timedelta(days=29), end=last, links=links)
                    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
                    now = funnel_with_stops(events, DEFAULT_STEPS, window=timedelta(days=14),
                                            start=last - timedelta(days=29), end=last, links=links)
                    assert now[0].equals(result[0]), (now, result)  # the same answer
                    assert now[1] == result[1], (now, result)
                    return wall, cpu, result

            runs = [baseline() for _ in range(args.repeat)]
            base_t, base_c = min(r[0] for r in runs), min(r[1] for r in runs)
            warm_t, warm_c, _ = timed(lambda: page(next(windows)), args.repeat)

            writes_made = iter(range(1, 100))

            def after_write() -> tuple[float, float]:
                _write(owner, tmp, next(writes_made))
                started, cpu = time.perf_counter(), time.process_time()
                page(next(windows))
                return time.perf_counter() - started, time.process_time() - cpu

            writes = [after_write() for _ in range(args.repeat)]
            write_t, write_c = min(w[0] for w in writes), min(w[1] for w in writes)
            again = next(windows)
            page(again)
            revisit_t, revisit_c, _ = timed(lambda: page(again), args.repeat)
        # New server processes (the warehouse is free once this server stopped).
        kept_t, kept_c = after_restart(cfg.data_dir, args.repeat, keep_cache=True)
        none_t, none_c = after_restart(cfg.data_dir, args.repeat, keep_cache=False)
        print(f"baseline  previous computation, 30 days, links known {base_t:7.3f} s "
              f"({base_c:5.2f} CPU)  [same frame and stops as now]")
        for name, wall, cpu in (("page, cold (first visit)", cold_t, cold_c),
                                ("page, warm (new question)", warm_t, warm_c),
                                ("page, warm, after a write", write_t, write_c),
                                ("page, revisit", revisit_t, revisit_c),
                                ("page, first visit after a restart, with the cache", kept_t, kept_c),
                                ("page, first visit after a restart, no cache", none_t, none_c)):
            print(f"{name:50s} {wall:7.3f} s ({cpu:5.2f} CPU)   {wall / base_t:5.2f}x the baseline "
                  f"(CPU {cpu / base_c if base_c else 0:5.2f}x)")
        print(f"after a restart: with the cache {kept_t / none_t:5.2f}x the time without "
              f"(CPU {kept_c / none_c if none_c else 0:5.2f}x)")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
