"""Co-purchase on real public baskets (the arules Groceries data, 9,835 baskets): counts, support,
confidence and lift from the Ibis expressions equal an independent pandas computation; the same
expressions on Spark give the same rows."""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pytest

from growthwheel.recs import copurchase as cp

GROCERIES = Path("/work/shared/data/baskets/groceries.csv")
if not GROCERIES.exists():  # the repository's sibling folder on CI
    GROCERIES = Path(__file__).resolve().parents[3] / "shared" / "data" / "baskets" / "groceries.csv"

pytestmark = pytest.mark.skipif(not GROCERIES.exists(), reason="groceries.csv (arules Groceries) not found")

MIN_SUPPORT = 0.01  # 99 of 9,835 baskets
MIN_TRIPLE_SUPPORT = 0.003


def _baskets() -> list[list[str]]:
    rows = GROCERIES.read_text(encoding="utf-8").splitlines()
    # Items are written as they are (one has a trailing space: 'cream cheese '), kept as they are.
    return [line.split(",") for line in rows if line]


@pytest.fixture(scope="module")
def baskets() -> list[list[str]]:
    return _baskets()


@pytest.fixture(scope="module")
def lines(baskets: list[list[str]]) -> pd.DataFrame:
    # One line per item as written; a repeated item in a basket would be two lines (deduplicated).
    records = [(f"b{i}", item) for i, basket in enumerate(baskets) for item in basket]
    return pd.DataFrame.from_records(records, columns=["order_id", "sku"])


@pytest.fixture(scope="module")
def duck(lines: pd.DataFrame) -> Any:
    con = ibis.duckdb.connect()
    con.create_table("order_lines", lines)
    yield con
    con.disconnect()


def _pandas_counts(baskets: list[list[str]]) -> tuple[Counter[str], Counter[tuple[str, str]],
                                                         Counter[tuple[str, str, str]]]:
    """Plain Python over sets: the independent reference."""
    items: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    triples: Counter[tuple[str, str, str]] = Counter()
    for basket in baskets:
        s = sorted(set(basket))
        items.update(s)
        pairs.update(combinations(s, 2))
        triples.update(combinations(s, 3))
    return items, pairs, triples


@pytest.fixture(scope="module")
def reference(baskets: list[list[str]]) -> Any:
    return _pandas_counts(baskets)


def test_pair_rules_equal_an_independent_pandas_computation(duck: Any, baskets: list[list[str]],
                                                              reference: Any) -> None:
    items, pairs, _ = reference
    n = len(baskets)
    assert n == 9835
    bi = cp.basket_items(duck.table("order_lines"))
    assert int(cp.basket_count(bi).execute()) == n
    got = cp.pair_rules(bi, cp.Thresholds(min_support=MIN_SUPPORT)).execute()
    need = cp.Thresholds(min_support=MIN_SUPPORT).count_for(n)
    assert need == 99
    rows = []
    for (a, b), n_ab in pairs.items():
        if n_ab < need:
            continue
        for x, y in ((a, b), (b, a)):
            rows.append({"antecedent": x, "consequent": y, "n_a": items[x], "n_b": items[y], "n_ab": n_ab,
                         "support": n_ab / n, "confidence": n_ab / items[x],
                         "lift": (n_ab / items[x]) / (items[y] / n)})
    want = pd.DataFrame(rows).sort_values(["antecedent", "consequent"]).reset_index(drop=True)
    got = got.sort_values(["antecedent", "consequent"]).reset_index(drop=True)
    assert len(want) > 300  # both directions of every pair in at least 99 baskets
    pd.testing.assert_frame_equal(got[["antecedent", "consequent"]], want[["antecedent", "consequent"]])
    for col in ("n_a", "n_b", "n_ab"):
        assert got[col].astype(int).tolist() == want[col].tolist(), col
    for col in ("support", "confidence", "lift"):
        assert got[col].to_numpy() == pytest.approx(want[col].to_numpy(), rel=1e-12), col
    top = got.loc[(got.antecedent == "other vegetables") & (got.consequent == "whole milk")].iloc[0]
    assert int(top.n_ab) == 736  # the best-known Groceries pair: {other vegetables, whole milk}
    assert top.support == pytest.approx(0.07483477)
    assert top.confidence == pytest.approx(0.3867578)
    assert top.lift == pytest.approx(1.513634, rel=1e-6)


def test_triples_and_their_rules_equal_pandas(duck: Any, baskets: list[list[str]], reference: Any) -> None:
    items, pairs, triples = reference
    n = len(baskets)
    th = cp.Thresholds(min_support=MIN_TRIPLE_SUPPORT)
    need = th.count_for(n)
    bi = cp.basket_items(duck.table("order_lines"))
    got = cp.triple_counts(bi, need).execute()
    want = {k: v for k, v in triples.items() if v >= need}
    assert len(want) > 50
    assert {(r.a, r.b, r.c): int(r.n_abc) for r in got.itertuples()} == want
    rules = cp.triple_rules(bi, th, baskets=n).execute()
    assert len(rules) == 3 * len(want)
    for r in rules.itertuples():
        key = tuple(sorted((r.antecedent_a, r.antecedent_b, r.consequent)))
        n_ab = pairs[(r.antecedent_a, r.antecedent_b)]
        assert int(r.n_abc) == triples[key]
        assert r.confidence == pytest.approx(triples[key] / n_ab, rel=1e-12)
        assert r.lift == pytest.approx(triples[key] / n_ab / (items[r.consequent] / n), rel=1e-12)


def test_category_level_rules_count_each_category_once_per_basket(
        duck: Any, baskets: list[list[str]]) -> None:
    # Categories from the first word of the item ('whole milk' → 'whole', 'other vegetables' → 'other').
    lines = duck.table("order_lines")
    cats = lines.mutate(category=lines.sku.split(" ")[0])
    bi = cp.basket_items(cats, item="category")
    got = cp.pair_rules(bi, cp.Thresholds(min_support=0.02)).execute()
    n = len(baskets)
    counts: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for basket in baskets:
        s = sorted({item.split(" ")[0] for item in basket})
        counts.update(s)
        pairs.update(combinations(s, 2))
    need = cp.Thresholds(min_support=0.02).count_for(n)
    want = {(a, b): v for (a, b), v in pairs.items() if v >= need}
    got_pairs = {(r.antecedent, r.consequent): int(r.n_ab) for r in got.itertuples()
                 if r.antecedent < r.consequent}
    assert got_pairs == want
    for r in got.itertuples():
        assert r.lift == pytest.approx(r.n_ab * n / (counts[r.antecedent] * counts[r.consequent]))


def test_bundles_rank_by_expected_uplift(duck: Any, baskets: list[list[str]], reference: Any) -> None:
    items, pairs, _ = reference
    n = len(baskets)
    bi = cp.basket_items(duck.table("order_lines"))
    prices = ibis.memtable(pd.DataFrame({"item": ["whole milk", "yogurt"], "price": [99, 149]}))
    got = cp.bundles(bi, cp.Thresholds(min_support=MIN_SUPPORT), prices=prices, baskets=n).execute()
    assert (got.lift > 1).all()
    row = got.loc[(got.a == "whole milk") & (got.b == "yogurt")].iloc[0]
    n_a, n_b, n_ab = items["whole milk"], items["yogurt"], pairs[("whole milk", "yogurt")]
    extra_b = (n_a - n_ab) * n_ab / n_a
    extra_a = (n_b - n_ab) * n_ab / n_b
    assert row.uplift_items_per_basket == pytest.approx((extra_a + extra_b) / n)
    assert row.uplift_per_basket == pytest.approx((extra_a * 99 + extra_b * 149) / n)


@pytest.mark.spark
def test_the_same_expressions_on_spark(spark_session: Any, lines: pd.DataFrame, duck: Any) -> None:
    small = lines[lines.order_id.isin([f"b{i}" for i in range(400)])]
    spark_session.createDataFrame(small).createOrReplaceTempView("recs_groceries_lines")
    con = ibis.pyspark.connect(spark_session)
    th = cp.Thresholds(min_count=4)
    on_spark = cp.pair_rules(cp.basket_items(con.table("recs_groceries_lines")), th).execute()
    local = ibis.duckdb.connect()
    local.create_table("lines", small)
    on_duck = cp.pair_rules(cp.basket_items(local.table("lines")), th).execute()
    key = ["antecedent", "consequent"]
    a = on_spark.sort_values(key).reset_index(drop=True)
    b = on_duck.sort_values(key).reset_index(drop=True)
    assert len(a) > 20
    assert a[key].equals(b[key])
    assert a.n_ab.astype(int).tolist() == b.n_ab.astype(int).tolist()
    assert a.lift.to_numpy() == pytest.approx(b.lift.to_numpy())
    tri_s = cp.triple_counts(cp.basket_items(con.table("recs_groceries_lines")), 3).execute()
    tri_d = cp.triple_counts(cp.basket_items(local.table("lines")), 3).execute()
    assert sorted(map(tuple, tri_s[["a", "b", "c"]].to_numpy().tolist())) == \
        sorted(map(tuple, tri_d[["a", "b", "c"]].to_numpy().tolist()))
