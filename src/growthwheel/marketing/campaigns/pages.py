"""Console pages of campaigns and influencers.

* ``GET /marketing/campaigns`` — every campaign with its days, targets, budget and overall pace
  (GMV as of the last day with a paid order);
* ``GET /marketing/campaigns/{id}`` — one campaign: pacing per phase (target, expected to date,
  actual, pace, status) and the three-axis review (customers, products, operations), with a link
  to the self-contained HTML report (``/api/v1/marketing/campaigns/{id}/report.html``);
* ``GET /marketing/influencers`` — the registry and what each influencer brought over a period
  (ranking by ROI, revenue, orders or new customers) and the tier pyramid.

The figures are those of :mod:`.review` and :mod:`growthwheel.marketing.influencers.service`, the
same as the API and the CLI. Visible strings come from ``i18n/<lang>/campaigns.json``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from growthwheel.accounts.service import audit
from growthwheel.api.deps import DbSession, PageUser, PageWriter
from growthwheel.errors import GrowthwheelError
from growthwheel.kit.money import currency_exponent
from growthwheel.marketing.campaigns import report, review, service
from growthwheel.marketing.campaigns.schemas import CampaignIn, InfluencerIn
from growthwheel.marketing.influencers import service as influencers
from growthwheel.web.i18n import format_money, format_ratio, k
from growthwheel.web.pages import backend, page_translator, render, shop_of

router = APIRouter(include_in_schema=False)

PHASE_KEYS = {"warm_up": k("campaigns.phase.warm_up"), "peak": k("campaigns.phase.peak"),
              "after_glow": k("campaigns.phase.after_glow")}
STATUS_KEYS = {
    "not_started": k("campaigns.status.not_started"), "no_target": k("campaigns.status.no_target"),
    "behind": k("campaigns.status.behind"), "on_track": k("campaigns.status.on_track"),
    "ahead": k("campaigns.status.ahead"), "met": k("campaigns.status.met"),
    "missed": k("campaigns.status.missed"),
}
TIER_KEYS = {"head": k("campaigns.tier.head"), "waist": k("campaigns.tier.waist"),
             "tail": k("campaigns.tier.tail"), "koc": k("campaigns.tier.koc")}
LINK_KEYS = {"promotion": k("campaigns.link.promotion"), "coupon_batch": k("campaigns.link.coupon_batch"),
             "segment": k("campaigns.link.segment"), "journey": k("campaigns.link.journey"),
             "influencer": k("campaigns.link.influencer")}
RANK_KEYS = {"roi": k("campaigns.rank.roi"), "revenue": k("campaigns.rank.revenue"),
             "orders": k("campaigns.rank.orders"), "new_customers": k("campaigns.rank.new_customers")}
DEFAULT_DAYS = 30


class _Money:
    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.exponent = currency_exponent(currency)

    def __call__(self, minor: float | None) -> str:
        return "–" if minor is None else format_money(round(minor) / 10**self.exponent, self.currency)


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def pct(value: float | None) -> str:
    """A share as ``12.3%`` (``–`` when unknown)."""
    return format_ratio(value, percent=True)


@router.get("/marketing/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """Every campaign with its overall GMV pace."""
    money = _Money(shop_of(request).currency)
    rows = []
    campaigns = service.list_all(session)
    with backend(request) as con:
        for c in campaigns:
            phases = service.plan_phases(service.phases(session, c))
            try:
                pace = review.pace(con, c, phases)
                status, ratio = pace["gmv"]["status"], pace["gmv"]["pace"]
                actual = pace["gmv"]["actual"]
            except GrowthwheelError:
                status, ratio, actual = "no_target", None, None
            rows.append({"id": c.id, "name": c.name, "from": phases[0].starts_on if phases else None,
                         "to": phases[-1].ends_on if phases else None, "target": money(c.target_gmv),
                         "budget": money(sum((c.budget or {}).values())), "gmv": money(actual),
                         "pace": format_ratio(ratio, percent=True), "status": status})
    return render(request, "marketing/campaigns.html.j2", {"rows": rows, "statuses": STATUS_KEYS,
                                                           "can_write": "write" in user.scopes}, user=user)


CAMPAIGN_ERROR_KEYS = {
    "name": k("campaigns.new.error.name"), "targets": k("campaigns.new.error.targets"),
    "budget": k("campaigns.new.error.budget"), "phases": k("campaigns.new.error.phases"),
    "exists": k("campaigns.new.error.exists"),
}
PHASE_KINDS = ("warm_up", "peak", "after_glow")


def _campaign_form(form: dict[str, str], exponent: int) -> CampaignIn:
    """The new-campaign form as :class:`CampaignIn`: money in major units, the budget one
    ``channel = amount`` a line, the three phases' first and last days (a blank phase is left out).
    Raises ``ValueError`` naming the group at fault (name, targets, budget, phases)."""
    def minor(text: str, group: str) -> int | None:
        if not text.strip():
            return None
        try:
            value = Decimal(text.strip().replace(",", "")) * 10**exponent
        except InvalidOperation:
            raise ValueError(group) from None
        if value != value.to_integral_value() or value < 0:
            raise ValueError(group)
        return int(value)

    budget: dict[str, int] = {}
    for line in form.get("budget", "").splitlines():
        if not line.strip():
            continue
        channel, sep, amount = line.partition("=")
        got = minor(amount, "budget") if sep else None
        if got is None or not channel.strip():
            raise ValueError("budget")
        budget[channel.strip()] = got
    phases = []
    for kind in PHASE_KINDS:
        lo, hi = form.get(f"{kind}_from", "").strip(), form.get(f"{kind}_to", "").strip()
        if lo or hi:
            phases.append({"kind": kind, "name": form.get(f"{kind}_name", "").strip() or kind,
                           "starts_on": lo, "ends_on": hi})
    try:
        new_buyers = int(form["target_new_buyers"]) if form.get("target_new_buyers", "").strip() else None
        roi = float(form["target_roi"]) if form.get("target_roi", "").strip() else None
    except ValueError:
        raise ValueError("targets") from None
    body = {"name": form.get("name", ""), "target_gmv": minor(form.get("target_gmv", ""), "targets"),
            "target_new_buyers": new_buyers, "target_roi": roi, "budget": budget,
            "profile": form.get("profile") or "linear", "phases": phases}
    try:
        return CampaignIn.model_validate(body)
    except ValidationError as exc:
        loc = exc.errors()[0]["loc"]
        head = str(loc[0]) if loc else "phases"
        groups = {"name": "name", "budget": "budget", "target_gmv": "targets", "profile": "phases",
                  "target_new_buyers": "targets", "target_roi": "targets"}
        raise ValueError(groups.get(head, "phases")) from None


@router.get("/marketing/campaigns/new", response_class=HTMLResponse)
def new_campaign_page(request: Request, user: PageUser) -> HTMLResponse:
    """The form of a new campaign (warm-up, peak and after-glow rows, targets, budget)."""
    return render(request, "marketing/campaign_new.html.j2", {"form": {}, "error_key": None,
                                                              "phase_keys": PHASE_KEYS}, user=user)


@router.post("/marketing/campaigns", response_class=HTMLResponse)
async def create_campaign(request: Request, user: PageWriter, session: DbSession) -> Response:
    """Save the new campaign and open its page; the form again, the group at fault named, on error."""
    raw = await request.form()
    form = {key: str(value) for key, value in raw.items() if isinstance(value, str)}
    exponent = currency_exponent(shop_of(request).currency)

    def work() -> Response:
        try:
            data = _campaign_form(form, exponent)
        except ValueError as exc:
            group = str(exc)
        else:
            try:
                campaign = service.create(session, data, actor=user.name)
            except GrowthwheelError:
                group = "exists"
            else:
                audit(session, user, "marketing.campaign_create", f"campaign:{campaign.id}",
                      {"name": campaign.name})
                return RedirectResponse(f"/marketing/campaigns/{campaign.id}", status_code=303)
        return render(request, "marketing/campaign_new.html.j2", {
            "form": form, "error_key": CAMPAIGN_ERROR_KEYS.get(group, CAMPAIGN_ERROR_KEYS["phases"]),
            "phase_keys": PHASE_KEYS}, user=user, status=422)

    return await run_in_threadpool(work)


@router.get("/marketing/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(campaign_id: str, request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """One campaign: pacing per phase and the three-axis review."""
    money = _Money(shop_of(request).currency)
    error_key: str | None = None
    q = request.query_params
    as_of = _day(q.get("as_of"))
    if q.get("as_of") and as_of is None:
        error_key = k("campaigns.error.date")
    try:
        campaign = service.get(session, campaign_id)
    except GrowthwheelError:
        return render(request, "marketing/campaign.html.j2", {"campaign": None, "error_key":
                      k("campaigns.error.not_found")}, user=user, status=404)
    phases = service.plan_phases(service.phases(session, campaign))
    inputs = service.review_inputs(session, campaign)
    t = page_translator(request)
    with backend(request) as con:
        pace = review.pace(con, campaign, phases, as_of=as_of)
        body = review.review(con, campaign, phases, as_of=as_of, **inputs)
    phase_rows = [{
        "kind": p["kind"], "kind_key": PHASE_KEYS[p["kind"]], "name": p["name"],
        "days": f"{p['starts_on']} – {p['ends_on']}", "elapsed": f"{p['days_elapsed']}/{p['days']}",
        "share": pct(p["share"]), "target": money(p["gmv"]["target"]),
        "expected": money(p["gmv"]["expected"]),
        "actual": money(p["gmv"]["actual"]), "pace": pct(p["gmv"]["pace"]),
        "projected": money(p["gmv"]["projected"]), "new_buyers": f"{p['new_buyers']['actual']:,.0f}",
        "status": p["gmv"]["status"],
    } for p in pace["phases"]]
    c, pr, o = body["customers"], body["products"], body["operations"]
    axes = {
        "customers": [(k("campaigns.fig.buyers"), f"{c['buyers']:,}"),
                      (k("campaigns.fig.new_buyers"), f"{c['new_buyers']:,}"),
                      (k("campaigns.fig.new_share"), pct(c["new_share"])),
                      (k("campaigns.fig.repurchase"), pct(c["repurchase_rate"])),
                      (k("campaigns.fig.acquired_value"), money(c["acquired_value_per_customer"]))],
        "products": [(k("campaigns.fig.hero_contribution"), pct(pr["hero_contribution"])),
                     (k("campaigns.fig.skus_sold"), f"{pr['skus_sold']:,} / {pr['catalogue_skus']:,}"),
                     (k("campaigns.fig.active_sku_rate"), pct(pr["active_sku_rate"])),
                     (k("campaigns.fig.sell_through"), pct(pr["sell_through"]))],
        "operations": [(k("campaigns.fig.gmv"), money(o["gmv"])),
                       (k("campaigns.fig.orders"), f"{o['orders']:,}"),
                       (k("campaigns.fig.ad_spend"), money(o["ad_spend"])),
                       (k("campaigns.fig.influencer_cost"), money(o["influencer_cost"])),
                       (k("campaigns.fig.roi"), format_ratio(o["roi"], percent=False)),
                       (k("campaigns.fig.cac"), money(o["cac"])),
                       (k("campaigns.fig.cost_per_order"), money(o["cost_per_order"]))],
    }
    axis_keys = {"customers": k("campaigns.axis.customers"), "products": k("campaigns.axis.products"),
                 "operations": k("campaigns.axis.operations")}
    heroes = [{"sku": h["sku"], "name": h["name"] or "", "revenue": money(h["revenue"]),
               "share": pct(h["share"]), "sell_through": pct(h["sell_through"])}
              for h in pr["heroes"]]
    budget = [{"channel": b["channel"], "budget": money(b["budget"]), "spend": money(b["spend"]),
               "used": pct(b["used"])} for b in o["budget"]]
    promos = [{"name": x["name"], "orders": f"{x['orders']:,}", "revenue": money(x["revenue"]),
               "discount": money(x["discount"])} for x in o["promotions"]]
    batches = [{"name": x["name"], "issued": f"{x['issued']:,}", "redeemed": f"{x['redeemed']:,}",
                "discount": money(x["discount"])} for x in o["coupon_batches"]]
    targets = [(k("campaigns.fig.gmv"), money(campaign.target_gmv), pct(body["attainment"]["gmv"])),
               (k("campaigns.fig.new_buyers"), "–" if campaign.target_new_buyers is None
                else f"{campaign.target_new_buyers:,}", pct(body["attainment"]["new_buyers"])),
               (k("campaigns.fig.roi"), format_ratio(campaign.target_roi, percent=False),
                pct(body["attainment"]["roi"]))]
    days, actual, expected = report.cumulative(pace)
    exponent = money.exponent
    chart = {"days": days, "actual": [v / 10**exponent for v in actual],
             "expected": [None if v is None else v / 10**exponent for v in expected],
             "names": [t(k("campaigns.chart.actual")), t(k("campaigns.chart.expected"))]}
    return render(request, "marketing/campaign.html.j2", {
        "chart": chart, "promotions": promos, "coupon_batches": batches,
        "campaign": campaign, "pace": pace, "review": body, "phases": phase_rows, "axes": axes,
        "axis_keys": axis_keys, "heroes": heroes, "budget": budget, "targets": targets,
        "statuses": STATUS_KEYS, "overall": pace["gmv"]["status"], "error_key": error_key,
        "links": service.links(session, campaign), "link_keys": LINK_KEYS,
    }, user=user)


FORM_FIELDS = ("code", "name", "platform", "followers", "cost_per_deal", "deals", "landing_url")
FORM_ERROR_KEYS = {
    "code": k("campaigns.form.error.code"), "name": k("campaigns.form.error.name"),
    "platform": k("campaigns.form.error.platform"), "followers": k("campaigns.form.error.followers"),
    "cost_per_deal": k("campaigns.form.error.cost_per_deal"), "deals": k("campaigns.form.error.deals"),
    "landing_url": k("campaigns.form.error.landing_url"), "exists": k("campaigns.form.error.exists"),
}


def _influencer_form(form: dict[str, str], exponent: int) -> InfluencerIn:
    """The registration form as :class:`InfluencerIn` (the fee is typed in major units)."""
    values: dict[str, object] = {f: form.get(f, "").strip() for f in FORM_FIELDS}
    try:
        fee = Decimal(str(values["cost_per_deal"])) * 10**exponent
    except InvalidOperation:
        raise ValueError("cost_per_deal") from None
    if fee != fee.to_integral_value() or fee < 0:
        raise ValueError("cost_per_deal")
    values["cost_per_deal"] = int(fee)
    values["deals"] = values["deals"] or 1
    values["landing_url"] = values["landing_url"] or None
    return InfluencerIn.model_validate(values)


@router.post("/marketing/influencers", response_class=HTMLResponse)
async def add_influencer(request: Request, user: PageWriter, session: DbSession) -> Response:
    """Register an influencer from the page's form; the page again with the field named on error."""
    raw = await request.form()
    form = {f: str(raw.get(f) or "") for f in FORM_FIELDS}
    exponent = currency_exponent(shop_of(request).currency)

    def work() -> Response:
        field: str | None = None
        try:
            data = _influencer_form(form, exponent)
        except ValidationError as exc:
            field = str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else "code"
        except ValueError as exc:
            field = str(exc)
        if field is None:
            try:
                inf = influencers.create(session, data, actor=user.name)
            except GrowthwheelError:
                field = "exists"
            else:
                audit(session, user, "marketing.influencer_create", f"influencer:{inf.id}",
                      {"code": inf.code})
                return RedirectResponse("/marketing/influencers?done=added", status_code=303)
        return influencers_view(request, user, session, form=form,
                                form_error=FORM_ERROR_KEYS.get(field, FORM_ERROR_KEYS["code"]), status=422)

    return await run_in_threadpool(work)


@router.get("/marketing/influencers", response_class=HTMLResponse)
def influencers_page(request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """The registry, the ranking and the pyramid over a period (default: the last 30 days of orders)."""
    return influencers_view(request, user, session)


def influencers_view(request: Request, user: PageUser, session: DbSession, *,
                     form: dict[str, str] | None = None, form_error: str | None = None,
                     status: int = 200) -> HTMLResponse:
    """The influencer page (with the registration form as typed, and its error, after a failed add)."""
    money = _Money(shop_of(request).currency)
    q = request.query_params
    error_key: str | None = None
    start, end = _day(q.get("from")), _day(q.get("to"))
    if (q.get("from") and start is None) or (q.get("to") and end is None):
        error_key = k("campaigns.error.date")
    rank_by = q.get("rank_by") or "roi"
    if rank_by not in RANK_KEYS:
        rank_by, error_key = "roi", k("campaigns.error.rank_by")
    infs = influencers.list_all(session)
    with backend(request) as con:
        if end is None:
            end = review.last_order_day(con) or datetime.now(UTC).date()
        if start is None or start > end:
            if start is not None:
                error_key = k("campaigns.error.range")
            start = end - timedelta(days=DEFAULT_DAYS - 1)
        body = influencers.report(con, infs, start=start, end=end, rank_by=rank_by)
    links = {i.code: influencers.utm_link(i) for i in infs}
    rows = [{**r, "tier_key": TIER_KEYS[r["tier"]], "cost_text": money(r["cost"]),
             "revenue_text": money(r["revenue"]), "roi_text": format_ratio(r["roi"], percent=False),
             "cac_text": money(r["cac"]), "link": links.get(r["code"])} for r in body["rows"]]
    pyramid = [{**t, "tier_key": TIER_KEYS[t["tier"]], "cost_text": money(t["cost"]),
                "revenue_text": money(t["revenue"]), "roi_text": format_ratio(t["roi"], percent=False)}
               for t in body["pyramid"]]
    return render(request, "marketing/influencers.html.j2", {
        "rows": rows, "pyramid": pyramid, "start": start.isoformat(), "end": end.isoformat(),
        "rank_by": rank_by, "ranks": RANK_KEYS, "error_key": error_key,
        "form": form or {}, "form_error": form_error, "can_write": "write" in user.scopes,
        "added": q.get("done") == "added",
    }, user=user, status=status)
