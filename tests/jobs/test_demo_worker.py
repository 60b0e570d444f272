"""``growthwheel demo`` runs the worker beside the server: the background worker adds the standard
schedules and runs the due jobs, stops gracefully with SIGTERM, and stops by itself when the
process that started it is gone."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from growthwheel.config import Settings
from growthwheel.jobs import worker
from growthwheel.jobs.models import JobRun, JobSchedule
from growthwheel.store.db import session_scope


def _wait_for_runs(cfg: Settings, kinds: set[str], timeout: float = 60.0) -> list[JobRun]:
    """The succeeded runs, once one of ``kinds`` is among them (other jobs may finish first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with session_scope(cfg) as session:
                runs = list(session.scalars(select(JobRun).where(JobRun.status == "succeeded")))
            if {r.kind for r in runs} & kinds:
                return runs
        except Exception:  # the worker may still be creating the tables
            pass
        time.sleep(0.2)
    raise AssertionError("the background worker ran nothing")


def test_background_worker_runs_jobs_and_stops_with_sigterm(tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path, database_url=None)
    process = worker.spawn(cfg)
    try:
        runs = _wait_for_runs(cfg, {"social.expire_groups", "social.expire_bargains"})
        assert all(r.finished_at is not None for r in runs)
        with session_scope(cfg) as session:
            names = set(session.scalars(select(JobSchedule.name)))
        assert {"loyalty.expire_points", "loyalty.review_tiers", "loyalty.birthday_coupons",
                "social.expire_groups", "reports.review:week"} <= names
    finally:
        code = worker.stop(process)
    assert code == 0


def test_background_worker_stops_when_its_parent_is_gone(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from growthwheel.config import Settings; "
        "from growthwheel.jobs import worker; "
        f"p = worker.spawn(Settings(data_dir=Path({str(tmp_path)!r}), database_url=None)); "
        "print(p.pid, flush=True); sys.stdin.readline()"  # lives until the test closes its stdin
    )], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    assert parent.stdin is not None
    pid = int(parent.stdout.readline())
    _wait_for_runs(Settings(data_dir=tmp_path, database_url=None), {"social.expire_groups", "facts.drain"})
    assert Path(f"/proc/{pid}").exists()  # running while its parent lives
    parent.stdin.close()
    parent.wait(timeout=30)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists() or "zombie" in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "gone"
