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
from urllib.parse import quote, unquote

import httpx
import pandas as pd
import pytest

from growthwheel.insight.cohorts import retention_frame
from growthwheel.insight.funnels import DEFAULT_STEPS, funnel_frame
from growthwheel.insight.lifecycle import STAGES, lifecycle_report, thresholds_for
from growthwheel.insight.pages import analyses as insight_pages
from growthwheel.insight.rfm import rfm_report

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
    assert page.locator(".mainnav a.active").inner_text() == "Insight"
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
    assert page.locator(".mainnav a[href='/insight/rfm']").inner_text() == "客户洞察"
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


def _funnel(console: Console, days: int, start: date | None = None,
            end: date | None = None) -> pd.DataFrame:
    with console.app.state.warehouse.read() as con:
        return funnel_frame(con.table("events"), DEFAULT_STEPS, window=timedelta(days=days),
                            start=start, end=end)


def _event_days(console: Console) -> tuple[date, date]:
    days = pd.to_datetime(_table(console, "events").event_date).dt.date
    return min(days), max(days)


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
    # By default: people who entered in the last 30 days with events (shop time).
    first_day, last_day = _event_days(insight)
    month = last_day - timedelta(days=29)
    assert page.locator("input[name=start]").input_value() == month.isoformat()
    assert page.locator("input[name=end]").input_value() == last_day.isoformat()
    assert page.locator("[data-testid=funnel-presets] a.active").get_attribute("data-days") == "30"
    recent = _funnel(insight, 14, month, last_day)
    assert page.locator("#funnel-steps [data-col=entrants]").all_inner_texts() == [
        f"{int(n):,}" for n in recent.entrants]
    # The whole history: every viewer enters.
    page.fill("input[name=start]", first_day.isoformat())
    page.click("form.range-form button[type=submit]")
    page.wait_for_url(re.compile(r"start=" + first_day.isoformat()))
    assert page.locator("[data-testid=funnel-presets] a.active").count() == 0
    frame = _funnel(insight, 14, first_day, last_day)
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
    short = [int(n) for n in _funnel(insight, 1, first_day, last_day).entrants]
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
    _, last_day = _event_days(insight)
    month = last_day - timedelta(days=29)
    assert shown == [f"{int(n):,}" for n in _funnel(insight, 1, month, last_day).entrants]
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


# ---------------------------------------------------------------------------------------------
# Lifetime value, and the options of the funnel, cohort and RFM pages
# ---------------------------------------------------------------------------------------------


def _log_in_as(page: Any, console: Console, path: str, account: Any) -> None:
    page.goto(console.url + path)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("input[name=email]", account.email)
    page.fill("input[name=password]", account.password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(re.compile(re.escape(console.url + path)))


def test_clv_page_computes_scores_for_operators_only_and_shows_them(
    new_page: Any, insight: Console, screenshots: Path
) -> None:
    from growthwheel.insight import clv

    owner = insight.app.state.warehouse
    owner.run_write(lambda con: con.execute(f"DROP TABLE IF EXISTS {clv.SCORES_TABLE}"))

    analyst = new_page()
    _log_in_as(analyst, insight, "/insight/clv", insight.analyst)
    assert analyst.locator("[data-testid=clv-empty]").is_visible()
    assert analyst.locator("[data-testid=clv-ask]").is_visible()
    assert analyst.locator("[data-testid=clv-form]").count() == 0
    token = analyst.locator("form[action='/logout'] input[name=csrf_token]").input_value()
    refused = analyst.request.post(insight.url + "/insight/clv", form={
        "csrf_token": token, "horizon": "12", "time_unit": "month", "model": "bgnbd"})
    assert refused.status == 403
    with owner.read() as con:
        assert clv.SCORES_TABLE not in con.list_tables()

    page = new_page()
    _log_in(page, insight, "/insight/clv")
    token = page.locator("[data-testid=clv-form] input[name=csrf_token]").input_value()
    bad = page.request.post(insight.url + "/insight/clv", form={
        "csrf_token": token, "horizon": "0", "time_unit": "month", "model": "bgnbd"})
    assert bad.status == 422
    assert 'data-field="horizon"' in bad.text()
    assert "at least 1" in bad.text()
    page.click("[data-testid=clv-form] button[type=submit]")
    page.wait_for_selector("[data-testid=clv-cards]")

    with owner.read() as con:  # the same scoring, run by the test
        want = clv.compute_scores(con, horizon=12, time_unit="month", model="bgnbd", currency="CNY").frame
        stored = (con.table(clv.SCORES_TABLE).to_pandas()
                  .sort_values(["clv", "customer_id"], ascending=[False, True]))
    buyers = _paid_until(insight, date(2100, 1, 1)).customer_id.nunique()
    assert len(want) == buyers
    card = {c: page.locator(f"[data-card={c}] .card-value").inner_text()
            for c in ("customers", "total", "mean", "purchases", "model")}
    assert card["customers"] == f"{buyers:,}"
    total = int(want.clv.sum())
    assert total > 0
    assert card["total"] == f"¥{Decimal(total) / 100:,.2f}"
    assert card["mean"] == f"¥{(Decimal(total) / 100 / buyers).quantize(Decimal('0.01')):,.2f}"
    assert card["purchases"] == f"{want.expected_purchases.sum():,.1f}"
    assert card["model"] == "BG/NBD"
    assert "r = " in page.locator("[data-testid=clv-params]").inner_text()

    rows = page.locator("#clv-top tbody tr")
    assert rows.count() == min(50, buyers)
    texts = rows.locator("[data-col=clv]").all_inner_texts()
    shown = [Decimal(v.lstrip("¥").replace(",", "")) for v in texts]
    assert shown == sorted(shown, reverse=True)
    top = stored.head(10)
    assert [rows.nth(i).get_attribute("data-customer") for i in range(10)] == list(top.customer_id)
    assert shown[:10] == [Decimal(int(v)) / 100 for v in top.clv]
    assert rows.first.locator("a").get_attribute("href") == "/customers/" + str(top.customer_id.iloc[0])

    chart = _chart(page, "chart-clv")
    assert chart["painted"] > 3000, "the CLV histogram is blank"
    assert sum(chart["series"][0]["data"]) == buyers
    p_alive = _chart(page, "chart-p-alive")["series"][0]["data"]
    assert p_alive[-1] == int((want.p_alive >= 0.9).sum())
    page.screenshot(path=str(screenshots / "insight-clv-en.png"), full_page=True)

    page.click(".topbar [data-lang=zh]")
    page.wait_for_url(re.compile(r"lang=zh"))
    assert page.locator("h1").inner_text() == "客户终身价值（CLV）"
    assert page.locator("[data-card=total] .card-label").inner_text() == "预测 CLV 合计"
    assert page.locator("[data-card=total] .card-value").inner_text() == card["total"]
    page.screenshot(path=str(screenshots / "insight-clv-zh.png"), full_page=True)


def test_funnel_steps_and_breakdown_by_device_match_the_funnel_function(
    page: Any, insight: Console, screenshots: Path
) -> None:
    steps = ["view", "add_to_cart", "purchase"]
    first_day, last_day = _event_days(insight)
    _log_in(page, insight, f"/insight/funnel?start={first_day}&end={last_day}")
    for i, step in enumerate(steps, start=1):
        page.select_option(f"select[data-slot='{i}']", step)
    page.select_option(f"select[data-slot='{len(steps) + 1}']", "")
    page.select_option("select[name=by]", "device")
    page.click("[data-testid=funnel-form] button[type=submit]")
    page.wait_for_url(re.compile(r"by=device"))
    with insight.app.state.warehouse.read() as con:
        whole = funnel_frame(con.table("events"), steps, window=timedelta(days=14),
                             start=first_day, end=last_day)
        split = funnel_frame(con.table("events"), steps, window=timedelta(days=14),
                             start=first_day, end=last_day, breakdown="device")
    assert page.locator("#funnel-steps [data-col=entrants]").all_inner_texts() == [
        f"{int(n):,}" for n in whole.entrants]
    rows = page.locator("#funnel-breakdown tbody tr").all()
    values = list(dict.fromkeys(split.device))
    assert [r.get_attribute("data-value") for r in rows] == values
    for row, value in zip(rows, values, strict=True):
        part = split[split.device == value]
        assert [c.split(" ")[0] for c in row.locator("td[data-step]").all_inner_texts()] == [
            f"{int(n):,}" for n in part.entrants]
        assert row.locator("[data-col=conversion]").inner_text() == (
            f"{part.conversion_from_first.iloc[-1]:.1%}")
    assert sum(int(n) for n in split[split.step == 1].entrants) == int(whole.entrants.iloc[0])
    chart = _chart(page, "chart-funnel-split")
    assert [s["data"] for s in chart["series"]] == [
        [int(split[(split.device == v) & (split.step == k)].entrants.iloc[0]) for v in values]
        for k in (1, 2, 3)]
    page.screenshot(path=str(screenshots / "insight-funnel-device-en.png"), full_page=True)


def test_cohort_options_rolling_first_time_return_one_channel_and_revenue(
    page: Any, insight: Console, screenshots: Path
) -> None:
    _log_in(page, insight, "/insight/cohorts?mode=rolling&metric=first_return&channel=" + quote("抖音"))
    with insight.app.state.warehouse.read() as con:
        frame = retention_frame(con.table("orders"), by="month", mode="rolling", by_channel=True)
        revenue = retention_frame(con.table("orders"), by="week", by_channel=False)
    frame = frame[frame.channel == "抖音"]
    assert page.locator("select[name=channel]").input_value() == "抖音"
    rows = page.locator("#cohort-table tbody tr").all()
    cohorts = sorted(frame.cohort.unique())
    assert [r.get_attribute("data-cohort") for r in rows] == [c.strftime("%Y-%m") for c in cohorts]
    for row, cohort in zip(rows, cohorts, strict=True):
        part = frame[frame.cohort == cohort]
        assert row.locator("[data-col=size]").inner_text() == f"{int(part.cohort_size.iloc[0]):,}"
        want = ["–" if v is None else f"{v:.1%}" for v in part.first_return_rate]
        assert row.locator("td[data-period]").all_inner_texts() == want
    assert page.locator("#cohort-table th").nth(2).inner_text() == "Period 0"
    page.screenshot(path=str(screenshots / "insight-cohorts-rolling-en.png"), full_page=True)

    page.goto(insight.url + "/insight/cohorts?by=week&metric=revenue")
    first = page.locator("#cohort-table tbody tr").first.locator("td[data-period]").all_inner_texts()
    want_rev = revenue[revenue.cohort == revenue.cohort.min()].revenue_per_customer
    assert first == [f"¥{v:,.2f}" for v in want_rev]
    _chart(page, "chart-cohorts")


def test_rfm_value_classes_split_at_the_median(page: Any, insight: Console) -> None:
    _log_in(page, insight, "/insight/rfm")
    page.click(".presets a[data-cut=median]")
    page.wait_for_url(re.compile(r"cut=median"))
    last = max(pd.Timestamp(d).date() for d in _paid_until(insight, date(2100, 1, 1)).order_date)
    with insight.app.state.warehouse.read() as con:
        median = rfm_report(con.table("orders"), last, cut="median")
        mean = rfm_report(con.table("orders"), last, cut="mean")
    shown = _cells(page, "rfm-value", "customers")
    assert shown == {s["segment"]: f"{s['customers']:,}" for s in median["value_classes"]}
    assert median["value_classes"] != mean["value_classes"]
    # The as-of form keeps the cut.
    assert page.locator("form.range-form input[name=cut]").input_value() == "median"


def test_clv_page_says_why_a_shop_without_repeat_buyers_cannot_be_fitted(tmp_path: Path) -> None:
    """No browser: a shop where nobody bought twice gets the reason on the page, nothing stored."""
    from fastapi.testclient import TestClient

    from growthwheel.accounts import service as accounts
    from growthwheel.api.app import create_app
    from growthwheel.config import Settings
    from growthwheel.store.db import migrate, session_scope
    from growthwheel.warehouse.ingest import import_files

    cfg = Settings(data_dir=tmp_path / "data")
    lines = tmp_path / "lines.csv"
    lines.write_text("order_id,customer_id,ordered_at,sku,quantity,line_total\n"
                     "o1,c1,2025-03-01,S1,1,10.00\no2,c2,2025-03-02,S1,2,20.00\n"
                     "o3,c3,2025-03-09,S1,1,15.00\n", encoding="utf-8")
    import_files("order_lines", [lines], cfg=cfg)
    migrate(cfg)
    with session_scope(cfg) as session:
        accounts.create_user(session, "op@example.com", "operator", "pw-correct-horse")
    with TestClient(create_app(cfg)) as client:
        login = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert token is not None
        client.post("/login", data={"email": "op@example.com", "password": "pw-correct-horse",
                                    "csrf_token": token.group(1)})
        page = client.get("/insight/clv")
        assert 'data-testid="clv-empty"' in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        answer = client.post("/insight/clv", data={"csrf_token": token.group(1), "horizon": "12",
                                                   "time_unit": "month", "model": "bgnbd"})
        assert answer.status_code == 422
        assert "These orders cannot be fitted." in answer.text
        assert "no repeat buyers" in answer.text  # the model's own reason
        assert 'data-testid="clv-empty"' in answer.text  # still nothing stored
