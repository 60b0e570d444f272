"""The simulator's funnel is that of a real shop, and the funnel analysis recovers it.

A small demo shop is simulated; its behaviour events go into a DuckDB warehouse with the stored
schema, and :func:`growthwheel.insight.funnels.funnel_frame` is run with the session as the person
(``anonymous_id`` = ``session_id``, no customer id), month by month and by channel. The step rates
it measures must match the true rates of ``ground_truth.json`` (the simulator's per month and
channel step probabilities) within sampling error, and those rates must look like a real shop's:
5-10 % of sessions with a product view add to cart, 1-4 % of sessions buy, higher around Double 11
than after Spring Festival.
"""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pytest

from growthwheel.insight.funnels import DEFAULT_STEPS, funnel_frame
from growthwheel.sim import build_demo_files
from growthwheel.sim.customers import CHANNELS
from growthwheel.warehouse import schema

CUSTOMERS = 1_500
STEP_NAMES = ("view_to_cart", "cart_to_checkout", "checkout_to_purchase")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    """The session-keyed events table and the funnel's ground truth."""
    out: Path = tmp_path_factory.mktemp("funnel-shop")
    files = build_demo_files(out, customers=CUSTOMERS, seed=11)
    truth = json.loads(files.ground_truth.read_text("utf-8"))["funnel"]
    raw = duckdb.connect()
    raw.execute("SET TimeZone = 'UTC'")
    for table in schema.TABLES.values():
        raw.execute(schema.ddl(table.name, table.stored))
    raw.execute(f"""
        INSERT INTO events BY NAME
        SELECT event_id, type, CAST(occurred_at AS TIMESTAMPTZ)::TIMESTAMP AS occurred_at,
               CAST(substr(occurred_at, 1, 10) AS DATE) AS event_date,
               NULL AS customer_id, session_id AS anonymous_id, session_id, utm_source, device
        FROM read_parquet('{files.paths["events"]}')
    """)
    return ibis.duckdb.from_connection(raw).table("events"), truth


def _measured(frame: Any) -> tuple[dict[str, float], list[int]]:
    n = [int(x) for x in frame["entrants"]]
    rates = dict(zip(STEP_NAMES, (n[1] / n[0], n[2] / n[1], n[3] / n[2]), strict=True))
    rates["session_conversion"] = n[3] / n[0]
    return rates, n


def _close(measured: dict[str, float], n: list[int], truth: dict[str, float], where: str) -> None:
    """Each step's measured rate lies within 4.5 binomial standard errors (+0.002 for the few
    sessions that cross a month boundary) of the true rate."""
    for i, step in enumerate([*STEP_NAMES, "session_conversion"]):
        p = truth[step]
        base = n[0] if step == "session_conversion" else n[i]
        se = math.sqrt(p * (1 - p) / base)
        assert abs(measured[step] - p) < 4.5 * se + 0.002, (where, step, measured[step], p)


def test_funnel_recovers_the_true_rates_by_month(shop: tuple[Any, dict[str, Any]]) -> None:
    events, truth = shop
    by_month = truth["rates_by_month"]
    assert len(by_month) == 12
    for month, want in by_month.items():
        first = date(2025, int(month), 1)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        frame = funnel_frame(events, DEFAULT_STEPS, window=timedelta(days=1), start=first, end=last)
        measured, n = _measured(frame)
        _close(measured, n, want, month)
    # The rates of a real shop, moving with the season.
    for want in by_month.values():
        assert 0.05 <= want["view_to_cart"] <= 0.10
        assert 0.01 <= want["session_conversion"] <= 0.04
    assert by_month["11"]["session_conversion"] > 1.4 * by_month["02"]["session_conversion"]


def test_funnel_recovers_the_true_rates_by_channel(shop: tuple[Any, dict[str, Any]]) -> None:
    events, truth = shop
    frame = funnel_frame(events, DEFAULT_STEPS, window=timedelta(days=1), breakdown="utm_source")
    source = {c.key: c.utm_source or "(none)" for c in CHANNELS}
    conversions = {}
    for key, want in truth["rates_by_channel"].items():
        part = frame[frame["utm_source"] == source[key]]
        measured, n = _measured(part)
        _close(measured, n, want, key)
        assert 0.01 <= want["session_conversion"] <= 0.04
        conversions[key] = measured["session_conversion"]
    # People who come from WeChat mean to buy more than Douyin's feed-scrollers.
    assert conversions["wechat"] > 1.3 * conversions["douyin"]
    # The overall truth is the sum of its parts; a flat rate would be a single number.
    overall = funnel_frame(events, DEFAULT_STEPS, window=timedelta(days=1))
    measured, n = _measured(overall)
    _close(measured, n, {**truth["step_probabilities"],
                         "session_conversion": truth["session_conversion"]}, "overall")
    assert len({round(v["session_conversion"], 3) for v in truth["rates_by_month"].values()}) >= 6
