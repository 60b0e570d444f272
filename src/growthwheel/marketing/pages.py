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

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from growthwheel.api.deps import PageUser
from growthwheel.errors import GrowthwheelError, InvalidArgumentError, NoDataError
from growthwheel.kit.money import currency_exponent
from growthwheel.marketing import service
from growthwheel.marketing.touchpoints import LEVELS
from growthwheel.stats.attribution import MODELS
from growthwheel.web.i18n import format_money, format_ratio, k
from growthwheel.web.pages import backend, page_translator, render, shop_of

router = APIRouter(include_in_schema=False)


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
def marketing_home(user: PageUser) -> RedirectResponse:
    """The marketing section opens on attribution."""
    return RedirectResponse("/marketing/attribution", status_code=303)


@router.get("/marketing/attribution", response_class=HTMLResponse)
def attribution_page(request: Request, user: PageUser) -> HTMLResponse:
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


MIX_DAYS = 365
BOUND_KEYS = {"lower": k("marketing.mix.bound.lower"), "upper": k("marketing.mix.bound.upper")}
OUTCOME_KEYS = {"new_customers": k("marketing.mix.outcome.new_customers"),
                "revenue": k("marketing.mix.outcome.revenue")}


def _last_spend_day(con: Any) -> date | None:
    from ibis import _

    value = con.table("ad_spend").aggregate(last=_.date.max()).to_pyarrow().column("last")[0].as_py()
    return value if value is None or type(value) is date else value.date()


def _iv(d: dict[str, float], fmt: str, scale: float = 1.0) -> dict[str, str]:
    return {q: fmt.format(d[q] * scale) for q in ("mean", "low", "high")}


@router.get("/marketing/mix", response_class=HTMLResponse)
def mix_page(request: Request, user: PageUser) -> HTMLResponse:
    """The marketing-mix model: response curves, marginal ROAS per channel and a budget plan on the
    curves (``marketing/mix.py``, the same figures as ``GET /api/v1/marketing/mmm`` and
    ``POST /api/v1/marketing/mmm/plan``)."""
    from decimal import Decimal, InvalidOperation

    from growthwheel.marketing import mix

    q = request.query_params
    error_key: str | None = None
    outcome = q.get("outcome") or "new_customers"
    if outcome not in mix.OUTCOMES:
        outcome, error_key = "new_customers", k("marketing.mix.error.outcome")
    start, end = _day(q.get("from")), _day(q.get("to"))
    if (q.get("from") and start is None) or (q.get("to") and end is None):
        error_key = k("marketing.error.date")
    try:
        reserve_pct = float(q.get("reserve") or 10)
    except ValueError:
        reserve_pct = -1.0
    if not 0 <= reserve_pct < 100:
        reserve_pct, error_key = 10.0, k("marketing.mix.error.reserve")
    shop = shop_of(request)
    exponent = currency_exponent(shop.currency)
    total_minor: int | None = None
    if q.get("total"):
        try:
            amount = Decimal(str(q.get("total")).replace(",", ""))
            if not amount.is_finite() or amount <= 0 or amount > Decimal(10) ** 13:
                raise InvalidOperation
            total_minor = int(amount.scaleb(exponent).to_integral_value())
        except InvalidOperation:
            error_key = k("marketing.mix.error.total")
    exclude_text = (q.get("exclude") or "").strip()
    exclude: list[mix.Exclusion] = []
    try:
        exclude = [mix.parse_exclusion(part) for part in re.split(r"[,，;\s]+", exclude_text) if part]
    except GrowthwheelError:
        exclude, error_key = [], k("marketing.mix.error.exclude")
    report: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    with backend(request) as con:
        if end is None:
            end = _last_spend_day(con) or datetime.now(UTC).date()
        if start is None:
            start = end - timedelta(days=MIX_DAYS - 1)
        if (end - start).days + 1 < mix.MIN_DAYS or start > end:
            start, error_key = end - timedelta(days=MIX_DAYS - 1), k("marketing.mix.error.range")
        try:
            try:
                report = mix.report(con, start=start, end=end, outcome=outcome, timezone=shop.timezone,
                                    exclude=exclude)
            except InvalidArgumentError as exc:
                if not exclude or not str(exc).startswith("exclude"):
                    raise
                exclude, error_key = [], k("marketing.mix.error.exclude")
                report = mix.report(con, start=start, end=end, outcome=outcome, timezone=shop.timezone)
            total = total_minor or sum(c["spend"] for c in report["channels"])
            plan = mix.plan(con, start=start, end=end, outcome=outcome, total=total,
                            reserve_share=reserve_pct / 100, timezone=shop.timezone, exclude=exclude)
        except NoDataError:
            report = plan = None
        except GrowthwheelError:
            report, plan, error_key = None, None, k("marketing.mix.error.fit")
    t = page_translator(request)
    per = 10**exponent
    rows: list[dict[str, Any]] = []
    plan_rows: list[dict[str, Any]] = []
    chart: dict[str, Any] | None = None
    money_outcome = outcome == "revenue"
    unit = per if money_outcome else 1  # revenue is shown in major units, customers as counts
    if report is not None and plan is not None:
        # ROAS per 1,000 of the currency: new customers per ¥1,000, or revenue per revenue (×1,000 / 1,000).
        roas_scale = 1000 * per if not money_outcome else 1.0
        roas_fmt = "{:.2f}"
        for c in report["channels"]:
            rows.append({
                "channel": c["channel"], "label": _label(c["channel"], t),
                "spend": format_money(c["spend"] / per, shop.currency),
                "contribution": _iv(c["contribution"], "{:,.0f}", 1 / unit),
                "roas": _iv(c["roas"], roas_fmt, roas_scale),
                "marginal": _iv(c["marginal_roas"], roas_fmt, roas_scale),
                "elasticity": _iv(c["elasticity"], "{:.2f}"),
                "decay": f"{c['decay']['mean']:.2f}",
            })
        for line in plan["lines"]:
            plan_rows.append({
                "channel": line["channel"], "label": _label(line["channel"], t),
                "current": format_money(line["current_split"] / per, shop.currency),
                "plan": format_money(line["spend"] / per, shop.currency),
                "outcome": f"{line['outcome'] / unit:,.1f}",
                "marginal": f"{line['marginal_return'] * roas_scale:.2f}",
                "bound": t(BOUND_KEYS[line["bound"]]) if line["bound"] else "",
            })
        chart = {
            "x": t(k("marketing.mix.chart.spend"), currency=shop.currency),
            "y": t(OUTCOME_KEYS[outcome]),
            "series": [{"name": _label(cv["channel"], t),
                        "points": [[round(s / per, 2), round(o / unit, 2)]
                                   for s, o in zip(cv["spend"], cv["outcome"], strict=True)],
                        "low": [round(v / unit, 2) for v in cv["low"]],
                        "high": [round(v / unit, 2) for v in cv["high"]],
                        "current": round(next(c["spend"] for c in report["channels"]
                                              if c["channel"] == cv["channel"]) / per, 2)}
                       for cv in report["curves"]],
        }
    total_text = "" if plan is None else f"{plan['total'] / per:.{exponent}f}"
    return render(request, "marketing/mix.html.j2", {
        "start": start.isoformat(), "end": end.isoformat(), "outcome": outcome, "outcomes": OUTCOME_KEYS,
        "reserve": f"{reserve_pct:g}", "total": q.get("total") or total_text,
        "exclude": exclude_text,
        "excluded": [f"{ch + ': ' if ch else ''}{lo.isoformat()} – {hi.isoformat()}"
                     for ch, lo, hi in exclude],
        "report": report, "plan": plan, "rows": rows, "plan_rows": plan_rows, "chart": chart,
        "error_key": error_key, "money_outcome": money_outcome,
        "reserve_money": "" if plan is None else format_money(plan["reserve"] / per, shop.currency),
        "uplift": "" if plan is None else f"{plan['uplift'] / unit:+,.1f}",
        "expected": "" if plan is None else f"{plan['expected_outcome'] / unit:,.1f}",
        "current": "" if plan is None else f"{plan['current_split_outcome'] / unit:,.1f}",
    }, user=user)
