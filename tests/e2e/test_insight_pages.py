"""The customer-insight console pages in a real browser (headless Chromium) over the demo shop.

The figures on the page are checked against the report functions (``rfm_report``,
``funnel_frame``, ``retention_frame``, ``lifecycle_report``) for the same data and day, and their
totals against independent pandas computations from the warehouse tables as they are at the time
of the test (other tests of the session import files into the demo shop).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pandas as pd
import pytest

from growthwheel.insight.cohorts import retention_frame
from growthwheel.insight.funnels import DEFAULT_STEPS, funnel_frame
from growthwheel.insight.lifecycle import STAGES, lifecycle_report, thresholds_for
from growthwheel.insight.rfm import rfm_report
from growthwheel.web import insight_pages

Console = Any  # conftest.Console: url, app, data_dir, admin, analyst, orders, events, customers
PAID = ("paid", "shipped", "completed", "partially_refunded", "refunded")


@pytest.fixture
def insight(console: Console) -> Console:
    """The running console with the insight pages mounted (until the app lists them itself)."""
    if not any(getattr(r, "path", "") == "/insight/rfm" for r in console.app.routes):
        console.app.include_router(insight_pages.router)
    return console


def _table(console: Console, name: str) -> pd.DataFrame:
    """A warehouse table as it is now (other tests in the session import files into it)."""
    with console.app.state.warehouse.read() as con:
        frame: pd.DataFrame = con.table(name).to_pandas()
    return frame


def _paid_until(console: Console, day: date) -> pd.DataFrame:
    orders = _table(console, "orders")
    orders = orders.assign(day=orders.order_date.map(lambda d: pd.Timestamp(d).date()))
    return orders[orders.status.isin(PAID) & (orders.day <= day)]


def _report(console: Console, day: date) -> dict[str, Any]:
    with console.app.state.warehouse.read() as con:
        return rfm_report(con.table("orders"), day)


def _log_in(page: Any, console: Console, path: str) -> None:
    page.goto(console.url + path)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("input[name=email]", console.admin.email)
    page.fill("input[name=password]", console.admin.password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(re.compile(re.escape(console.url + path)))


_CHART = """
(id) => {
  const el = document.getElementById(id);
  const chart = el && window.echarts && window.echarts.getInstanceByDom(el);
  if (!chart) return null;
  const canvas = el.querySelector("canvas");
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
  const option = chart.getOption();
  const axis = (name) => (option[name] && option[name][0] ? option[name][0].name : null);
  return {painted, xName: axis("xAxis"), yName: axis("yAxis"),
          series: option.series.map((s) => ({name: s.name, type: s.type, data: s.data}))};
}
"""


def _chart(page: Any, chart_id: str) -> dict[str, Any]:
    page.wait_for_function(
        "(id) => window.echarts && echarts.getInstanceByDom(document.getElementById(id))",
        arg=chart_id,
    )
    page.wait_for_timeout(200)  # let the first frame paint
    state: dict[str, Any] = page.evaluate(_CHART, chart_id)
    return state


def _cells(page: Any, table_id: str, column: str) -> dict[str, str]:
    rows = page.locator(f"#{table_id} tbody tr").all()
    return {str(r.get_attribute("data-segment")): r.locator(f"td[data-col={column}]").inner_text()
            for r in rows}


@pytest.mark.parametrize(
    "path", ["/insight/rfm?as_of=2025-02-01", "/insight/funnel", "/insight/cohorts?by=week",
             "/insight/lifecycle"],
)
def test_insight_pages_need_a_signed_in_user(insight: Console, path: str) -> None:
    answer = httpx.get(insight.url + path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")
    assert "/insight/" in unquote(answer.headers["location"])


def test_rfm_page_shows_the_report_as_a_heatmap_and_two_tables(
    new_page: Any, insight: Console, screenshots: Path
) -> None:
    page = new_page()
    _log_in(page, insight, "/insight/rfm")
    last = max(pd.Timestamp(d).date() for d in _paid_until(insight, date(2100, 1, 1)).order_date)
    assert page.locator("input[name=as_of]").input_value() == last.isoformat()
    assert page.locator(".mainnav-extra a.active").inner_text() == "Insight"
    report = _report(insight, last)

    # Totals worked out independently with pandas.
    paid = _paid_until(insight, last)
    buyers = paid.customer_id.nunique()
    assert report["customers"] == buyers
    summary = page.locator("[data-testid=rfm-summary]").inner_text()
    assert f"{buyers:,} customers" in summary
    assert last.isoformat() in summary

    chart = _chart(page, "chart-rfm")
    assert chart["painted"] > 5000, "the heatmap is blank"
    (series,) = chart["series"]
    assert series["type"] == "heatmap"
    got = {(int(f) + 1, int(r) + 1): int(n) for f, r, n in series["data"]}
    assert got == {(c["f_score"], c["r_score"]): c["customers"] for c in report["grid"]}
    assert sum(got.values()) == buyers
    assert (chart["xName"], chart["yName"]) == ("F score (frequency)", "R score (recency)")

    classic = _cells(page, "rfm-classic", "customers")
    assert list(classic) == [s["segment"] for s in report["segments"]]
    assert classic == {s["segment"]: f"{s['customers']:,}" for s in report["segments"]}
    money = _cells(page, "rfm-classic", "monetary")
    assert money == {s["segment"]: f"¥{Decimal(str(s['monetary'])):,.2f}" for s in report["segments"]}
    net = int((paid.total_amount.fillna(0) - paid.refunded_amount.fillna(0)).sum())
    assert sum(Decimal(v.lstrip("¥").replace(",", "")) for v in money.values()) == Decimal(net) / 100
    value = _cells(page, "rfm-value", "customers")
    assert value == {s["segment"]: f"{s['customers']:,}" for s in report["value_classes"]}
    assert page.locator("#rfm-classic tr[data-segment=Champions] .seg-name").inner_text() == "Champions"
    page.screenshot(path=str(screenshots / "insight-rfm-en.png"), full_page=True)

    page.click(".topbar [data-lang=zh]")
    page.wait_for_url(re.compile(r"lang=zh"))
    assert page.locator("h1").inner_text() == "RFM 客户分层"
    assert page.locator(".mainnav-extra a").inner_text() == "客户洞察"
    assert page.locator("#rfm-classic tr[data-segment=Champions] .seg-name").inner_text() == "冠军客户"
    assert page.locator("#rfm-value tbody tr .seg-name").first.inner_text() == "重要价值"
    assert page.locator("#rfm-classic th").first.inner_text() == "分群"
    chart = _chart(page, "chart-rfm")
    assert (chart["xName"], chart["yName"]) == ("F 分（购买频次）", "R 分（最近购买）")
    assert chart["series"][0]["name"] == "客户数"
    page.screenshot(path=str(screenshots / "insight-rfm-zh.png"), full_page=True)


def test_rfm_as_of_an_earlier_day_counts_only_the_customers_known_then(
    page: Any, insight: Console
) -> None:
    day = min(_paid_until(insight, date(2100, 1, 1)).day) + timedelta(days=40)
    _log_in(page, insight, "/insight/rfm")
    page.fill("input[name=as_of]", day.isoformat())
    page.click("form.range-form button[type=submit]")
    page.wait_for_url(re.compile(r"as_of=" + day.isoformat()))
    buyers = _paid_until(insight, day).customer_id.nunique()
    report = _report(insight, day)
    assert report["customers"] == buyers
    assert f"{buyers:,} customers" in page.locator("[data-testid=rfm-summary]").inner_text()
    assert _cells(page, "rfm-classic", "share") == {
        s["segment"]: "–" if s["share"] is None else f"{s['share']:.1%}" for s in report["segments"]
    }
    series = _chart(page, "chart-rfm")["series"][0]["data"]
    assert sum(int(n) for _, _, n in series) == buyers

    # A day that is not a date is ignored (the latest day is shown) and never echoed.
    page.goto(insight.url + "/insight/rfm?as_of=%3Cscript%3Ealert(1)%3C/script%3E")
    assert "<script>alert" not in page.content()
    last = max(pd.Timestamp(d).date() for d in _paid_until(insight, date(2100, 1, 1)).order_date)
    assert page.locator("input[name=as_of]").input_value() == last.isoformat()


def _funnel(console: Console, days: int) -> pd.DataFrame:
    with console.app.state.warehouse.read() as con:
        return funnel_frame(con.table("events"), DEFAULT_STEPS, window=timedelta(days=days))


def _viewers(console: Console) -> int:
    """People who viewed a product: a customer id, else the customer the anonymous id was seen
    with (the smallest), else the anonymous id itself."""
    ev = _table(console, "events")
    linked = (ev.dropna(subset=["customer_id", "anonymous_id"])
              .groupby("anonymous_id").customer_id.min())
    person = ev.customer_id.fillna(ev.anonymous_id.map(linked)).fillna("anon:" + ev.anonymous_id)
    views = person[(ev.type == "view") & (ev.customer_id.notna() | ev.anonymous_id.notna())]
    return int(views.nunique())


def test_funnel_page_shows_steps_conversion_and_drop_off(
    new_page: Any, insight: Console, screenshots: Path
) -> None:
    page = new_page()
    _log_in(page, insight, "/insight/funnel")
    assert page.locator("input[name=window_days]").input_value() == "14"
    assert page.locator(".insight-tabs a.active").get_attribute("data-tab") == "funnel"
    frame = _funnel(insight, 14)
    entrants = [int(n) for n in frame.entrants]
    assert entrants[0] == _viewers(insight)
    assert entrants == sorted(entrants, reverse=True)
    assert entrants[-1] > 0

    rows = page.locator("#funnel-steps tbody tr").all()
    assert [r.get_attribute("data-event") for r in rows] == list(DEFAULT_STEPS)
    for row, want in zip(rows, frame.to_dict(orient="records"), strict=True):
        assert row.locator("[data-col=entrants]").inner_text() == f"{want['entrants']:,}"
        if want["step"] == 1:
            assert row.locator("[data-col=drop_off]").inner_text() == "–"
            continue
        assert row.locator("[data-col=from_previous]").inner_text() == (
            f"{want['conversion_from_previous']:.1%}")
        assert row.locator("[data-col=from_first]").inner_text() == f"{want['conversion_from_first']:.1%}"
        assert row.locator("[data-col=drop_off]").inner_text() == f"{want['drop_off']:,}"
        assert want["drop_off"] == entrants[want["step"] - 2] - want["entrants"]
        seconds = want["median_seconds_from_first"]
        expected = f"{seconds / 60:,.1f} min" if seconds < 7200 else f"{seconds / 3600:,.1f} h"
        assert row.locator("[data-col=median_time]").inner_text() == expected
    assert rows[1].locator(".seg-name").inner_text() == "Add to cart"

    chart = _chart(page, "chart-funnel")
    assert chart["painted"] > 5000, "the funnel is blank"
    (series,) = chart["series"]
    assert series["type"] == "funnel"
    assert [d["value"] for d in series["data"]] == entrants
    assert [d["name"] for d in series["data"]] == ["View", "Add to cart", "Checkout", "Purchase"]
    page.screenshot(path=str(screenshots / "insight-funnel-en.png"), full_page=True)

    page.fill("input[name=window_days]", "1")
    page.click("form.range-form button[type=submit]")
    page.wait_for_url(re.compile(r"window_days=1\b"))
    short = [int(n) for n in _funnel(insight, 1).entrants]
    assert short[0] == entrants[0]
    assert short[-1] <= entrants[-1]
    assert [d["value"] for d in _chart(page, "chart-funnel")["series"][0]["data"]] == short
    shown = page.locator("#funnel-steps [data-col=entrants]").all_inner_texts()
    assert shown == [f"{n:,}" for n in short]

    page.click(".topbar [data-lang=zh]")
    page.wait_for_url(re.compile(r"lang=zh"))
    assert page.locator("h1").inner_text() == "购物转化漏斗"
    assert page.locator("#funnel-steps th").first.inner_text() == "步骤"
    names = [d["name"] for d in _chart(page, "chart-funnel")["series"][0]["data"]]
    assert names == ["浏览", "加购", "结算", "购买"]
    page.screenshot(path=str(screenshots / "insight-funnel-zh.png"), full_page=True)


def test_funnel_window_out_of_range_is_brought_within_it(page: Any, insight: Console) -> None:
    _log_in(page, insight, "/insight/funnel?window_days=0")
    assert page.locator("input[name=window_days]").input_value() == "1"
    shown = page.locator("#funnel-steps [data-col=entrants]").all_inner_texts()
    assert shown == [f"{int(n):,}" for n in _funnel(insight, 1).entrants]
    page.goto(insight.url + "/insight/funnel?window_days=%3Cb%3E")
    assert page.locator("input[name=window_days]").input_value() == "14"
    page.goto(insight.url + "/insight/funnel?window_days=99999")
    assert page.locator("input[name=window_days]").input_value() == "365"


def _cohort_sizes(console: Console, by: str) -> dict[str, int]:
    """Customers per cohort: the period of each customer's first paid order (by time, then id)."""
    paid = _paid_until(console, date(2100, 1, 1))
    first = paid.sort_values(["ordered_at", "order_id"]).drop_duplicates("customer_id")
    days = pd.to_datetime(first.day)
    if by == "month":
        labels = days.dt.strftime("%Y-%m")
    else:
        labels = (days - pd.to_timedelta(days.dt.weekday, unit="D")).dt.strftime("%Y-%m-%d")
    return {str(k): int(v) for k, v in labels.value_counts().sort_index().items()}


def test_cohorts_page_shows_retention_by_month_and_by_week(
    new_page: Any, insight: Console, screenshots: Path
) -> None:
    page = new_page()
    _log_in(page, insight, "/insight/cohorts")
    assert page.locator(".presets a.active[data-by]").get_attribute("data-by") == "month"
    with insight.app.state.warehouse.read() as con:
        frame = retention_frame(con.table("orders"), by="month")
    sizes = _cohort_sizes(insight, "month")
    rows = page.locator("#cohort-table tbody tr").all()
    assert [r.get_attribute("data-cohort") for r in rows] == list(sizes)
    assert {str(r.get_attribute("data-cohort")): r.locator("[data-col=size]").inner_text()
            for r in rows} == {k: f"{v:,}" for k, v in sizes.items()}
    first = rows[0].locator("td[data-period]").all_inner_texts()
    want = frame[frame.cohort == frame.cohort.min()].retention.tolist()
    assert first == [f"{r:.1%}" for r in want]
    assert first[0] == "100.0%"

    chart = _chart(page, "chart-cohorts")
    assert chart["painted"] > 5000, "the heatmap is blank"
    (series,) = chart["series"]
    cohorts = sorted(frame.cohort.unique())
    got = {(int(y), int(x)): float(v) for x, y, v in series["data"]}
    assert got == {(cohorts.index(r["cohort"]), int(r["period"])): round(r["retention"] * 100, 1)
                   for r in frame.to_dict(orient="records")}
    page.screenshot(path=str(screenshots / "insight-cohorts-month-en.png"), full_page=True)

    page.click(".presets a[data-by=week]")
    page.wait_for_url(re.compile(r"by=week"))
    weeks = _cohort_sizes(insight, "week")
    rows = page.locator("#cohort-table tbody tr").all()
    assert [r.get_attribute("data-cohort") for r in rows] == list(weeks)
    assert page.locator("#cohort-table th").nth(2).inner_text() == "Week 0"
    assert len(_chart(page, "chart-cohorts")["series"][0]["data"]) == len(
        retention_frame_of(insight, "week"))

    page.click(".topbar [data-lang=zh]")
    page.wait_for_url(re.compile(r"lang=zh"))
    assert page.locator("h1").inner_text() == "同期群留存"
    assert page.locator("#cohort-table th").nth(2).inner_text() == "第 0 周"
    assert page.locator(".presets a.active[data-by]").inner_text() == "按周"
    page.screenshot(path=str(screenshots / "insight-cohorts-week-zh.png"), full_page=True)


def retention_frame_of(console: Console, by: str) -> pd.DataFrame:
    with console.app.state.warehouse.read() as con:
        return retention_frame(con.table("orders"), by=by)


def test_lifecycle_page_shows_stages_and_moves(
    new_page: Any, insight: Console, screenshots: Path
) -> None:
    page = new_page()
    _log_in(page, insight, "/insight/lifecycle")
    paid = _paid_until(insight, date(2100, 1, 1))
    last = max(paid.day)
    start = last - timedelta(days=30)
    assert page.locator("input[name=as_of]").input_value() == last.isoformat()
    assert page.locator("input[name=from]").input_value() == start.isoformat()
    with insight.app.state.warehouse.read() as con:
        orders = con.table("orders")
        th = thresholds_for(orders, end=last)
        report = lifecycle_report(orders, last, thresholds=th, start=start)
    buyers = paid.customer_id.nunique()
    assert report["customers"] == buyers
    summary = page.locator("[data-testid=lifecycle-summary]").inner_text()
    assert f"{buyers:,} customers" in summary
    assert f"At risk after {th.at_risk_days} days" in summary

    shown = {str(r.get_attribute("data-stage")): r.locator("[data-col=customers]").inner_text()
             for r in page.locator("#lifecycle-stages tbody tr").all()}
    assert shown == {s["stage"]: f"{s['customers']:,}" for s in report["stages"]}
    chart = _chart(page, "chart-lifecycle")
    assert chart["painted"] > 3000, "the stage chart is blank"
    assert chart["series"][0]["data"] == [s["customers"] for s in report["stages"]]

    # Every customer known at as_of sits in one row of the matrix; the "not a customer yet"
    # row holds those whose first paid order came after the start day.
    totals = {str(r.get_attribute("data-from")): int(r.locator("[data-col=total]").inner_text()
                                                      .replace(",", ""))
              for r in page.locator("#lifecycle-moves tbody tr").all()}
    assert sum(totals.values()) == buyers
    first = paid.groupby("customer_id").day.min()
    assert totals.get("none", 0) == int((first > start).sum())
    moves = {(m["from_stage"], m["to_stage"]): m["customers"] for m in report["transitions"]["moves"]}
    assert len(totals) >= 3
    for origin in totals:
        cells = page.locator(f"#lifecycle-moves tr[data-from={origin}] td.num").all_inner_texts()
        assert cells[:-1] == [f"{moves.get((origin, s), 0):,}" for s in STAGES], origin
    page.screenshot(path=str(screenshots / "insight-lifecycle-en.png"), full_page=True)

    page.click(".topbar [data-lang=zh]")
    page.wait_for_url(re.compile(r"lang=zh"))
    assert page.locator("h1").inner_text() == "客户生命周期"
    names = page.locator("#lifecycle-stages .seg-name").all_inner_texts()
    assert names == ["新客", "活跃", "复购", "忠诚", "预警", "沉睡", "流失"]
    assert _chart(page, "chart-lifecycle")["series"][0]["name"] == "客户数"
    page.screenshot(path=str(screenshots / "insight-lifecycle-zh.png"), full_page=True)
