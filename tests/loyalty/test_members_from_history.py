"""Members from the shop's history (issue 12 item 3): importing customers and orders makes members
— growth value and tiers from the imported paid orders over the rolling window, birthdays from the
customers — and the member API agrees with the profile. Real store (SQLite and PostgreSQL), real
DuckDB warehouse, the real app over HTTP; answers worked out by hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from growthwheel.api.app import create_app
from growthwheel.config import Settings, set_settings
from growthwheel.facts import service as facts
from growthwheel.jobs.internal import loyalty_sync
from growthwheel.loyalty import service as loyalty
from growthwheel.loyalty.cli import loyalty_app
from growthwheel.loyalty.history import IMPORT_KIND
from growthwheel.loyalty.models import GrowthEntry, Member
from growthwheel.store.db import session_scope
from growthwheel.warehouse.ingest import import_files

NOW = datetime(2026, 6, 1, tzinfo=UTC)  # the window is (2025-06-01, 2026-06-01]
TIERS = [loyalty.TierSpec("silver", "Silver", 100), loyalty.TierSpec("gold", "Gold", 1000)]


def history(tmp: Path, cfg: Settings) -> None:
    """Four customers; the shop's time zone is Asia/Shanghai (orders at midnight local = 16:00 UTC)."""
    (tmp / "customers.csv").write_text(
        "customer_id,name,birthday,signed_up_at\n"
        "ann,Ann,1992-02-29,2024-01-05\n"
        "bo,Bo,1985-07-14,2024-03-01\n"
        "cy,Cy,,2025-01-01\n"
        "di,Di,2000-12-31,\n", encoding="utf-8")
    (tmp / "lines.csv").write_text(
        "order_id,customer_id,ordered_at,sku,quantity,line_total,status,refunded_amount\n"
        # ann: 2 orders in the window, 650.00 + 420.99 → 650 + 420 = 1070 growth: gold
        "a1,ann,2025-09-01,S,1,650.00,paid,\n"
        "a2,ann,2026-03-01,S,1,400.00,,\n"
        "a2,ann,2026-03-01,T,1,20.99,,\n"
        # ann: an order before the window earns nothing now
        "a0,ann,2025-05-01,S,1,9000.00,,\n"
        # bo: 300.00 partly refunded 120.00 → 180; a cancelled order counts nothing: silver
        "b1,bo,2026-01-10,S,1,300.00,partially_refunded,120.00\n"
        "b2,bo,2026-01-11,S,1,999.00,cancelled,\n"
        # cy: 99.99 → 99: below silver, a member without a tier
        "c1,cy,2026-05-31,S,1,99.99,,\n", encoding="utf-8")
    import_files("customers", [tmp / "customers.csv"], cfg=cfg)
    import_files("order_lines", [tmp / "lines.csv"], cfg=cfg)


def members(cfg: Settings) -> dict[str, tuple[str | None, int, date | None]]:
    with session_scope(cfg) as s:
        return {m.customer_id: (m.tier_code, m.growth, m.birthday) for m in s.scalars(sa.select(Member))}


def test_an_import_makes_members_with_growth_tiers_and_birthdays_idempotently(
        store_cfg: Settings, tmp_path: Path, make_api_key: Callable[..., str]) -> None:
    cfg = store_cfg
    history(tmp_path, cfg)
    with session_scope(cfg) as s:
        loyalty.set_tiers(s, TIERS, now=NOW)
    from growthwheel.loyalty import history as hist
    from growthwheel.warehouse.db import connect

    backend = connect(cfg)
    try:
        first = hist.sync_from_warehouse(lambda: session_scope(cfg), backend, NOW, batch=2)
        again = hist.sync_from_warehouse(lambda: session_scope(cfg), backend, NOW, batch=3)
    finally:
        backend.disconnect()
    assert first.customers == 4
    assert first.growth_entries == 4  # a1, a2, b1, c1
    assert again == first
    expected = {"ann": ("gold", 1070, date(1992, 2, 29)), "bo": ("silver", 180, date(1985, 7, 14)),
                "cy": (None, 99, None), "di": (None, 0, date(2000, 12, 31))}
    assert members(cfg) == expected
    with session_scope(cfg) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(GrowthEntry)
                        .where(GrowthEntry.kind == IMPORT_KIND)) == 4

    # The member API agrees with the profile (the birthday the profile shows).
    key = make_api_key("read", "write")
    with TestClient(create_app(cfg), headers={"Authorization": f"Bearer {key}"}) as client:
        member = client.get("/api/v1/members/ann").json()
        profile = client.get("/api/v1/customers/ann").json()
        assert member["birthday"] == profile["customer"]["birthday"] == "1992-02-29"
        assert member["tier"] == "gold"
        assert member["growth"] == 1070
        # An order through the checkout: its growth is the checkout's; after its fact reaches the
        # warehouse, a sync neither counts it again nor drops it.
        order = {"order_id": "ck-1", "customer_id": "cy", "expected_total": 5000,
                 "lines": [{"line_id": "1", "sku": "S", "unit_price": 5000, "quantity": 1}]}
        assert client.post("/api/v1/orders", json=order).status_code == 201
        owner = client.app.state.warehouse  # type: ignore[attr-defined]
        owner.run_serial(lambda: facts.drain_all(lambda: session_scope(cfg), facts.direct_importer(cfg)))
        found = loyalty_sync(owner)  # what the worker's job asks the server that owns the warehouse
        assert found["customers"] == 4
        after = client.get("/api/v1/members/cy").json()
    assert after["growth"] == 99 + 50
    assert after["tier"] == "silver"


def test_loyalty_sync_command(store_cfg: Settings, tmp_path: Path) -> None:
    history(tmp_path, store_cfg)
    set_settings(store_cfg)
    try:
        app = typer.Typer()
        app.add_typer(loyalty_app, name="loyalty")
        done = CliRunner().invoke(app, ["loyalty", "sync", "--json"])
    finally:
        set_settings(None)
    assert done.exit_code == 0, done.output
    assert '"customers": 4' in done.output
    assert members(store_cfg)["ann"][2] == date(1992, 2, 29)
