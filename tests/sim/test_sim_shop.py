"""The demo-shop simulator: deterministic files in the generic format with a known ground truth.

Every check reads the written files back with pandas and works the answer out independently of the
simulator's own code; the ground truth is used only as the parameters a user would check against.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from growthwheel.config import Settings
from growthwheel.sim import build_demo_files
from growthwheel.warehouse.ingest import import_files
from growthwheel.warehouse.schema import ORDER_STATUSES, STANDARD_EVENT_TYPES, TABLES

CUSTOMERS = 2_000
END = pd.Timestamp("2026-01-01 00:00:00+08:00")


@dataclass
class Demo:
    """The files of one simulated shop, read back as text."""

    dir: Path
    paths: dict[str, Path]
    truth: dict[str, Any]
    frames: dict[str, pd.DataFrame]


def read_text_table(path: Path) -> pd.DataFrame:
    """Every column as text, empty cells as missing (what the importer sees)."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path).astype(object).where(lambda f: f.notna(), None)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    return frame.astype(object).where(frame.notna(), None)


def cents(values: pd.Series) -> pd.Series:
    """Major-unit decimal text to integer minor units, exactly (Decimal, no float)."""
    return values.map(lambda v: int(Decimal(v) * 100)).astype("int64")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    out = tmp_path_factory.mktemp("demo")
    files = build_demo_files(out, customers=CUSTOMERS, seed=7)
    frames = {name: read_text_table(path) for name, path in files.paths.items()}
    truth = json.loads(files.ground_truth.read_text("utf-8"))
    return Demo(out, files.paths, truth, frames)


@pytest.fixture(scope="module")
def orders(demo: Demo) -> pd.DataFrame:
    """One row per order, summed from its lines."""
    lines = demo.frames["order_lines"].copy()
    for col in ("line_total", "refunded_amount", "discount", "unit_price"):
        lines[col] = cents(lines[col])
    lines["ordered"] = pd.to_datetime(lines["ordered_at"], format="ISO8601")
    return lines.groupby("order_id").agg(
        customer_id=("customer_id", "first"),
        ordered=("ordered", "first"),
        total=("line_total", "sum"),
        refunded=("refunded_amount", "sum"),
        discount=("discount", "sum"),
        status=("status", "first"),
        lines=("sku", "size"),
    )


def test_same_seed_gives_identical_files_and_another_seed_different_ones(
    demo: Demo, tmp_path: Path
) -> None:
    again = build_demo_files(tmp_path / "again", customers=CUSTOMERS, seed=7)
    other = build_demo_files(tmp_path / "other", customers=CUSTOMERS, seed=8)
    for name, path in demo.paths.items():
        assert again.paths[name].read_bytes() == path.read_bytes(), name
    assert again.ground_truth.read_bytes() == (demo.dir / "ground_truth.json").read_bytes()
    for name in ("customers", "order_lines", "events", "reviews", "ad_spend"):
        assert other.paths[name].read_bytes() != demo.paths[name].read_bytes(), name


def test_files_use_generic_columns_and_fill_the_required_ones(demo: Demo) -> None:
    assert set(demo.paths) == {"products", "customers", "order_lines", "events", "ad_spend", "reviews",
                               "inventory"}
    assert demo.paths["order_lines"].suffix == demo.paths["events"].suffix == ".parquet"
    for name, frame in demo.frames.items():
        table = TABLES[name]
        assert len(frame) > 0, name
        known = {c.name for c in table.inputs}
        assert set(frame.columns) <= known, (name, set(frame.columns) - known)
        for column in table.required:
            assert frame[column].notna().all(), (name, column)
        for col in table.inputs:
            values = frame[col.name].dropna() if col.name in frame else pd.Series([], dtype=object)
            if col.kind == "datetime":
                assert values.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00").all(), col.name
            if col.kind == "money":
                assert values.str.fullmatch(r"\d+\.\d\d").all(), (name, col.name)
            if col.kind == "int":
                assert values.str.fullmatch(r"\d+").all(), (name, col.name)
    lines = demo.frames["order_lines"]
    assert set(lines["status"]) <= set(ORDER_STATUSES)
    assert set(lines["currency"]) == {"CNY"}
    events = demo.frames["events"]
    assert set(events["type"]) == set(STANDARD_EVENT_TYPES) - {"search"}
    assert (events["customer_id"].notna() | events["anonymous_id"].notna()).all()
    assert events["event_id"].is_unique
    assert demo.frames["customers"]["customer_id"].is_unique
    assert set(lines["customer_id"]) == set(demo.frames["customers"]["customer_id"])
    assert set(lines["sku"]) <= set(demo.frames["products"]["sku"])
    # Nothing is sold or viewed before its launch day.
    launched = demo.frames["products"].set_index("sku")["launched_at"]
    assert (lines["ordered_at"].str[:10] >= lines["sku"].map(launched)).all()
    viewed = events.dropna(subset=["sku"])
    assert (viewed["occurred_at"].str[:10] >= viewed["sku"].map(launched)).all()


def test_money_adds_up_and_refunds_never_exceed_the_line(demo: Demo, orders: pd.DataFrame) -> None:
    lines = demo.frames["order_lines"]
    total, refunded = cents(lines["line_total"]), cents(lines["refunded_amount"])
    unit, discount = cents(lines["unit_price"]), cents(lines["discount"])
    quantity = lines["quantity"].astype(int)
    assert (total >= 0).all()
    assert (refunded <= total).all()
    assert (unit * quantity - discount == total).all()
    assert not lines.duplicated(["order_id", "sku"]).any()
    refunded_orders = orders[orders["status"] == "refunded"]
    partial = orders[orders["status"] == "partially_refunded"]
    assert len(refunded_orders) > 0
    assert len(partial) > 0
    assert (refunded_orders["refunded"] == refunded_orders["total"]).all()
    assert ((partial["refunded"] > 0) & (partial["refunded"] < partial["total"])).all()
    other = orders[~orders["status"].isin(["refunded", "partially_refunded"])]
    assert (other["refunded"] == 0).all()
    # One status per order, and at most one order per customer and shop-local day.
    assert (lines.groupby("order_id")["status"].nunique() == 1).all()
    assert not orders.assign(day=orders["ordered"].dt.date).duplicated(["customer_id", "day"]).any()
    # Discounts are heavier in the Double 11 window than in the rest of the year.
    day = orders["ordered"].dt.tz_convert("Asia/Shanghai").dt.date
    d11 = (day >= date(2025, 10, 20)) & (day <= date(2025, 11, 11))
    rate = orders["discount"] / (orders["total"] + orders["discount"])
    assert rate[d11].mean() > 2 * rate[~d11].mean()


def test_double_11_and_618_peaks_stand_out(orders: pd.DataFrame) -> None:
    per_day = orders.groupby(orders["ordered"].dt.tz_convert("Asia/Shanghai").dt.date).size()
    per_day = per_day.reindex(pd.date_range("2025-01-01", "2025-12-31").date, fill_value=0)
    median = per_day.median()
    assert per_day[date(2025, 11, 11)] > 3 * median
    assert per_day[date(2025, 6, 18)] > 2 * median
    assert per_day.idxmax() == date(2025, 11, 11)


def test_funnel_drops_off_step_by_step_and_every_order_was_bought_in_a_session(
    demo: Demo, orders: pd.DataFrame
) -> None:
    events = demo.frames["events"]
    reached = {t: events.loc[events["type"] == t, "session_id"].nunique() for t in
               ("view", "add_to_cart", "checkout", "purchase")}
    assert reached["view"] == events["session_id"].nunique()
    assert reached["view"] > reached["add_to_cart"] > reached["checkout"] > reached["purchase"]
    steps = demo.truth["funnel"]["step_probabilities"]
    for (a, b), p in zip(
        [("view", "add_to_cart"), ("add_to_cart", "checkout"), ("checkout", "purchase")],
        steps.values(),
        strict=True,
    ):
        se = np.sqrt(p * (1 - p) / reached[a])
        assert abs(reached[b] / reached[a] - p) < 5 * se, (a, b)
    purchases = events[events["type"] == "purchase"]
    assert purchases["order_id"].notna().all()
    assert sorted(purchases["order_id"]) == sorted(orders.index)
    checkout_sessions = set(events.loc[events["type"] == "checkout", "session_id"])
    assert set(purchases["session_id"]) <= checkout_sessions
    # Within a session, events never go back in time and the purchase comes last.
    t = pd.to_datetime(events["occurred_at"], format="ISO8601")
    by_session = events.assign(t=t).groupby("session_id")["t"]
    assert (by_session.diff().dropna() >= pd.Timedelta(0)).all()
    # Landing URLs carry the session's UTM parameters.
    landing = events.drop_duplicates("session_id")
    tagged = landing[landing["utm_source"].notna()]
    assert len(tagged) > 0
    assert all(f"utm_source={s}" in u for s, u in zip(tagged["utm_source"], tagged["url"], strict=True))


def bgnbd_expected_repeats(t: np.ndarray, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    """E[X(t)] of the BG/NBD model (Fader, Hardie & Lee 2005, eq. 7)."""
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


def test_repeat_buying_and_spend_match_the_ground_truth(demo: Demo, orders: pd.DataFrame) -> None:
    bg = demo.truth["repeat_purchase"]
    assert bg["time_unit"] == "week"
    per_customer = orders.groupby("customer_id").agg(first=("ordered", "min"), n=("total", "size"))
    repeats = (per_customer["n"] - 1).to_numpy(float)
    first_day = per_customer["first"].dt.tz_convert("Asia/Shanghai").dt.normalize()
    weeks = ((END - first_day).dt.total_seconds() / (7 * 86400)).to_numpy()
    expected = bgnbd_expected_repeats(weeks, bg["r"], bg["alpha"], bg["a"], bg["b"])
    se = repeats.std() * np.sqrt(len(repeats))
    assert abs(repeats.sum() - expected.sum()) < 4 * se
    assert 0.2 < (repeats > 0).mean() < 0.5  # a plausible repurchase rate for a year
    # Latent per-customer values: sample means near the population means.
    latent = pd.read_parquet(demo.dir / "ground_truth_customers.parquet")
    lam = latent["lambda_per_week"].to_numpy()
    mean, sd = bg["r"] / bg["alpha"], np.sqrt(bg["r"]) / bg["alpha"]
    assert abs(lam.mean() - mean) < 4 * sd / np.sqrt(len(lam))
    p = latent["p_dropout"].to_numpy()
    assert abs(p.mean() - bg["a"] / (bg["a"] + bg["b"])) < 4 * p.std() / np.sqrt(len(p))
    # Spend per order: Gamma-Gamma mean p * gamma / (q - 1), within sampling error.
    gg = demo.truth["monetary"]
    spend = orders["total"].to_numpy() / 100
    target = gg["p"] * gg["gamma"] / (gg["q"] - 1)
    assert abs(spend.mean() - target) < 4 * spend.std() / np.sqrt(len(spend)) + 0.03 * target


def test_ratings_follow_the_experience(demo: Demo, orders: pd.DataFrame) -> None:
    reviews = demo.frames["reviews"].copy()
    reviews["rating"] = reviews["rating"].astype(int)
    assert reviews["rating"].between(1, 5).all()
    assert set(reviews["language"]) == {"zh", "en"}
    assert reviews["body"].str.len().gt(0).all()
    assert reviews["title"].str.len().gt(0).all()
    zh = reviews[reviews["language"] == "zh"]
    assert zh["body"].map(lambda s: re.search(r"[\u4e00-\u9fff]", s) is not None).all()
    status = reviews["order_id"].map(orders["status"])
    refunded = status.isin(["refunded", "partially_refunded"])
    good = reviews.loc[~refunded, "rating"]
    assert refunded.sum() > 10
    assert reviews.loc[refunded, "rating"].mean() < good.mean() - 1.0
    assert (good >= 4).mean() > 0.7
    written = pd.to_datetime(reviews["created_at"], format="ISO8601")
    assert (written.to_numpy() > reviews["order_id"].map(orders["ordered"]).to_numpy()).all()


def test_ad_spend_clicks_are_the_paid_sessions_and_channels_bring_customers(demo: Demo) -> None:
    spend = demo.frames["ad_spend"]
    channels = demo.truth["acquisition"]["channels"]
    paid = sorted(c for c, v in channels.items() if v["paid"])
    assert sorted(spend["channel"].unique()) == paid
    assert len(spend) == 365 * len(paid)
    for name in paid:
        assert 0 < channels[name]["beta"] < 1
        assert channels[name]["k"] > 0
    clicks, impressions = spend["clicks"].astype(int), spend["impressions"].astype(int)
    assert (clicks <= impressions).all()
    events = demo.frames["events"]
    landing = events.drop_duplicates("session_id")
    sessions = landing.groupby([landing["occurred_at"].str[:10], "utm_source"]).size()
    reported = spend.set_index(["date", "channel"])["clicks"].astype(int)
    assert reported.sum() == sessions.reindex(reported.index, fill_value=0).sum()
    assert (reported == sessions.reindex(reported.index, fill_value=0)).all()
    customers = demo.frames["customers"]
    counts = customers["channel"].value_counts()
    for name, entry in channels.items():
        exp = entry["expected_new_customers"]
        assert abs(counts.get(name, 0) - exp) < 4 * np.sqrt(exp) + 1, name


def test_files_import_without_a_single_quarantined_row(demo: Demo, tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path / "data")
    for name in ("products", "customers", "order_lines", "events", "ad_spend", "reviews"):
        result = import_files(name, [demo.paths[name]], cfg=cfg)
        assert result.rows_quarantined == 0, name
        assert result.rows_read == len(demo.frames[name]), name
