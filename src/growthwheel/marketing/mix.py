"""The marketing-mix model over the warehouse: daily series, the fit, curves and a budget plan.

Used by the API (``/api/v1/marketing/mmm``), the CLI (``growthwheel marketing mmm``) and the
console's marketing page alike. The numerics are :mod:`growthwheel.stats.mmm`; this module reads

* **spend** per shop-local day and channel from ``ad_spend`` (minor units; a channel / day without
  a row spent nothing);
* **outcome** per shop-local day: ``new_customers`` — customers by their first paid order's day,
  one column per channel with spend, matched by the customer's acquisition ``channel`` (the model
  then fits each channel's own customers); ``revenue`` — the paid orders' ``total_amount`` of all
  channels together (one total outcome, with a baseline).

Answers are JSON values: money in minor units, ROAS in outcome per minor unit (new customers per
fen, or revenue per revenue) with ``per_1000`` copies for reading.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from growthwheel.errors import InvalidArgumentError, NoDataError
from growthwheel.stats import budget, mmm

OUTCOMES = ("new_customers", "revenue")
GRAINS = ("day", "week")
MIN_DAYS = 56
MAX_DAYS = 3 * 366
CURVE_POINTS = 13


def _check(start: date, end: date, outcome: str) -> None:
    if end < start:
        raise InvalidArgumentError("to: must be on or after from")
    days = (end - start).days + 1
    if days < MIN_DAYS:
        raise InvalidArgumentError(f"from: at least {MIN_DAYS} days of history for a marketing-mix model")
    if days > MAX_DAYS:
        raise InvalidArgumentError(f"from: at most {MAX_DAYS} days of history")
    if outcome not in OUTCOMES:
        raise InvalidArgumentError(f"outcome: one of {', '.join(OUTCOMES)}")
    if start.year < 1970 or end.year > 2200:
        raise InvalidArgumentError("from: dates between 1970 and 2200")


def _finite(value: Any) -> Any:
    """``value`` with every non-finite number (a degenerate fit) as ``None``: valid JSON."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def series(con: Any, *, start: date, end: date, outcome: str, timezone: str) -> dict[str, Any]:
    """Daily spend per channel and the outcome over ``[start, end]`` (shop-local days)."""
    from ibis import _

    from growthwheel.warehouse.schema import PAID_STATUSES

    _check(start, end, outcome)
    dates = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    index = {d: i for i, d in enumerate(dates)}
    spend_rows = (con.table("ad_spend").filter((_.date >= start) & (_.date <= end))
                  .group_by(["date", "channel"]).aggregate(spend=_.spend.sum()).to_pandas())
    spend_rows = spend_rows[spend_rows["spend"].fillna(0) > 0]
    channels = sorted(str(c) for c in spend_rows["channel"].dropna().unique())
    if not channels:
        raise NoDataError(f"no ad spend between {start} and {end}")
    spend = np.zeros((len(dates), len(channels)))
    col = {c: j for j, c in enumerate(channels)}
    for r in spend_rows.itertuples():
        if r.channel is not None:
            spend[index[_as_date(r.date)], col[str(r.channel)]] += float(r.spend)
    zone = ZoneInfo(timezone)
    # Paid orders in a window one day wider than the local days, placed on their local day.
    lo = _utc_naive(start - timedelta(days=1))
    hi = _utc_naive(end + timedelta(days=2))
    orders = con.table("orders").filter(_.status.isin(PAID_STATUSES))
    if outcome == "revenue":
        frame = (orders.filter((_.ordered_at >= lo) & (_.ordered_at < hi))
                 .select("ordered_at", "total_amount").to_pandas())
        days = _local_days(frame["ordered_at"], zone)
        y = np.zeros(len(dates))
        for d, v in zip(days, frame["total_amount"].fillna(0).to_numpy(), strict=True):
            if d in index:
                y[index[d]] += float(v)
        matrix = y
    else:
        first = orders.group_by("customer_id").aggregate(first=_.ordered_at.min())
        first = first.filter((first["first"] >= lo) & (first["first"] < hi))
        joined = first.join(con.table("customers"), "customer_id").select("first", "channel").to_pandas()
        days = _local_days(joined["first"], zone)
        matrix = np.zeros((len(dates), len(channels)))
        for d, ch in zip(days, joined["channel"].to_numpy(), strict=True):
            if d in index and ch in col:
                matrix[index[d], col[ch]] += 1.0
    return {"dates": dates, "channels": channels, "spend": spend, "outcome": matrix}


def _as_date(value: Any) -> date:
    return value if type(value) is date else value.date()


def _utc_naive(day: date) -> Any:
    """Midnight UTC of ``day`` as the warehouse stores times (naive, UTC)."""
    from datetime import UTC, datetime, time

    return datetime.combine(day, time(), tzinfo=UTC).replace(tzinfo=None)


def _local_days(values: Any, zone: ZoneInfo) -> list[date]:
    import pandas as pd

    stamps = pd.to_datetime(values)
    if getattr(stamps.dt, "tz", None) is None:
        stamps = stamps.dt.tz_localize("UTC")
    return [d.date() for d in stamps.dt.tz_convert(zone)]


#: A stretch of days left out of the model: (channel, or None for every channel; first; last day).
Exclusion = tuple[str | None, date, date]
MAX_EXCLUSIONS = 50


def parse_exclusion(text: str) -> Exclusion:
    """``[channel:]YYYY-MM-DD..YYYY-MM-DD`` (one day: ``[channel:]YYYY-MM-DD``) as an exclusion."""
    channel, _, span = text.rpartition(":") if ":" in text else ("", "", text)
    first, _, last = span.partition("..")
    try:
        lo = date.fromisoformat(first.strip())
        hi = date.fromisoformat((last or first).strip())
    except ValueError:
        raise InvalidArgumentError(
            f"exclude: [channel:]YYYY-MM-DD..YYYY-MM-DD, not {text[:60]!r}") from None
    if hi < lo:
        raise InvalidArgumentError("exclude: the last day is before the first")
    return (channel.strip() or None, lo, hi)


def _exclusion_mask(data: dict[str, Any], exclude: Sequence[Exclusion]) -> Any:
    """Periods × channels to leave out (``None`` when nothing is); a week is left out when any of
    its days is."""
    if not exclude:
        return None
    if len(exclude) > MAX_EXCLUSIONS:
        raise InvalidArgumentError(f"exclude: at most {MAX_EXCLUSIONS} stretches of days")
    dates: list[date] = data["dates"]
    step = (dates[1] - dates[0]).days if len(dates) > 1 else 1
    mask = np.zeros((len(dates), len(data["channels"])), dtype=bool)
    for channel, lo, hi in exclude:
        if channel is not None and channel not in data["channels"]:
            raise InvalidArgumentError(f"exclude: no channel {channel} with ad spend in the period")
        rows = [i for i, d in enumerate(dates) if d <= hi and d + timedelta(days=step - 1) >= lo]
        cols = [data["channels"].index(channel)] if channel is not None else list(range(mask.shape[1]))
        mask[np.ix_(rows, cols)] = True
    return mask


def _fit_of(data: dict[str, Any], outcome: str, exclude: Sequence[Exclusion] = ()) -> mmm.Fit:
    mask = _exclusion_mask(data, exclude)
    y = data["outcome"]
    if outcome == "new_customers":
        keep = [j for j in range(len(data["channels"]))
                if y[:, j].sum() > 0 and (data["spend"][:, j] > 0).sum() >= 4]
        if not keep:
            raise NoDataError("no new customers from any channel with ad spend in the period")
        data = {**data, "channels": [data["channels"][j] for j in keep], "spend": data["spend"][:, keep],
                "outcome": y[:, keep]}
        mask = None if mask is None else mask[:, keep]
    try:
        return mmm.fit(data["dates"], data["spend"], data["outcome"], data["channels"], exclude=mask)
    except ValueError as exc:
        raise InvalidArgumentError(str(exc)) from None


@functools.lru_cache(maxsize=8)
def _cached_fit(key: tuple[Any, ...], data_key: bytes, outcome: str, holder: Any) -> mmm.Fit:
    return _fit_of(holder.data, outcome, key[-1])


class _Holder:
    """Carries the series into the cache without hashing it (the cache key is its digest)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Holder)


def weekly(data: dict[str, Any]) -> dict[str, Any]:
    """Daily series summed into whole weeks from the first day (a last, partial week is left out)."""
    weeks = len(data["dates"]) // 7
    if weeks < 8:
        raise InvalidArgumentError("from: at least 8 whole weeks of history for a weekly model")

    def fold(a: Any) -> Any:
        a = a[: 7 * weeks]
        return a.reshape(weeks, 7, *a.shape[1:]).sum(axis=1)

    return {**data, "dates": data["dates"][: 7 * weeks : 7], "spend": fold(data["spend"]),
            "outcome": fold(data["outcome"])}


def fitted(con: Any, *, start: date, end: date, outcome: str, timezone: str, grain: str = "day",
           exclude: Sequence[Exclusion] = ()) -> tuple[mmm.Fit, dict[str, Any]]:
    """The series and its fit; the same series is fitted once (an in-process cache keyed by a
    digest of the numbers). ``exclude``: stretches of days left out of the fit and the figures
    (a known incident: a bidding mistake, a tracking outage — days where spend did not buy what
    it usually buys, which a response curve would otherwise read as saturation)."""
    import hashlib

    if grain not in GRAINS:
        raise InvalidArgumentError("grain: day or week")
    data = series(con, start=start, end=end, outcome=outcome, timezone=timezone)
    if grain == "week":
        data = weekly(data)
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(data["spend"]).tobytes())
    digest.update(np.ascontiguousarray(data["outcome"]).tobytes())
    digest.update("|".join(data["channels"]).encode())
    key = (start, end, outcome, grain, tuple(sorted(exclude, key=lambda e: (e[0] or "", e[1], e[2]))))
    return _cached_fit(key, digest.digest(), outcome, _Holder(data)), data


def report(con: Any, *, start: date, end: date, outcome: str = "new_customers",
           timezone: str = "Asia/Shanghai", grain: str = "day",
           exclude: Sequence[Exclusion] = ()) -> dict[str, Any]:
    """The fitted model: per channel contribution, ROAS, elasticity, marginal ROAS and adstock with
    intervals, and each channel's response curve (0 to 2 × the period's spend)."""
    fit, _ = fitted(con, start=start, end=end, outcome=outcome, timezone=timezone, grain=grain,
                    exclude=exclude)
    out = mmm.summary(fit)
    curves = []
    for j, ch in enumerate(fit.channels):
        spends = [ch.spend * 2.0 * i / (CURVE_POINTS - 1) for i in range(CURVE_POINTS)]
        curves.append({"channel": ch.channel, **fit.curve(j, spends)})
    for row in out["channels"]:
        for name in ("roas", "marginal_roas"):
            row[f"{name}_per_1000"] = {k: 1000 * v for k, v in row[name].items()}
    out.update({"from": start.isoformat(), "to": end.isoformat(), "outcome": outcome, "grain": grain,
                "curves": curves,
                "excluded": [{"channel": ch, "from": lo.isoformat(), "to": hi.isoformat()}
                             for ch, lo, hi in exclude],
                "model": "stats/mmm.py: geometric adstock, Hill saturation, trend, weekly and yearly "
                         "seasonality, 618 and Double 11; quasi-Poisson, Laplace intervals"})
    result: dict[str, Any] = _finite(out)
    return result


def plan(con: Any, *, start: date, end: date, total: int, outcome: str = "new_customers",
         reserve_share: float = 0.0, period_days: int | None = None,
         bounds: dict[str, tuple[int, int | None]] | None = None,
         timezone: str = "Asia/Shanghai", grain: str = "day",
         exclude: Sequence[Exclusion] = ()) -> dict[str, Any]:
    """The allocator on the fitted curves: ``total`` (minor units) for a period of ``period_days``
    (default: as long as the fitted one), next to the split the period's spend had, scaled to the
    same total, with each split's expected outcome on the fitted curves."""
    if total <= 0:
        raise InvalidArgumentError("total: a positive amount in minor units")
    if period_days is not None and not 1 <= period_days <= MAX_DAYS:
        raise InvalidArgumentError(f"period_days: between 1 and {MAX_DAYS}")
    fit, _ = fitted(con, start=start, end=end, outcome=outcome, timezone=timezone, grain=grain,
                    exclude=exclude)
    unknown = set(bounds or {}) - {c.channel for c in fit.channels}
    if unknown:
        raise InvalidArgumentError(f"bounds: no fitted channel {sorted(unknown)[0]}")
    try:
        curves, errors = mmm.budget_curves(fit, period_days=period_days, bounds=bounds)
        allocation = budget.allocate(curves, total, reserve_share=reserve_share)
    except ValueError as exc:
        raise InvalidArgumentError(str(exc)) from None
    observed = [float(fit.spend_series[:, j].sum()) for j in range(len(fit.channels))]
    scale = allocation.allocated / sum(observed) if sum(observed) > 0 else 0.0
    current = [x * scale for x in observed]
    current_outcome = budget.evaluate(curves, current)
    answer: dict[str, Any] = _finite({
        "from": start.isoformat(), "to": end.isoformat(), "outcome": outcome,
        "period_days": period_days or fit.periods * fit.period_days,
        "total": allocation.total, "reserve": allocation.reserve, "allocated": allocation.allocated,
        "expected_outcome": allocation.outcome, "current_split_outcome": current_outcome,
        "uplift": allocation.outcome - current_outcome,
        "marginal_return": allocation.marginal_return,
        "lines": [
            {"channel": line.channel, "spend": line.spend, "current_split": round(cur),
             "outcome": line.outcome, "marginal_return": line.marginal_return, "roas": line.roas,
             "bound": line.bound, "curve_fit_error": err}
            for line, cur, err in zip(allocation.lines, current, errors, strict=True)
        ],
    })
    return answer


def _param_day(p: dict[str, Any], name: str) -> date:
    value = p.get(name)
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidArgumentError(f"{name}: a date YYYY-MM-DD") from None


def read_report(con: Any, cfg: Any, p: dict[str, Any]) -> dict[str, Any]:
    """:func:`report` as a named read (``analyst.READS``: the CLI, beside a running server too)."""
    return report(con, start=_param_day(p, "from"), end=_param_day(p, "to"),
                  outcome=str(p.get("outcome") or "new_customers"), timezone=cfg.shop().timezone,
                  grain=str(p.get("grain") or "day"),
                  exclude=[parse_exclusion(str(e)) for e in p.get("exclude") or ()])


def read_plan(con: Any, cfg: Any, p: dict[str, Any]) -> dict[str, Any]:
    """:func:`plan` as a named read; ``bounds`` is ``{channel: [lower, upper or null]}``."""
    bounds: dict[str, tuple[int, int | None]] = {}
    for ch, pair in dict(p.get("bounds") or {}).items():
        lower, upper = pair
        bounds[str(ch)] = (int(lower or 0), None if upper is None else int(upper))
    return plan(con, start=_param_day(p, "from"), end=_param_day(p, "to"), total=int(p["total"]),
                outcome=str(p.get("outcome") or "new_customers"),
                reserve_share=float(p.get("reserve_share") or 0.0),
                period_days=None if p.get("period_days") is None else int(p["period_days"]),
                bounds=bounds, timezone=cfg.shop().timezone, grain=str(p.get("grain") or "day"),
                exclude=[parse_exclusion(str(e)) for e in p.get("exclude") or ()])
