"""``growthwheel worker``: a saved segment refreshed on its schedule by ``--once`` (the worker opening
the warehouse itself, no server running), status and schedules, a deleted segment's schedule
switched off, ``--now`` refused without ``--once``, dead letters replayed."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from growthwheel.cli.main import app
from growthwheel.config import Settings, set_settings
from growthwheel.jobs import outbox
from growthwheel.jobs.models import JobSchedule
from growthwheel.segments import service as segments
from growthwheel.segments.definition import parse_definition
from growthwheel.store.db import migrate, session_scope

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "segments"))
from tea_shop import build


def test_worker_refreshes_a_scheduled_segment_and_reports(tmp_path: Path) -> None:
    cfg = build(tmp_path / "data", tmp_path)
    migrate(cfg)
    with session_scope(cfg) as session:
        buyers = '{"type": "orders", "measure": "count", "op": ">=", "value": 1}'
        seg = segments.create_segment(session, "tea buyers", parse_definition(buyers), principal=None,
                                      actor_name="tests")
        seg_id = seg.id
    runner = CliRunner()
    set_settings(cfg)
    try:
        scheduled = runner.invoke(app, ["worker", "schedule-segment", "tea buyers", "--every-hours", "6"])
        assert scheduled.exit_code == 0, scheduled.output
        done = runner.invoke(app, ["worker", "--once", "--json"])
        assert done.exit_code == 0, done.output
        runs = {r["schedule"]: r for r in json.loads(done.stdout)["runs"]}
        refresh = runs[f"segments.refresh:{seg_id}"]
        assert refresh["status"] == "succeeded", refresh
        assert refresh["result"]["members"] > 0
        with session_scope(cfg) as session:
            row = segments.get_segment(session, seg_id)
            assert row.members == refresh["result"]["members"]
            assert row.refreshed_at is not None
        # due again in 6 hours, not now
        again = json.loads(runner.invoke(app, ["worker", "--once", "--json"]).stdout)
        assert f"segments.refresh:{seg_id}" not in {r["schedule"] for r in again["runs"]}

        listed = json.loads(runner.invoke(app, ["worker", "schedules", "--json"]).stdout)
        mine = next(s for s in listed if s["name"] == f"segments.refresh:{seg_id}")
        assert (mine["every_seconds"], mine["last_status"]) == (6 * 3600, "succeeded")
        status = json.loads(runner.invoke(app, ["worker", "status", "--json"]).stdout)
        assert any(r["schedule"] == f"segments.refresh:{seg_id}" for r in status["runs"])

        # The segment is deleted: its schedule switches itself off on the next run.
        with session_scope(cfg) as session:
            session.delete(segments.get_segment(session, seg_id))
            row2 = session.get(JobSchedule, f"segments.refresh:{seg_id}")
            assert row2 is not None
            row2.next_run_at = datetime.now(UTC)
        later = json.loads(runner.invoke(app, ["worker", "--once", "--json"]).stdout)
        gone = next(r for r in later["runs"] if r["schedule"] == f"segments.refresh:{seg_id}")
        assert "no longer exists" in gone["result"]["disabled"]
        with session_scope(cfg) as session:
            row3 = session.get(JobSchedule, f"segments.refresh:{seg_id}")
            assert row3 is not None
            assert not row3.enabled

        refused = runner.invoke(app, ["worker", "--now", "2026-06-01T00:00:00+08:00"])
        assert refused.exit_code != 0
        assert "--now" in str(refused.exception or refused.output)
    finally:
        set_settings(Settings())


def test_replay_from_the_cli(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        outbox.enqueue(session, key="k1", channel="nowhere", recipient="x", payload={})
    outbox.deliver_due(store_cfg, {}, worker="w", clock=lambda: datetime.now(UTC))  # no such channel: dead
    runner = CliRunner()
    set_settings(store_cfg)
    try:
        replayed = runner.invoke(app, ["worker", "replay", "--json"])
        assert replayed.exit_code == 0, replayed.output
        assert json.loads(replayed.stdout) == {"replayed": 1}
    finally:
        set_settings(Settings())
    with session_scope(store_cfg) as session:
        assert outbox.counts(session)["pending"] == 1
