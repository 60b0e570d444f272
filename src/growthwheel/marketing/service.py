"""Marketing logic: spend imports, attribution reports and budget plans (no commits, no HTTP).

Every function here is used by the API, the CLI and the console alike. Reports are plain JSON
values (dicts of numbers and strings): money in minor units (attributed value is fractional).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from growthwheel.config import Settings
from growthwheel.errors import ImportFileError, InvalidArgumentError, NoDataError
from growthwheel.marketing import spend as spend_formats
from growthwheel.marketing.schemas import BudgetRequest, PathsRequest
from growthwheel.stats import attribution as attr
from growthwheel.stats import budget
from growthwheel.warehouse import ingest

MAX_LOOKBACK_DAYS = 365


def import_spend(platform: str, paths: Sequence[Path], *, cfg: Settings, channel: str | None = None,
                 names: Sequence[str] | None = None) -> ingest.ImportResult:
    """Import ad platform report files into ``ad_spend`` (validated, quarantined, idempotent).

    Runs where the warehouse may be written: the server's writer thread, or a process when no
    server runs. ``names`` are how the files are named in quarantine and errors (an upload's name).
    """
    rows = spend_formats.translate(platform, list(paths), channel=channel)
    if names is not None:
        rename = {str(p): str(n) for p, n in zip(paths, names, strict=True)}
        import pyarrow as pa

        files = [rename.get(f, f) for f in rows.column("_file").to_pylist()]
        rows = rows.set_column(rows.column_names.index("_file"), "_file", pa.array(files, pa.string()))
    source = ", ".join(str(n) for n in (names or paths))
    return ingest.import_rows("ad_spend", rows, source, cfg=cfg)


def _credits_json(credits: dict[str, attr.Credit], spend: dict[str, int]) -> dict[str, Any]:
    rows = [asdict(r) for r in attr.channel_report(credits, spend)]
    channels = sorted({r["channel"] for r in rows})
    removal = {}
    for model, credit in credits.items():
        if credit.removal_effects is not None:
            removal[model] = {ch: float(credit.removal_effects[i]) for i, ch in enumerate(credit.channels)}
    if not credits:
        raise InvalidArgumentError("models: name at least one attribution model")
    first = next(iter(credits.values()))
    return {
        "models": list(credits),
        "channels": channels,
        "rows": rows,
        "removal_effects": removal,
        "unattributed": {"conversions": first.unattributed_conversions, "value": first.unattributed_value},
        "notes": {m: list(c.notes) for m, c in credits.items() if c.notes},
    }


def _run_models(paths: attr.Paths, models: Sequence[str], **options: Any) -> dict[str, attr.Credit]:
    try:
        return attr.attribute(paths, list(models), **options)
    except ValueError as exc:
        raise InvalidArgumentError(str(exc)) from None
    except RuntimeError as exc:  # the sparse solver: a chain with a state no journey leaves
        raise InvalidArgumentError(
            "the Markov chain of these paths cannot be solved (a state has no outgoing journeys: "
            "give every path conversions or null journeys)") from exc


def attribution_report(
    con: Any,
    *,
    start: date,
    end: date,
    lookback_days: int = 30,
    level: str = "channel",
    models: Sequence[str] = attr.MODELS,
    half_life_days: float = 7.0,
    markov_order: int = 1,
    influencer_codes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Attribution of the paid orders placed in ``[start, end]`` over the warehouse's touchpoints,
    every model side by side, with spend, CAC, ROAS and new-customer share per channel."""
    from growthwheel.marketing import touchpoints as tp

    if end < start:
        raise InvalidArgumentError("to: must be on or after from")
    if not 1 <= lookback_days <= MAX_LOOKBACK_DAYS:
        raise InvalidArgumentError(f"lookback_days: between 1 and {MAX_LOOKBACK_DAYS}")
    if level not in tp.LEVELS:
        raise InvalidArgumentError(f"level: one of {', '.join(tp.LEVELS)}")
    frame = tp.conversion_touches(con, start=start, end=end, lookback_days=lookback_days,
                                  influencer_codes=influencer_codes).to_pandas()
    built = tp.build_paths(frame, level)
    if built.conversions == 0:
        raise NoDataError(f"no paid orders between {start} and {end}")
    credits = _run_models(built.paths, models, half_life=half_life_days, markov_order=markov_order)
    spend = tp.spend_by_channel(con, start=start, end=end, level=level)
    return {
        "from": start.isoformat(), "to": end.isoformat(), "lookback_days": lookback_days, "level": level,
        "conversions": built.conversions, "null_journeys": built.null_journeys, "touches": built.touches,
        "value": float(built.paths.values.sum()),
        **_credits_json(credits, spend),
    }


def paths_report(request: PathsRequest) -> dict[str, Any]:
    """Attribution over the paths given in ``request`` (every model side by side)."""
    seqs = [[p.strip() for p in (x.path.split(">") if isinstance(x.path, str) else x.path) if p.strip()]
            for x in request.paths]
    news = [x.new_conversions for x in request.paths]
    try:
        paths = attr.Paths.from_sequences(
            seqs, [x.conversions for x in request.paths], [x.value for x in request.paths],
            [x.nulls for x in request.paths],
            new_conversions=None if any(n is None for n in news) else [float(n or 0) for n in news])
    except ValueError as exc:
        raise InvalidArgumentError(f"paths: {exc}") from None
    credits = _run_models(paths, request.models, half_life=request.half_life_days,
                          markov_order=request.markov_order, shapley_game=request.shapley_game,
                          collapse_repeats=request.collapse_repeats)
    return {
        "conversions": float(paths.conversions.sum()), "value": float(paths.values.sum()),
        "null_journeys": float(paths.nulls.sum()), "paths": paths.n_paths,
        **_credits_json(credits, request.spend),
    }


def read_path_file(path: Path, *, sep: str = ">") -> PathsRequest:
    """A ChannelAttribution-style CSV (``path, total_conversions, total_conversion_value,
    total_null``; value in major units as written is kept as is) as a request."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            need = ("path", "total_conversions")
            missing = [c for c in need if c not in (reader.fieldnames or [])]
            if missing:
                raise ImportFileError(f"{path}: missing column(s) {', '.join(missing)}")
            items = []
            for n, row in enumerate(reader, start=1):
                try:
                    items.append({
                        "path": [p.strip() for p in row["path"].split(sep) if p.strip()],
                        "conversions": float(row["total_conversions"] or 0),
                        "value": float(row.get("total_conversion_value") or 0),
                        "nulls": float(row.get("total_null") or 0),
                    })
                except ValueError:
                    raise ImportFileError(f"{path}: row {n}: not a number") from None
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return PathsRequest.model_validate({"paths": items})


def budget_plan(request: BudgetRequest) -> dict[str, Any]:
    """The allocator's answer for ``request``, with today's split evaluated on the same curves
    when every channel gives its ``current`` spend."""
    try:
        curves = [budget.Curve(c.channel, c.kind, c.beta, c.k, c.s, c.lower, c.upper) for c in request.curves]
        plan = budget.allocate(curves, request.total, reserve_share=request.reserve_share)
        current = None
        if all(c.current is not None for c in request.curves):
            current = budget.evaluate(curves, [int(c.current or 0) for c in request.curves])
    except ValueError as exc:
        raise InvalidArgumentError(str(exc)) from None
    except ArithmeticError:  # overflow / division by zero: curves whose scale floats cannot carry
        raise InvalidArgumentError(
            "curves: beta, k and s give response curves out of the range of floating point "
            "(e.g. a half-saturation k far below the spends); use the curves' units") from None
    return {
        "total": plan.total, "reserve": plan.reserve, "allocated": plan.allocated,
        "outcome": plan.outcome, "marginal_return": plan.marginal_return,
        "current_outcome": current,
        "lines": [asdict(line) for line in plan.lines],
    }


def read_attribution(con: Any, cfg: Settings, params: dict[str, Any]) -> dict[str, Any]:
    """:func:`attribution_report` from plain JSON parameters (``analyst.READS`` entry
    ``marketing_attribution``, so the CLI asks the server when one owns the warehouse)."""
    try:
        start = date.fromisoformat(str(params["from"]))
        end = date.fromisoformat(str(params["to"]))
    except (KeyError, ValueError):
        raise InvalidArgumentError("from, to: give both days as YYYY-MM-DD") from None
    return attribution_report(
        con, start=start, end=end, lookback_days=int(params.get("lookback_days") or 30),
        level=str(params.get("level") or "channel"), models=list(params.get("models") or attr.MODELS),
        half_life_days=float(params.get("half_life_days") or 7.0),
        markov_order=int(params.get("markov_order") or 1))
