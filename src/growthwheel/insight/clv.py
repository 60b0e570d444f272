"""Lifetime value from the warehouse: per-customer purchase summaries, fits, validation and scores.

The summary is an Ibis expression over the stored ``orders`` table (portable to Spark; no raw SQL);
the models are :mod:`growthwheel.stats.clv`. Definitions:

* Only **paid** orders count (``status`` in ``PAID_STATUSES``), on their shop-local ``order_date``.
* A **purchase** is a customer's shop-local *day* with at least one paid order: several orders on
  one day count as one purchase whose spend is their sum.
* **Calibration period**: from each customer's first purchase to ``calibration_end`` (inclusive;
  default: the last day with a paid order). Customers whose first purchase is later are not in it.
* ``frequency`` = purchase days in the calibration period minus 1 (the first one);
  ``recency`` = days from the first to the last purchase day; ``age`` (T) = days from the first
  purchase day to ``calibration_end``; both divided by the time unit: day = 1, week = 7 and
  month = 30.4375 days (the mean Gregorian month, 365.25 / 12). CDNOW's published numbers use
  exactly this: whole days between purchase dates divided by 7.
* ``monetary`` = mean spend per *repeat* purchase day (the first purchase is left out, as Fader,
  Hardie & Lee do), in major units. Spend is ``orders.total_amount`` (goods after discounts,
  excluding shipping), **gross of refunds**, the same money as GMV in the KPI catalogue: refunds
  are a separate process, and netting them would turn returned purchases into zero or negative
  spends that the Gamma-Gamma model cannot take.
* **Holdout** (``validate``): purchase days after ``calibration_end`` up to ``holdout_end``
  (inclusive), for the customers of the calibration period.

Scores are stored in the warehouse table ``customer_scores`` (replaced as a whole in one
transaction, so readers see the old scores or the new ones, never a mix); each fit is recorded in
``clv_fits`` under the ``params_id`` the scores refer to.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from ibis.backends import BaseBackend

from growthwheel.config import Settings, settings
from growthwheel.errors import InvalidArgumentError, NoDataError
from growthwheel.kit.money import currency_exponent
from growthwheel.stats import clv
from growthwheel.warehouse.schema import PAID_STATUSES

SCORES_TABLE = "customer_scores"
FITS_TABLE = "clv_fits"
MODELS = ("bgnbd", "paretonbd")

#: Columns of ``customer_scores`` (money in minor units of the shop currency, rounded half-up).
SCORES_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("customer_id", "VARCHAR", "the shop's customer id"),
    ("frequency", "BIGINT", "repeat purchase days in the calibration period"),
    ("recency", "DOUBLE", "first to last purchase day, in time units"),
    ("age", "DOUBLE", "first purchase day to the calibration end, in time units"),
    ("p_alive", "DOUBLE", "probability the customer is still active at the calibration end"),
    ("expected_purchases", "DOUBLE", "expected purchase days over the horizon"),
    ("expected_spend", "BIGINT", "expected spend per future purchase, minor units"),
    ("clv", "BIGINT", "discounted expected spend over the horizon, minor units"),
    ("currency", "VARCHAR", "currency of the money columns"),
    ("horizon", "BIGINT", "horizon, in time units"),
    ("time_unit", "VARCHAR", "day, week or month"),
    ("discount_rate", "DOUBLE", "discount rate per month"),
    ("calibration_end", "DATE", "last day of the data the models saw"),
    ("model", "VARCHAR", "repeat-purchase model: bgnbd or paretonbd (spend: gammagamma)"),
    ("params_id", "VARCHAR", "the fit in clv_fits these scores come from"),
    ("scored_at", "TIMESTAMP", "when the scores were computed, UTC"),
)
FITS_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("params_id", "VARCHAR", "hash of the fitted parameters and their data"),
    ("model", "VARCHAR", "repeat-purchase model"),
    ("time_unit", "VARCHAR", "time unit of the parameters"),
    ("calibration_end", "DATE", "last day of the data"),
    ("customers", "BIGINT", "customers in the calibration period"),
    ("fit", "VARCHAR", "JSON: both fits (parameters, standard errors, log-likelihoods, convergence)"),
    ("fitted_at", "TIMESTAMP", "when, UTC"),
)


def _check(time_unit: str, model: str) -> None:
    if time_unit not in clv.TIME_UNITS:
        raise InvalidArgumentError(
            f"unknown time unit {time_unit!r}; choose one of: {', '.join(clv.TIME_UNITS)}"
        )
    if model not in MODELS:
        raise InvalidArgumentError(f"unknown model {model!r}; choose one of: {', '.join(MODELS)}")


# --------------------------------------------------------------------------------------------
# Ibis: Table -> Table
# --------------------------------------------------------------------------------------------


def purchase_days(orders: ir.Table, *, last_day: date | None = None) -> ir.Table:
    """One row per customer and shop-local day with a paid order (up to ``last_day``):
    ``customer_id``, ``order_date``, ``spend`` (sum of ``total_amount``, minor units)."""
    o = orders.filter(orders.status.isin(PAID_STATUSES) & orders.customer_id.notnull())
    if last_day is not None:
        o = o.filter(o.order_date <= last_day)
    return o.group_by(["customer_id", "order_date"]).aggregate(
        spend=o.total_amount.fill_null(0).sum()
    )


def customer_summary(
    orders: ir.Table, *, calibration_end: date, holdout_end: date | None = None
) -> ir.Table:
    """Per customer of the calibration period: ``customer_id``, ``first_day``, ``frequency``,
    ``recency_days``, ``age_days``, ``repeat_spend`` (minor units, repeat days only) and, with a
    ``holdout_end``, ``holdout_frequency`` (purchase days after ``calibration_end`` up to it)."""
    days = purchase_days(orders, last_day=holdout_end or calibration_end)
    cal = days.filter(days.order_date <= calibration_end)
    cal = cal.mutate(first=cal.order_date.min().over(group_by=cal.customer_id))
    summary = cal.group_by("customer_id").aggregate(
        first_day=cal.first.min(),
        last_day=cal.order_date.max(),
        days=cal.count(),
        repeat_spend=ibis.ifelse(cal.order_date > cal.first, cal.spend, 0).sum(),
    )
    end = ibis.literal(calibration_end, type="date")
    summary = summary.select(
        "customer_id",
        "first_day",
        frequency=(summary.days - 1).cast("int64"),
        recency_days=summary.last_day.delta(summary.first_day, unit="day").cast("int64"),
        age_days=end.delta(summary.first_day, unit="day").cast("int64"),
        repeat_spend=summary.repeat_spend.cast("int64"),
    )
    if holdout_end is None:
        return summary
    later = days.filter(days.order_date > calibration_end)
    counted = later.group_by("customer_id").aggregate(holdout_frequency=later.count())
    joined = summary.left_join(counted, summary.customer_id == counted.customer_id)
    return joined.select(
        *(joined[c] for c in summary.columns),
        holdout_frequency=joined.holdout_frequency.fill_null(0).cast("int64"),
    )


def last_purchase_day(orders: ir.Table) -> date | None:
    """The last shop-local day with a paid order, or ``None`` when there is none."""
    paid = orders.filter(orders.status.isin(PAID_STATUSES))
    value = paid.order_date.max().execute()
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    return pd.Timestamp(value).date()


# --------------------------------------------------------------------------------------------
# Summaries and fits
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """The calibration-period summary of every customer, as a frame and as model input."""

    frame: pd.DataFrame
    data: clv.RfmData
    calibration_end: date
    holdout_end: date | None
    time_unit: str
    currency: str
    exponent: int


def to_rfm(frame: pd.DataFrame, *, time_unit: str, exponent: int) -> clv.RfmData:
    """Model input from a :func:`customer_summary` frame: durations in ``time_unit``, monetary in
    major units (NaN for customers without a repeat purchase)."""
    unit = clv.TIME_UNITS[time_unit]
    x = frame["frequency"].to_numpy(dtype=np.float64)
    spend = frame["repeat_spend"].to_numpy(dtype=np.float64) / 10.0**exponent
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(x > 0, spend / np.where(x > 0, x, 1.0), np.nan)
    return clv.RfmData(
        frequency=x,
        recency=frame["recency_days"].to_numpy(dtype=np.float64) / unit,
        age=frame["age_days"].to_numpy(dtype=np.float64) / unit,
        monetary=monetary,
        time_unit=time_unit,
    )


def load_summary(
    backend: BaseBackend,
    *,
    calibration_end: date | None = None,
    holdout_end: date | None = None,
    time_unit: str = "week",
    currency: str = "CNY",
) -> Summary:
    """Compute the summary in the warehouse and bring it back (one row per customer)."""
    _check(time_unit, "bgnbd")
    orders = backend.table("orders")
    if calibration_end is None:
        calibration_end = last_purchase_day(orders)
        if calibration_end is None:
            raise NoDataError("no paid orders in the warehouse: import some with `growthwheel import`")
    if holdout_end is not None and holdout_end <= calibration_end:
        raise InvalidArgumentError(
            f"the holdout end {holdout_end} must be after the calibration end {calibration_end}"
        )
    frame = customer_summary(orders, calibration_end=calibration_end, holdout_end=holdout_end)
    df = frame.order_by("customer_id").to_pandas()
    if df.empty:
        raise NoDataError(f"no customer made a paid purchase on or before {calibration_end}")
    exponent = currency_exponent(currency)
    data = to_rfm(df, time_unit=time_unit, exponent=exponent)
    return Summary(df, data, calibration_end, holdout_end, time_unit, currency, exponent)


@dataclass(frozen=True)
class Fits:
    """A repeat-purchase fit and a spend fit over one summary."""

    summary: Summary
    purchases: clv.Fit[clv.BgNbdParams] | clv.Fit[clv.ParetoNbdParams]
    spend: clv.Fit[clv.GammaGammaParams]

    @property
    def params_id(self) -> str:
        """A short stable id of the two fits and the data they describe."""
        key = json.dumps({
            "purchases": [self.purchases.model, self.purchases.params.as_dict()],
            "spend": self.spend.params.as_dict(),
            "time_unit": self.summary.time_unit,
            "calibration_end": self.summary.calibration_end.isoformat(),
            "customers": self.purchases.n_customers,
        }, sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: both fits, the data's dates, unit and currency."""
        return {
            "params_id": self.params_id,
            "calibration_end": self.summary.calibration_end.isoformat(),
            "time_unit": self.summary.time_unit,
            "currency": self.summary.currency,
            "customers": self.summary.data.n_customers,
            "repeat_buyers": self.summary.data.n_repeat_buyers,
            "purchases": self.purchases.to_dict(),
            "spend": self.spend.to_dict() | {
                "mean_spend": _finite(self.spend.params.mean_spend),
                "frequency_monetary_correlation": _finite(
                    self.spend.extra.get("frequency_monetary_correlation", math.nan)),
            },
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def fit_summary(summary: Summary, *, model: str = "bgnbd") -> Fits:
    """Fit the repeat-purchase model and Gamma-Gamma on a summary."""
    _check(summary.time_unit, model)
    purchases = clv.fit_purchases(summary.data, model)
    spend = clv.fit_gamma_gamma(summary.data)
    return Fits(summary, purchases, spend)


def fit_models(
    backend: BaseBackend,
    *,
    model: str = "bgnbd",
    time_unit: str = "week",
    calibration_end: date | None = None,
    currency: str = "CNY",
) -> Fits:
    """Summarise the warehouse up to ``calibration_end`` and fit both models."""
    _check(time_unit, model)
    summary = load_summary(backend, calibration_end=calibration_end, time_unit=time_unit,
                           currency=currency)
    return fit_summary(summary, model=model)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Validation:
    """Predicted vs actual purchases in the holdout period, for a repeat-purchase fit."""

    summary: Summary
    purchases: clv.Fit[clv.BgNbdParams] | clv.Fit[clv.ParetoNbdParams]
    holdout_length: float
    comparison: clv.HoldoutComparison

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with ``actual_total`` and ``predicted_total`` at the top level."""
        c = self.comparison
        return {
            "calibration_end": self.summary.calibration_end.isoformat(),
            "holdout_end": self.summary.holdout_end.isoformat() if self.summary.holdout_end else None,
            "time_unit": self.summary.time_unit,
            "holdout_length": self.holdout_length,
            "customers": c.customers,
            "actual_total": c.actual_total,
            "predicted_total": c.predicted_total,
            "mean_absolute_error": c.mean_absolute_error,
            "by_frequency": [row.__dict__ for row in c.rows],
            "fit": self.purchases.to_dict(),
        }


def validate(
    backend: BaseBackend,
    *,
    calibration_end: date,
    holdout_end: date,
    model: str = "bgnbd",
    time_unit: str = "week",
) -> Validation:
    """Fit on the calibration period and compare each customer's expected purchase days in the
    holdout period with the actual ones, in total and by calibration frequency."""
    _check(time_unit, model)
    summary = load_summary(backend, calibration_end=calibration_end, holdout_end=holdout_end,
                           time_unit=time_unit)
    fit = clv.fit_purchases(summary.data, model)
    length = (holdout_end - calibration_end).days / clv.TIME_UNITS[time_unit]
    d = summary.data
    predicted = clv.expected_purchases(fit.params, length, d.frequency, d.recency, d.age)
    actual = summary.frame["holdout_frequency"].to_numpy(dtype=np.float64)
    return Validation(summary, fit, length, clv.compare_holdout(d.frequency, predicted, actual))


# --------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    """Per-customer scores (money in minor units) and the fits they come from."""

    frame: pd.DataFrame
    fits: Fits
    horizon: int
    discount_rate: float
    scored_at: datetime


def _minor(values: np.ndarray[Any, Any], exponent: int) -> np.ndarray[Any, Any]:
    """Major-unit amounts as integer minor units, half-up (amounts here are never negative)."""
    return np.floor(values * 10.0**exponent + 0.5).astype(np.int64)


def compute_scores(
    backend: BaseBackend,
    *,
    horizon: int = 12,
    time_unit: str = "month",
    discount_rate: float = 0.01,
    model: str = "bgnbd",
    calibration_end: date | None = None,
    currency: str = "CNY",
) -> Scores:
    """Fit both models and score every customer of the calibration period.

    ``horizon`` is in ``time_unit`` periods; ``discount_rate`` is per month (converted to the time
    unit). ``expected_purchases`` is over the whole horizon; ``clv`` sums, period by period, the
    expected purchases times the expected spend, discounted to the calibration end.
    """
    _check(time_unit, model)
    if horizon < 1:
        raise InvalidArgumentError(f"horizon {horizon} must be at least 1 {time_unit}")
    per_unit = clv.discount_per_unit(discount_rate, time_unit)
    fits = fit_models(backend, model=model, time_unit=time_unit, calibration_end=calibration_end,
                      currency=currency)
    summary = fits.summary
    d = summary.data
    assert d.monetary is not None
    scored = clv.score_customers(fits.purchases.params, fits.spend.params, d.frequency, d.recency,
                                 d.age, d.monetary, periods=horizon, discount_rate=per_unit)
    scored_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    frame = pd.DataFrame({
        "customer_id": summary.frame["customer_id"].astype(str).to_numpy(),
        "frequency": summary.frame["frequency"].to_numpy(dtype=np.int64),
        "recency": d.recency,
        "age": d.age,
        "p_alive": scored.p_alive,
        "expected_purchases": scored.expected_purchases,
        "expected_spend": _minor(scored.expected_spend, summary.exponent),
        "clv": _minor(scored.clv, summary.exponent),
        "currency": summary.currency,
        "horizon": np.int64(horizon),
        "time_unit": time_unit,
        "discount_rate": float(discount_rate),
        "calibration_end": summary.calibration_end,
        "model": fits.purchases.model,
        "params_id": fits.params_id,
        "scored_at": scored_at,
    })
    return Scores(frame, fits, horizon, discount_rate, scored_at)


def _ddl(name: str, columns: tuple[tuple[str, str, str], ...]) -> str:
    body = ", ".join(f"{column} {sql_type}" for column, sql_type, _ in columns)
    return f"CREATE TABLE IF NOT EXISTS {name} ({body})"


def store_scores(scores: Scores, cfg: Settings | None = None) -> int:
    """Replace ``customer_scores`` with these scores and record the fit in ``clv_fits``, in one
    transaction. Returns the number of customers stored. Fails with one clear line when another
    process (the server) holds the warehouse."""
    from growthwheel.warehouse import db

    con = db.open_duckdb(cfg or settings())
    try:
        return write_scores(con, scores)
    finally:
        con.close()


def write_scores(con: duckdb.DuckDBPyConnection, scores: Scores) -> int:
    """:func:`store_scores` on a read-write DuckDB connection the caller holds (the server's
    warehouse writer): one transaction. Returns the number of customers stored."""
    fits = scores.fits
    fit_row = pd.DataFrame({
        "params_id": [fits.params_id],
        "model": [fits.purchases.model],
        "time_unit": [fits.summary.time_unit],
        "calibration_end": [fits.summary.calibration_end],
        "customers": [fits.summary.data.n_customers],
        "fit": [json.dumps(fits.to_dict(), sort_keys=True)],
        "fitted_at": [scores.scored_at],
    })
    names = ", ".join(c for c, _, _ in SCORES_COLUMNS)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(_ddl(SCORES_TABLE, SCORES_COLUMNS))
        con.execute(_ddl(FITS_TABLE, FITS_COLUMNS))
        con.register("_clv_scores", scores.frame)
        con.register("_clv_fit", fit_row)
        con.execute(f"DELETE FROM {SCORES_TABLE}")
        con.execute(f"INSERT INTO {SCORES_TABLE} ({names}) SELECT {names} FROM _clv_scores")
        con.execute(f"DELETE FROM {FITS_TABLE} WHERE params_id = ?", [fits.params_id])
        con.execute(f"INSERT INTO {FITS_TABLE} SELECT * FROM _clv_fit")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for view in ("_clv_scores", "_clv_fit"):
            con.unregister(view)
    return len(scores.frame)


def score_customers(
    cfg: Settings | None = None,
    *,
    horizon: int = 12,
    time_unit: str = "month",
    discount_rate: float = 0.01,
    model: str = "bgnbd",
    calibration_end: date | None = None,
) -> Scores:
    """Score every customer from the warehouse of ``cfg`` and store the scores
    (``customer_scores``); returns them. See :func:`compute_scores`."""
    from growthwheel.warehouse import connect

    cfg = cfg or settings()
    backend = connect(cfg)
    try:
        scores = compute_scores(backend, horizon=horizon, time_unit=time_unit,
                                discount_rate=discount_rate, model=model,
                                calibration_end=calibration_end, currency=cfg.shop().currency)
    finally:
        if cfg.warehouse == "duckdb":  # free the file before writing (a Spark session is shared)
            backend.disconnect()
    store_scores(scores, cfg)
    return scores
