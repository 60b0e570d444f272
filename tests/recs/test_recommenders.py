"""Recommenders and their offline evaluation: metrics by hand, replenishment from the journeys'
cycles, and on a small simulated shop the chosen blend beats personal re-purchase frequency."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from growthwheel.recs import evaluation, history
from growthwheel.recs import recommenders as r
from growthwheel.sim.shop import simulate


def _lines(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "order_id", "ordered_at", "sku"])


def test_metrics_by_hand() -> None:
    recs = np.array([[3, 1, -1], [0, 2, 5]])
    targets = [np.array([1, 4]), np.array([7])]
    s = evaluation.metrics("m", recs, targets, n_items=10, k=3)
    ideal = 1 + 1 / np.log2(3)
    assert s.ndcg == pytest.approx(((1 / np.log2(3)) / ideal + 0.0) / 2)
    assert s.recall == pytest.approx((1 / 2 + 0) / 2)
    assert s.hit_rate == pytest.approx(0.5)
    assert s.coverage == pytest.approx(5 / 10)  # items 0, 1, 2, 3, 5


def test_last_order_is_held_out_per_customer() -> None:
    h = history.from_lines(_lines([
        ("c1", "o1", "2025-01-01T10:00:00Z", "a"), ("c1", "o1", "2025-01-01T10:00:00Z", "b"),
        ("c1", "o2", "2025-02-01T10:00:00Z", "c"), ("c1", "o2", "2025-02-01T10:00:00Z", "c"),
        ("c2", "o3", "2025-01-05T10:00:00Z", "a"),
    ]))
    split = history.hold_out_last(h)
    assert h.customers[split.users].tolist() == ["c1"]
    assert [h.items[t].tolist() for t in split.targets] == [["c"]]
    assert split.train.baskets.shape == (2, 3)  # o1 and o3 train
    assert split.train.counts().tolist() == [1, 1]


def test_replenishment_brings_back_what_is_due_and_holds_back_what_was_just_bought() -> None:
    # Coffee (a 30-day cycle from the catalogue) bought on 1 Jan; shampoo (no cycle) twice; tea
    # (10-day cycle) bought on 25 Feb. Scored on 3 Mar: coffee is overdue, tea is not due yet.
    rows = [("c1", "o1", "2025-01-01T10:00:00Z", "coffee"), ("c1", "o1", "2025-01-01T10:00:00Z", "shampoo"),
            ("c1", "o2", "2025-02-25T10:00:00Z", "tea"), ("c1", "o2", "2025-02-25T10:00:00Z", "shampoo"),
            ("c1", "o2", "2025-02-25T10:00:00Z", "tea")]
    products = pd.DataFrame({"sku": ["coffee", "tea", "shampoo"], "consumption_cycle_days": [30, 10, None]})
    h = history.from_lines(_lines(rows))
    due = evaluation.due_days(h, products)
    day = (np.datetime64("2025-03-03") - history.EPOCH).astype(np.int64)
    items = list(h.items)
    assert due[0, items.index("coffee")] == (np.datetime64("2025-01-31") - history.EPOCH).astype(int)
    assert due[0, items.index("tea")] == (np.datetime64("2025-03-07") - history.EPOCH).astype(int)
    model = r.Replenish(due=due, horizon_days=0).fit(h)
    plain = r.Repurchase().fit(h)
    users, days = np.array([0]), np.array([day])
    assert [items[i] for i in r.top_k(plain.scores(users, days), 3)[0][0]] == ["shampoo", "tea", "coffee"]
    assert [items[i] for i in r.top_k(model.scores(users, days), 3)[0][0]] == ["coffee", "shampoo", "tea"]


@pytest.fixture(scope="module")
def shop() -> tuple[history.History, pd.DataFrame]:
    s = simulate(customers_count=3000, days=365, seed=3)
    products = s.tables["products"].to_pandas()
    products["consumption_cycle_days"] = pd.to_numeric(products.consumption_cycle_days).astype("Int64")
    return history.from_lines(s.tables["order_lines"].to_pandas()), products


def test_on_a_simulated_shop_the_chosen_blend_beats_repurchase_frequency(
        shop: tuple[history.History, pd.DataFrame]) -> None:
    h, products = shop
    ev = evaluation.evaluate(h, products)
    table = ev.table().set_index("model")
    assert set(table.index) == {*r.MODEL_NAMES, "blend"}
    assert ev.customers_tested > 800
    for col in ("ndcg@10", "recall@10", "hit_rate", "coverage"):
        assert table[col].between(0, 1).all()
    # Re-purchase is the strong baseline; popularity alone is far below it on a shop of staples.
    assert table.loc["repurchase", "ndcg@10"] > 2 * table.loc["popularity", "ndcg@10"]
    assert table.loc["blend", "ndcg@10"] > 1.1 * table.loc["repurchase", "ndcg@10"]
    assert table.loc["blend", "recall@10"] > table.loc["repurchase", "recall@10"]
    assert ev.weights  # chosen on the validation split, not the test
    assert set(ev.weights) <= set(evaluation.BLEND_PARTS)
