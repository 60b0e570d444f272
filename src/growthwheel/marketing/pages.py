"""Console pages of marketing: ``GET /marketing/attribution`` — every attribution model side by side.

The page asks for a period of conversions (default: the 30 days up to the last paid order), a
look-back window, the level (channel, campaign, influencer) and the model whose spend ratios the
table shows (ROAS, CAC and new-customer share; default Markov). It shows a grouped bar chart of the
conversions each model credits to each channel (drawn by ``static/marketing.js`` from a
``<script type="application/json">`` block: no inline script runs) and the table of the same
numbers. The figures are :func:`growthwheel.marketing.service.attribution_report`, the same as
``GET /api/v1/marketing/attribution`` and ``growthwheel marketing attribution --json``.

Every page needs a signed-in user; reads go through the server's warehouse owner on a worker
thread (sync route). Visible strings come from ``i18n/<lang>/marketing.json``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from growthwheel.api.deps import Principal, current_user_page
from growthwheel.errors import GrowthwheelError, NoDataError
from growthwheel.kit.money import currency_exponent
from growthwheel.marketing import service
from growthwheel.marketing.touchpoints import LEVELS
from growthwheel.stats.attribution import MODELS
from growthwheel.web.i18n import format_money, format_ratio, k
from growthwheel.web.pages import backend, page_translator, render, shop_of

router = APIRouter(include_in_schema=False)

User = Annotated[Principal, Depends(current_user_page)]

MODEL_KEYS = {
    "first_touch": k("marketing.model.first_touch"), "last_touch": k("marketing.model.last_touch"),
    "linear": k("marketing.model.linear"), "time_decay": k("marketing.model.time_decay"),
    "position_based": k("marketing.model.position_based"), "markov": k("marketing.model.markov"),
    "shapley": k("marketing.model.shapley"),
}
LEVEL_KEYS = {"channel": k("marketing.level.channel"), "campaign": k("marketing.level.campaign"),
              "influencer": k("marketing.level.influencer")}
#: Channels Growthwheel names itself (referrers, message channels, influencer codes), shown translated.
CHANNEL_KEYS = {
    "organic_search": k("marketing.channel.organic_search"), "social": k("marketing.channel.social"),
    "referral": k("marketing.channel.referral"), "influencer": k("marketing.channel.influencer"),
    "email": k("marketing.channel.email"), "sms": k("marketing.channel.sms"),
    "wecom": k("marketing.channel.wecom"), "webhook": k("marketing.channel.webhook"),
}
assert set(MODEL_KEYS) == set(MODELS)
assert set(LEVEL_KEYS) == set(LEVELS)
DEFAULT_DAYS = 30


def _last_order_day(con: Any) -> date | None:
    from ibis import _

    from growthwheel.warehouse.schema import PAID_STATUSES

    orders = con.table("orders").filter(_.status.isin(PAID_STATUSES))
    value = orders.aggregate(last=_.ordered_at.max()).to_pyarrow().column("last")[0].as_py()
    return None if value is None else value.date()


def _label(name: str, t: Any) -> str:
    """A channel (or ``channel / campaign``) as shown: Growthwheel's own channel names translated."""
    head, sep, rest = name.partition(" / ")
    return (t(CHANNEL_KEYS[head]) if head in CHANNEL_KEYS else head) + sep + rest


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


@router.get("/marketing")
def marketing_home(user: User) -> RedirectResponse:
    """The marketing section opens on attribution."""
    return RedirectResponse("/marketing/attribution", status_code=303)


@router.get("/marketing/attribution", response_class=HTMLResponse)
def attribution_page(request: Request, user: User) -> HTMLResponse:
    """Attribution side by side (see the module docstring)."""
    q = request.query_params
    error_key: str | None = None
    level = q.get("level") or "channel"
    basis = q.get("basis") or "markov"
    if level not in LEVELS:
        level, error_key = "channel", k("marketing.error.level")
    if basis not in MODELS:
        basis, error_key = "markov", k("marketing.error.basis")
    try:
        lookback = int(q.get("lookback_days") or 30)
    except ValueError:
        lookback = 0
    if not 1 <= lookback <= service.MAX_LOOKBACK_DAYS:
        lookback, error_key = 30, k("marketing.error.lookback")
    start, end = _day(q.get("from")), _day(q.get("to"))
    if (q.get("from") and start is None) or (q.get("to") and end is None):
        error_key = k("marketing.error.date")
    currency = shop_of(request).currency
    exponent = currency_exponent(currency)
    report: dict[str, Any] | None = None
    with backend(request) as con:
        if end is None:
            end = _last_order_day(con) or datetime.now(UTC).date()
        if start is None:
            start = end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            start, error_key = end - timedelta(days=DEFAULT_DAYS - 1), k("marketing.error.range")
        try:
            report = service.attribution_report(con, start=start, end=end, lookback_days=lookback,
                                                level=level)
        except NoDataError:
            report = None
        except GrowthwheelError:
            report, error_key = None, k("marketing.error.report")
    rows: list[dict[str, Any]] = []
    chart: dict[str, Any] | None = None
    t = page_translator(request)
    if report is not None:
        by = {(r["model"], r["channel"]): r for r in report["rows"]}
        channels = sorted(report["channels"], key=lambda c: -by.get((basis, c), {}).get("conversions", 0.0))
        for ch in channels:
            b = by.get((basis, ch), {})
            spend = b.get("spend") or 0
            rows.append({
                "channel": ch,
                "label": _label(ch, t),
                "credits": [(m, f"{by[(m, ch)]['conversions']:,.1f}" if (m, ch) in by else "–")
                            for m in MODELS],
                "value": format_money(round(b.get("value", 0.0)) / 10**exponent, currency),
                "spend": format_money(spend / 10**exponent, currency) if spend else "–",
                "roas": format_ratio(b.get("roas"), percent=False),
                "cac": format_money(b["cac"] / 10**exponent, currency) if b.get("cac") is not None else "–",
                "new_share": format_ratio(b.get("new_share"), percent=True),
                "removal": (f"{100 * report['removal_effects']['markov'][ch]:.1f}%"
                            if ch in report["removal_effects"].get("markov", {}) else "–"),
            })
        series = [{"model": m, "name": t(MODEL_KEYS[m]),
                   "values": [round(by[(m, ch)]["conversions"], 2) if (m, ch) in by else 0
                              for ch in channels]} for m in MODELS]
        chart = {"channels": [_label(ch, t) for ch in channels],
                 "label": t(k("marketing.col.conversions")), "series": series}
    return render(request, "marketing/attribution.html.j2", {
        "start": start.isoformat(), "end": end.isoformat(), "lookback_days": lookback,
        "level": level, "basis": basis, "levels": LEVEL_KEYS, "models": MODEL_KEYS,
        "report": report, "rows": rows, "chart": chart, "error_key": error_key,
    }, user=user)
