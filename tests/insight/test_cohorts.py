"""Acquisition cohorts and retention over a tiny shop imported from CSV (real import, real DuckDB).

Every cell is worked out by hand in the comments. Times without an offset are shop time
(Asia/Shanghai, UTC+8); ``order_date`` is the shop-local day the import derives from them.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from growthwheel.config import Settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.insight.cohorts import acquisitions, cohort_activity, retention_frame
from growthwheel.warehouse import db, ingest

# a: acquired 2024-01-15 (douyin), back on 01-20, 02-10 (80.00, 30.00 refunded) and 03-05.
# b: acquired 2024-01-31 23:30 shop time (baidu), back on 03-01.
# c: acquired 2024-01-31 17:00 UTC = 2024-02-01 01:00 shop time, with two orders at that very
#    moment: c-1 (no channel, which the import records as "direct") wins the tie on order_id,
#    so c's acquisition channel is "direct"; back on 02-29.
# d: acquired 2024-02-20 (xhs), back on 03-10.
# e: only a cancelled and a pending order: never acquired. f: first order in April.
ORDERS_CSV = """\
order_id,customer_id,ordered_at,total,refunded_amount,status,channel
a-1,a,2024-01-15 10:00:00,100.00,,paid,douyin
a-2,a,2024-01-20 10:00:00,50.00,,completed,douyin
a-3,a,2024-02-10 10:00:00,80.00,30.00,partially_refunded,baidu
a-4,a,2024-03-05 10:00:00,20.00,,paid,
b-1,b,2024-01-31T23:30:00+08:00,60.00,,paid,baidu
b-2,b,2024-03-01 09:00:00,40.00,,paid,baidu
c-2,c,2024-01-31T17:00:00Z,20.00,,paid,xhs
c-1,c,2024-01-31T17:00:00Z,10.00,,paid,
c-3,c,2024-02-29 12:00:00,30.00,,shipped,xhs
d-1,d,2024-02-20 12:00:00,25.00,,paid,xhs
d-2,d,2024-03-10 12:00:00,15.00,,paid,xhs
e-1,e,2024-01-05 12:00:00,99.00,,cancelled,
e-2,e,2024-03-05 12:00:00,99.00,,pending,
f-1,f,2024-04-02 12:00:00,70.00,,paid,douyin
"""
END = date(2024, 3, 31)


# Two visitors for the CLI's funnel: a converts (anonymously first), v1 only looks.
EVENTS_CSV = """\
event_id,type,occurred_at,customer_id,anonymous_id,utm_source,device
e1,view,2024-03-05 09:50:00,,dev-a,douyin,mobile
e2,add_to_cart,2024-03-05 09:55:00,,dev-a,,mobile
e3,checkout,2024-03-05 09:58:00,a,dev-a,,mobile
e4,purchase,2024-03-05 10:00:00,a,dev-a,,mobile
e5,view,2024-03-06 09:00:00,,v1,baidu,desktop
"""


@pytest.fixture(scope="module")
def shop_cfg(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("cohorts")
    cfg = Settings(data_dir=data / "data")
    for table, text in (("orders", ORDERS_CSV), ("events", EVENTS_CSV)):
        path = data / f"{table}.csv"
        path.write_text(text, encoding="utf-8")
        result = ingest.import_files(table, [path], cfg=cfg)
        assert result.rows_quarantined == 0
    return cfg


@pytest.fixture(scope="module")
def orders(shop_cfg: Settings) -> Any:
    return db.connect(shop_cfg).table("orders")


def cells(frame: Any, *keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(r[k] for k in keys): r for r in frame.to_dict(orient="records")}


def test_acquisition_date_and_channel(orders: Any) -> None:
    df = acquisitions(orders).execute().set_index("customer_id")
    assert {c: (str(df.loc[c, "first_date"])[:10], df.loc[c, "channel"]) for c in df.index} == {
        "a": ("2024-01-15", "douyin"), "b": ("2024-01-31", "baidu"),
        "c": ("2024-02-01", "direct"), "d": ("2024-02-20", "xhs"), "f": ("2024-04-02", "douyin"),
    }


def test_monthly_calendar_cohorts(orders: Any) -> None:
    frame = retention_frame(orders, by="month", end=END)
    got = cells(frame, "cohort", "period")
    # January cohort: a and b. Period 0 (Jan): both, 3 orders, 100 + 50 + 60 = 210.00.
    # Period 1 (Feb): a only (recurring: bought in Jan; first return), 80 − 30 = 50.00.
    # Period 2 (Mar): a and b; a is recurring (bought in Feb), b comes back for the first time.
    jan = date(2024, 1, 1)
    expect = {
        0: (2, 1.0, None, None, 3, "210.00", "210.00", "105.00"),
        1: (1, 0.5, 1, 1, 1, "50.00", "260.00", "130.00"),
        2: (2, 1.0, 1, 1, 2, "60.00", "320.00", "160.00"),
    }
    for k, (customers, retention, recurring, returns, n_orders, revenue, cum, per) in expect.items():
        row = got[(jan, k)]
        assert (row["customers"], row["retention"], row["recurring"], row["first_returns"],
                row["orders"]) == (customers, retention, recurring, returns, n_orders), k
        assert (row["revenue"], row["cumulative_revenue"], row["revenue_per_customer"]) == (
            Decimal(revenue), Decimal(cum), Decimal(per)), k
        assert row["cohort_size"] == 2
        assert row["complete"]
    # February cohort: c (acquired Feb 1 shop time) and d. Period 0: c's three orders and d's
    # first, 10 + 20 + 30 + 25 = 85.00. Period 1 (Mar): d, recurring and first return, 15.00.
    feb = date(2024, 2, 1)
    assert (got[(feb, 0)]["customers"], got[(feb, 0)]["orders"], got[(feb, 0)]["revenue"]) == (
        2, 4, Decimal("85.00"))
    assert (got[(feb, 1)]["customers"], got[(feb, 1)]["recurring"],
            got[(feb, 1)]["first_returns"], got[(feb, 1)]["revenue"]) == (1, 1, 1, Decimal("15.00"))
    assert got[(feb, 1)]["period_start"] == date(2024, 3, 1)
    # f's April order is after END: no April cohort. Periods run up to END's month only.
    assert set(got) == {(jan, 0), (jan, 1), (jan, 2), (feb, 0), (feb, 1)}


def test_rolling_windows_from_each_customers_own_first_order(orders: Any) -> None:
    frame = retention_frame(orders, by="month", mode="rolling", window_days=30, end=END)
    got = cells(frame, "cohort", "period")
    jan, feb = date(2024, 1, 1), date(2024, 2, 1)
    # a (from 01-15): 01-20 is day 5 and 02-10 day 26, both period 0; 03-05 is day 50: period 1.
    # b (from 01-31): 03-01 is day 30: period 1. So period 0: 4 orders, 100 + 50 + 50 + 60;
    # period 1: a and b, both recurring and both back for the first time, 20 + 40.
    assert (got[(jan, 0)]["customers"], got[(jan, 0)]["orders"], got[(jan, 0)]["revenue"]) == (
        2, 4, Decimal("260.00"))
    assert (got[(jan, 1)]["customers"], got[(jan, 1)]["recurring"], got[(jan, 1)]["first_returns"],
            got[(jan, 1)]["revenue"]) == (2, 2, 2, Decimal("60.00"))
    # Periods up to (END − Jan 1) // 30 = 3, the last two empty. A period is complete once the
    # cohort's last member (acquired up to Jan 31) has lived it: Jan 31 + 59 days = Mar 30 ≤ END
    # for period 1, Jan 31 + 89 = Apr 29 > END for period 2.
    assert [got[(jan, k)]["customers"] for k in range(4)] == [2, 2, 0, 0]
    assert [got[(jan, k)]["complete"] for k in range(4)] == [True, True, False, False]
    assert got[(jan, 2)]["period_start"] == date(2024, 3, 1)  # Jan 1 + 60 days
    # c's 02-29 (day 28) and d's 03-10 (day 19 from 02-20) both fall in period 0.
    assert (got[(feb, 0)]["orders"], got[(feb, 1)]["customers"]) == (5, 0)


def test_weekly_calendar_cohorts(orders: Any) -> None:
    df = cohort_activity(orders, by="week", end=END).execute()
    got = {(str(r["cohort"])[:10], r["period"]): (r["customers"], r["recurring"], r["first_returns"])
           for r in df.to_dict(orient="records")}
    # Week of Mon 01-15: a; 01-20 (Sat) is period 0, 02-10 in the week of 02-05 (3 weeks on):
    # period 3, a first return; 03-05 in the week of 03-04: period 7, neither recurring nor first.
    # Week of Mon 01-29: b (Wed 01-31) and c (Thu 02-01); both back in the week of 02-26: period 4.
    # Week of Mon 02-19: d; 03-10 (Sun) is in the week of 03-04: period 2.
    assert got == {
        ("2024-01-15", 0): (1, 0, 0), ("2024-01-15", 3): (1, 0, 1), ("2024-01-15", 7): (1, 0, 0),
        ("2024-01-29", 0): (2, 0, 0), ("2024-01-29", 4): (2, 0, 2),
        ("2024-02-19", 0): (1, 0, 0), ("2024-02-19", 2): (1, 0, 1),
    }


def test_by_channel_start_and_end(orders: Any) -> None:
    frame = retention_frame(orders, by="month", end=END, by_channel=True)
    got = cells(frame, "cohort", "channel", "period")
    jan, feb = date(2024, 1, 1), date(2024, 2, 1)
    # a came through douyin (later orders' channels do not matter), b through baidu.
    assert [got[(jan, "douyin", k)]["customers"] for k in range(3)] == [1, 1, 1]
    assert [got[(jan, "baidu", k)]["customers"] for k in range(3)] == [1, 0, 1]
    assert got[(jan, "baidu", 2)]["first_return_rate"] == 1.0
    assert got[(feb, "direct", 0)]["cohort_size"] == 1
    assert got[(feb, "xhs", 0)]["cohort_size"] == 1
    # Only customers acquired from Feb 1 (c, at 01:00 shop time, is one of them).
    later = retention_frame(orders, by="month", start=date(2024, 2, 1), end=END)
    assert set(later["cohort"]) == {feb}
    assert later["cohort_size"].iloc[0] == 2
    # As of Feb 15: b's March order and d do not exist yet; January's period 1 is not over.
    early = cells(retention_frame(orders, by="month", end=date(2024, 2, 15)), "cohort", "period")
    assert set(early) == {(jan, 0), (jan, 1), (feb, 0)}
    assert early[(feb, 0)]["cohort_size"] == 1
    assert early[(jan, 1)]["complete"] is False
    assert early[(jan, 0)]["complete"] is True
    # Without an end, the last paid order (f, 2024-04-02) is the end: an April cohort appears.
    assert date(2024, 4, 1) in set(retention_frame(orders, by="month")["cohort"])


def test_bad_arguments(orders: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        cohort_activity(orders, by="quarter")
    with pytest.raises(InvalidArgumentError):
        cohort_activity(orders, mode="sliding")
    with pytest.raises(InvalidArgumentError):
        cohort_activity(orders, mode="rolling", window_days=0)


def test_empty_warehouse(tmp_path: Path) -> None:
    from growthwheel.errors import NoDataError

    con = db.connect(Settings(data_dir=tmp_path / "empty"), read_only=False)
    with pytest.raises(NoDataError):
        retention_frame(con.table("orders"))
    assert retention_frame(con.table("orders"), end=END).empty


def test_command_line_json(shop_cfg: Settings) -> None:
    import json

    from typer.testing import CliRunner

    from growthwheel.cli.insight import insight_app
    from growthwheel.config import set_settings

    runner = CliRunner()
    set_settings(shop_cfg)
    try:
        def run(*args: str) -> Any:
            result = runner.invoke(insight_app, [*args, "--json"])
            assert result.exit_code == 0, result.output
            return json.loads(result.output)

        cohorts = run("cohorts", "--to", "2024-03-31")
        assert cohorts["currency"] == "CNY"
        jan = [c for c in cohorts["cells"] if c["cohort"] == "2024-01-01"]
        assert [c["customers"] for c in jan] == [2, 1, 2]
        assert jan[1]["revenue"] == 50.0
        rfm = run("rfm", "--as-of", "2024-03-31")
        # a, b, c, d bought by then (f only in April): four customers in both schemes.
        assert rfm["customers"] == 4
        assert sum(s["customers"] for s in rfm["value_classes"]) == 4
        assert len(rfm["segments"]) == 11
        assert len(rfm["grid"]) == 25
        life = run("lifecycle", "--as-of", "2024-03-31", "--from", "2024-02-15",
                   "--at-risk-days", "30", "--dormant-days", "60", "--churned-days", "120")
        # a: 4 orders, last 03-05 (26 days): loyal; b: 2 orders, last 03-01: repeat; c: 3 orders,
        # last 02-29 (31 days): at risk; d: 2 orders, last 03-10: repeat.
        assert {s["stage"]: s["customers"] for s in life["stages"] if s["customers"]} == {
            "loyal": 1, "repeat": 2, "at_risk": 1}
        assert life["thresholds"]["source"] == "manual"
        # On 02-15 a had 3 orders (loyal), b 1 order 15 days old (new), c 2 orders (repeat)
        # and d had not bought.
        moves = {(m["from_stage"], m["to_stage"]): m["customers"]
                 for m in life["transitions"]["moves"]}
        assert moves == {("loyal", "loyal"): 1, ("new", "repeat"): 1, ("repeat", "at_risk"): 1,
                         ("none", "repeat"): 1}
        funnel = run("funnel", "--by", "device")
        assert [(r["device"], r["entrants"]) for r in funnel["rows"] if r["step"] == 4] == [
            ("desktop", 0), ("mobile", 1)]
        bad = runner.invoke(insight_app, ["lifecycle", "--at-risk-days", "30"])
        assert bad.exit_code != 0
    finally:
        set_settings(None)
