"""A refresh of a tag rule with an order-line category condition and an events condition through
the service, with the operational store on SQLite and on PostgreSQL: the same members, entered /
left history, rule tags and counts recorded on the segment and in the audit log, worked out by
hand from the tea shop (tea_shop.py)."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import ibis
from sqlalchemy import select
from tea_shop import AS_OF

from growthwheel.accounts.models import AuditEntry
from growthwheel.config import Settings
from growthwheel.segments import service
from growthwheel.store.db import session_scope
from growthwheel.warehouse.db import open_duckdb

T1 = datetime(2025, 4, 1, 2, 0, tzinfo=UTC).replace(tzinfo=None)
T2 = datetime(2025, 4, 26, 2, 0, tzinfo=UTC).replace(tzinfo=None)
#: Paid orders in Tea in the last 30 days, by a customer who viewed something in the same window.
DEFINITION = {"all": [
    {"type": "orders", "op": ">=", "value": 1, "category": ["Tea"], "window": {"last": 30}},
    {"type": "events", "event": "view", "op": ">=", "value": 1, "window": {"last": 30}},
]}


def refresh(cfg: Settings, as_of: date, at: datetime) -> Any:
    con = open_duckdb(cfg)
    try:
        with session_scope(cfg) as session:
            seg = service.get_segment(session, "tea viewers")
            ctx = service.context(cfg, ibis.duckdb.from_connection(con), as_of)
            return service.refresh_segment(session, seg, ctx, service.direct_writer(con),
                                           principal=None, actor_name="tests", at=at)
    finally:
        con.close()


def test_refresh_on_either_operational_store(store_cfg: Settings, tea_shop_template: Path) -> None:
    shutil.copy(tea_shop_template / store_cfg.warehouse_path.name, store_cfg.warehouse_path)
    with session_scope(store_cfg) as session:
        seg_id = service.create_segment(session, "tea viewers", DEFINITION, principal=None,
                                        actor_name="tests", tag="tea-viewer").id
    # As of 03-31: c1 (O1 03-25, viewed 03-25) and c3 (O5 03-30, viewed 03-30).
    first = refresh(store_cfg, AS_OF, T1)
    assert (first.members, first.entered, first.left, first.tagged) == (2, 2, 0, 2)
    # As of 04-25 (03-27 .. 04-25): c3 stays; c4 (O7 04-02, viewed 03-28) enters; c1 leaves.
    second = refresh(store_cfg, date(2025, 4, 25), T2)
    assert (second.members, second.entered, second.left, second.tagged, second.untagged) == (2, 1, 1, 1, 1)
    con = duckdb.connect(str(store_cfg.warehouse_path), read_only=True)
    try:
        members = con.execute("SELECT customer_id, entered_at FROM segment_members WHERE segment_id = ? "
                              "ORDER BY customer_id", [seg_id]).fetchall()
        tagged = con.execute("SELECT customer_id FROM customer_tags WHERE tag = 'tea-viewer' "
                             "ORDER BY customer_id").fetchall()
    finally:
        con.close()
    assert members == [("c3", T1), ("c4", T2)]
    assert tagged == [("c3",), ("c4",)]
    with session_scope(store_cfg) as session:
        seg = service.get_segment(session, seg_id)
        assert (seg.members, seg.as_of) == (2, date(2025, 4, 25))
        assert seg.refreshed_at == T2.replace(tzinfo=UTC)
        logged = session.scalars(select(AuditEntry).where(AuditEntry.action == "segment.refresh")
                                 .order_by(AuditEntry.id)).all()
        assert sorted((e.detail["entered"], e.detail["left"]) for e in logged) == [(1, 1), (2, 0)]
