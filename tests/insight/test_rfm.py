"""RFM scores and segments on a real DuckDB warehouse.

A ten-customer shop whose scores and segments are worked out by hand below, then a randomised shop
checked against an independent pandas computation of the same definitions.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from growthwheel.errors import InvalidArgumentError
from growthwheel.insight.rfm import (
    CLASSIC_GRID,
    CLASSIC_SEGMENTS,
    SCORE_COLUMNS,
    VALUE_CLASSES,
    rfm_grid,
    rfm_report,
    rfm_scores,
    rfm_segment_summary,
    segment_order,
)
from growthwheel.warehouse import schema
from tiny_warehouse import make_warehouse

AS_OF = date(2024, 3, 31)




def order(order_id: str, customer: str, day: date, total: int, status: str = "paid",
          refunded: int | None = 0) -> dict[str, Any]:
    """A stored order row placed at noon shop time on ``day`` (04:00 UTC)."""
    return {
        "order_id": order_id, "customer_id": customer, "order_date": day,
        "ordered_at": datetime(day.year, day.month, day.day, 4, tzinfo=UTC).replace(tzinfo=None),
        "status": status,
        "total_amount": total, "refunded_amount": refunded, "currency": "CNY",
    }


def split(customer: str, last: date, count: int, net: int) -> list[dict[str, Any]]:
    """``count`` paid orders of ``customer``, the last on ``last`` (the others 1, 2, ... days
    before), net revenue ``net`` in total: the last order carries what the others do not."""
    rows = [order(f"{customer}{i}", customer, last - timedelta(days=i), 1000)
            for i in range(1, count)]
    rows.append(order(f"{customer}0", customer, last, net - 1000 * (count - 1)))
    return rows


# The hand-built shop, as of 2024-03-31 (recency days, frequency, net revenue in fen):
#   A   0  3   30000          F  60  2   12000
#   B   0  1    5000          G  90  1    3000
#   C   6  2   20000          H 121  4   60000
#   D  30  5  100000          I 182  3   80000
#   E  45  1    5000          J 304  1    1000
# plus rows that must not count: A's order after the as-of date, G's cancelled order, D's
# refund (D's orders total 110000 of which 10000 refunded: net 100000), K's pending order.
def hand_shop() -> Any:
    rows = [
        *split("A", date(2024, 3, 31), 3, 30000),
        order("Alate", "A", date(2024, 4, 2), 99900),
        *split("B", date(2024, 3, 31), 1, 5000),
        *split("C", date(2024, 3, 25), 2, 20000),
        *split("D", date(2024, 3, 1), 4, 90000),
        order("Dref", "D", date(2024, 2, 1), 20000, "partially_refunded", refunded=10000),
        *split("E", date(2024, 2, 15), 1, 5000),
        *split("F", date(2024, 1, 31), 2, 12000),
        *split("G", date(2024, 1, 1), 1, 3000),
        order("Gx", "G", date(2024, 3, 30), 50000, "cancelled"),
        *split("H", date(2023, 12, 1), 4, 60000),
        *split("I", date(2023, 10, 1), 3, 80000),
        *split("J", date(2023, 6, 1), 1, 1000),
        order("K1", "K", date(2024, 3, 1), 7000, "pending"),
    ]
    rows[-3]["refunded_amount"] = None  # a missing refund is no refund
    return make_warehouse({"orders": rows})


def scored(con: Any, as_of: date = AS_OF, cut: str = "mean") -> dict[str, dict[str, Any]]:
    df = rfm_scores(con.table("orders"), as_of, cut=cut).execute()
    return {r["customer_id"]: r for r in df.to_dict(orient="records")}


def test_scores_and_segments_worked_out_by_hand() -> None:
    s = scored(hand_shop())
    assert set(s) == set("ABCDEFGHIJ")  # K never paid
    raw = {c: (s[c]["recency_days"], s[c]["frequency"], s[c]["monetary"]) for c in s}
    assert raw == {
        "A": (0, 3, 30000), "B": (0, 1, 5000), "C": (6, 2, 20000), "D": (30, 5, 100000),
        "E": (45, 1, 5000), "F": (60, 2, 12000), "G": (90, 1, 3000), "H": (121, 4, 60000),
        "I": (182, 3, 80000), "J": (304, 1, 1000),
    }
    # n = 10, so score = 1 + floor(5 b / 10) = 1 + floor(b / 2), b = customers strictly worse.
    # R (worse = more days): J b0→1, I b1→1, H b2→2, G b3→2, F b4→3, E b5→3, D b6→4, C b7→4,
    #   A and B tie at 0 days: both b8→5 (an NTILE would have split them 4 / 5).
    # F: four 1-order customers (B E G J) b0→1; C F (2) b4 quintile 3; A I (3) b6 quintile 4;
    #   H (4) b8 quintile 5; D b9 quintile 5. The 1-order tie covers the cut at 2n/5, so F = 2 would
    #   stay empty: each next value rises by at most one, C F → 2, A I → 3, H → 4, D → 5.
    # M: J b0→1, G b1→1, B E tie at 5000 b2→2, F b4→3, C b5→3, A b6→4, H b7→4, I b8→5, D b9→5.
    scores = {c: (s[c]["r_score"], s[c]["f_score"], s[c]["m_score"]) for c in s}
    assert scores == {
        "A": (5, 3, 4), "B": (5, 1, 2), "C": (4, 2, 3), "D": (4, 5, 5), "E": (3, 1, 2),
        "F": (3, 2, 3), "G": (2, 1, 1), "H": (2, 4, 4), "I": (1, 3, 5), "J": (1, 1, 1),
    }
    assert s["A"]["rfm"] == "534"
    assert s["J"]["rfm"] == "111"
    # FM = floor((F + M + 1) / 2): A 4, B 2, C 3, D 5, E 2, F 3, G 1, H 4, I 4, J 1; then the grid.
    assert {c: s[c]["fm_score"] for c in s} == {
        "A": 4, "B": 2, "C": 3, "D": 5, "E": 2, "F": 3, "G": 1, "H": 4, "I": 4, "J": 1,
    }
    assert {c: s[c]["segment"] for c in s} == {
        "A": "Champions", "B": "Potential Loyalist", "C": "Loyal Customers", "D": "Champions",
        "E": "Need Attention", "F": "Need Attention", "G": "About To Sleep", "H": "At Risk",
        "I": "Can't Lose Them", "J": "Lost",
    }
    # Value classes against the means: recency 838/10 = 83.8 days (A–F recent), frequency
    # 23/10 = 2.3 (A D H I high), monetary 316000/10 = 31600 (D H I high; A's 30000 is low).
    assert {c: s[c]["value_class"] for c in s} == {
        "A": "一般价值", "B": "一般发展", "C": "一般发展", "D": "重要价值", "E": "一般发展",
        "F": "一般发展", "G": "一般挽留", "H": "重要保持", "I": "重要保持", "J": "一般挽留",
    }
    assert list(rfm_scores(hand_shop().table("orders"), AS_OF).columns) == list(SCORE_COLUMNS)


def test_value_classes_against_the_median() -> None:
    # Medians: recency (45 + 60) / 2 = 52.5 (A–E recent, F not); frequency (2 + 2) / 2 = 2
    # (A D H I above); monetary (12000 + 20000) / 2 = 16000 (C A H I D above).
    s = scored(hand_shop(), cut="median")
    assert {c: s[c]["value_class"] for c in s} == {
        "A": "重要价值", "B": "一般发展", "C": "重要发展", "D": "重要价值", "E": "一般发展",
        "F": "一般挽留", "G": "一般挽留", "H": "重要保持", "I": "重要保持", "J": "一般挽留",
    }
    with pytest.raises(InvalidArgumentError, match="cut"):
        rfm_scores(hand_shop().table("orders"), AS_OF, cut="mode")


def test_as_of_an_earlier_date_sees_only_what_was_known_then() -> None:
    # On 2023-12-31 only H (last order 2023-12-01, 4 orders), I and J had bought; D's and
    # everyone else's orders come later. n = 3: score = 1 + floor(5 b / 3).
    s = scored(hand_shop(), as_of=date(2023, 12, 31))
    assert set(s) == {"H", "I", "J"}
    assert (s["H"]["recency_days"], s["I"]["recency_days"], s["J"]["recency_days"]) == (30, 91, 213)
    # Quintiles: R J b0→1, I b1→2, H b2→4; F J (1) b0→1, I (3) b1→2, H (4) b2→4; M J (1000)
    # b0→1, H (60000) b1→2, I (80000) b2→4. A score never skips a level, so each 4 becomes 3.
    assert [(s[c]["r_score"], s[c]["f_score"], s[c]["m_score"]) for c in "HIJ"] == [
        (3, 3, 2), (2, 2, 3), (1, 1, 1)]


def test_a_single_customer_with_a_single_order() -> None:
    con = make_warehouse({"orders": [order("o1", "solo", date(2024, 1, 1), 4200)]})
    s = scored(con, as_of=date(2024, 1, 11))
    # Nobody is worse than them: b = 0, every score 1; and nobody is above the mean.
    assert s["solo"]["recency_days"] == 10
    assert s["solo"]["rfm"] == "111"
    assert s["solo"]["segment"] == "Lost"
    assert s["solo"]["value_class"] == "一般挽留"
    assert rfm_scores(con.table("orders"), date(2023, 12, 31)).execute().empty


def test_grid_and_segment_summaries() -> None:
    s = rfm_scores(hand_shop().table("orders"), AS_OF)
    grid = rfm_grid(s).execute()
    cells = {(r.r_score, r.f_score): (r.customers, r.orders, r.monetary)
             for r in grid.itertuples()}
    # R/F cells from the scores above: (5,3) A; (5,1) B; (4,2) C; (4,5) D; (3,1) E; (3,2) F;
    # (2,1) G; (2,4) H; (1,3) I; (1,1) J — ten cells of one customer each.
    assert cells == {
        (5, 3): (1, 3, 30000), (5, 1): (1, 1, 5000), (4, 2): (1, 2, 20000),
        (4, 5): (1, 5, 100000), (3, 1): (1, 1, 5000), (3, 2): (1, 2, 12000),
        (2, 1): (1, 1, 3000), (2, 4): (1, 4, 60000), (1, 3): (1, 3, 80000), (1, 1): (1, 1, 1000),
    }
    assert [(r.r_score, r.f_score) for r in grid.itertuples()][:2] == [(5, 3), (5, 1)]
    classic = rfm_segment_summary(s).execute().set_index("segment")
    assert classic.loc["Champions", "customers"] == 2  # A and D
    assert classic.loc["Champions", "monetary"] == 130000
    assert classic.loc["Champions", "orders"] == 8
    assert classic.loc["Need Attention", "recency_days_sum"] == 45 + 60
    assert classic["customers"].sum() == 10
    value = rfm_segment_summary(s, scheme="value").execute().set_index("segment")
    assert value.loc["一般发展", "customers"] == 4  # B C E F
    assert value.loc["重要保持", "monetary"] == 140000  # H I
    with pytest.raises(InvalidArgumentError):
        rfm_segment_summary(s, scheme="nope")


def test_report_summarises_both_schemes_and_the_grid() -> None:
    report = rfm_report(hand_shop().table("orders"))  # as of the last paid order: A's 2024-04-02
    assert report["as_of"] == "2024-04-02"
    report = rfm_report(hand_shop().table("orders"), AS_OF)
    assert report["customers"] == 10
    segments = {r["segment"]: r for r in report["segments"]}
    assert list(segments) == segment_order("classic")
    # Champions are A (0 days, 3 orders, 300.00) and D (30 days, 5 orders, 1000.00).
    champions = segments["Champions"]
    assert (champions["customers"], champions["share"], champions["orders"]) == (2, 0.2, 8)
    assert (champions["monetary"], champions["avg_monetary"]) == (1300.0, 650.0)
    assert (champions["avg_recency_days"], champions["avg_frequency"]) == (15.0, 4.0)
    assert segments["New Customers"]["customers"] == 0
    assert segments["New Customers"]["avg_recency_days"] is None
    classes = {r["segment"]: r["customers"] for r in report["value_classes"]}
    assert classes == {"重要价值": 1, "重要发展": 0, "重要保持": 2, "重要挽留": 0,
                       "一般价值": 1, "一般发展": 4, "一般保持": 0, "一般挽留": 2}
    grid = {(c["r_score"], c["f_score"]): c["customers"] for c in report["grid"]}
    assert len(grid) == 25
    assert sum(grid.values()) == 10
    assert (grid[(5, 3)], grid[(1, 1)], grid[(5, 5)]) == (1, 1, 0)


def test_the_grid_covers_every_cell_once_and_every_segment() -> None:
    cells = [(r, fm) for r in CLASSIC_GRID for fm in range(1, 6)]
    assert len(cells) == 25
    assert {name for row in CLASSIC_GRID.values() for name in row} == {
        s.name for s in CLASSIC_SEGMENTS}
    assert len(CLASSIC_SEGMENTS) == 11
    assert len(VALUE_CLASSES) == 8
    assert segment_order("value")[0] == "重要价值"
    assert segment_order("classic")[-1] == "Lost"


# ---------------------------------------------------------------------------------------------
# A randomised shop against pandas, written from the definitions.
# ---------------------------------------------------------------------------------------------


def pandas_rfm(orders: pd.DataFrame, as_of: date) -> pd.DataFrame:
    paid = orders[orders["status"].isin(schema.PAID_STATUSES)
                  & (orders["order_date"] <= as_of)].copy()
    paid["net"] = paid["total_amount"] - paid["refunded_amount"].fillna(0)
    per = paid.groupby("customer_id").agg(
        last=("order_date", "max"), frequency=("order_id", "count"), monetary=("net", "sum"))
    per["recency_days"] = [(as_of - d).days for d in per["last"]]
    n = len(per)

    def score(values: pd.Series, higher_is_better: bool) -> pd.Series:
        # quintile of each value by rank (ties: the lowest rank), then from one distinct value to
        # the next better one the score rises by at most one
        worse = (values if higher_is_better else -values).rank(method="min") - 1
        quintile = (1 + (5 * worse) // n).astype(int)
        by_value: dict[float, int] = {}
        last = 0
        for value in sorted(set(values), reverse=not higher_is_better):
            last = min(int(quintile[values == value].iloc[0]), last + 1)
            by_value[value] = last
        return values.map(by_value).astype(int)

    per["r_score"] = score(per["recency_days"], False)
    per["f_score"] = score(per["frequency"], True)
    per["m_score"] = score(per["monetary"], True)
    return per


def test_random_shop_matches_pandas() -> None:
    rng = random.Random(11)
    rows = []
    statuses = [*schema.PAID_STATUSES, "pending", "cancelled"]
    for i in range(1500):
        day = date(2024, 1, 1) + timedelta(days=rng.randrange(120))
        total = rng.choice([990, 1990, 4990, 9900, rng.randrange(100, 50000)])
        refunded = rng.choice([0, 0, 0, None, total // 2])
        rows.append(order(f"o{i}", f"c{rng.randrange(300)}", day, total, rng.choice(statuses),
                          refunded))
    con = make_warehouse({"orders": rows})
    as_of = date(2024, 3, 15)
    got = rfm_scores(con.table("orders"), as_of).execute().set_index("customer_id").sort_index()
    want = pandas_rfm(pd.DataFrame(rows), as_of).sort_index()
    assert list(got.index) == list(want.index)
    for column in ("recency_days", "frequency", "monetary", "r_score", "f_score", "m_score"):
        assert got[column].astype(int).tolist() == want[column].astype(int).tolist(), column
    # Ties are frequent here (many equal frequencies and prices) and always get equal scores.
    for column, score in (("frequency", "f_score"), ("monetary", "m_score")):
        assert (got.groupby(column)[score].nunique() == 1).all()


# ---------------------------------------------------------------------------------------------
# The same answers on Spark: RFM, lifecycle, cohorts and funnels over one imported shop.
# ---------------------------------------------------------------------------------------------


def _random_shop_csv(tmp: Any) -> tuple[Any, Any]:
    rng = random.Random(5)
    order_lines = ["order_id,customer_id,ordered_at,total,refunded_amount,status,channel"]
    for i in range(400):
        at = datetime(2024, 1, 1, 3, tzinfo=UTC) + timedelta(days=rng.randrange(120),
                                                           minutes=rng.randrange(1440))
        total = rng.randrange(100, 30000)
        refunded = rng.choice(["", "", f"{total // 200}.00"])
        status = rng.choice(["paid", "paid", "completed", "refunded", "cancelled", "pending"])
        channel = rng.choice(["douyin", "baidu", ""])
        order_lines.append(f"o{i},c{rng.randrange(60)},{at.isoformat()},{total // 100}.{total % 100:02d},"
                           f"{refunded},{status},{channel}")
    event_lines = ["event_id,type,occurred_at,customer_id,anonymous_id,utm_source,device"]
    for i in range(200):  # visits that go down the funnel, each step with probability 0.7
        at = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(120 * 1440))
        who = rng.randrange(120)
        source, device = rng.choice(["douyin", "baidu", ""]), rng.choice(["mobile", "pc"])
        for n, kind in enumerate(("view", "add_to_cart", "checkout", "purchase", "search")):
            if n and rng.random() > 0.7:
                break
            signed_in = kind in ("checkout", "purchase") or rng.random() < 0.3
            event_lines.append(f"e{i}-{n},{kind},{at.isoformat()},{f'c{who}' if signed_in else ''},"
                               f"d{who},{source if n == 0 else ''},{device}")
            at += timedelta(minutes=rng.choice([0, 1, 30, 600, 3000]))
    orders_csv, events_csv = tmp / "orders.csv", tmp / "events.csv"
    orders_csv.write_text("\n".join(order_lines) + "\n", encoding="utf-8")
    events_csv.write_text("\n".join(event_lines) + "\n", encoding="utf-8")
    return orders_csv, events_csv


def _plain_frame(df: pd.DataFrame, key: list[str]) -> list[dict[str, Any]]:
    def plain(value: Any) -> Any:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        if isinstance(value, pd.Timestamp):
            return value.to_pydatetime()
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float):
            return round(value, 9)
        return value

    records = [{k: plain(v) for k, v in r.items()} for r in df.to_dict(orient="records")]
    return sorted(records, key=lambda r: tuple(str(r[k]) for k in key))


@pytest.mark.spark
def test_duckdb_and_spark_give_identical_results(spark_session: Any, tmp_path: Any) -> None:
    from growthwheel.config import Settings
    from growthwheel.insight import cohorts, funnels, lifecycle
    from growthwheel.warehouse import db, ingest

    orders_csv, events_csv = _random_shop_csv(tmp_path)
    cons = []
    for backend in ("duckdb", "spark"):
        cfg = Settings(data_dir=tmp_path / backend, warehouse=backend)  # type: ignore[arg-type]
        ingest.import_files("orders", [orders_csv], cfg=cfg)
        ingest.import_files("events", [events_csv], cfg=cfg)
        cons.append(db.connect(cfg))
    as_of = date(2024, 4, 10)

    def results(con: Any) -> dict[str, list[dict[str, Any]]]:
        o, e = con.table("orders"), con.table("events")
        scores = rfm_scores(o, as_of)
        th = lifecycle.thresholds_for(o, end=as_of)
        return {
            "rfm": _plain_frame(scores.execute(), ["customer_id"]),
            "rfm_median": _plain_frame(rfm_scores(o, as_of, cut="median").execute(), ["customer_id"]),
            "grid": _plain_frame(rfm_grid(scores).execute(), ["r_score", "f_score"]),
            "segments": _plain_frame(rfm_segment_summary(scores, scheme="value").execute(),
                                     ["segment"]),
            "thresholds": [vars(th)],
            "stages": _plain_frame(lifecycle.stages(o, as_of, th).execute(), ["customer_id"]),
            "moves": _plain_frame(
                lifecycle.transitions(o, date(2024, 2, 15), as_of, th).execute(),
                ["from_stage", "to_stage"]),
            "cohorts": _plain_frame(
                cohorts.retention_frame(o, by="month", end=as_of, by_channel=True),
                ["cohort", "channel", "period"]),
            "rolling": _plain_frame(
                cohorts.retention_frame(o, by="week", mode="rolling", end=as_of),
                ["cohort", "period"]),
            "funnel": _plain_frame(funnels.funnel_frame(e, breakdown="utm_source"),
                                   ["utm_source", "step"]),
            "funnel_all": _plain_frame(funnels.funnel_frame(e, window=timedelta(days=3)), ["step"]),
        }

    duck, spark = results(cons[0]), results(cons[1])
    assert len(duck["rfm"]) > 30
    assert duck["funnel_all"][0]["entrants"] > 20
    for name in duck:
        assert spark[name] == duck[name], name
