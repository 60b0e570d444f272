"""Console page of alerts: ``GET /alerts`` (the inbox and the rules) and its forms.

* the inbox by status (open / acknowledged / resolved) with each alert's metric, dimension value,
  period, value against its normal band or reference, a link to the page that explains it, and
  acknowledge / resolve buttons (operators and admins; conditional moves, so two operators never
  both acknowledge one alert — the second sees a notice);
* the rules (built-in ones named in the page's language) and a form for a new rule;
* "evaluate now", which judges the rules over the last ``days`` days as the worker's daily
  ``alerts.evaluate`` job does for yesterday.

Every visible string comes from ``i18n/<lang>/alerts.json``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from growthwheel.alerts import inbox, rules, service
from growthwheel.alerts.models import ALERT_STATUSES
from growthwheel.api.deps import DbSession, PageUser, PageWriter
from growthwheel.errors import GrowthwheelError
from growthwheel.web.i18n import Translator, k
from growthwheel.web.pages import backend, page_language, page_translator, render

router = APIRouter(include_in_schema=False)

STATUS_KEYS = {"open": k("alerts.status.open"), "acknowledged": k("alerts.status.acknowledged"),
               "resolved": k("alerts.status.resolved")}
KIND_KEYS = {"threshold": k("alerts.kind.threshold"), "change": k("alerts.kind.change"),
             "anomaly": k("alerts.kind.anomaly")}
DIRECTION_KEYS = {"up": k("alerts.direction.up"), "down": k("alerts.direction.down"),
                  "both": k("alerts.direction.both")}
PERIOD_KEYS = {"day": k("alerts.period.day"), "week": k("alerts.period.week"),
               "month": k("alerts.period.month")}
DIMENSION_KEYS = {"": k("alerts.dimension.none"), "channel": k("alerts.dimension.channel"),
                  "category": k("alerts.dimension.category"), "sku": k("alerts.dimension.sku"),
                  "campaign": k("alerts.dimension.campaign")}
COMPARE_KEYS = {"previous": k("alerts.compare.previous"), "last_year": k("alerts.compare.last_year")}
BUILTIN_KEYS = {"cac_up": k("alerts.builtin.cac_up"), "conversion_down": k("alerts.builtin.conversion_down"),
                "refund_rate_up": k("alerts.builtin.refund_rate_up"),
                "negative_reviews_up": k("alerts.builtin.negative_reviews_up"),
                "stockout_risk": k("alerts.builtin.stockout_risk"),
                "campaign_behind": k("alerts.builtin.campaign_behind")}
assert set(BUILTIN_KEYS) == set(rules.BUILTIN_RULES)
NOTICE_KEYS = {"acknowledged": k("alerts.notice.acknowledged"), "resolved": k("alerts.notice.resolved"),
               "conflict": k("alerts.notice.conflict"), "created": k("alerts.notice.created"),
               "evaluated": k("alerts.notice.evaluated"), "deleted": k("alerts.notice.deleted")}
CHANNEL_KEYS = {"email": k("alerts.channel.email"), "wecom": k("alerts.channel.wecom"),
                "webhook": k("alerts.channel.webhook"), "sms": k("alerts.channel.sms")}
MAX_EVALUATE_DAYS = 366


def _lang(request: Request) -> str:
    return "en" if page_language(request) == "en" else "zh"


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.4f}" if value != 0 and abs(value) < 1 else f"{value:,.2f}"


def _rule_name(rule: Any, t: Any) -> str:
    return t(BUILTIN_KEYS[rule.builtin]) if rule.builtin in BUILTIN_KEYS else str(rule.name)


def _rule_summary(rule: Any, t: Translator) -> str:
    p = rule.params or {}
    if rule.kind == "anomaly":
        return t(k("alerts.summary.anomaly"), direction=t(DIRECTION_KEYS.get(p.get("direction", "both"), "")),
                 z=_num(p.get("z")))
    if rule.kind == "threshold":
        return t(k("alerts.summary.threshold"), op=p.get("op", ""), limit=_num(p.get("limit")))
    return t(k("alerts.summary.change"), compare=t(COMPARE_KEYS.get(p.get("compare", "previous"), "")),
             direction=t(DIRECTION_KEYS.get(p.get("direction", "both"), "")),
             pct=f"{float(p.get('at_least', 0)) * 100:.0f}")


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """The inbox and the rules (see the module docstring)."""
    t = page_translator(request)
    lang = _lang(request)
    status = request.query_params.get("status") or "open"
    if status not in (*ALERT_STATUSES, "all"):
        status = "open"
    service.ensure_builtin_rules(session)
    saved = service.list_rules(session)
    by_id = {r.id: r for r in saved}
    rows = []
    for a in inbox.list_alerts(session, status=None if status == "all" else status):
        rule = by_id.get(a.rule_id)
        rows.append({
            "id": a.id, "rule": _rule_name(rule, t) if rule else "", "metric": rules.label(a.metric, lang),
            "dimension": t(DIMENSION_KEYS.get(a.dimension or "", DIMENSION_KEYS[""])),
            "value_of": a.dimension_value, "period": a.period_start.isoformat(),
            "period_kind": t(PERIOD_KEYS.get(a.period, PERIOD_KEYS["day"])), "value": _num(a.value),
            "band": (f"{_num(a.lower)} ~ {_num(a.upper)}" if a.lower is not None and a.upper is not None
                     else _num(a.reference)),
            "status": a.status, "status_label": t(STATUS_KEYS[a.status]), "notified": a.notified,
            "link": inbox.drill_down(a), "note": a.note or "",
        })
    rule_rows = [{"id": r.id, "name": _rule_name(r, t), "metric": rules.label(r.metric, lang),
                  "dimension": t(DIMENSION_KEYS.get(r.dimension or "", DIMENSION_KEYS[""])),
                  "kind": t(KIND_KEYS[r.kind]), "summary": _rule_summary(r, t),
                  "period": t(PERIOD_KEYS.get(r.period, PERIOD_KEYS["day"])),
                  "notify": ", ".join(f"{n['channel']}: {n['recipient']}" for n in r.notify) or "–",
                  "enabled": r.enabled, "builtin": bool(r.builtin)} for r in saved]
    metrics = [(m, rules.label(m, lang)) for m in rules.metric_names()]
    return render(request, "alerts/index.html.j2", {
        "status": status, "statuses": [(s, STATUS_KEYS[s]) for s in ALERT_STATUSES],
        "counts": inbox.counts(session), "alerts": rows, "rules": rule_rows, "metrics": metrics,
        "kinds": KIND_KEYS, "directions": DIRECTION_KEYS, "periods": PERIOD_KEYS, "compares": COMPARE_KEYS,
        "dimensions": DIMENSION_KEYS, "channels": CHANNEL_KEYS, "can_edit": "write" in user.scopes,
        "notice": NOTICE_KEYS.get(request.query_params.get("done") or ""),
        "error": request.query_params.get("error") or "",
    }, user=user)


def _back(done: str, status: str = "open", error: str = "") -> RedirectResponse:
    from urllib.parse import urlencode

    query = {"status": status, "done": done} | ({"error": error[:300]} if error else {})
    return RedirectResponse("/alerts?" + urlencode(query), status_code=303)


@router.post("/alerts/{alert_id}/move", response_class=HTMLResponse)
async def move_alert(request: Request, alert_id: str, user: PageWriter, session: DbSession) -> Response:
    """Acknowledge or resolve (a conflict comes back as a notice, not an error page)."""
    form = await request.form()
    action, note = str(form.get("action") or ""), str(form.get("note") or "").strip() or None

    def work() -> Response:
        try:
            if action == "acknowledge":
                inbox.acknowledge(session, alert_id, actor=user.name)
                return _back("acknowledged")
            inbox.resolve(session, alert_id, actor=user.name, note=note)
            return _back("resolved")
        except rules.ConflictError:
            session.rollback()
            return _back("conflict")

    return await run_in_threadpool(work)


@router.post("/alerts/rules", response_class=HTMLResponse)
async def new_rule(request: Request, user: PageWriter, session: DbSession) -> Response:
    """A new rule from the form (errors come back as a notice naming the field)."""
    form = {key: str(value) for key, value in (await request.form()).items()}
    kind = form.get("kind", "anomaly")
    params: dict[str, Any] = {}
    if kind == "anomaly":
        params = {"direction": form.get("direction", "both"), "z": form.get("z") or "4"}
    elif kind == "threshold":
        params = {"op": form.get("op", ">"), "limit": form.get("limit") or ""}
    else:
        at_least = form.get("at_least_pct") or ""
        try:
            share: Any = float(at_least) / 100
        except ValueError:
            share = at_least
        params = {"compare": form.get("compare", "previous"), "direction": form.get("direction", "both"),
                  "at_least": share}
    notify = ([{"channel": form.get("notify_channel", "email"), "recipient": form["recipient"].strip()}]
              if form.get("recipient", "").strip() else [])
    try:
        cooldown = int(form.get("cooldown_hours") or 24)
    except ValueError:
        cooldown = -1
    spec = rules.RuleSpec(name=form.get("name", ""), metric=form.get("metric", ""), kind=kind,
                          dimension=form.get("dimension") or None, period=form.get("period") or "day",
                          params=params, notify=notify, cooldown_hours=cooldown)

    def work() -> Response:
        try:
            service.create_rule(session, spec, actor=user.name)
        except GrowthwheelError as exc:
            session.rollback()
            return _back("", error=exc.message)
        return _back("created")

    return await run_in_threadpool(work)


@router.post("/alerts/rules/{rule_id}/delete", response_class=HTMLResponse)
async def delete_rule(request: Request, rule_id: str, user: PageWriter, session: DbSession) -> Response:
    """Delete a rule (and its alerts)."""

    def work() -> Response:
        service.delete_rule(session, rule_id)
        return _back("deleted")

    return await run_in_threadpool(work)


@router.post("/alerts/evaluate", response_class=HTMLResponse)
async def evaluate_now(request: Request, user: PageWriter, session: DbSession) -> Response:
    """Judge every rule over the last ``days`` days now."""
    form = await request.form()
    try:
        days = max(1, min(MAX_EVALUATE_DAYS, int(str(form.get("days") or 1))))
    except ValueError:
        days = 1
    cfg = request.app.state.cfg
    lang = _lang(request)

    def work() -> Response:
        today = service.shop_today(cfg)
        since = today - timedelta(days=days)
        try:
            with backend(request) as con:
                service.evaluate_shop(con, cfg, {"since": since.isoformat(), "today": today.isoformat(),
                                                 "lang": lang})
        except GrowthwheelError as exc:
            return _back("", error=exc.message)
        return _back("evaluated")

    return await run_in_threadpool(work)
