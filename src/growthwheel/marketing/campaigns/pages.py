"""Console pages of campaigns and influencers.

* ``GET /marketing/campaigns`` — every campaign with its days, targets, budget and overall pace
  (GMV as of the last day with a paid order);
* ``GET /marketing/campaigns/{id}`` — one campaign: pacing per phase (target, expected to date,
  actual, pace, status) and the three-axis review (customers, products, operations), with a link
  to the self-contained HTML report (``/api/v1/marketing/campaigns/{id}/report.html``);
* ``GET /marketing/influencers`` — the registry and what each influencer brought over a period
  (ranking by ROI, revenue, orders or new customers) and the tier pyramid;
* editing and deleting (writers only; an analyst sees no buttons and gets 403): ``…/{id}/edit``
  (the create form, filled in; errors next to the field) and ``…/{id}/delete`` (a confirmation
  page, then the POST) for campaigns and influencers. A campaign is deleted (phases and
  attachments go with it; nothing else refers to a campaign). An influencer attached to a
  campaign is not: its cost is part of that campaign's review and the dangling attachment would
  stop the campaign from being saved again, so the confirmation names the campaigns to detach it
  from first (the campaign's edit form has a keep box per attachment).

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

from growthwheel.accounts.service import PermissionDeniedError, audit
from growthwheel.api.deps import DbSession, PageUser, PageWriter
from growthwheel.errors import GrowthwheelError
from growthwheel.kit.money import currency_exponent
from growthwheel.marketing.campaigns import report, review, service
from growthwheel.marketing.campaigns.models import Campaign
from growthwheel.marketing.campaigns.schemas import CampaignIn, InfluencerIn
from growthwheel.marketing.influencers import service as influencers
from growthwheel.marketing.influencers.models import Influencer
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
    return render(request, "marketing/campaigns.html.j2", {
        "rows": rows, "statuses": STATUS_KEYS, "can_write": "write" in user.scopes,
        "deleted": request.query_params.get("done") == "deleted"}, user=user)


CAMPAIGN_ERROR_KEYS = {
    "name": k("campaigns.new.error.name"), "targets": k("campaigns.new.error.targets"),
    "budget": k("campaigns.new.error.budget"), "phases": k("campaigns.new.error.phases"),
    "exists": k("campaigns.new.error.exists"), "links": k("campaigns.edit.error.links"),
}
PHASE_KINDS = ("warm_up", "peak", "after_glow")


def _campaign_form(form: dict[str, str], exponent: int, extra: dict[str, object] | None = None) -> CampaignIn:
    """The campaign form as :class:`CampaignIn`: money in major units, the budget one
    ``channel = amount`` a line, the three phases' first and last days (a blank phase is left out;
    a hidden ``<kind>_share`` kept). ``extra`` (an edit: the description, the attachments kept,
    phases the form cannot show) goes in as it is. Raises ``ValueError`` naming the group at fault
    (name, targets, budget, phases)."""
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
            share = form.get(f"{kind}_share", "").strip()
            phases.append({"kind": kind, "name": form.get(f"{kind}_name", "").strip() or kind,
                           "starts_on": lo, "ends_on": hi, "share": share or None})
    try:
        new_buyers = int(form["target_new_buyers"]) if form.get("target_new_buyers", "").strip() else None
        roi = float(form["target_roi"]) if form.get("target_roi", "").strip() else None
    except ValueError:
        raise ValueError("targets") from None
    body = {"name": form.get("name", ""), "target_gmv": minor(form.get("target_gmv", ""), "targets"),
            "target_new_buyers": new_buyers, "target_roi": roi, "budget": budget,
            "profile": form.get("profile") or "linear", "phases": phases, **(extra or {})}
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
    return render(request, "marketing/campaign_new.html.j2", {"form": {}, "errors": {},
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
            "form": form, "errors": _group_error(group), "phase_keys": PHASE_KEYS}, user=user, status=422)

    return await run_in_threadpool(work)


@router.get("/marketing/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(campaign_id: str, request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """One campaign: pacing per phase and the three-axis review."""
    money = _Money(shop_of(request).currency)
    error_key: str | None = None
    q = request.query_params
    saved = q.get("done") == "saved"
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
        "can_write": "write" in user.scopes, "saved": saved,
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
        return influencers_view(request, user, session, form=form, form_errors=_field_error(field),
                                status=422)

    return await run_in_threadpool(work)


@router.get("/marketing/influencers", response_class=HTMLResponse)
def influencers_page(request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """The registry, the ranking and the pyramid over a period (default: the last 30 days of orders)."""
    return influencers_view(request, user, session)


def influencers_view(request: Request, user: PageUser, session: DbSession, *,
                     form: dict[str, str] | None = None, form_errors: dict[str, str] | None = None,
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
        "form": form or {}, "form_errors": form_errors or {}, "can_write": "write" in user.scopes,
        "done_key": DONE_KEYS.get(q.get("done") or ""),
    }, user=user, status=status)


# ---- editing and deleting (writers only) ------------------------------------------------------

DONE_KEYS = {"added": k("campaigns.form.added"), "saved": k("campaigns.form.saved"),
             "deleted": k("campaigns.form.deleted")}


def _group_error(group: str) -> dict[str, str]:
    """The campaign form's error as ``{group: message key}`` (a taken name shows by the name)."""
    where = "name" if group == "exists" else group if group in CAMPAIGN_ERROR_KEYS else "phases"
    return {where: CAMPAIGN_ERROR_KEYS.get(group, CAMPAIGN_ERROR_KEYS["phases"])}


def _field_error(field: str | None) -> dict[str, str]:
    """The influencer form's error as ``{field: message key}`` (a taken code shows by the code)."""
    field = field or "code"
    where = "code" if field == "exists" else field if field in FORM_FIELDS else "code"
    return {where: FORM_ERROR_KEYS.get(field, FORM_ERROR_KEYS["code"])}


def _writer(user: PageUser) -> None:
    if "write" not in user.scopes:
        raise PermissionDeniedError("analysts can read this page but not change it")


def _major(minor: int | None, exponent: int) -> str:
    """Minor units as the plain amount a form field takes (``2000.00``; blank for none)."""
    return "" if minor is None else f"{Decimal(minor).scaleb(-exponent):f}"


def _phases_fit(rows: list[object]) -> bool:
    """Whether the form's three rows (one warm-up, one peak, one after-glow, in order) can show
    the campaign's phases; other shapes (set through the API) are kept as they are."""
    kinds = [str(getattr(p, "kind", "")) for p in rows]
    return len(set(kinds)) == len(kinds) and kinds == [x for x in PHASE_KINDS if x in kinds]


def _campaign_values(session: DbSession, campaign: Campaign, exponent: int) -> dict[str, str]:
    form = {"name": campaign.name, "target_gmv": _major(campaign.target_gmv, exponent),
            "target_new_buyers": "" if campaign.target_new_buyers is None
            else str(campaign.target_new_buyers),
            "target_roi": "" if campaign.target_roi is None else f"{campaign.target_roi:g}",
            "profile": campaign.profile,
            "budget": "".join(f"{ch} = {_major(v, exponent)}\n" for ch, v in (campaign.budget or {}).items())}
    for p in service.phases(session, campaign):
        form.update({f"{p.kind}_name": p.name, f"{p.kind}_from": p.starts_on.isoformat(),
                     f"{p.kind}_to": p.ends_on.isoformat(),
                     f"{p.kind}_share": "" if p.share is None else f"{p.share:g}"})
    return form


def _attachments(session: DbSession, campaign: Campaign) -> list[dict[str, str]]:
    """The campaign's attachments with a readable label each (``kind:ref_id`` is the keep box)."""
    out = []
    for link in service.links(session, campaign):
        row = session.get(service._link_model(link.kind), link.ref_id)
        label = getattr(row, "name", None) or link.ref_id
        if link.kind == "influencer" and row is not None:
            label = f"{row.name} ({row.code})"
        out.append({"kind": link.kind, "kind_key": LINK_KEYS[link.kind], "ref_id": link.ref_id,
                    "label": str(label), "value": f"{link.kind}:{link.ref_id}"})
    return out


def _edit_view(request: Request, user: PageUser, session: DbSession, campaign: Campaign, *,
               form: dict[str, str], kept: set[str] | None, errors: dict[str, str],
               status: int = 200) -> HTMLResponse:
    rows = service.phases(session, campaign)
    attachments = _attachments(session, campaign)
    for a in attachments:
        a["checked"] = "1" if kept is None or a["value"] in kept else ""
    locked = [] if _phases_fit(list(rows)) else [
        {"kind_key": PHASE_KEYS[p.kind], "name": p.name, "days": f"{p.starts_on} – {p.ends_on}"}
        for p in rows]
    return render(request, "marketing/campaign_new.html.j2", {
        "form": form, "errors": errors, "phase_keys": PHASE_KEYS, "campaign": campaign,
        "attachments": attachments, "locked_phases": locked}, user=user, status=status)


def _missing_campaign(request: Request, user: PageUser) -> HTMLResponse:
    return render(request, "marketing/campaign.html.j2", {"campaign": None, "error_key":
                  k("campaigns.error.not_found")}, user=user, status=404)


@router.get("/marketing/campaigns/{campaign_id}/edit", response_class=HTMLResponse)
def edit_campaign_page(campaign_id: str, request: Request, user: PageUser,
                       session: DbSession) -> HTMLResponse:
    """The campaign's form, filled in: name, targets, pace, phases, budget, attachments to keep."""
    _writer(user)
    try:
        campaign = service.get(session, campaign_id)
    except GrowthwheelError:
        return _missing_campaign(request, user)
    exponent = currency_exponent(shop_of(request).currency)
    return _edit_view(request, user, session, campaign, form=_campaign_values(session, campaign, exponent),
                      kept=None, errors={})


@router.post("/marketing/campaigns/{campaign_id}/edit", response_class=HTMLResponse)
async def edit_campaign(campaign_id: str, request: Request, user: PageWriter, session: DbSession) -> Response:
    """Save the edited campaign (its description and the attachments left ticked are kept; phases
    the form cannot show are kept as they are) and open its page; the form again on error."""
    raw = await request.form()
    form = {key: str(value) for key, value in raw.items() if isinstance(value, str)}
    kept = {str(v) for v in raw.getlist("keep_link")}
    exponent = currency_exponent(shop_of(request).currency)

    def work() -> Response:
        try:
            campaign = service.get(session, campaign_id)
        except GrowthwheelError:
            return _missing_campaign(request, user)
        rows = service.phases(session, campaign)
        extra: dict[str, object] = {
            "description": campaign.description,
            "links": [{"kind": x.kind, "ref_id": x.ref_id} for x in service.links(session, campaign)
                      if f"{x.kind}:{x.ref_id}" in kept]}
        if not _phases_fit(list(rows)):
            extra["phases"] = [{"kind": p.kind, "name": p.name, "starts_on": p.starts_on.isoformat(),
                                "ends_on": p.ends_on.isoformat(), "share": p.share} for p in rows]
        try:
            data = _campaign_form(form, exponent, extra)
        except ValueError as exc:
            group = str(exc)
        else:
            try:
                service.replace(session, campaign.id, data)
            except GrowthwheelError as exc:
                group = "exists" if exc.status == 409 else "links"
            else:
                audit(session, user, "marketing.campaign_update", f"campaign:{campaign.id}",
                      {"name": campaign.name})
                return RedirectResponse(f"/marketing/campaigns/{campaign.id}?done=saved", status_code=303)
        session.rollback()
        campaign = service.get(session, campaign_id)
        return _edit_view(request, user, session, campaign, form=form, kept=kept,
                          errors=_group_error(group), status=422)

    return await run_in_threadpool(work)


def _confirm(request: Request, user: PageUser, *, title: str, body: str, action: str, cancel: str,
             confirm_key: str, blocked: str | None = None, status: int = 200) -> HTMLResponse:
    return render(request, "marketing/confirm_delete.html.j2", {
        "title": title, "body": body, "action": action, "cancel": cancel, "confirm_key": confirm_key,
        "blocked": blocked}, user=user, status=status)


@router.get("/marketing/campaigns/{campaign_id}/delete", response_class=HTMLResponse)
def delete_campaign_page(campaign_id: str, request: Request, user: PageUser,
                         session: DbSession) -> HTMLResponse:
    """Ask before deleting: what goes (phases, targets, budget, attachments) and what stays."""
    _writer(user)
    try:
        campaign = service.get(session, campaign_id)
    except GrowthwheelError:
        return _missing_campaign(request, user)
    t = page_translator(request)
    return _confirm(request, user, title=t(k("campaigns.delete.title"), name=campaign.name),
                    body=t(k("campaigns.delete.body")), action=f"/marketing/campaigns/{campaign.id}/delete",
                    cancel=f"/marketing/campaigns/{campaign.id}", confirm_key=k("campaigns.delete.confirm"))


@router.post("/marketing/campaigns/{campaign_id}/delete", response_class=HTMLResponse)
def delete_campaign(campaign_id: str, request: Request, user: PageWriter, session: DbSession) -> Response:
    """Delete the campaign with its phases and attachments; back to the list."""
    try:
        campaign = service.get(session, campaign_id)
    except GrowthwheelError:
        return _missing_campaign(request, user)
    name, cid = campaign.name, campaign.id
    service.delete(session, cid)
    audit(session, user, "marketing.campaign_delete", f"campaign:{cid}", {"name": name})
    return RedirectResponse("/marketing/campaigns?done=deleted", status_code=303)


def _influencer_values(inf: Influencer, exponent: int) -> dict[str, str]:
    return {"code": inf.code, "name": inf.name, "platform": inf.platform, "followers": str(inf.followers),
            "cost_per_deal": _major(inf.cost_per_deal, exponent), "deals": str(inf.deals),
            "landing_url": inf.landing_url or ""}


def _influencer_edit_view(request: Request, user: PageUser, inf: Influencer, *,
                          form: dict[str, str], errors: dict[str, str], status: int = 200) -> HTMLResponse:
    return render(request, "marketing/influencer_edit.html.j2", {
        "influencer": inf, "form": form, "form_errors": errors}, user=user, status=status)


def _missing_influencer(request: Request, user: PageUser) -> HTMLResponse:
    return render(request, "marketing/influencer_edit.html.j2", {
        "influencer": None, "error_key": k("campaigns.influencer.not_found")}, user=user, status=404)


@router.get("/marketing/influencers/{influencer_id}/edit", response_class=HTMLResponse)
def edit_influencer_page(influencer_id: str, request: Request, user: PageUser,
                         session: DbSession) -> HTMLResponse:
    """The influencer's registration form, filled in."""
    _writer(user)
    try:
        inf = influencers.get(session, influencer_id)
    except GrowthwheelError:
        return _missing_influencer(request, user)
    exponent = currency_exponent(shop_of(request).currency)
    return _influencer_edit_view(request, user, inf, form=_influencer_values(inf, exponent), errors={})


@router.post("/marketing/influencers/{influencer_id}/edit", response_class=HTMLResponse)
async def edit_influencer(influencer_id: str, request: Request, user: PageWriter,
                          session: DbSession) -> Response:
    """Save the edited influencer (a new follower count re-tiers at once); the form again, the
    field at fault named next to it, on error."""
    raw = await request.form()
    form = {f: str(raw.get(f) or "") for f in FORM_FIELDS}
    exponent = currency_exponent(shop_of(request).currency)

    def work() -> Response:
        try:
            inf = influencers.get(session, influencer_id)
        except GrowthwheelError:
            return _missing_influencer(request, user)
        field: str | None = None
        try:
            data = _influencer_form(form, exponent)
        except ValidationError as exc:
            field = str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else "code"
        except ValueError as exc:
            field = str(exc)
        if field is None:
            try:
                influencers.update(session, inf.id, data)
            except GrowthwheelError:
                field = "exists"
                session.rollback()
                inf = influencers.get(session, influencer_id)
            else:
                audit(session, user, "marketing.influencer_update", f"influencer:{inf.id}",
                      {"code": inf.code})
                return RedirectResponse("/marketing/influencers?done=saved", status_code=303)
        return _influencer_edit_view(request, user, inf, form=form, errors=_field_error(field), status=422)

    return await run_in_threadpool(work)


@router.get("/marketing/influencers/{influencer_id}/delete", response_class=HTMLResponse)
def delete_influencer_page(influencer_id: str, request: Request, user: PageUser,
                           session: DbSession) -> HTMLResponse:
    """Ask before removing; an influencer attached to campaigns cannot go (the campaigns named)."""
    _writer(user)
    try:
        inf = influencers.get(session, influencer_id)
    except GrowthwheelError:
        return _missing_influencer(request, user)
    t = page_translator(request)
    names = influencers.campaigns_of(session, inf)
    blocked = t(k("campaigns.influencer.in_use"), names="、".join(names)) if names else None
    return _confirm(request, user, title=t(k("campaigns.influencer.delete_title"), code=inf.code),
                    body=t(k("campaigns.influencer.delete_body")),
                    action=f"/marketing/influencers/{inf.id}/delete", cancel="/marketing/influencers",
                    confirm_key=k("campaigns.influencer.delete_confirm"), blocked=blocked)


@router.post("/marketing/influencers/{influencer_id}/delete", response_class=HTMLResponse)
def delete_influencer(influencer_id: str, request: Request, user: PageWriter, session: DbSession) -> Response:
    """Remove the influencer; refused (409, the campaigns named) while a campaign has it attached."""
    try:
        inf = influencers.get(session, influencer_id)
    except GrowthwheelError:
        return _missing_influencer(request, user)
    names = influencers.campaigns_of(session, inf)
    if names:
        t = page_translator(request)
        return _confirm(request, user, title=t(k("campaigns.influencer.delete_title"), code=inf.code),
                        body=t(k("campaigns.influencer.delete_body")),
                        action=f"/marketing/influencers/{inf.id}/delete", cancel="/marketing/influencers",
                        confirm_key=k("campaigns.influencer.delete_confirm"),
                        blocked=t(k("campaigns.influencer.in_use"), names="、".join(names)), status=409)
    code, iid = inf.code, inf.id
    influencers.delete(session, iid)
    audit(session, user, "marketing.influencer_delete", f"influencer:{iid}", {"code": code})
    return RedirectResponse("/marketing/influencers?done=deleted", status_code=303)
