"""``growthwheel social …`` jobs on a SQLite store: what cron would run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from growthwheel.cli.main import app
from growthwheel.config import Settings, set_settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.loyalty import service as loyalty
from growthwheel.social import deals, service
from growthwheel.store.db import session_scope

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_jobs_settle_expire_and_refuse_a_naive_time(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        code = service.invite_code(session, "alice", now=T0).code
        assert service.bind(session, "bob", code, now=T0).bound
        service.on_order_paid(session, "o1", "bob", T0)
        deal = deals.create_deal(session, name="2 人团", sku="S", currency="CNY", group_price=990,
                                   group_size=2, time_limit_minutes=30, principal=None)
        deals.open_group(session, deal.id, "leader", now=T0, order_id="o-l", paid=True)
        offer = deals.create_offer(session, name="砍价", sku="S", currency="CNY", start_price=1000,
                                     floor_price=500, cuts=2, duration_minutes=60, principal=None)
        deals.start_bargain(session, offer.id, "c", now=T0)
    runner = CliRunner()
    set_settings(store_cfg)
    try:
        early = runner.invoke(app, ["social", "settle-referrals", "--now",
                                    (T0 + timedelta(days=6)).isoformat()])
        assert early.exit_code == 0, early.output
        assert json.loads(early.stdout)["rewarded"] == []
        later = (T0 + timedelta(days=7)).isoformat()
        settled = runner.invoke(app, ["social", "settle-referrals", "--now", later])
        assert settled.exit_code == 0, settled.output
        body = json.loads(settled.stdout)
        assert (len(body["rewarded"]), body["rewards_written"], body["failed"]) == (1, 2, [])
        groups = json.loads(runner.invoke(app, ["social", "expire-groups", "--now", later]).stdout)
        assert [(r["customer_id"], r["order_id"], r["amount"]) for r in groups["refunds"]] == [
            ("leader", "o-l", 990)]
        bargains = json.loads(runner.invoke(app, ["social", "expire-bargains", "--now", later]).stdout)
        assert bargains == {"expired": 1}
        naive = runner.invoke(app, ["social", "expire-groups", "--now", "2026-06-01T09:00:00"])
        assert naive.exit_code == 1  # the entry point prints the message on one line
        assert isinstance(naive.exception, InvalidArgumentError)
        assert naive.exception.message.startswith("--now:")
    finally:
        set_settings(None)
    with session_scope(store_cfg) as session:
        assert (loyalty.balance(session, "alice"), loyalty.balance(session, "bob")) == (500, 200)
