"""The analysts' face: Growthwheel's figures as pandas DataFrames, in a notebook or a script.

::

    import growthwheel
    shop = growthwheel.open("growthwheel-data")
    shop.kpis(by="month")                 # the same records as `growthwheel kpi --json`
    shop.rfm_segments()                   # `growthwheel rfm` (the 11 segments)
    shop.cohorts(by="month")              # `growthwheel cohorts --json` cells
    shop.funnel(["view", "add_to_cart", "checkout", "purchase"])
    shop.clv_fit()                        # `growthwheel clv fit` parameters
    shop.segments(); shop.experiment_results("checkout-test")

Every method returns what the matching CLI command prints with ``--json``, as a DataFrame (or a
dict for nested results). It works beside a running ``growthwheel serve``: DuckDB lets only the
server open the warehouse file then, so the computation is handed to the server (the same
function runs there, on its read snapshot) and only the answer comes back; with no server the
warehouse is opened read-only for the call and closed again.

Below the DataFrames sits :data:`READS`: named, read-only computations over the warehouse whose
answers are plain JSON. The CLI's insight commands, this API and the server's internal route
``POST /api/v1/internal/reads/{name}`` all call :func:`compute`, so the three faces cannot differ.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from growthwheel.errors import GrowthwheelError, InvalidArgumentError

if TYPE_CHECKING:
    import pandas as pd
    from ibis.backends import BaseBackend
    from sqlalchemy.orm import Session

    from growthwheel.config import Settings

__all__ = ["READS", "Shop", "UnknownReadError", "compute", "open_shop"]


class UnknownReadError(GrowthwheelError):
    """No read of that name."""

    code = "unknown_read"
    status = 404


# ---------------------------------------------------------------------------------------------
# Parameters and answers as plain JSON
# ---------------------------------------------------------------------------------------------


def _day(params: Mapping[str, Any], key: str) -> date | None:
    value = params.get(key)
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidArgumentError(f"{key}: {value!r} is not a date (YYYY-MM-DD)") from None


def _int(params: Mapping[str, Any], key: str, default: int | None = None) -> int | None:
    value = params.get(key, default)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{key}: {value!r} is not a whole number") from None


def _float(params: Mapping[str, Any], key: str, default: float) -> float:
    value = params.get(key, default)
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{key}: {value!r} is not a number") from None
    if not math.isfinite(result):
        raise InvalidArgumentError(f"{key}: {value!r} is not a finite number")
    return result


def _choice(params: Mapping[str, Any], key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = str(params.get(key) or default)
    if value not in allowed:
        raise InvalidArgumentError(f"{key}: {value!r} is not one of {', '.join(allowed)}")
    return value


def plain(value: Any) -> Any:
    """``value`` as plain JSON: ISO dates, numbers for Decimal and numpy scalars, ``None`` for NA
    and non-finite floats, lists for tuples, recursively."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "item") and not isinstance(value, int | float):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value != value:  # pandas NA / NaT
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    from growthwheel.kit.jsonable import json_records

    return json_records(frame)


def _exponent(cfg: Settings) -> int:
    from growthwheel.kit.money import currency_exponent

    return currency_exponent(cfg.shop().currency)


# ---------------------------------------------------------------------------------------------
# The reads
# ---------------------------------------------------------------------------------------------

Read = Callable[["BaseBackend", "Settings", Mapping[str, Any]], Any]


def _kpis(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.insight.kpis import kpi_frame, kpi_records

    return kpi_records(kpi_frame(
        con, by=_choice(p, "by", "month", ("day", "week", "month", "quarter")),
        start=_day(p, "from"), end=_day(p, "to"), dimension=p.get("dimension") or None,
        currency_exponent=_exponent(cfg)))


def _rfm(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.insight.rfm import last_paid_day, rfm_report, rfm_scores

    orders = con.table("orders")
    exponent = _exponent(cfg)
    cut = _choice(p, "cut", "mean", ("mean", "median"))
    day = _day(p, "as_of") or last_paid_day(orders)
    report = rfm_report(orders, day, cut=cut, currency_exponent=exponent)
    answer: dict[str, Any] = {"currency": cfg.shop().currency, **report}
    if p.get("scores"):
        scores = rfm_scores(orders, day, cut=cut).execute()
        scores["monetary"] = scores["monetary"] / 10**exponent
        answer["scores"] = _records(scores.sort_values("customer_id"))
    return answer


def _lifecycle(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.insight.lifecycle import Thresholds, lifecycle_report, thresholds_for
    from growthwheel.insight.rfm import last_paid_day

    orders = con.table("orders")
    day = _day(p, "as_of") or last_paid_day(orders)
    new_days = _int(p, "new_days", 30) or 0
    loyal_orders = _int(p, "loyal_orders", 3) or 0
    manual = [_int(p, k) for k in ("at_risk_days", "dormant_days", "churned_days")]
    if any(v is not None for v in manual):
        if any(v is None for v in manual):
            raise InvalidArgumentError(
                "give all of --at-risk-days, --dormant-days and --churned-days, or none")
        th = Thresholds(at_risk_days=manual[0] or 0, dormant_days=manual[1] or 0,
                        churned_days=manual[2] or 0, new_days=new_days, loyal_orders=loyal_orders)
    else:
        th = thresholds_for(orders, end=day, new_days=new_days, loyal_orders=loyal_orders)
    report = lifecycle_report(orders, day, thresholds=th, start=_day(p, "from"))
    return {**report, "thresholds": dataclasses.asdict(th)}


def _cohorts(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.insight.cohorts import retention_frame

    by = _choice(p, "by", "month", ("week", "month"))
    mode = "rolling" if p.get("rolling") else "calendar"
    frame = retention_frame(
        con.table("orders"), by=by, mode=mode, window_days=_int(p, "window_days"),
        start=_day(p, "from"), end=_day(p, "to"), by_channel=bool(p.get("by_channel")),
        currency_exponent=_exponent(cfg))
    return {"currency": cfg.shop().currency, "by": by, "mode": mode, "cells": _records(frame)}


def _funnel(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.insight.funnels import funnel_frame

    steps = p.get("steps") or ["view", "add_to_cart", "checkout", "purchase"]
    if isinstance(steps, str):
        steps = [s.strip() for s in steps.split(",") if s.strip()]
    window_days = _float(p, "window_days", 14.0)
    breakdown = p.get("by") or None
    frame = funnel_frame(con.table("events"), list(steps), window=timedelta(days=window_days),
                         start=_day(p, "from"), end=_day(p, "to"), breakdown=breakdown)
    return {"steps": list(steps), "window_days": window_days, "breakdown": breakdown,
            "rows": _records(frame)}


def _clv_fit(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.insight import clv

    fits = clv.fit_models(
        con, model=_choice(p, "model", "bgnbd", ("bgnbd", "paretonbd")),
        time_unit=_choice(p, "time_unit", "week", ("day", "week", "month")),
        calibration_end=_day(p, "calibration_end"), currency=cfg.shop().currency)
    return fits.to_dict()


def _personas(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.insight.personas import personas
    from growthwheel.segments.scores import score_table
    from growthwheel.segments.service import default_as_of

    day = _day(p, "as_of") or default_as_of(cfg, con)
    result = personas(con, day, k=_int(p, "k"), seed=_int(p, "seed", 7) or 0,
                      scores=score_table(con, day))
    answer = {**result.to_dict(), "currency": cfg.shop().currency, "buyers": len(result.assignments)}
    if p.get("assignments"):
        answer["assignments"] = _records(result.assignments)
    return answer


@contextmanager
def _store(cfg: Settings) -> Iterator[Session]:
    """The operational store (migrated, as the CLI does) for one read-only unit of work."""
    from growthwheel.store.db import migrate, session_scope

    migrate(cfg)
    with session_scope(cfg) as session:
        yield session


def _segments(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.segments import service
    from growthwheel.segments.schemas import SegmentOut
    with _store(cfg) as session:
        return [SegmentOut.model_validate(s).model_dump(mode="json")
                for s in service.list_segments(session)]


def _segment_members(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.segments import service
    with _store(cfg) as session:
        seg = service.get_segment(session, str(p.get("segment") or ""))
        rows = service.member_rows(con, seg)
    return _records(rows.to_pandas())


def _experiments(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.experiments import service
    with _store(cfg) as session:
        return [dict(service.summary(e)) for e in service.list_experiments(session)]


def _experiment_results(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.experiments import service
    as_of = p.get("as_of")
    when: datetime | None = None
    if as_of is not None:
        try:
            when = datetime.fromisoformat(str(as_of))
        except ValueError:
            raise InvalidArgumentError(f"as_of: {as_of!r} is not an ISO 8601 time") from None
        if when.tzinfo is None:
            raise InvalidArgumentError("as_of: give the UTC offset (e.g. 2026-06-18T12:00:00+08:00)")
    with _store(cfg) as session:
        exp = service.get_experiment(session, str(p.get("experiment") or ""))
        return service.results(con, exp, as_of=when)


def _marketing_attribution(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.marketing import service
    return service.read_attribution(con, cfg, dict(p))


def _alerts_evaluate(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.alerts import service
    return service.evaluate_shop(con, cfg, p)


def _marketing_mmm(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.marketing import mix
    return mix.read_report(con, cfg, dict(p))


def _marketing_mmm_plan(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.marketing import mix
    return mix.read_plan(con, cfg, dict(p))


def _recs(name: str) -> Read:
    def read(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
        from growthwheel.recs import reads
        return getattr(reads, name)(con, cfg, p)
    return read


def _inventory_plan(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.inventory import reads
    return reads.plan(con, cfg, p)


def _products_roles(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.products import reads
    return reads.product_roles(con, cfg, p)


def _voice_sync(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
    from growthwheel.store.db import session_scope
    from growthwheel.voice import service
    with session_scope(cfg) as session:
        return service.sync(session, con)


def _surveys(name: str) -> Read:
    def read(con: BaseBackend, cfg: Settings, p: Mapping[str, Any]) -> Any:
        from growthwheel.store.db import migrate, session_scope
        from growthwheel.surveys import reads, service

        migrate(cfg)
        with session_scope(cfg) as session:
            survey = service.get_survey(session, str(p.get("survey") or ""))
            if name == "segments":
                return reads.by_segment(session, con, survey, confidence=float(p.get("confidence", 0.95)))
            return reads.repurchase(session, con, survey, days=int(p.get("days", 90)))
    return read


#: Every named read: ``name → fn(backend, settings, params) → JSON-able answer``.
READS: dict[str, Read] = {
    "kpis": _kpis,
    "rfm": _rfm,
    "lifecycle": _lifecycle,
    "cohorts": _cohorts,
    "funnel": _funnel,
    "clv_fit": _clv_fit,
    "personas": _personas,
    "segments": _segments,
    "segment_members": _segment_members,
    "experiments": _experiments,
    "experiment_results": _experiment_results,
    "marketing_attribution": _marketing_attribution,
    "marketing_mmm": _marketing_mmm,
    "marketing_mmm_plan": _marketing_mmm_plan,
    "alerts_evaluate": _alerts_evaluate,
    "recs_build": _recs("build"),
    "recs_evaluate": _recs("evaluate"),
    "recs_copurchase": _recs("copurchase"),
    "surveys_segments": _surveys("segments"),
    "surveys_repurchase": _surveys("repurchase"),
    "inventory_plan": _inventory_plan,
    "products_roles": _products_roles,
    "voice_sync": _voice_sync,
}


def compute(name: str, backend: BaseBackend, cfg: Settings, params: Mapping[str, Any]) -> Any:
    """Run the read ``name`` on ``backend`` (the warehouse) and return its answer as plain JSON."""
    read = READS.get(name)
    if read is None:
        raise UnknownReadError(f"no read {name!r} (one of {', '.join(sorted(READS))})")
    return plain(read(backend, cfg, params))


def run(name: str, params: Mapping[str, Any], cfg: Settings | None = None) -> Any:
    """:func:`compute` where it can run: in the server that owns the warehouse when one runs for
    ``cfg``'s data directory, else here on the warehouse opened for this call (closed after)."""
    from growthwheel.config import settings

    cfg = cfg or settings()
    if name not in READS:
        raise UnknownReadError(f"no read {name!r} (one of {', '.join(sorted(READS))})")
    clean = plain(dict(params))
    if (cfg.data_dir / "server.json").exists():
        from growthwheel.warehouse.server import compute_via_server, find_server

        server = find_server(cfg)
        if server is not None:
            return compute_via_server(server, name, clean)
    from growthwheel.warehouse import connect

    backend = connect(cfg)
    try:
        if cfg.warehouse == "duckdb":  # DuckDB draws its progress bar on stdout
            backend.raw_sql("SET enable_progress_bar = false")
        return compute(name, backend, cfg, clean)
    except Exception as exc:
        if cfg.warehouse == "duckdb" and "lock" in str(exc).lower():
            from growthwheel.warehouse.server import warehouse_in_use_error

            raise warehouse_in_use_error(cfg, exc) from None
        raise
    finally:
        if cfg.warehouse == "duckdb":
            backend.disconnect()


# ---------------------------------------------------------------------------------------------
# The notebook API
# ---------------------------------------------------------------------------------------------


class Shop:
    """One shop's data directory, read as DataFrames (see the module's documentation).

    Create it with :func:`growthwheel.open`. Dates may be given as ``date`` or ``"YYYY-MM-DD"``;
    money is in major units of the shop currency (:attr:`currency`), as in the CLI's ``--json``.
    """

    def __init__(self, cfg: Settings) -> None:
        self.cfg = cfg

    def __repr__(self) -> str:
        return f"Shop({str(self.cfg.data_dir)!r}, currency={self.currency!r})"

    @property
    def currency(self) -> str:
        """The shop's ISO 4217 currency."""
        return self.cfg.shop().currency

    def read(self, name: str, **params: Any) -> Any:
        """The plain-JSON answer of the read ``name`` (one of :data:`READS`)."""
        return run(name, params, self.cfg)

    def kpis(self, by: str = "month", start: date | str | None = None, end: date | str | None = None,
             dimension: str | None = None) -> pd.DataFrame:
        """KPIs by period (``growthwheel kpi --json``): one row per period (and dimension value)."""
        return _frame(self.read("kpis", by=by, dimension=dimension, **{"from": start, "to": end}))

    def rfm(self, as_of: date | str | None = None, cut: str = "mean") -> dict[str, Any]:
        """The whole RFM report (``growthwheel rfm --json``): segments, value classes, grid."""
        return dict(self.read("rfm", as_of=as_of, cut=cut))

    def rfm_segments(self, as_of: date | str | None = None, cut: str = "mean") -> pd.DataFrame:
        """The 11 RFM segments: customers, share, revenue, averages (the ``growthwheel rfm`` table)."""
        return _frame(self.rfm(as_of, cut)["segments"])

    def rfm_scores(self, as_of: date | str | None = None, cut: str = "mean") -> pd.DataFrame:
        """Every customer's R, F and M and scores (``growthwheel rfm --out``)."""
        return _frame(self.read("rfm", as_of=as_of, cut=cut, scores=True)["scores"])

    def lifecycle(self, as_of: date | str | None = None, start: date | str | None = None) -> pd.DataFrame:
        """Customers per lifecycle stage (``growthwheel lifecycle``); ``.attrs`` holds thresholds."""
        answer = self.read("lifecycle", as_of=as_of, **{"from": start})
        frame = _frame(answer["stages"])
        frame.attrs.update(as_of=answer["as_of"], thresholds=answer["thresholds"])
        return frame

    def cohorts(self, by: str = "month", rolling: bool = False, by_channel: bool = False,
                start: date | str | None = None, end: date | str | None = None) -> pd.DataFrame:
        """Cohort × period cells (``growthwheel cohorts --json``): size, retention, revenue."""
        return _frame(self.read("cohorts", by=by, rolling=rolling, by_channel=by_channel,
                                **{"from": start, "to": end})["cells"])

    def funnel(self, steps: list[str] | None = None, window_days: float = 14,
               start: date | str | None = None, end: date | str | None = None,
               by: str | None = None) -> pd.DataFrame:
        """An ordered funnel (``growthwheel funnel --json``): entrants and conversion per step."""
        return _frame(self.read("funnel", steps=steps, window_days=window_days, by=by,
                                **{"from": start, "to": end})["rows"])

    def clv_fit(self, model: str = "bgnbd", time_unit: str = "week",
                calibration_end: date | str | None = None) -> pd.DataFrame:
        """The fitted CLV models (``growthwheel clv fit``): one row per parameter, with standard
        errors; ``.attrs`` holds the whole fit (``growthwheel clv fit --json``)."""
        import pandas as pd

        fit = self.read("clv_fit", model=model, time_unit=time_unit, calibration_end=calibration_end)
        rows = [{"model": part, "parameter": name, "estimate": value,
                 "std_error": fit[part]["std_errors"].get(name)}
                for part in ("purchases", "spend") for name, value in fit[part]["params"].items()]
        frame = pd.DataFrame(rows)
        frame.attrs.update(fit)
        return frame

    def personas(self, k: int | None = None, as_of: date | str | None = None, seed: int = 7) -> pd.DataFrame:
        """Buyer personas (``growthwheel personas --json``): label, size, revenue share, traits."""
        return _frame(self.read("personas", k=k, as_of=as_of, seed=seed)["personas"])

    def segments(self) -> pd.DataFrame:
        """Saved segments with their last member counts (``growthwheel segments list``)."""
        return _frame(self.read("segments"))

    def segment_members(self, segment: str) -> pd.DataFrame:
        """The members of a refreshed segment (by id or name), with their profile."""
        return _frame(self.read("segment_members", segment=segment))

    def experiments(self) -> pd.DataFrame:
        """Experiments and hold-outs: key, name, status, variants (``growthwheel experiments list``)."""
        return _frame(self.read("experiments"))

    def experiment_results(self, experiment: str, as_of: datetime | str | None = None) -> dict[str, Any]:
        """An experiment's analysis (``growthwheel experiments results --json``), by key; ``as_of``
        (an aware time) ends the window of a running experiment (default: now)."""
        return dict(self.read("experiment_results", experiment=experiment, as_of=as_of))

    def experiment_effects(self, experiment: str, as_of: datetime | str | None = None) -> pd.DataFrame:
        """One row per metric × variant compared with control: effects with their intervals,
        adjusted p-value and significance."""
        import pandas as pd

        results = self.experiment_results(experiment, as_of)
        rows: list[dict[str, Any]] = []
        for metric in results["metrics"]:
            for comp in metric.get("comparisons", []):
                rel = comp.get("relative") or {}
                absolute = comp.get("absolute") or {}
                rows.append({
                    "metric": metric["label"], "role": metric["role"], "variant": comp["variant"],
                    "control_mean": comp.get("control_mean"), "treatment_mean": comp.get("treatment_mean"),
                    "absolute": absolute.get("estimate"), "absolute_low": absolute.get("ci_lower"),
                    "absolute_high": absolute.get("ci_upper"), "relative": rel.get("estimate"),
                    "relative_low": rel.get("ci_lower"), "relative_high": rel.get("ci_upper"),
                    "p_adjusted": comp.get("p_adjusted"), "significant": comp.get("significant")})
        return pd.DataFrame(rows)

    def product_roles(self, period: str = "last90", **thresholds: float) -> pd.DataFrame:
        """``growthwheel products roles --json``'s products: one row per product with its figures
        (money in minor units), ``role``, every role it meets and why (``explanation``); any
        threshold of ``growthwheel.products.roles.RoleRules`` may be given."""
        return _frame(self.read("products_roles", period=period, **thresholds)["items"])


def _frame(records: Any) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(list(records))


def open_shop(data_dir: str | os.PathLike[str] | None = None) -> Shop:
    """The shop whose data directory is ``data_dir`` (default: ``GROWTHWHEEL_DATA_DIR`` or
    ``./growthwheel-data``). Also available as ``growthwheel.open``."""
    from growthwheel.config import Settings

    cfg = Settings() if data_dir is None else Settings(data_dir=Path(data_dir))
    if not cfg.data_dir.is_dir():
        raise InvalidArgumentError(f"data_dir: {cfg.data_dir} is not a directory")
    return Shop(cfg)
