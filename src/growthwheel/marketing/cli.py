"""``growthwheel marketing …``: ad spend imports, attribution and budget plans.

* ``marketing import-spend --platform google_ads|meta|oceanengine FILE…`` — ad platform report
  exports into ``ad_spend`` (handed to the running server when one owns the warehouse).
* ``marketing attribution --from D --to D`` — every model side by side over the warehouse's
  touchpoints, with spend, CAC, ROAS and new-customer share per channel.
* ``marketing paths FILE`` — the same models over a ChannelAttribution-style path file
  (``path, total_conversions, total_conversion_value, total_null``), e.g. ``PathData.csv``.
* ``marketing allocate REQUEST.json`` — split a budget (the API's request body, minor units).
* ``marketing mmm fit --from D --to D`` — the marketing-mix model (``stats/mmm.py``): ROAS, spend
  elasticity, marginal ROAS and adstock per channel with 90 % intervals (``--exclude
  [CHANNEL:]D..D`` leaves a known incident's days out, e.g. a bidding mistake).
* ``marketing mmm plan --from D --to D --total AMOUNT`` — the allocator on its fitted curves
  (``--reserve-share``, ``--min``/``--max CHANNEL=AMOUNT``, ``--period-days``).

Registered lazily in ``cli/lazy.py``. Bad input prints one line naming the option and exits 1.
"""

from __future__ import annotations

import json
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from growthwheel.cli.common import (
    Column,
    cli_errors,
    money_text,
    out,
    parse_date,
    print_json,
    print_table,
)
from growthwheel.cli.common import settings as current_settings
from growthwheel.errors import InvalidArgumentError

marketing_app = typer.Typer(help="Marketing: ad spend, attribution and budget plans.", no_args_is_help=True)

MODEL_NAMES = ("first_touch", "last_touch", "linear", "time_decay", "position_based", "markov", "shapley")
SHORT = {"first_touch": "first", "last_touch": "last", "linear": "linear", "time_decay": "decay",
         "position_based": "U-shape", "markov": "markov", "shapley": "shapley"}


class PlatformChoice(StrEnum):
    """Ad platforms whose report exports are read."""

    google_ads = "google_ads"
    meta = "meta"
    oceanengine = "oceanengine"


class LevelChoice(StrEnum):
    """What attribution credits."""

    channel = "channel"
    campaign = "campaign"
    influencer = "influencer"


def _models(names: list[str] | None) -> list[str]:
    chosen = names or list(MODEL_NAMES)
    unknown = [m for m in chosen if m not in MODEL_NAMES]
    if unknown:
        raise InvalidArgumentError(
            f"--model: unknown {', '.join(unknown)}; choose from {', '.join(MODEL_NAMES)}")
    return chosen


@marketing_app.command("import-spend")
def import_spend(
    files: Annotated[list[Path], typer.Argument(help="Report files exported from the platform")],
    platform: Annotated[PlatformChoice, typer.Option("--platform", help="Which platform exported them")],
    channel: Annotated[str | None,
                       typer.Option(help="Channel name (default google / facebook / douyin)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Import ad platform report exports (Google Ads, Meta, 巨量引擎) into ad_spend."""
    from growthwheel.marketing import service, spend
    from growthwheel.warehouse.server import find_server

    result: dict[str, Any]
    with cli_errors():
        cfg = current_settings()
        server = find_server(cfg) if (cfg.data_dir / "server.json").exists() else None
        if server is None:
            result = service.import_spend(platform.value, files, cfg=cfg, channel=channel).to_dict()
        else:  # the server owns the warehouse: hand it the translated rows as a generic file
            from growthwheel.warehouse.owner import import_via_server

            rows = spend.translate(platform.value, files, channel=channel)
            with tempfile.TemporaryDirectory() as folder:
                generic = spend.write_generic_csv(rows, Path(folder) / f"{Path(files[0]).stem}.generic.csv")
                result = import_via_server(server, "ad_spend", [generic], "generic").to_dict()
    if as_json:
        print_json(result)
        return
    tables: Any = result["tables"]
    counts: dict[str, int] = tables.get("ad_spend", {})
    out.print(f"ad_spend: {counts.get('inserted', 0):,} new · {counts.get('updated', 0):,} updated · "
              f"{counts.get('unchanged', 0):,} unchanged · {result['rows_quarantined']:,} quarantined")
    if result["rows_quarantined"]:
        out.print("[yellow]see them with: growthwheel quarantine list --table ad_spend[/yellow]")


def _print_report(report: dict[str, Any], exponent: int | None, wide: bool) -> None:
    """One table: a row per channel, per model the conversions credited, then spend and ROAS and
    CAC under the Markov model (else the last model shown)."""
    models = report["models"]
    basis = "markov" if "markov" in models else models[-1]
    rows_by = {(r["model"], r["channel"]): r for r in report["rows"]}
    columns = [Column("channel", right=False)] + [Column(SHORT.get(m, m), keep=2) for m in models]
    columns += [Column("spend", keep=1), Column(f"ROAS ({SHORT.get(basis, basis)})", keep=1),
                Column(f"CAC ({SHORT.get(basis, basis)})", keep=1), Column("new %", keep=3)]
    lines = []
    for ch in sorted(report["channels"], key=lambda c: -rows_by.get((basis, c), {}).get("conversions", 0)):
        row = [ch] + [f"{rows_by[(m, ch)]['conversions']:,.1f}" if (m, ch) in rows_by else "–"
                      for m in models]
        b = rows_by.get((basis, ch), {})
        spend = b.get("spend") or 0
        row.append(money_text(spend / 10**exponent, exponent) if exponent is not None and spend else
                   (f"{spend:,}" if spend else "–"))
        row.append(f"{b['roas']:.2f}" if b.get("roas") is not None else "–")
        cac = b.get("cac")
        row.append(money_text(cac / 10**exponent, exponent) if cac is not None and exponent is not None
                   else (f"{cac:,.0f}" if cac is not None else "–"))
        row.append(f"{100 * b['new_share']:.0f}%" if b.get("new_share") is not None else "–")
        lines.append(row)
    title = "conversions credited per channel"
    print_table(title, columns, lines, wide=wide,
                caption=f"{report['conversions']:,.0f} conversions · unattributed "
                        f"{report['unattributed']['conversions']:,.0f}")


@marketing_app.command("attribution")
def attribution(
    start: Annotated[str, typer.Option("--from", help="First day of conversions (YYYY-MM-DD)")],
    end: Annotated[str, typer.Option("--to", help="Last day of conversions (YYYY-MM-DD)")],
    lookback_days: Annotated[int, typer.Option("--lookback-days", help="Look-back window in days")] = 30,
    level: Annotated[LevelChoice,
                     typer.Option(help="Credit channels, campaigns or influencers")] = LevelChoice.channel,
    model: Annotated[list[str] | None, typer.Option("--model", help="A model (repeat); default all")] = None,
    half_life_days: Annotated[float, typer.Option(help="Time-decay half-life in days")] = 7.0,
    markov_order: Annotated[int, typer.Option(help="Markov chain order")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every column, however wide the table")] = False,
) -> None:
    """Every attribution model side by side over the warehouse's touchpoints."""
    from growthwheel import analyst
    from growthwheel.kit.money import currency_exponent

    with cli_errors():
        first, last = parse_date(start, "--from"), parse_date(end, "--to")
        assert first is not None
        assert last is not None
        report = analyst.run("marketing_attribution", {
            "from": first.isoformat(), "to": last.isoformat(), "lookback_days": lookback_days,
            "level": level.value, "models": _models(model), "half_life_days": half_life_days,
            "markov_order": markov_order})
        exponent = currency_exponent(current_settings().shop().currency)
    if as_json:
        print_json(report)
        return
    _print_report(report, exponent, wide)


@marketing_app.command("paths")
def paths(
    file: Annotated[Path, typer.Argument(help="CSV with path, total_conversions, total_conversion_value, "
                                              "total_null")],
    model: Annotated[list[str] | None, typer.Option("--model", help="A model (repeat); default all")] = None,
    markov_order: Annotated[int, typer.Option(help="Markov chain order")] = 1,
    half_life_days: Annotated[float, typer.Option(help="Time-decay half-life (touches)")] = 7.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every column, however wide the table")] = False,
) -> None:
    """Every attribution model over a path file (ChannelAttribution's layout, e.g. PathData.csv)."""
    from growthwheel.marketing import service

    with cli_errors():
        request = service.read_path_file(file)
        request.models = _models(model)  # type: ignore[assignment]
        if markov_order < 1 or markov_order > 4:
            raise InvalidArgumentError("--markov-order: between 1 and 4")
        if half_life_days <= 0:
            raise InvalidArgumentError("--half-life-days: must be positive")
        request.markov_order = markov_order
        request.half_life_days = half_life_days
        report = service.paths_report(request)
    if as_json:
        print_json(report)
        return
    _print_report(report, None, wide)


@marketing_app.command("allocate")
def allocate(
    request_file: Annotated[Path, typer.Argument(help="JSON: total, reserve_share, curves (minor units)")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON")] = False,
) -> None:
    """Split a budget over channels with response curves (total exact, reserve, bounds)."""
    from pydantic import ValidationError

    from growthwheel.kit.money import currency_exponent
    from growthwheel.marketing import service
    from growthwheel.marketing.schemas import BudgetRequest

    with cli_errors():
        try:
            body = json.loads(request_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidArgumentError(f"{request_file}: not a readable JSON file ({exc})") from None
        try:
            request = BudgetRequest.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidArgumentError(f"{request_file}: {where}: {first['msg']}") from None
        plan = service.budget_plan(request)
        exponent = currency_exponent(current_settings().shop().currency)
    if as_json:
        print_json(plan)
        return
    rows = [[line["channel"], money_text(line["spend"] / 10**exponent, exponent), f"{line['outcome']:,.1f}",
             f"{line['marginal_return']:.4f}", line["bound"] or ""] for line in plan["lines"]]
    rows.append(["reserve (机动)", money_text(plan["reserve"] / 10**exponent, exponent), "", "", ""])
    print_table("budget plan", [Column("channel", right=False), Column("spend"), Column("outcome"),
                                Column("marginal"), Column("bound", right=False)], rows)
    note = f"total {money_text(plan['total'] / 10**exponent, exponent)} · outcome {plan['outcome']:,.1f}"
    if plan["current_outcome"] is not None:
        note += f" (current split {plan['current_outcome']:,.1f})"
    out.print(note)


mmm_app = typer.Typer(help="Marketing-mix model: response curves per channel and budget plans on them.",
                      no_args_is_help=True)
marketing_app.add_typer(mmm_app, name="mmm")


class GrainChoice(StrEnum):
    """Days or whole weeks."""

    day = "day"
    week = "week"


class OutcomeChoice(StrEnum):
    """What the marketing-mix model explains."""

    new_customers = "new_customers"
    revenue = "revenue"


def _minor(text: str, exponent: int, option: str) -> int:
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        raise InvalidArgumentError(f"{option}: an amount such as 125000.00") from None
    if not value.is_finite() or value < 0:
        raise InvalidArgumentError(f"{option}: an amount such as 125000.00")
    return int(value.scaleb(exponent).to_integral_value())


def _span(start: str, end: str) -> tuple[str, str]:
    first, last = parse_date(start, "--from"), parse_date(end, "--to")
    assert first is not None
    assert last is not None
    return first.isoformat(), last.isoformat()


def _exclusions(values: list[str] | None) -> list[str]:
    """``--exclude`` values, checked here (one line naming the option when one is malformed)."""
    from growthwheel.marketing import mix

    for value in values or []:
        try:
            mix.parse_exclusion(value)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"--{exc}") from None
    return list(values or [])


@mmm_app.command("fit")
def mmm_fit(
    start: Annotated[str, typer.Option("--from", help="First day of history (YYYY-MM-DD), at least 56 days")],
    end: Annotated[str, typer.Option("--to", help="Last day of history (YYYY-MM-DD)")],
    outcome: Annotated[OutcomeChoice, typer.Option(help="New customers per channel, or total revenue")]
    = OutcomeChoice.new_customers,
    grain: Annotated[GrainChoice, typer.Option(help="Fit days, or whole weeks")] = GrainChoice.day,
    exclude: Annotated[list[str] | None, typer.Option(
        help="[CHANNEL:]YYYY-MM-DD..YYYY-MM-DD left out of the fit (a known incident; repeat)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model as JSON (with curves)")] = False,
) -> None:
    """Fit the marketing-mix model: ROAS, spend elasticity, marginal ROAS and adstock per channel."""
    from growthwheel import analyst
    from growthwheel.kit.money import currency_exponent

    with cli_errors():
        first, last = _span(start, end)
        report = analyst.run("marketing_mmm", {"from": first, "to": last, "outcome": outcome.value,
                                               "grain": grain.value, "exclude": _exclusions(exclude)})
        exponent = currency_exponent(current_settings().shop().currency)
    if as_json:
        print_json(report)
        return
    per = 10**exponent
    unit = "new customers" if outcome == OutcomeChoice.new_customers else "revenue"

    def iv(d: dict[str, float], scale: float = 1.0, fmt: str = "{:.3f}") -> str:
        mean, low, high = (fmt.format(d[q] * scale) for q in ("mean", "low", "high"))
        return f"{mean} [{low}–{high}]"

    rows = [[c["channel"], money_text(c["spend"] / per, exponent), iv(c["contribution"], fmt="{:,.0f}"),
             iv(c["roas"], 1000 * per, "{:.2f}"), iv(c["marginal_roas"], 1000 * per, "{:.2f}"),
             iv(c["elasticity"]), f"{c['decay']['mean']:.2f}"] for c in report["channels"]]
    print_table(f"marketing-mix model, {report['from']} to {report['to']} (90 % intervals)",
                [Column("channel", right=False), Column("spend"), Column(unit),
                 Column(f"{unit} per 1,000"), Column("marginal per 1,000"), Column("elasticity"),
                 Column("adstock")], rows)
    fit = report["fit"]
    out.print(f"R² {fit['r_squared']:.3f} · MAPE {fit['mape']:.1%} · dispersion {fit['dispersion']:.2f} · "
              f"{fit['seconds']:.1f} s")
    for note in report["notes"]:
        out.print(note)


@mmm_app.command("plan")
def mmm_plan(
    start: Annotated[str, typer.Option("--from", help="First day of history the model is fitted to")],
    end: Annotated[str, typer.Option("--to", help="Last day of that history")],
    total: Annotated[str, typer.Option(help="Budget to split, in the shop currency (e.g. 500000.00)")],
    reserve_share: Annotated[float, typer.Option(help="Share held back (机动预算), 0 to 1")] = 0.0,
    period_days: Annotated[int | None, typer.Option(help="Days the budget covers (default: the history's)")]
    = None,
    minimum: Annotated[list[str] | None, typer.Option("--min", help="CHANNEL=AMOUNT lower bound (repeat)")]
    = None,
    maximum: Annotated[list[str] | None, typer.Option("--max", help="CHANNEL=AMOUNT upper bound (repeat)")]
    = None,
    outcome: Annotated[OutcomeChoice, typer.Option(help="New customers per channel, or total revenue")]
    = OutcomeChoice.new_customers,
    grain: Annotated[GrainChoice, typer.Option(help="Fit days, or whole weeks")] = GrainChoice.day,
    exclude: Annotated[list[str] | None, typer.Option(
        help="[CHANNEL:]YYYY-MM-DD..YYYY-MM-DD left out of the fit (a known incident; repeat)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON")] = False,
) -> None:
    """Split a budget on the fitted response curves (total exact, reserve, bounds, equal marginals)."""
    from growthwheel import analyst
    from growthwheel.kit.money import currency_exponent

    with cli_errors():
        first, last = _span(start, end)
        exponent = currency_exponent(current_settings().shop().currency)
        if not 0 <= reserve_share < 1:
            raise InvalidArgumentError("--reserve-share: between 0 and 1 (exclusive)")
        bounds: dict[str, list[int | None]] = {}
        for option, values, slot in (("--min", minimum, 0), ("--max", maximum, 1)):
            for item in values or []:
                channel, sep, amount = item.rpartition("=")
                if not sep or not channel:
                    raise InvalidArgumentError(f"{option}: CHANNEL=AMOUNT, e.g. 抖音=20000")
                pair = bounds.setdefault(channel, [0, None])
                pair[slot] = _minor(amount, exponent, option)
        plan = analyst.run("marketing_mmm_plan", {
            "from": first, "to": last, "outcome": outcome.value, "grain": grain.value,
            "total": _minor(total, exponent, "--total"),
            "reserve_share": reserve_share, "period_days": period_days, "bounds": bounds,
            "exclude": _exclusions(exclude)})
    if as_json:
        print_json(plan)
        return
    per = 10**exponent
    rows = [[line["channel"], money_text(line["current_split"] / per, exponent),
             money_text(line["spend"] / per, exponent), f"{line['outcome']:,.1f}",
             f"{line['marginal_return'] * 1000 * per:.3f}", line["bound"] or ""] for line in plan["lines"]]
    rows.append(["reserve (机动)", "", money_text(plan["reserve"] / per, exponent), "", "", ""])
    print_table(f"budget plan on the marketing-mix model ({plan['period_days']} days)",
                [Column("channel", right=False), Column("history's split"), Column("plan"),
                 Column("expected"), Column("marginal per 1,000"), Column("bound", right=False)], rows)
    out.print(f"expected {plan['expected_outcome']:,.1f} vs {plan['current_split_outcome']:,.1f} with the "
              f"history's split ({plan['uplift']:+,.1f})")


def _register_campaigns() -> None:
    """``marketing campaigns …`` and ``marketing influencers …`` (``marketing/campaigns/cli.py``)."""
    from growthwheel.marketing.campaigns.cli import campaigns_app, influencers_app

    marketing_app.add_typer(campaigns_app, name="campaigns")
    marketing_app.add_typer(influencers_app, name="influencers")


_register_campaigns()
