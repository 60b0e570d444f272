"""Must-show (issue 12): quiet hours and frequency caps hold through the journey path, with a
controllable clock, in a time zone with DST (Europe/Berlin, the night clocks go forward).

Two journeys hit the same customer with her first purchase (Saturday 28 March 2026, 20:00 CET).
The real worker (fixed clock) runs ``journeys.tick`` at 22:30 CET — inside the quiet hours
21:00–09:00 — and delivers through the guarded SMTP channel to aiosmtpd: both emails are deferred,
not dropped, to 09:00 *summer* time on Sunday (07:00 UTC, not 08:00: the night is an hour short).
At 08:59 CEST nothing goes; at 09:00 one goes and the other is refused by the cap "one email per
24 hours across all journeys". The SMTP server's log is the witness.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from growthwheel.config import Settings, ShopSettings
from growthwheel.jobs.models import OutboxRow
from growthwheel.jobs.scheduler import ScheduleSpec
from growthwheel.jobs.worker import Worker
from growthwheel.journeys import service
from growthwheel.journeys.channels.config import RulesConfig
from growthwheel.journeys.channels.guard import GuardedChannel
from growthwheel.journeys.channels.smtp import SmtpChannel
from growthwheel.store.db import engine, migrate, session_scope
from growthwheel.warehouse.ingest import import_files

TZ = "Europe/Berlin"
ORDERED = datetime(2026, 3, 28, 19, 0, tzinfo=UTC)  # 20:00 CET
TICK = datetime(2026, 3, 28, 21, 30, tzinfo=UTC)  # 22:30 CET: quiet
MORNING = datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # 09:00 CEST (the clocks went forward at 02:00)


def welcome(subject: str) -> dict[str, Any]:
    return {
        "trigger": {"kind": "purchase_count", "n": 1},
        "start": "mail",
        "steps": [{"id": "mail", "type": "send", "channel": "email", "next": "out",
                   "template": {"texts": {"en": {"subject": subject, "text": "Hello {{ customer.name }}"}}}},
                  {"id": "out", "type": "exit"}],
        "holdout_share": 0.0,
        "backfill_days": 1,
    }


def test_quiet_hours_defer_across_dst_and_the_cap_holds_across_journeys(
    tmp_path: Path, smtp_server: tuple[int, Any],
) -> None:
    port, mailbox = smtp_server
    cfg = Settings(data_dir=tmp_path / "data", database_url=None)
    cfg.save_shop(ShopSettings(name="Teeladen", currency="EUR", timezone=TZ))
    customers = tmp_path / "customers.csv"
    customers.write_text("customer_id,email,name\nanna,anna@example.com,Anna\n", encoding="utf-8")
    lines = tmp_path / "lines.csv"
    lines.write_text("order_id,customer_id,ordered_at,sku,quantity,line_total\n"
                     f"o1,anna,{ORDERED.isoformat()},TEA,1,12.00\n", encoding="utf-8")
    for table, path in (("customers", customers), ("order_lines", lines)):
        assert import_files(table, [path], cfg=cfg).rows_quarantined == 0
    migrate(cfg)
    with session_scope(cfg) as session:
        for name in ("welcome", "first-order thanks"):
            row = service.create_journey(session, name, welcome(name), actor_name="t", now=ORDERED)
            activated = ORDERED - timedelta(hours=1)
            service.change_status(session, row.id, "activate", actor_name="t", now=activated)

    rules = RulesConfig.model_validate({
        "caps": [{"channel": "email", "limit": 1, "window_hours": 24}],
        "quiet_hours": {"email": {"start": "21:00", "end": "09:00", "mode": "defer"}},
    }).to_rules(TZ)
    clock = [TICK]
    email = GuardedChannel(cfg, SmtpChannel("127.0.0.1", port, "Teeladen <news@teeladen.example>"), rules,
                           clock=lambda: clock[0])
    worker = Worker(cfg, name="w", clock=lambda: clock[0], channels={"email": email},
                    defaults=[ScheduleSpec("journeys.tick", "journeys.tick", every_seconds=60)])

    night = worker.run_once()
    assert [r.result["enrolled"] for r in night.runs] == [2]
    assert (night.delivery.deferred, night.delivery.sent) == (2, 0)
    with session_scope(cfg) as session:
        rows = list(session.scalars(select(OutboxRow)))
    assert {r.status for r in rows} == {"pending"}
    assert {r.next_attempt_at.astimezone(UTC) for r in rows} == {MORNING}  # 09:00 CEST = 07:00 UTC
    assert mailbox.messages == []

    clock[0] = MORNING - timedelta(seconds=30)  # 08:59:30 CEST: not yet
    assert worker.run_once().delivery.claimed == 0
    assert mailbox.messages == []

    clock[0] = MORNING + timedelta(seconds=30)
    morning = worker.run_once()
    assert (morning.delivery.sent, morning.delivery.skipped) == (1, 1)
    assert [m["To"] for m in mailbox.messages] == ["anna@example.com"]
    with session_scope(cfg) as session:
        rows = list(session.scalars(select(OutboxRow)))
    assert sorted(r.status for r in rows) == ["sent", "skipped"]
    skipped = next(r for r in rows if r.status == "skipped")
    assert "cap" in (skipped.last_error or "")

    clock[0] = MORNING + timedelta(hours=30)  # the cap's window has passed; nothing is re-sent
    worker.run_once()
    assert len(mailbox.messages) == 1
    engine(cfg).dispose()
