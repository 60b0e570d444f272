"""``growthwheel marketing campaigns …`` and ``growthwheel marketing influencers …``.

* ``campaigns create FILE.json`` / ``replace KEY FILE.json`` — a campaign as the API takes it
  (goals, budget by channel in minor units, phases, attachments); ``list``; ``show KEY``;
  ``delete KEY``;
* ``campaigns pacing KEY [--as-of D]`` — GMV and new buyers per phase against target;
* ``campaigns review KEY [--as-of D] [--out FILE.html]`` — the three-axis review (customers,
  products, operations), or the self-contained HTML report with ``--out``;
* ``influencers add --code C --name N --platform P --followers F --cost-per-deal AMOUNT`` (major
  units), ``list``, ``remove KEY``, ``report --from D --to D`` (per influencer and per tier).

Bad input prints one line naming the option or field and exits 1.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from growthwheel.cli.common import (
    Column,
    cli_actor,
    cli_errors,
    money_text,
    out,
    parse_date,
    print_json,
    print_table,
    store_session,
    warehouse_reader,
)
from growthwheel.cli.common import settings as current_settings
from growthwheel.errors import InvalidArgumentError

campaigns_app = typer.Typer(help="Campaigns with phases: goals, budgets, pacing and the review.",
                            no_args_is_help=True)
influencers_app = typer.Typer(help="Influencers (KOL/KOC): registry, tiers and what each one brought.",
                              no_args_is_help=True)


def _exponent() -> int:
    from growthwheel.kit.money import currency_exponent

    return currency_exponent(current_settings().shop().currency)


def _money(value: float | None, exponent: int) -> str:
    return "–" if value is None else money_text(value / 10**exponent, exponent)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _read_campaign(file: Path) -> Any:
    from pydantic import ValidationError

    from growthwheel.marketing.campaigns.schemas import CampaignIn

    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgumentError(f"FILE: cannot read {file} as JSON ({exc})") from None
    try:
        return CampaignIn.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidArgumentError(f"{where}: {first['msg']}") from None


@campaigns_app.command("create")
def create(file: Annotated[Path, typer.Argument(help="Campaign JSON (the API's request body)")],
           as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False) -> None:
    """Save a new campaign with its phases and attachments."""
    from growthwheel.marketing.campaigns import service

    with cli_errors():
        data = _read_campaign(file)
        with store_session() as session:
            body = service.campaign_out(session, service.create(session, data, actor=cli_actor()))
    if as_json:
        print_json(body)
        return
    out.print(f"campaign {body['name']} ({body['id']}): {body['starts_on']} – {body['ends_on']}, "
              f"{len(body['phases'])} phases")


@campaigns_app.command("replace")
def replace(key: Annotated[str, typer.Argument(help="Campaign id or name")],
            file: Annotated[Path, typer.Argument(help="Campaign JSON")]) -> None:
    """Replace a campaign's goals, budget, phases and attachments."""
    from growthwheel.marketing.campaigns import service

    with cli_errors():
        data = _read_campaign(file)
        with store_session() as session:
            campaign = service.replace(session, key, data)
            out.print(f"campaign {campaign.name} replaced")


@campaigns_app.command("list")
def list_campaigns(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every campaign, newest first."""
    from growthwheel.marketing.campaigns import service

    with cli_errors(), store_session() as session:
        rows = [service.campaign_out(session, c) for c in service.list_all(session)]
    if as_json:
        print_json(rows)
        return
    exponent = _exponent()
    print_table("campaigns", [Column("name", right=False), Column("from", right=False),
                              Column("to", right=False), Column("target GMV"), Column("budget")],
                [[r["name"], r["starts_on"], r["ends_on"], _money(r["target_gmv"], exponent),
                  _money(r["budget_total"], exponent)] for r in rows])


@campaigns_app.command("show")
def show(key: Annotated[str, typer.Argument(help="Campaign id or name")]) -> None:
    """One campaign as JSON."""
    from growthwheel.marketing.campaigns import service

    with cli_errors(), store_session() as session:
        print_json(service.campaign_out(session, service.get(session, key)))


@campaigns_app.command("delete")
def delete(key: Annotated[str, typer.Argument(help="Campaign id or name")]) -> None:
    """Delete a campaign."""
    from growthwheel.marketing.campaigns import service

    with cli_errors(), store_session() as session:
        service.delete(session, key)
    out.print(f"campaign {key} deleted")


def _load(key: str) -> tuple[Any, list[Any], dict[str, Any]]:
    from growthwheel.marketing.campaigns import service

    with store_session() as session:
        campaign = service.get(session, key)
        phases = service.plan_phases(service.phases(session, campaign))
        inputs = service.review_inputs(session, campaign)
        session.expunge(campaign)
    return campaign, phases, inputs


@campaigns_app.command("pacing")
def pacing(key: Annotated[str, typer.Argument(help="Campaign id or name")],
           as_of: Annotated[str | None, typer.Option("--as-of", help="Day (default: last order day)")] = None,
           as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """GMV and new buyers per phase: target, expected to date, actual, pace, status."""
    from growthwheel.marketing.campaigns import review

    with cli_errors():
        day = parse_date(as_of, "--as-of")
        campaign, phases, _inputs = _load(key)
        with warehouse_reader() as con:
            body = review.pace(con, campaign, phases, as_of=day)
    if as_json:
        print_json(body)
        return
    exponent = _exponent()
    rows = [[p["name"], p["kind"], f"{p['days_elapsed']}/{p['days']}", _money(p["gmv"]["target"], exponent),
             _money(p["gmv"]["expected"], exponent), _money(p["gmv"]["actual"], exponent),
             _pct(p["gmv"]["pace"]), f"{p['new_buyers']['actual']:,.0f}", p["gmv"]["status"]]
            for p in body["phases"]]
    g = body["gmv"]
    rows.append(["all", "", "", _money(g["target"], exponent), _money(g["expected"], exponent),
                 _money(g["actual"], exponent), _pct(g["pace"]), f"{body['new_buyers']['actual']:,.0f}",
                 g["status"]])
    print_table(f"pacing of {body['campaign']} on {body['as_of']} ({body['profile']})",
                [Column("phase", right=False), Column("kind", right=False), Column("days"), Column("target"),
                 Column("expected"), Column("GMV"), Column("pace"), Column("new buyers"),
                 Column("status", right=False)], rows)


@campaigns_app.command("review")
def review_cmd(key: Annotated[str, typer.Argument(help="Campaign id or name")],
               as_of: Annotated[str | None, typer.Option("--as-of", help="Day (default: last order)")] = None,
               out_file: Annotated[Path | None, typer.Option("--out", help="Write the HTML here")] = None,
               as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The three-axis review (customers, products, operations), or the HTML report with --out."""
    from growthwheel.marketing.campaigns import report, review

    with cli_errors():
        day = parse_date(as_of, "--as-of")
        campaign, phases, inputs = _load(key)
        with warehouse_reader() as con:
            body = review.review(con, campaign, phases, as_of=day, **inputs)
            pace = review.pace(con, campaign, phases, as_of=day) if out_file else None
        if out_file is not None:
            assert pace is not None
            shop = current_settings().shop()
            html = report.render(body, pace, currency=shop.currency, shop_name=shop.name)
            try:
                out_file.write_text(html, encoding="utf-8")
            except OSError as exc:
                raise InvalidArgumentError(f"--out: cannot write {out_file} ({exc.strerror})") from None
            out.print(f"review written to {out_file}")
            return
    if as_json:
        print_json(body)
        return
    e = _exponent()
    c, p, o = body["customers"], body["products"], body["operations"]
    rows = [
        ["customers", "new buyers", f"{c['new_buyers']:,} of {c['buyers']:,} ({_pct(c['new_share'])})"],
        ["customers", "repurchase of the acquired", _pct(c["repurchase_rate"])],
        ["customers", "value per acquired customer", _money(c["acquired_value_per_customer"], e)],
        ["products", "hero contribution", _pct(p["hero_contribution"])],
        ["products", "active-SKU rate", _pct(p["active_sku_rate"])],
        ["operations", "GMV", _money(o["gmv"], e)],
        ["operations", "cost (ads + influencers)", _money(o["cost"], e)],
        ["operations", "ROI", "–" if o["roi"] is None else f"{o['roi']:.2f}"],
        ["operations", "CAC", _money(o["cac"], e)],
        ["operations", "cost per order", _money(o["cost_per_order"], e)],
    ]
    print_table(f"review of {body['campaign']} ({body['from']} – {body['to']}, as of {body['as_of']})",
                [Column("axis", right=False), Column("figure", right=False), Column("value")], rows)


def _minor(text: str, option: str) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidArgumentError(f"{option}: {text!r} is not an amount") from None
    exponent = _exponent()
    minor = value * 10**exponent
    if minor != minor.to_integral_value() or minor < 0:
        raise InvalidArgumentError(f"{option}: a non-negative amount with at most {exponent} decimals")
    return int(minor)


@influencers_app.command("add")
def add(
    code: Annotated[str, typer.Option("--code", help="Tracking code (utm_campaign and coupon code)")],
    name: Annotated[str, typer.Option("--name", help="Display name")],
    platform: Annotated[str, typer.Option("--platform", help="douyin, xiaohongshu, weibo…")],
    followers: Annotated[int, typer.Option("--followers", help="Follower count")],
    cost_per_deal: Annotated[str, typer.Option("--cost-per-deal", help="Fee per deal, major units")],
    deals: Annotated[int, typer.Option("--deals", help="Deals booked")] = 1,
    landing_url: Annotated[str | None, typer.Option("--landing-url", help="Page the UTM link opens")] = None,
) -> None:
    """Register an influencer; prints its tier and UTM link."""
    from pydantic import ValidationError

    from growthwheel.marketing.campaigns.schemas import InfluencerIn
    from growthwheel.marketing.influencers import service

    with cli_errors():
        try:
            data = InfluencerIn(code=code, name=name, platform=platform, followers=followers,
                                cost_per_deal=_minor(cost_per_deal, "--cost-per-deal"), deals=deals,
                                landing_url=landing_url)
        except ValidationError as exc:
            first = exc.errors()[0]
            option = str(first["loc"][0]).replace("_", "-")
            raise InvalidArgumentError(f"--{option}: {first['msg']}") from None
        with store_session() as session:
            body = service.influencer_out(service.create(session, data, actor=cli_actor()))
    link = f" · {body['utm_link']}" if body["utm_link"] else ""
    out.print(f"influencer {body['code']} ({body['tier']}){link}")


@influencers_app.command("list")
def list_influencers(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The registry, by followers."""
    from growthwheel.marketing.influencers import service

    with cli_errors(), store_session() as session:
        rows = [service.influencer_out(i) for i in service.list_all(session)]
    if as_json:
        print_json(rows)
        return
    e = _exponent()
    print_table("influencers", [Column("code", right=False), Column("name", right=False),
                                Column("platform", right=False), Column("tier", right=False),
                                Column("followers"), Column("cost")],
                [[r["code"], r["name"], r["platform"], r["tier"], f"{r['followers']:,}", _money(r["cost"], e)]
                 for r in rows])


@influencers_app.command("remove")
def remove(key: Annotated[str, typer.Argument(help="Influencer id or code")]) -> None:
    """Remove an influencer from the registry."""
    from growthwheel.marketing.influencers import service

    with cli_errors(), store_session() as session:
        service.delete(session, key)
    out.print(f"influencer {key} removed")


@influencers_app.command("report")
def report_cmd(
    start: Annotated[str, typer.Option("--from", help="First day of orders (YYYY-MM-DD)")],
    end: Annotated[str, typer.Option("--to", help="Last day of orders (YYYY-MM-DD)")],
    lookback_days: Annotated[int, typer.Option("--lookback-days")] = 30,
    rank_by: Annotated[str, typer.Option("--rank-by", help="roi, revenue, orders or new_customers")] = "roi",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Orders, revenue, new customers and ROI per influencer (ranked) and per tier."""
    from growthwheel.marketing.influencers import service

    with cli_errors():
        first, last = parse_date(start, "--from"), parse_date(end, "--to")
        assert first is not None
        assert last is not None
        if not 1 <= lookback_days <= 365:
            raise InvalidArgumentError("--lookback-days: between 1 and 365")
        with store_session() as session:
            infs = service.list_all(session)
            for inf in infs:
                session.expunge(inf)
        with warehouse_reader() as con:
            body = service.report(con, infs, start=first, end=last, lookback_days=lookback_days,
                                  rank_by=rank_by)
    if as_json:
        print_json(body)
        return
    e = _exponent()
    print_table("influencers ranked by " + rank_by,
                [Column("#"), Column("code", right=False), Column("tier", right=False), Column("orders"),
                 Column("revenue"), Column("new"), Column("cost"), Column("ROI")],
                [[str(r["rank"]), r["code"], r["tier"], f"{r['orders']:,.1f}", _money(r["revenue"], e),
                  f"{r['new_customers']:,.1f}", _money(r["cost"], e),
                  "–" if r["roi"] is None else f"{r['roi']:.2f}"] for r in body["rows"]])
    print_table("pyramid", [Column("tier", right=False), Column("influencers"), Column("revenue"),
                            Column("new"), Column("cost"), Column("ROI")],
                [[t["tier"], str(t["influencers"]), _money(t["revenue"], e), f"{t['new_customers']:,.1f}",
                  _money(t["cost"], e), "–" if t["roi"] is None else f"{t['roi']:.2f}"]
                 for t in body["pyramid"]])
