"""Drill-down to action (issue 13, item 2), in a real browser on a small demo shop served whole.

An operator opens the RFM page, clicks the customer count of a segment, gets the customers behind
it (the list's total equals the cell's count, and its ids are exactly the customers the RFM
scoring puts in that segment), exports them (CSV and Excel hold the same ids), saves them as a
segment and issues them a coupon batch in one step: the segment's count equals the cell's, and
each member holds one code of the batch.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from served_demo_shop import Shop, log_in, served_demo_shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The whole app over a small demo shop with one active coupon batch, on 127.0.0.1."""
    with served_demo_shop(tmp_path_factory.mktemp("drill"), batch_name="Win-back 10 off",
                          amount_off=1000) as served:
        yield served


def _rfm_members(shop: Shop, segment: str, as_of: str) -> set[str]:
    """The service's own answer: the customers ``insight.rfm.rfm_scores`` puts in ``segment``."""
    from growthwheel.insight.rfm import rfm_scores

    with shop.app.state.warehouse.read() as backend:
        scores = rfm_scores(backend.table("orders"), date.fromisoformat(as_of))
        rows = scores.filter(scores.segment == segment).select("customer_id").to_pyarrow().to_pylist()
    return {r["customer_id"] for r in rows}


def test_drill_from_an_rfm_cell_save_as_segment_and_issue_coupons(new_page: Any, shop: Shop) -> None:
    from openpyxl import load_workbook
    from sqlalchemy import select

    from growthwheel.promotions.models import CouponCode
    from growthwheel.segments.models import Segment
    from growthwheel.store.db import session_scope

    page = new_page()
    log_in(page, shop)

    page.goto(shop.url + "/insight/rfm")
    links = page.locator("#rfm-classic td[data-col=customers] a.drill")
    assert links.count() > 0
    counts = [int(links.nth(i).inner_text().replace(",", "")) for i in range(links.count())]
    pick = max(range(len(counts)), key=lambda i: counts[i])  # the biggest segment
    cell_count = counts[pick]
    segment_key = links.nth(pick).locator("xpath=ancestor::tr").get_attribute("data-segment")
    assert segment_key
    links.nth(pick).click()
    page.wait_for_url(re.compile(r"/customers\?"))

    query = parse_qs(urlsplit(page.url).query)
    as_of = query["as_of"][0]
    total = page.locator("[data-testid=customer-total]")
    assert int(total.get_attribute("data-total") or "-1") == cell_count
    expected = _rfm_members(shop, segment_key, as_of)
    assert len(expected) == cell_count

    # the export of the list holds exactly those customers (CSV and Excel)
    csv_text = page.request.get(shop.url + (page.locator("[data-testid=export-csv]").get_attribute("href")
                                            or "")).text()
    csv_ids = {row["customer_id"] for row in csv.DictReader(io.StringIO(csv_text))}
    assert csv_ids == expected
    xlsx_href = page.locator("[data-testid=export-xlsx]").get_attribute("href") or ""
    xlsx = page.request.get(shop.url + xlsx_href)
    assert xlsx.status == 200
    sheet = load_workbook(io.BytesIO(xlsx.body())).worksheets[0]
    xlsx_rows = list(sheet.iter_rows(values_only=True))
    assert xlsx_rows[0][0] == "customer_id"
    assert {r[0] for r in xlsx_rows[1:]} == expected

    # save as a segment, then act on it in one step: issue the batch's coupons
    page.fill("[data-testid=save-segment] input[name=name]", "RFM drill " + segment_key)
    page.click("[data-testid=save-segment] button[type=submit]")
    page.wait_for_url(re.compile(r"/customers\?segment="))
    assert page.locator("[data-testid=saved-notice]").count() == 1
    assert int(page.locator("[data-testid=customer-total]").get_attribute("data-total") or "-1") == cell_count
    segment_id = parse_qs(urlsplit(page.url).query)["segment"][0]
    with session_scope(shop.cfg) as session:
        seg = session.get(Segment, segment_id)
        assert seg is not None
        assert seg.members == cell_count
        assert seg.as_of == date.fromisoformat(as_of)
        assert json.dumps(seg.definition).count("rfm_segment") == 1

    form = page.locator("[data-testid=act-coupons]")
    form.locator("select[name=batch]").select_option(shop.batch_id)
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(rf"/coupons/{shop.batch_id}\?issued="))
    issued = int(parse_qs(urlsplit(page.url).query)["issued"][0])
    assert issued == cell_count
    with session_scope(shop.cfg) as session:
        holders = session.scalars(
            select(CouponCode.customer_id).where(CouponCode.batch_id == shop.batch_id)).all()
    assert sorted(holders) == sorted(expected)


def test_the_list_filters_sorts_and_names_a_bad_parameter(new_page: Any, shop: Shop) -> None:
    page = new_page(locale="zh-CN")
    log_in(page, shop)
    page.goto(shop.url + "/customers?buyers=yes&sort=net_revenue&dir=desc")
    rows = page.locator("[data-testid=customer-table] tbody tr")
    assert rows.count() > 1
    revenue = [float(re.sub(r"[^0-9.\-]", "", rows.nth(i).locator("td").nth(7).inner_text()))
               for i in range(rows.count())]
    assert revenue == sorted(revenue, reverse=True)
    assert all(rows.nth(i).locator("td").nth(6).inner_text() != "0" for i in range(rows.count()))
    with shop.app.state.warehouse.read() as backend:
        o = backend.table("orders")
        paid = o.filter(o.status.isin(["paid", "shipped", "completed", "partially_refunded", "refunded"]))
        buyers = int(paid.customer_id.nunique().to_pyarrow().as_py())
    assert int(page.locator("[data-testid=customer-total]").get_attribute("data-total") or "-1") == buyers
    # a bad parameter is a 400 naming the field, in the page's language (fetched, not opened: the
    # browser would log the 400 as a console error)
    bad = page.request.get(shop.url + "/customers?as_of=not-a-day", headers={"Accept-Language": "zh-CN"})
    assert bad.status == 400
    assert 'data-field="as_of"' in bad.text()
    assert "不是日期" in bad.text()
    bad_export = page.request.get(shop.url + "/customers.csv?def=%7Bnot+json")
    assert bad_export.status == 400
    assert bad_export.json()["field"] == "def"


def test_customer_360_shows_what_the_services_answer(new_page: Any, shop: Shop) -> None:
    from growthwheel.customers import view360
    from growthwheel.insight import clv
    from growthwheel.insight.lifecycle import stages, thresholds_for
    from growthwheel.insight.rfm import rfm_scores
    from growthwheel.jobs import outbox
    from growthwheel.loyalty import service as loyalty
    from growthwheel.promotions import coupons
    from growthwheel.promotions import orders as checkout
    from growthwheel.promotions import repository as promotions_repository
    from growthwheel.promotions.schemas import OrderIn
    from growthwheel.segments import service as segments
    from growthwheel.store.db import session_scope
    from growthwheel.web.i18n import translator

    owner = shop.app.state.warehouse
    with owner.read() as backend:
        as_of = segments.default_as_of(shop.cfg, backend)
        scores = rfm_scores(backend.table("orders"), as_of).to_pyarrow().to_pylist()
        fitted = clv.compute_scores(backend, horizon=12, time_unit="month", model="bgnbd",
                                    currency=shop.cfg.shop().currency)
    owner.run_write(lambda con: clv.write_scores(con, fitted))
    who = max(scores, key=lambda r: (r["frequency"], r["customer_id"]))  # a repeat buyer
    cid = who["customer_id"]
    now = datetime.now(UTC)
    with session_scope(shop.cfg) as session:
        batch = promotions_repository.batch(session, shop.batch_id)
        assert batch is not None
        coupons.issue(session, batch, [cid], issue_key="test-360", actor_name="test")
        loyalty.adjust_points(session, cid, 120, now, note="welcome")
        outbox.enqueue(session, key=f"test-360:{cid}", channel="email", recipient="x@example.com",
                       payload={"subject": "hi"}, customer_id=cid)
    with session_scope(shop.cfg) as session:  # an order committed through the checkout
        checkout.commit(session, OrderIn(order_id="co-360", customer_id=cid, lines=[
            {"line_id": "1", "sku": "T-360", "unit_price": 1000, "quantity": 1}]), currency="CNY")
    with owner.read() as backend:
        th = thresholds_for(backend.table("orders"), end=as_of)
        staged = stages(backend.table("orders"), as_of, th)
        [stage] = staged.filter(staged.customer_id == cid).select("stage").to_pyarrow().to_pylist()
        stored = backend.table("customer_scores")
        [scored] = stored.filter(stored.customer_id == cid).select("clv", "p_alive").to_pyarrow().to_pylist()
    with session_scope(shop.cfg) as session:
        member = loyalty.member_out(session, cid, now)
        held = promotions_repository.customer_codes(session, cid)

    page = new_page()
    log_in(page, shop)
    page.goto(shop.url + f"/customers/{cid}")
    card = page.locator("[data-360] .card-value")

    def shown(name: str) -> str:
        return str(page.locator(f"[data-360={name}] .card-value").inner_text())

    assert card.count() == 7
    assert shown("rfm_segment").startswith(who["segment"])
    assert who["value_class"] in shown("rfm_class")
    assert page.locator("[data-testid=lifecycle-history] tbody tr").first.get_attribute("data-stage") \
        == stage["stage"]
    assert shown("lifecycle_stage") == translator("en")(f"insight.stage.{stage['stage']}")
    expected_clv = f"{scored['clv'] / 100:,.2f}"
    assert expected_clv in shown("clv")
    assert shown("p_alive") == f"{scored['p_alive']:.1%}"
    assert shown("points") == f"{member.points_balance:,}"
    assert member.points_balance >= 120  # the welcome points (and what the order earned)
    assert page.locator("[data-testid=coupons-held] tbody tr").count() == len(held)
    assert "Win-back 10 off" in page.locator("[data-testid=coupons-held]").inner_text()
    assert page.locator("[data-testid=messages] tbody tr").count() == 1
    checkout_order = page.locator("[data-testid=order-timeline] > li", has_text="co-360")
    assert checkout_order.locator("[data-source=checkout]").count() == 1
    with owner.read() as backend:  # the page shows what the 360 service answers
        facts = view360.warehouse_facts(backend, cid, as_of)
    assert facts.stage == stage["stage"]
    assert facts.clv == scored["clv"]


def test_every_table_exports_and_every_chart_downloads_as_png(new_page: Any, shop: Shop) -> None:
    from openpyxl import load_workbook

    page = new_page(locale="zh-CN")
    log_in(page, shop)
    page.goto(shop.url + "/insight/rfm")
    page.wait_for_load_state("networkidle")
    table = page.locator("#rfm-classic")
    shown = [[" ".join(c.split()) for c in row.locator("td").all_inner_texts()]
             for row in table.locator("tbody tr").all()]
    bar = page.locator("#rfm-classic").locator("xpath=preceding-sibling::p[contains(@class,'table-export')]")
    assert bar.inner_text() == "导出 CSV · 导出 Excel"
    with page.expect_download() as got:
        bar.locator("[data-export-format=xlsx]").click()
    assert got.value.suggested_filename == "insight-rfm-rfm-classic.xlsx"
    sheet = load_workbook(io.BytesIO(Path(got.value.path()).read_bytes())).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == len(shown) + 1  # header + every row as shown
    assert [str(v) for v in rows[1][:1]] == [shown[0][0]]
    counts = [r[1] for r in rows[1:]]
    assert counts == [int(s[1].replace(",", "")) for s in shown]  # numbers stay numbers
    with page.expect_download() as got_csv:
        bar.locator("[data-export-format=csv]").click()
    text = Path(got_csv.value.path()).read_text(encoding="utf-8")
    assert len(list(csv.reader(io.StringIO(text)))) == len(shown) + 1

    # formula-like text a page sends is defused, and a bad request names its field
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    sent = page.request.post(shop.url + "/export/table", headers={"X-CSRF-Token": token},
                             data=json.dumps({"name": "x", "format": "csv", "header": ["a"],
                                              "rows": [["=HYPERLINK(\"http://evil\")"]]}))
    assert sent.status == 200
    assert next(csv.reader(io.StringIO(sent.text())), None) == ["a"]
    assert list(csv.reader(io.StringIO(sent.text())))[1] == ["'=HYPERLINK(\"http://evil\")"]
    bad = page.request.post(shop.url + "/export/table", headers={"X-CSRF-Token": token},
                            data=json.dumps({"format": "pdf", "header": [], "rows": []}))
    assert bad.status == 400
    assert bad.json()["field"] == "format"

    # the chart carries ECharts' save-as-image tool and renders to a PNG
    png = page.evaluate("""() => {
        const chart = echarts.getInstanceByDom(document.getElementById('chart-rfm'));
        const tool = chart.getOption().toolbox[0].feature.saveAsImage;
        return [tool.title, chart.getDataURL({type: 'png'}).slice(0, 22)];
    }""")
    assert png == ["下载图片", "data:image/png;base64,"]


def test_overview_narrows_to_a_channel_and_compares_with_last_year(new_page: Any, shop: Shop) -> None:
    from growthwheel.insight import overview as ov

    with shop.app.state.warehouse.read() as backend:
        last_day = ov.last_day_with_data(backend)
        assert last_day is not None
        channels, _categories = ov.filter_options(backend)
        o = backend.table("orders")
        start = last_day - timedelta(days=29)
        paid = o.filter(o.status.isin(["paid", "shipped", "completed", "partially_refunded", "refunded"])
                        & (o.order_date >= start) & (o.order_date <= last_day) & (o.channel == channels[0]))
        orders = int(paid.count().to_pyarrow().as_py())
        buyers = int(paid.customer_id.nunique().to_pyarrow().as_py())
    page = new_page()
    page.set_default_timeout(90_000)  # the Overview is computed on the request (seconds under load)
    log_in(page, shop)
    page.goto(shop.url + "/?days=30")
    page.select_option("select[name=channel]", channels[0])
    page.click(".range-form button[type=submit]")
    page.wait_for_url(re.compile(r"channel="))
    assert page.locator("[data-metric=orders] .card-value").inner_text() == f"{orders:,}"
    page.click("[data-testid=compare-toggle]")
    page.wait_for_url(re.compile(r"compare=last_year"))
    assert f"channel={quote(channels[0])}" in page.url  # the filter stays
    assert page.locator("[data-metric=orders] .card-value").inner_text() == f"{orders:,}"
    assert page.locator("[data-metric=orders] [data-compare=last_year]").count() == 1
    assert "last year" in page.locator("[data-metric=orders] [data-compare=last_year]").inner_text()
    # the channel's slice of the mix opens its buyers in the range
    chart = json.loads(page.locator("#overview-data").text_content() or "{}")
    [slice_] = [c for c in chart["channels"] if c["href"]]
    page.goto(shop.url + slice_["href"])
    assert int(page.locator("[data-testid=customer-total]").get_attribute("data-total") or "-1") == buyers


def test_cohort_cells_and_lifecycle_stages_open_the_customers_behind_them(new_page: Any, shop: Shop) -> None:
    from growthwheel.insight.cohorts import retention_frame

    with shop.app.state.warehouse.read() as backend:
        frame = retention_frame(backend.table("orders"), by="month")
    retained = {(r["cohort"].strftime("%Y-%m"), int(r["period"])): int(r["customers"])
                for r in frame.to_dict(orient="records")}
    page = new_page()
    log_in(page, shop)
    page.goto(shop.url + "/insight/cohorts?by=month")
    link = page.locator("td[data-period='1'] a.drill").first
    cohort = link.locator("xpath=ancestor::tr").get_attribute("data-cohort")
    assert cohort
    link.click()
    page.wait_for_url(re.compile(r"/customers\?"))
    total = int(page.locator("[data-testid=customer-total]").get_attribute("data-total") or "-1")
    assert total == retained[(cohort, 1)]
    assert total > 0

    page.goto(shop.url + "/insight/cohorts?by=month")
    size = page.locator(f"tr[data-cohort='{cohort}'] td[data-col=size] a.drill")
    size.click()
    page.wait_for_url(re.compile(r"/customers\?"))
    assert int(page.locator("[data-testid=customer-total]").get_attribute("data-total") or "-1") \
        == retained[(cohort, 0)]

    page.goto(shop.url + "/insight/lifecycle")
    links = page.locator("#lifecycle-stages td[data-col=customers] a.drill")
    assert links.count() > 1
    for i in range(links.count()):
        page.goto(shop.url + "/insight/lifecycle")
        link = page.locator("#lifecycle-stages td[data-col=customers] a.drill").nth(i)
        count = int(link.inner_text().replace(",", ""))
        link.click()
        page.wait_for_url(re.compile(r"/customers\?"))
        assert int(page.locator("[data-testid=customer-total]").get_attribute("data-total") or "-1") == count


def test_enrol_a_saved_segment_in_a_journey_starts_from_its_trigger(new_page: Any, shop: Shop) -> None:
    from growthwheel.segments import service as segments
    from growthwheel.store.db import session_scope

    owner = shop.app.state.warehouse
    with owner.read() as backend:
        ctx = segments.context(shop.cfg, backend)
    with session_scope(shop.cfg) as session:
        seg = segments.create_segment(session, "journey audience", {"type": "orders", "op": ">=", "value": 2},
                                      principal=None, actor_name="test")
        segments.refresh_segment(session, seg, ctx, owner.run_write, principal=None, actor_name="test")
        seg_id = seg.id
    page = new_page()
    log_in(page, shop, f"/customers?segment={seg_id}")
    page.click("[data-testid=act-journey]")
    page.wait_for_url(re.compile(r"/journeys/new\?segment="))
    definition = json.loads(page.locator("[data-testid=definition]").input_value())
    assert definition["trigger"] == {"kind": "segment", "segment_id": seg_id, "on": "enter"}


def test_rfm_narrowed_to_a_channel_and_compared_with_a_year_earlier(new_page: Any, shop: Shop) -> None:
    from growthwheel.insight import overview as ov
    from growthwheel.insight.rfm import last_paid_day, rfm_report

    with shop.app.state.warehouse.read() as backend:
        channels, _categories = ov.filter_options(backend)
        o = backend.table("orders")
        own = o.filter(o.channel == channels[0])  # the channel's orders, filtered here directly
        day = last_paid_day(own)
        report = rfm_report(own, day)
        before = rfm_report(own, ov.year_before(day))
    expected = {r["segment"]: r["customers"] for r in report["segments"]}
    then = {r["segment"]: r["customers"] for r in before["segments"]}
    page = new_page()
    log_in(page, shop)
    page.goto(shop.url + "/insight/rfm?" + urlencode({"channel": channels[0], "compare": "last_year"}))
    rows = page.locator("#rfm-classic tbody tr")
    assert rows.count() == len(expected)
    for i in range(rows.count()):
        row = rows.nth(i)
        key = row.get_attribute("data-segment") or ""
        assert row.locator("td[data-col=customers]").inner_text() == f"{expected[key]:,}"
        assert row.locator("td[data-col=before]").inner_text().split()[0] == f"{then[key]:,}"
    assert page.locator("#rfm-classic a.drill").count() == 0  # narrowed counts do not drill
