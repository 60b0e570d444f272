"""The RFM page (``/insight/rfm``): customers per R × F cell as a heatmap, the 11 classic segments
and the 8 value classes as of a day, optionally for one channel's orders or the orders holding a
category, and compared with the same scoring 30 days or a year earlier. Every non-empty count links
to the customers behind it (``insight.pages.drill``), unless the page is narrowed (segments score
the whole shop). Figures: :func:`growthwheel.insight.rfm.rfm_report`, as the CLI's ``--json``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from growthwheel.api.deps import PageUser
from growthwheel.api.warehouse import warehouse
from growthwheel.customers.pages import CHANNEL_KEYS, coded
from growthwheel.errors import NoDataError
from growthwheel.insight import overview as ov
from growthwheel.insight.pages import drill
from growthwheel.insight.pages.common import _money, _num, _pct, parse_day
from growthwheel.insight.rfm import CUTS, last_paid_day, rfm_report
from growthwheel.kit.money import currency_exponent
from growthwheel.web.i18n import format_change, format_count, k
from growthwheel.web.pages import page_language, page_translator, render

router = APIRouter(include_in_schema=False)



def segment_rows(rows: list[dict[str, Any]], *, scheme: str, lang: str, currency: str,
                 exponent: int) -> list[dict[str, Any]]:
    """The rows of a segment table of :func:`rfm_report` as the page shows them: the segment's
    name in the page's language (``classic``: English name / ``label_zh``; ``value``:
    ``label_en`` / Chinese name) with the other language beside it, and formatted figures."""
    shown = []
    for row in rows:
        english = row["segment"] if scheme == "classic" else row["label_en"]
        chinese = row["label_zh"] if scheme == "classic" else row["segment"]
        name, other = (chinese, english) if lang == "zh" else (english, chinese)
        shown.append({
            "key": row["segment"], "name": name, "other": other, "empty": not row["customers"],
            "customers": format_count(row["customers"]), "share": _pct(row["share"]),
            "orders": format_count(row["orders"]),
            "monetary": _money(row["monetary"], currency, exponent),
            "avg_recency_days": _num(row["avg_recency_days"], 1),
            "avg_frequency": _num(row["avg_frequency"], 2),
            "avg_monetary": _money(row["avg_monetary"], currency, exponent),
        })
    return shown


#: The value classes' high / low split the RFM page offers, with its label.
CUT_KEYS = {"mean": k("insight.rfm.cut_mean"), "median": k("insight.rfm.cut_median")}
CUT_NOTE_KEYS = {"mean": k("insight.rfm.cut_note_mean"), "median": k("insight.rfm.cut_note_median")}


@router.get("/insight/rfm", response_class=HTMLResponse)
def rfm_page(
    request: Request,
    user: PageUser,
    as_of: Annotated[str | None, Query(max_length=40)] = None,
    cut: Annotated[str, Query(max_length=10)] = "mean",
    compare: Annotated[str, Query(max_length=20)] = "",
    channel: Annotated[str, Query(max_length=200)] = "",
    category: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    """RFM as of a day (default: the last paid order's): customers per R × F cell as a heatmap,
    the 11 classic segments and the 8 value classes (客户价值分类), split high / low at the
    ``cut`` (``mean``, the default, or ``median``) of each measure; optionally for one channel's
    orders or the orders holding a category, and compared (``compare``) with the same scoring 30
    days earlier (``previous``) or a year earlier (``last_year``)."""
    lang = page_language(request)
    cut = cut if cut in CUTS else "mean"
    compare = compare if compare in RFM_COMPARE_KEYS else ""
    currency: str = request.app.state.cfg.shop().currency
    exponent = currency_exponent(currency)
    with warehouse(request).read() as con:
        channels, categories = ov.filter_options(con)
        channel = channel if channel in channels else ""
        category = category if category in categories else ""
        orders = ov.narrowed(con, channel=channel, category=category).table("orders")
        try:
            last = last_paid_day(orders)
        except NoDataError:
            return render(request, "insight/rfm.html.j2", {"report": None, "insight_tab": "rfm"},
                          user=user)
        day = parse_day(as_of) or last
        report = rfm_report(orders, day, cut=cut, currency_exponent=exponent)
        before = None
        if compare:
            then = day - timedelta(days=30) if compare == "previous" else ov.year_before(day)
            before = rfm_report(orders, then, cut=cut, currency_exponent=exponent)
    narrowed = bool(channel or category)  # the scores behind a drill-down are the whole shop's
    carried = {key: v for key, v in (("compare", compare), ("channel", channel), ("category", category)) if v}
    context = {
        "compare": compare, "compare_key": RFM_COMPARE_KEYS.get(compare, ""),
        "compare_day": before["as_of"] if before else "",
        "compares": [{"value": c, "key": key_} for c, key_ in RFM_COMPARE_KEYS.items()],
        "channels": [{"value": c, "name": coded(page_translator(request), CHANNEL_KEYS, c) or c}
                     for c in channels],
        "categories": categories, "channel": channel, "category": category,
        "insight_tab": "rfm",
        "report": report,
        "as_of": report["as_of"],
        "cut": cut,
        "cut_note_key": CUT_NOTE_KEYS[cut],
        "cuts": [{"value": c, "key": CUT_KEYS[c],
                  "href": "/insight/rfm?" + urlencode({"as_of": report["as_of"], "cut": c, **carried})}
                 for c in CUTS],
        "customers": format_count(report["customers"]),
        "classic": _compared(_drill_rows(
            segment_rows(report["segments"], scheme="classic", lang=lang, currency=currency,
                         exponent=exponent), report["as_of"], None if narrowed else drill.rfm_segment),
            before["segments"] if before else None),
        "value": _compared(_drill_rows(
            segment_rows(report["value_classes"], scheme="value", lang=lang, currency=currency,
                         exponent=exponent), report["as_of"],
            drill.rfm_class if cut == "mean" and not narrowed else None),  # the scores' cut: mean
            before["value_classes"] if before else None),
        # [F − 1, R − 1, customers]: ECharts heatmap cells (x = F, y = R).
        "cells": [[c["f_score"] - 1, c["r_score"] - 1, c["customers"]] for c in report["grid"]],
        # the customers of each cell (same order as ``cells``)
        "cell_links": [
            None if narrowed else
            drill.customers_href(drill.rfm_cell(c["r_score"], c["f_score"]), report["as_of"],
                                 f"RFM · R{c['r_score']} F{c['f_score']}")
            for c in report["grid"]
        ],
    }
    return render(request, "insight/rfm.html.j2", context, user=user)


#: What the RFM page compares a day's segments with.
RFM_COMPARE_KEYS = {"previous": k("compare.rfm_previous"), "last_year": k("compare.rfm_last_year")}


def _compared(rows: list[dict[str, Any]], before: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """``rows`` with the segment's customers on the comparison day (``before_text``) and the
    change (``change``, ``tone``), when there is a comparison."""
    if before is None:
        return rows
    counts = {b["segment"]: int(b["customers"]) for b in before}
    out = []
    for row in rows:
        then = counts.get(row["key"], 0)
        now = int(str(row["customers"]).replace(",", ""))
        change, tone = format_change((now - then) / then if then else None, None)
        out.append({**row, "before_text": format_count(then), "change": change, "tone": tone})
    return out


def _drill_rows(rows: list[dict[str, Any]], as_of: str, make: Any) -> list[dict[str, Any]]:
    """``rows`` with ``href``: the customers behind each non-empty row (``make(key)`` gives the
    definition; no link when ``make`` is ``None``)."""
    return [{**row, "href": drill.customers_href(make(row["key"]), as_of, "RFM · " + row["name"])
             if make is not None and not row["empty"] else None} for row in rows]
