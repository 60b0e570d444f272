"""The console in a real browser (headless Chromium) over the demo shop, plus the checks that keep
every visible string in the two catalogues.

Expected numbers are computed independently with pandas from the warehouse tables read before
the server started (see ``conftest.py``), or worked out by hand from the example file.
"""

from __future__ import annotations

import csv
import json
import re
import threading
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import pytest

from growthwheel.api import imports_pages
from growthwheel.customers import pages as customer_pages
from growthwheel.insight import overview as ov
from growthwheel.insight.pages import overview as overview_page
from growthwheel.web import i18n, pages

ROOT = Path(__file__).resolve().parents[2]
PAID = ("paid", "shipped", "completed", "partially_refunded", "refunded")
Console = Any  # conftest.Console: url, app, data_dir, admin, analyst, orders, events, customers
WEB = ROOT / "src" / "growthwheel" / "web"
ERRORS_FILE = ROOT / "examples" / "generic" / "order_lines_with_errors.csv"


# ---------------------------------------------------------------------------------------------
# Independent answers (pandas)
# ---------------------------------------------------------------------------------------------


def _day(value: Any) -> date:
    return pd.Timestamp(value).date()


def expected_kpis(console: Console, start: date, end: date) -> dict[str, Any]:
    """The Overview's KPIs for ``[start, end]`` computed from the raw tables with pandas."""
    orders = console.orders.assign(day=console.orders.order_date.map(_day))
    paid = orders[orders.status.isin(PAID)]
    in_range = paid[(paid.day >= start) & (paid.day <= end)]
    gmv = int(in_range.total_amount.fillna(0).sum())
    refunded = int(in_range.refunded_amount.fillna(0).sum())
    count = len(in_range)
    per_buyer = in_range.groupby("customer_id").size()
    first = paid.sort_values(["ordered_at", "order_id"]).drop_duplicates("customer_id")
    new = int(((first.day >= start) & (first.day <= end)).sum())

    ev = console.events.assign(day=console.events.event_date.map(_day))
    fallback = ev.customer_id.fillna(ev.anonymous_id) + "|" + ev.day.astype(str)
    ev = ev.assign(session=ev.session_id.fillna(fallback), bought=ev.type == "purchase")
    sessions = ev.groupby("session").agg(first=("day", "min"), bought=("bought", "max"))
    sessions = sessions[(sessions["first"] >= start) & (sessions["first"] <= end)]

    aov = (Decimal(gmv) / count / 100).quantize(Decimal("0.01"), ROUND_HALF_UP) if count else None
    return {
        "gmv": Decimal(gmv) / 100,
        "orders": count,
        "buyers": len(per_buyer),
        "aov": aov,
        "new_buyers": new,
        "repurchase_rate": (per_buyer >= 2).sum() / len(per_buyer),
        "session_conversion_rate": sessions.bought.sum() / len(sessions),
        "refund_rate": refunded / gmv,
    }


def last_order_day(console: Console) -> date:
    return max(_day(d) for d in console.orders.order_date)


def money_text(value: Decimal) -> str:
    return f"¥{value:,.2f}"


# ---------------------------------------------------------------------------------------------
# Catalogues and templates (no browser)
# ---------------------------------------------------------------------------------------------

_T_CALL = re.compile(r"""\bt\(\s*(['"])([^'"]+)\1""")
_K_CALL = re.compile(r"""\bk\(\s*(['"])([^'"]+)\1\)""")
_CODED = re.compile(r"""\.coded\(\s*(['"])([^'"]+)\1""")  # domain errors' words
_PLACEHOLDER = re.compile(r"{(\w+)(?:![rs])?}")
_LETTER = re.compile(r"[^\W\d_]")


def _keys_in_use() -> set[str]:
    used: set[str] = set()
    for path in sorted((WEB / "templates").glob("**/*.j2")):
        used |= {m.group(2) for m in _T_CALL.finditer(path.read_text(encoding="utf-8"))}
    for path in sorted(WEB.parent.glob("**/*.py")):
        source = path.read_text(encoding="utf-8")
        used |= {m.group(2) for m in _CODED.finditer(source)}
        page_module = (path.name == "pages.py" or path.name.endswith("_pages.py")
                       or path.parent.name == "pages" or "growthwheel.web.i18n import" in source
                       or ("growthwheel.keys import k" in source and path.name != "i18n.py"))
        if (path.parent == WEB and path.name != "i18n.py") or page_module:
            used |= {m.group(2) for m in _K_CALL.finditer(source)}
            used |= {m.group(2) for m in _T_CALL.finditer(source)}
    return used


def test_catalogues_hold_the_same_keys_with_the_same_placeholders() -> None:
    files = {lang: sorted(p.name for p in (i18n.CATALOGUES / lang).glob("*.json")) for lang in i18n.LANGS}
    assert files["en"] == files["zh"]
    for name in files["en"]:
        en_file = json.loads((i18n.CATALOGUES / "en" / name).read_text(encoding="utf-8"))
        zh_file = json.loads((i18n.CATALOGUES / "zh" / name).read_text(encoding="utf-8"))
        assert set(en_file) == set(zh_file), name
    en, zh = i18n.catalogue("en"), i18n.catalogue("zh")
    assert set(en) == set(zh)
    for key in en:
        assert set(_PLACEHOLDER.findall(en[key])) == set(_PLACEHOLDER.findall(zh[key])), key
        assert en[key].strip(), key
        assert zh[key].strip(), key


def test_every_string_the_console_uses_is_in_both_catalogues_and_none_is_unused() -> None:
    used = _keys_in_use()
    assert len(used) > 100
    for lang in i18n.LANGS:
        catalogue = set(i18n.catalogue(lang))
        assert used - catalogue == set(), f"missing from {lang}.json"
        assert catalogue - used == set(), f"unused keys in {lang}.json"
    # Value → key tables cover every value the data can hold.
    from growthwheel.warehouse.ingest import FORMATS
    from growthwheel.warehouse.schema import ORDER_STATUSES, STANDARD_EVENT_TYPES, TABLES

    assert set(imports_pages.TABLE_KEYS) == set(TABLES)
    assert set(imports_pages.FORMAT_KEYS) == set(FORMATS)
    assert set(customer_pages.STATUS_KEYS) == set(ORDER_STATUSES)
    assert set(customer_pages.EVENT_KEYS) == set(STANDARD_EVENT_TYPES)
    assert set(overview_page.METRIC_KEYS) == set(ov.CARD_METRICS)


def test_templates_show_no_text_outside_the_catalogues() -> None:
    """Strip Jinja code, then every text node and visible attribute must hold no letter."""
    for path in sorted((WEB / "templates").glob("**/*.j2")):
        source = path.read_text(encoding="utf-8")
        text = re.sub(r"{#.*?#}|{{.*?}}|{%.*?%}", "", source, flags=re.S)
        text = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", "", text, flags=re.S)
        for attr, value in re.findall(r"""\b(placeholder|title|aria-label|alt)=(?:"([^"]*)")""", text):
            assert not _LETTER.search(value), f"{path.name}: {attr}={value!r} is not from a catalogue"
        visible = re.sub(r"<!DOCTYPE[^>]*>|<[^>]+>|&\w+;", " ", text)
        letters = [word for word in visible.split() if _LETTER.search(word)]
        assert letters == [], f"{path.name}: hard-coded text {letters}"
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", source, flags=re.I), f"{path.name}: inline handler"


def test_language_comes_from_the_cookie_then_the_browser() -> None:
    assert i18n.choose_language("zh", "en-US,en;q=0.9") == "zh"
    assert i18n.choose_language(None, "zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert i18n.choose_language(None, "fr-FR,en;q=0.5,zh;q=0.7") == "zh"
    assert i18n.choose_language("xx", "en-GB") == "en"
    assert i18n.choose_language(None, "de-DE, zh;q=0") == "en"
    assert i18n.choose_language(None, None) == "en"


def test_overview_numbers_match_pandas_for_a_range_and_its_previous_range(console: Console) -> None:
    start, end = date(2025, 2, 10), date(2025, 3, 11)  # 30 days; previous: Jan 11 – Feb 9
    assert ov.previous_range(start, end) == (date(2025, 1, 11), date(2025, 2, 9))
    with console.app.state.warehouse.read() as con:
        data = ov.overview(con, start, end)
    now = expected_kpis(console, start, end)
    before = expected_kpis(console, *ov.previous_range(start, end))
    for card in data.cards:
        want, prev = now[card.metric], before[card.metric]
        assert card.value == pytest.approx(want), card.metric
        assert card.previous == pytest.approx(prev), card.metric
        assert card.change == pytest.approx((float(want) - float(prev)) / float(prev)), card.metric
    assert data.new_buyers + data.returning_buyers == now["buyers"]
    assert sum(data.trend_orders) == now["orders"]
    assert sum(Decimal(str(v)) for v in data.trend_gmv) == now["gmv"]
    assert sum(gmv for _, gmv, _ in data.channels) == now["gmv"]


# ---------------------------------------------------------------------------------------------
# In the browser
# ---------------------------------------------------------------------------------------------

CHARTS = ("chart-trend", "chart-channels", "chart-categories", "chart-buyers")

_CHART_STATE = """
(ids) => ids.map((id) => {
  const el = document.getElementById(id);
  const chart = el && window.echarts && window.echarts.getInstanceByDom(el);
  if (!chart) return null;
  const canvas = el.querySelector("canvas");
  const ctx = canvas.getContext("2d");
  const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
  const option = chart.getOption();
  return {id, painted, legend: (option.legend && option.legend[0] && option.legend[0].data) || [],
          series: option.series.map((s) => ({name: s.name, data: s.data}))};
})
"""


def log_in(page: Any, console: Console, email: str, password: str, path: str = "/") -> None:
    page.goto(console.url + path)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(console.url + path)


def chart_state(page: Any) -> list[dict[str, Any]]:
    page.wait_for_function(
        "(ids) => window.echarts && ids.every((id) => "
        "echarts.getInstanceByDom(document.getElementById(id)))",
        arg=list(CHARTS),
    )
    page.wait_for_timeout(200)  # let the first frame paint
    state: list[dict[str, Any]] = page.evaluate(_CHART_STATE, list(CHARTS))
    return state


def test_login_then_overview_shows_kpis_and_drawn_charts(
    page: Any, console: Console, screenshots: Path
) -> None:
    page.goto(console.url + "/")
    assert "/login" in page.url
    page.fill("input[name=email]", console.admin.email)
    page.fill("input[name=password]", "not the password")
    page.click("form[action='/login'] button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "Wrong email or password."

    page.fill("input[name=email]", console.admin.email)
    page.fill("input[name=password]", console.admin.password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(console.url + "/")

    end = last_order_day(console)
    start = end - timedelta(days=29)
    want = expected_kpis(console, start, end)
    prev = expected_kpis(console, start - timedelta(days=30), start - timedelta(days=1))
    assert page.locator("input[name=start]").input_value() == start.isoformat()
    assert page.locator("input[name=end]").input_value() == end.isoformat()
    assert page.locator("[data-metric=gmv] .card-value").inner_text() == money_text(want["gmv"])
    assert page.locator("[data-metric=orders] .card-value").inner_text() == f"{want['orders']:,}"
    gmv_change = float(want["gmv"] - prev["gmv"]) / float(prev["gmv"])
    shown = f"{gmv_change:+.1%}"
    assert page.locator("[data-metric=gmv] .chg").inner_text() == (
        "0.0%" if shown in ("+0.0%", "-0.0%") else shown)  # a change that rounds to 0 has no sign
    assert page.locator("[data-metric=buyers] .card-value").inner_text() == f"{want['buyers']:,}"

    charts = {c["id"]: c for c in chart_state(page)}
    for chart_id in CHARTS:
        assert charts[chart_id]["painted"] > 2000, f"{chart_id} is blank"
        assert any(len(s["data"]) > 0 for s in charts[chart_id]["series"]), chart_id
    trend = {s["name"]: s["data"] for s in charts["chart-trend"]["series"]}
    assert len(trend["Orders"]) == 30
    assert sum(trend["Orders"]) == want["orders"]
    assert sum(Decimal(str(v)) for v in trend["GMV"]) == want["gmv"]
    channel_gmv = sum(Decimal(str(d["value"])) for d in charts["chart-channels"]["series"][0]["data"])
    assert channel_gmv == want["gmv"]
    buyers = {s["name"]: s["data"] for s in charts["chart-buyers"]["series"]}
    assert sum(buyers["New buyers"]) == want["new_buyers"]
    page.screenshot(path=str(screenshots / "overview-en.png"), full_page=True)

    page.click(".presets a[data-days='7']")
    page.wait_for_url(re.compile(r"days=7"))
    week = expected_kpis(console, end - timedelta(days=6), end)
    assert page.locator("[data-metric=orders] .card-value").inner_text() == f"{week['orders']:,}"
    assert page.locator(".presets a.active").get_attribute("data-days") == "7"
    assert len(chart_state(page)[0]["series"][0]["data"]) == 7


def test_language_switch_shows_chinese_everywhere_and_is_remembered(
    new_page: Any, console: Console, screenshots: Path
) -> None:
    chinese_browser = new_page(locale="zh-CN")
    chinese_browser.goto(console.url + "/login")
    assert chinese_browser.locator("html").get_attribute("lang") == "zh-CN"
    assert chinese_browser.locator("button[type=submit]").inner_text() == "登录"

    page = new_page()
    log_in(page, console, console.admin.email, console.admin.password)
    assert page.locator(".mainnav a.active").inner_text() == "Overview"
    page.click(".topbar [data-lang=zh]")
    page.wait_for_url(re.compile(r"lang=zh"))
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "概览"
    nav = [(a.text_content() or "").strip() for a in page.locator(".mainnav a").all()]
    assert nav[:3] == ["概览", "客户洞察", "客户"]
    assert nav == [i18n.catalogue("zh")[key] for _, key, _menu in pages.NAV]
    menus = [b.inner_text().strip() for b in page.locator(".navgroup-label").all()]
    assert menus == ["客户", "增长运营", "商品", "反馈与预警", "数据"]
    assert page.locator("[data-metric=gmv] .card-label").inner_text() == "成交额 GMV"
    assert page.locator("[data-metric=repurchase_rate] .card-label").inner_text() == "复购率"
    charts = {c["id"]: c for c in chart_state(page)}
    assert charts["chart-trend"]["legend"] == ["成交额 GMV", "订单数"]
    assert charts["chart-buyers"]["legend"] == ["新客", "老客"]
    page.screenshot(path=str(screenshots / "overview-zh.png"), full_page=True)

    page.hover(".navgroup:has(a[href='/customers']) .navgroup-label")  # the menu opens on hover
    page.click(".mainnav a[href='/customers']")  # the choice is remembered (cookie gw_lang)
    assert page.locator("h1").inner_text() == "客户"
    assert page.locator("#customer-results th").first.inner_text() == "客户 ID"
    page.click(".topbar [data-lang=en]")
    assert page.locator("h1").inner_text() == "Customers"
    # The top bar fits the common laptop widths in both languages: its links and menus end before
    # the language switch and the user menu (overlap does not show as a scroll bar).
    for width in (1280, 1366, 1440):
        for lang in ("en", "zh"):
            page.set_viewport_size({"width": width, "height": 800})
            page.goto(console.url + f"/customers?lang={lang}")
            nav_right, right_left = page.evaluate(
                "[Math.max(...[...document.querySelectorAll('.mainnav > *')]"
                ".map(e => e.getBoundingClientRect().right)),"
                " document.querySelector('.topbar-right').getBoundingClientRect().left]")
            assert nav_right <= right_left, (width, lang, nav_right, right_left)


def test_upload_a_file_and_watch_it_import(page: Any, console: Console, screenshots: Path) -> None:
    with ERRORS_FILE.open(encoding="utf-8", newline="") as handle:
        data_rows = list(csv.DictReader(handle))
    # Worked out by hand from the file: rows 4 (30 February), 5 (quantity -1), 6 (three decimals),
    # 8 (no customer) and 9 ("299元") are refused, and row 7 is held back with row 6 because it
    # belongs to the same order E1005. The other 6 orders are new.
    bad_orders = {"E1003", "E1004", "E1005", "E1006", "E1007"}
    new_orders = len({r["order_id"] for r in data_rows} - bad_orders)

    # Keep the warehouse writer busy until we have seen the upload waiting in the queue: the
    # first import's on_done blocks the writer thread until the gate opens.
    owner = console.app.state.warehouse
    gate = threading.Event()
    busy = owner.submit_import("ad_spend", [console.data_dir / "demo-files" / "ad_spend.csv"],
                               "generic", on_done=lambda _job: gate.wait(30))
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if r.headers.get("hx-request") else None)

    log_in(page, console, console.admin.email, console.admin.password, "/imports")
    page.select_option("select[name=table]", "order_lines")
    page.select_option("select[name=format]", "generic")
    page.set_input_files("input[name=files]", str(ERRORS_FILE))
    page.click("[data-testid=upload-form] button[type=submit]")
    page.wait_for_url(re.compile(r"/imports/job_"))
    progress = page.locator("[data-testid=import-progress]")
    assert progress.get_attribute("data-state") == "queued"
    assert page.locator("[data-testid=job-state]").inner_text() == "Queued"
    page.wait_for_timeout(1200)  # more than one polling interval
    assert progress.get_attribute("data-state") == "queued"  # still waiting, still polling
    assert len(polls) >= 1
    page.screenshot(path=str(screenshots / "import-queued.png"), full_page=True)
    gate.set()

    page.wait_for_selector("[data-testid=import-progress][data-state=done]", timeout=30_000)
    assert owner.job(busy).status == "done"
    counts = {
        el.get_attribute("data-count"): el.locator("dd").inner_text()
        for el in page.locator("[data-testid=import-counts] .count").all()
    }
    assert counts["rows_read"] == str(len(data_rows)) == "14"  # lines
    assert counts["lines_imported"] == "8"  # as examples/README.md says
    assert counts["inserted"] == str(new_orders) == "6"  # orders
    assert counts["rows_quarantined"] == "6"
    quarantined = [
        (int(row.locator("td").nth(1).inner_text()), row.locator("td").nth(2).inner_text())
        for row in page.locator("[data-testid=quarantine-table] tbody tr").all()
    ]
    assert {row for row, _ in quarantined} == {4, 5, 6, 7, 8, 9}
    assert {(5, "quantity"), (6, "line_total"), (7, "order_id"), (8, "customer_id"),
            (9, "unit_price"), (4, "ordered_at")} <= set(quarantined)
    assert page.locator("[data-testid=quarantine-table]").inner_text().count(ERRORS_FILE.name) == len(
        quarantined
    )
    page.screenshot(path=str(screenshots / "import-done.png"), full_page=True)
    polls_when_done = len(polls)
    page.wait_for_timeout(1200)
    assert len(polls) == polls_when_done  # polling stops once the job is done

    page.hover(".navgroup:has(a[href='/imports']) .navgroup-label")
    page.click(".mainnav a[href='/imports']")
    recent = page.locator("[data-testid=recent-imports] tbody tr").first.inner_text()
    assert ERRORS_FILE.name in recent
    assert "Order lines" in recent

    # The same file again changes nothing: the 6 orders are unchanged, the same rows refused.
    page.set_input_files("input[name=files]", str(ERRORS_FILE))
    page.click("[data-testid=upload-form] button[type=submit]")
    page.wait_for_selector("[data-testid=import-progress][data-state=done]", timeout=30_000)
    again = {
        el.get_attribute("data-count"): el.locator("dd").inner_text()
        for el in page.locator("[data-testid=import-counts] .count").all()
    }
    assert again == {**counts, "inserted": "0", "unchanged": "6"}


def _top_customer(console: Console) -> dict[str, Any]:
    orders = console.orders
    paid = orders[orders.status.isin(PAID)]
    counts = paid.groupby("customer_id").size().sort_values(ascending=False, kind="stable")
    customer_id = str(counts.index[0])
    row = console.customers[console.customers.customer_id == customer_id].iloc[0]
    mine = paid[paid.customer_id == customer_id]
    return {
        "id": customer_id,
        "name": row["name"],
        "email": row["email"],
        "phone": row["phone"],
        "paid_orders": int(counts.iloc[0]),
        "all_orders": int((orders.customer_id == customer_id).sum()),
        "gmv": Decimal(int(mine.total_amount.sum())) / 100,
    }


def test_search_customers_live_and_open_a_profile(
    page: Any, console: Console, screenshots: Path
) -> None:
    who = _top_customer(console)
    log_in(page, console, console.admin.email, console.admin.password, "/customers")
    rows = page.locator("[data-testid=customer-table] tbody tr")
    assert rows.count() == customer_pages.PAGE_SIZE
    page.evaluate("window.__sameDocument = true")
    page.fill("input[name=q]", who["name"])  # typing searches without a page load (HTMX)
    page.wait_for_url(re.compile(r"q="))
    page.wait_for_function(
        "(id) => [...document.querySelectorAll('#customer-results tbody tr')]"
        ".some((tr) => tr.innerText.includes(id))",
        arg=who["id"],
    )
    assert page.evaluate("window.__sameDocument") is True
    names = [r.locator("td").nth(1).inner_text() for r in rows.all()]
    assert names
    assert all(who["name"] in name for name in names)

    page.click(f"#customer-results a:text-is('{who['id']}')")
    page.wait_for_url(re.compile(r"/customers/"))
    assert who["name"] in page.locator("h1").inner_text()
    assert page.locator("[data-kpi=orders] .card-value").inner_text() == str(who["paid_orders"])
    assert page.locator("[data-kpi=gmv] .card-value").inner_text() == money_text(who["gmv"])
    assert page.locator("[data-attr=email]").inner_text() == (who["email"] or "–")
    timeline = page.locator("[data-testid=order-timeline] > li")
    assert timeline.count() == min(who["all_orders"], 50)
    assert page.locator("[data-testid=event-timeline] > li").count() > 0
    page.screenshot(path=str(screenshots / "customer-profile.png"), full_page=True)


def test_analyst_sees_masked_contact_details_and_can_sign_out(page: Any, console: Console) -> None:
    who = _top_customer(console)
    log_in(page, console, console.analyst.email, console.analyst.password, "/customers")
    assert "masked" in page.locator("#customer-results").inner_text()
    page.goto(console.url + customer_pages.customer_href(who["id"]))
    html = page.content()
    for secret in (who["email"], who["phone"]):
        if secret:
            assert secret not in html
    shown = page.locator("[data-attr=email]").inner_text()
    assert shown != who["email"]
    assert "*" in shown
    page.goto(console.url + "/imports")
    assert page.locator("[data-testid=upload-form]").count() == 0
    assert "cannot import" in page.locator(".panel").first.inner_text()

    page.click("[data-testid=user-menu]")
    page.click("form[action='/logout'] button")
    page.wait_for_url(re.compile(r"/login"))
    page.goto(console.url + "/customers")
    assert "/login?next=" in page.url


def test_pages_escape_what_users_type(page: Any, console: Console) -> None:
    log_in(page, console, console.admin.email, console.admin.password, "/customers")
    attack = "<script>window.__pwned=true</script><img src=x onerror=\"window.__pwned=true\">' OR ''='"
    page.goto(console.url + "/customers?" + urlencode({"q": attack}))
    assert page.evaluate("window.__pwned") is None
    assert attack in page.locator("#customer-results .empty").inner_text()  # shown as text
    assert page.locator("input[name=q]").input_value() == attack
    assert page.locator("#customer-results img").count() == 0
