"""The daily loyalty jobs commit a small batch of customers at a time (issue 10, item 2).

``points daily`` used to expire, re-evaluate and issue for every customer in one transaction,
holding each account it touched (and, on SQLite, the one writer) until the very end: a checkout
of any of those customers waited for the whole run, and a crash half-way undid all of it. Now a
customer's checkout waits for at most the batch it is in, completed batches stay done after a
crash, and the next run does only what is left. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from promo_store import at, points_state
from typer.testing import CliRunner

from growthwheel.config import Settings, set_settings
from growthwheel.loyalty import service as loyalty
from growthwheel.loyalty.cli import points_app
from growthwheel.loyalty.models import PointsLedgerEntry
from growthwheel.promotions import orders
from growthwheel.promotions.schemas import LineIn, OrderIn
from growthwheel.store.db import session_scope

EARNED = at("2025-01-01")
DAILY = "2026-06-01T00:05:00+00:00"  # every lot earned on 2025-01-01 has expired (365 days)
CUSTOMERS = [f"c{n:02d}" for n in range(40)]


@pytest.fixture
def shop(store_cfg: Settings) -> Iterator[Settings]:
    """40 customers with 100 points each, all of them due to expire at :data:`DAILY`."""
    with session_scope(store_cfg) as s:
        for n, customer in enumerate(CUSTOMERS):
            loyalty.earn_points(s, customer, 100, EARNED, order_id=f"old-{n}")
    set_settings(store_cfg)
    yield store_cfg
    set_settings(None)


def run_daily(*args: str) -> Any:
    app = typer.Typer()
    app.add_typer(points_app, name="points")
    return CliRunner().invoke(app, ["points", "daily", "--now", DAILY, "--json", *args])


def expire_rows(cfg: Settings) -> dict[str, int]:
    with session_scope(cfg) as s:
        rows = s.execute(sa.select(PointsLedgerEntry.customer_id, sa.func.count())
                         .where(PointsLedgerEntry.kind == "expire").group_by(PointsLedgerEntry.customer_id))
        return {str(customer): int(count) for customer, count in rows}


def test_a_crash_half_way_keeps_the_batches_done_and_the_next_run_does_the_rest(
        shop: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loyalty, "DAILY_BATCH", 5, raising=False)
    original = loyalty._expire_locked
    calls: list[str] = []

    def crash_at_the_15th(session: Any, customer_id: str, now: datetime) -> int:
        calls.append(customer_id)
        if len(calls) == 15:
            raise RuntimeError("the machine went down")
        return original(session, customer_id, now)

    monkeypatch.setattr(loyalty, "_expire_locked", crash_at_the_15th)
    crashed = run_daily()
    assert isinstance(crashed.exception, RuntimeError)
    # Batches of 5: c00-c04 and c05-c09 were committed; c10-c14 (the crash) was rolled back.
    assert expire_rows(shop) == dict.fromkeys(CUSTOMERS[:10], 1)
    assert [points_state(shop, c)["balance"] for c in CUSTOMERS[9:11]] == [0, 100]

    monkeypatch.setattr(loyalty, "_expire_locked", original)
    again = run_daily()
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["customers_expired"] == 30  # only what was left
    assert json.loads(again.output)["points_expired"] == 3000
    assert expire_rows(shop) == dict.fromkeys(CUSTOMERS, 1)  # each lot expired once
    for customer in (CUSTOMERS[0], CUSTOMERS[-1]):
        state = points_state(shop, customer)
        assert state["balance"] == state["ledger_sum"] == state["lots_remaining"] == 0
    assert json.loads(run_daily().output)["customers_expired"] == 0  # and a third run does nothing


def test_a_checkout_proceeds_while_the_daily_run_is_under_way(
        shop: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loyalty, "DAILY_BATCH", 10, raising=False)
    original = loyalty._expire_locked
    reached, release = threading.Event(), threading.Event()

    def hold_at_c20(session: Any, customer_id: str, now: datetime) -> int:
        if customer_id == "c20":  # the first customer of the third batch: the run is half done
            reached.set()
            release.wait(60)
        return original(session, customer_id, now)

    monkeypatch.setattr(loyalty, "_expire_locked", hold_at_c20)
    results: dict[str, Any] = {}

    def job() -> None:
        results["job"] = run_daily()

    def checkout() -> None:
        order = OrderIn(order_id="o-c00", customer_id="c00",
                        lines=[LineIn(line_id="a", sku="TEA", unit_price=5000, quantity=1)])
        with session_scope(shop) as s:
            results["order"] = orders.commit(s, order, currency="CNY", now=at("2026-06-01T00:06"))

    runner = threading.Thread(target=job)
    runner.start()
    try:
        assert reached.wait(60), "the daily run never reached c20"
        buyer = threading.Thread(target=checkout)
        buyer.start()
        buyer.join(20)
        finished_first = not buyer.is_alive() and runner.is_alive()
    finally:
        release.set()
        runner.join(60)
    buyer.join(60)
    # c00's expiry was committed with the first batch: its order did not wait for the run.
    assert finished_first, "the checkout of c00 waited for the daily run"
    assert results["order"].order.points_earned == 50
    assert results["job"].exit_code == 0, results["job"].output
    assert json.loads(results["job"].output)["customers_expired"] == 40
    assert points_state(shop, "c00")["balance"] == 50  # 100 expired, 50 earned by the order
