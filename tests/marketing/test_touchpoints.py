"""Touchpoints and conversion paths on a real warehouse (DuckDB; Spark gives the same paths)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from growthwheel.marketing.touchpoints import build_paths, conversion_touches, touchpoints
from growthwheel.stats.attribution import attribute
from tiny_warehouse import make_warehouse


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).replace(tzinfo=None)




def ev(eid: str, customer: str | None, at: str, *, source: str | None = None, medium: str | None = None,
       campaign: str | None = None, referrer: str | None = None, session: str | None = None,
       type_: str = "view", props: dict[str, str] | None = None) -> dict[str, Any]:
    return {"event_id": eid, "type": type_, "occurred_at": _ts(at), "customer_id": customer,
            "session_id": session, "utm_source": source, "utm_medium": medium, "utm_campaign": campaign,
            "url": "https://shop.example.com/p/1", "referrer": referrer,
            "properties": json.dumps(props) if props else None}


def order(oid: str, customer: str, at: str, total: int, refunded: int = 0, status: str = "paid",
          coupon: str | None = None) -> dict[str, Any]:
    return {"order_id": oid, "customer_id": customer, "ordered_at": _ts(at), "status": status,
            "total_amount": total, "refunded_amount": refunded, "coupon_code": coupon}


EVENTS = [
    # c1: douyin ad twice in one session (one touch), then a newsletter click, then buys twice.
    ev("e1", "c1", "2024-03-01 10:00", source="Douyin", medium="cpc", campaign="spring", session="s1"),
    ev("e2", "c1", "2024-03-01 10:05", source="douyin", medium="cpc", campaign="spring", session="s1"),
    ev("e3", "c1", "2024-03-03 09:00", type_="message_clicked",
       props={"channel": "email", "message_key": "welcome:2", "url": "https://x"}),
    ev("e4", "c1", "2024-03-10 08:00", referrer="https://www.baidu.com/s?wd=cream", session="s3"),
    ev("e5", "c1", "2024-03-10 08:01", referrer="https://shop.example.com/home", session="s3"),
    # c2: an influencer link; then nothing for 40 days before buying (outside a 30-day look-back).
    ev("e6", "c2", "2024-01-20 12:00", source="xiaohongshu", medium="kol", campaign="lily"),
    # c3: a social referral and no order: a null journey. Anonymous events are not touches.
    ev("e7", "c3", "2024-03-20 12:00", referrer="https://weibo.com/123"),
    ev("e8", None, "2024-03-20 12:00", source="google"),
    ev("e9", "c3", "2024-03-21 12:00", source="google", medium="cpc", campaign="brand"),
]
ORDERS = [
    order("o1", "c1", "2024-03-05 12:00", 10_000),
    order("o2", "c1", "2024-03-12 12:00", 30_000, refunded=5_000),
    order("o3", "c2", "2024-03-01 12:00", 8_000, coupon="LILY10"),
    order("o4", "c2", "2024-02-01 12:00", 1_000, status="cancelled"),
]


@pytest.fixture
def con() -> Any:
    return make_warehouse({"events": EVENTS, "orders": ORDERS})


def test_touchpoints_from_utm_referrers_messages_and_codes(con: Any) -> None:
    frame = touchpoints(con, influencer_codes={"LILY10": "lily"}).to_pyarrow().to_pylist()
    got = sorted((r["customer_id"], str(r["touched_at"]), r["channel"], r["campaign"], r["influencer"],
                  r["source"]) for r in frame)
    assert got == [
        ("c1", "2024-03-01 10:00:00", "douyin", "spring", None, "utm"),
        ("c1", "2024-03-03 09:00:00", "email", "welcome:2", None, "message"),
        ("c1", "2024-03-10 08:00:00", "organic_search", "baidu.com", None, "referrer"),
        ("c2", "2024-01-20 12:00:00", "xiaohongshu", "lily", "lily", "utm"),
        ("c2", "2024-03-01 12:00:00", "influencer", "lily", "lily", "code"),
        ("c3", "2024-03-20 12:00:00", "social", "weibo.com", None, "referrer"),
        ("c3", "2024-03-21 12:00:00", "google", "brand", None, "utm"),
    ]


Built = dict[str, tuple[list[str], float, float, float]]


def _paths(con: Any, lookback: int, level: str = "channel") -> Built:
    frame = conversion_touches(con, start=date(2024, 3, 1), end=date(2024, 3, 31), lookback_days=lookback,
                               influencer_codes={"LILY10": "lily"}).to_pandas()
    ps = build_paths(frame, level).paths
    ids = sorted(frame["path_id"].unique())
    out = {}
    for i, pid in enumerate([p for p in ids if p in set(frame["path_id"])][: ps.n_paths]):
        seq = [ps.channels[c] for c in ps.touches[ps.offsets[i]:ps.offsets[i + 1]]]
        out[pid] = (seq, float(ps.conversions[i]), float(ps.values[i]), float(ps.new_conversions[i]))  # type: ignore[index]
    return out


def test_paths_look_back_and_previous_order(con: Any) -> None:
    paths = _paths(con, 30)
    assert paths == {
        "null:c3": (["social", "google"], 0.0, 0.0, 0.0),
        # o1: the douyin touch and the email click before it; a new customer.
        "o1": (["douyin", "email"], 1.0, 10_000.0, 1.0),
        # o2: only what came after o1 (the search visit); value net of the refund.
        "o2": (["organic_search"], 1.0, 25_000.0, 0.0),
        # o3: the kol link is 41 days old: out of the window; the code at checkout is in.
        "o3": (["influencer"], 1.0, 8_000.0, 1.0),
    }
    longer = _paths(con, 60)
    assert longer["o3"][0] == ["xiaohongshu", "influencer"]


def test_influencer_level_and_models_run_on_built_paths(con: Any) -> None:
    frame = conversion_touches(con, start=date(2024, 3, 1), end=date(2024, 3, 31), lookback_days=60,
                               influencer_codes={"LILY10": "lily"}).to_pandas()
    ps = build_paths(frame, "influencer")
    assert ps.paths.channels == ("lily",)
    credits = attribute(build_paths(frame).paths)
    for model, credit in credits.items():
        total = credit.conversions.sum() + credit.unattributed_conversions
        assert total == pytest.approx(3), model


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    cols = sorted({k for r in rows for k in r})
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else str(r[k])) for k in cols})
    return path


@pytest.mark.spark
def test_duckdb_and_spark_build_the_same_paths(spark_session: Any, tmp_path: Path) -> None:
    from growthwheel.config import Settings
    from growthwheel.warehouse import db, ingest

    events = [{**e, "occurred_at": e["occurred_at"].isoformat() + "+00:00", "properties": e["properties"]}
              for e in EVENTS]
    orders = [{**o, "ordered_at": o["ordered_at"].isoformat() + "+00:00",
               "total": o.pop("total_amount") / 100, "refunded_amount": o["refunded_amount"] / 100}
              for o in (dict(x) for x in ORDERS)]
    ev_csv = _write_csv(tmp_path / "events.csv", events)
    or_csv = _write_csv(tmp_path / "orders.csv", orders)
    results = []
    for backend in ("duckdb", "spark"):
        cfg = Settings(data_dir=tmp_path / backend, warehouse=backend)  # type: ignore[arg-type]
        ingest.import_files("events", [ev_csv], cfg=cfg)
        ingest.import_files("orders", [or_csv], cfg=cfg)
        con = db.connect(cfg)
        results.append(_paths(con, 30))
    assert results[0] == results[1]
    assert results[0]["o2"] == (["organic_search"], 1.0, 25_000.0, 0.0)
