"""Co-purchase ("bought A also bought B"): pairs and triples counted exactly over baskets, as Ibis.

Everything here is an Ibis expression over a table of basket lines, so the same code runs on DuckDB
and on Spark; nothing builds a dense basket × item one-hot matrix (mlxtend's out-of-memory reports,
its issues #837 and #948): a basket of *k* distinct items contributes its *k(k−1)/2* pairs through a
self-join on the basket, after items rarer than the minimum count are dropped (a pair can never be
more frequent than either of its items, nor a triple than any of its pairs: apriori's pruning, which
keeps the answer exact above the threshold).

Definitions (N baskets; n(X) baskets holding every item of X; each item counted once per basket):

* support(X) = n(X) / N;
* confidence(A → B) = n(A ∪ B) / n(A);
* lift(A → B) = confidence(A → B) / support(B).

``item`` may be a SKU or a category (category-level rules: the same counts over distinct
(basket, category) pairs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from growthwheel.errors import InvalidArgumentError


@dataclass(frozen=True)
class Thresholds:
    """How frequent an itemset must be to be kept: at least ``min_count`` baskets and a support of
    at least ``min_support`` (both apply; the larger wins)."""

    min_support: float = 0.0
    min_count: int = 1

    def count_for(self, baskets: int) -> int:
        """The smallest basket count that passes both thresholds over ``baskets`` baskets."""
        if not 0.0 <= self.min_support <= 1.0:
            raise InvalidArgumentError("min_support: a share between 0 and 1")
        if self.min_count < 1:
            raise InvalidArgumentError("min_count: at least 1")
        by_support = math.ceil(round(self.min_support * baskets, 9))  # 0.01 × 9,835 → 99
        return max(self.min_count, by_support)


def basket_items(lines: ir.Table, *, basket: str = "order_id", item: str = "sku") -> ir.Table:
    """Distinct ``(basket, item)`` rows from order lines: each item once per basket (null items are
    dropped; ids keep their type: text ids as text, integer codes as integers)."""
    t = lines.select(basket=lines[basket], item=lines[item])
    return t.filter(t.item.notnull() & t.basket.notnull()).distinct()


def basket_count(bi: ir.Table) -> ir.Scalar:
    """N: the number of distinct baskets."""
    return bi.basket.nunique()


def item_counts(bi: ir.Table) -> ir.Table:
    """``item, n``: baskets holding each item."""
    return bi.group_by("item").aggregate(n=bi.count())


def _frequent_lines(bi: ir.Table, min_count: int) -> ir.Table:
    if min_count <= 1:  # every item is frequent: no join
        return bi.select("basket", "item")
    counts = item_counts(bi)
    keep = counts.filter(counts.n >= min_count).select(k_item="item")
    return bi.join(keep, bi.item == keep.k_item).select("basket", "item")


def basket_pairs(bi: ir.Table, min_count: int = 1) -> ir.Table:
    """``basket, a, b`` (a < b): every pair of frequent items inside each basket."""
    f = _frequent_lines(bi, min_count)
    left = f.select(basket="basket", a="item")
    right = f.view().select(r_basket="basket", b="item")
    return left.join(right, (left.basket == right.r_basket) & (left.a < right.b)).select("basket", "a", "b")


def pair_counts(bi: ir.Table, min_count: int = 1) -> ir.Table:
    """``a, b, n_ab`` (a < b) for pairs in at least ``min_count`` baskets."""
    p = basket_pairs(bi, min_count)
    counts = p.group_by(["a", "b"]).aggregate(n_ab=p.count())
    return counts.filter(counts.n_ab >= min_count)


def triple_counts(bi: ir.Table, min_count: int = 1) -> ir.Table:
    """``a, b, c, n_abc`` (a < b < c) for triples in at least ``min_count`` baskets: the basket
    pairs whose pair is frequent, extended by a later frequent item of the same basket."""
    frequent = pair_counts(bi, min_count).select(f_a="a", f_b="b")
    p = basket_pairs(bi, min_count)
    p = p.join(frequent, (p.a == frequent.f_a) & (p.b == frequent.f_b)).select("basket", "a", "b")
    f = _frequent_lines(bi, min_count).select(c_basket="basket", c="item")
    t = p.join(f, (p.basket == f.c_basket) & (p.b < f.c)).select("basket", "a", "b", "c")
    counts = t.group_by(["a", "b", "c"]).aggregate(n_abc=t.count())
    return counts.filter(counts.n_abc >= min_count)


def pair_rules(bi: ir.Table, thresholds: Thresholds | None = None, *, baskets: int | None = None) -> ir.Table:
    """Both directions of every frequent pair: ``antecedent, consequent, n_a, n_b, n_ab, baskets,
    support, confidence, lift`` (``baskets`` = N; computed once when not given)."""
    n = int(basket_count(bi).execute()) if baskets is None else baskets
    min_count = (thresholds or Thresholds()).count_for(n)
    pairs = pair_counts(bi, min_count)
    counts = item_counts(bi)
    both = pairs.select(x="a", y="b", n_ab="n_ab").union(pairs.select(x="b", y="a", n_ab="n_ab"))
    ca = counts.select(ca_item="item", n_a="n")
    cb = counts.select(cb_item="item", n_b="n")
    t = both.join(ca, both.x == ca.ca_item).join(cb, both.y == cb.cb_item)
    total = ibis.literal(n, type="int64")
    return t.select(
        antecedent=t.x, consequent=t.y, n_a=t.n_a, n_b=t.n_b, n_ab=t.n_ab, baskets=total,
        support=t.n_ab.cast("float64") / total,
        confidence=t.n_ab.cast("float64") / t.n_a,
        lift=(t.n_ab.cast("float64") * total) / (t.n_a.cast("float64") * t.n_b),
    )


def triple_rules(bi: ir.Table, thresholds: Thresholds | None = None, *,
                 baskets: int | None = None) -> ir.Table:
    """Rules {A, B} → C from every frequent triple (three per triple): ``antecedent_a,
    antecedent_b, consequent, n_ab, n_c, n_abc, baskets, support, confidence, lift``."""
    n = int(basket_count(bi).execute()) if baskets is None else baskets
    min_count = (thresholds or Thresholds()).count_for(n)
    tri = triple_counts(bi, min_count)
    pairs = pair_counts(bi, min_count)
    counts = item_counts(bi)
    turns = (tri.select(x="a", y="b", z="c", n_abc="n_abc")
             .union(tri.select(x="a", y="c", z="b", n_abc="n_abc"))
             .union(tri.select(x="b", y="c", z="a", n_abc="n_abc")))
    pp = pairs.select(p_a="a", p_b="b", n_ab="n_ab")
    cc = counts.select(c_item="item", n_c="n")
    t = turns.join(pp, (turns.x == pp.p_a) & (turns.y == pp.p_b)).join(cc, turns.z == cc.c_item)
    total = ibis.literal(n, type="int64")
    return t.select(
        antecedent_a=t.x, antecedent_b=t.y, consequent=t.z, n_ab=t.n_ab, n_c=t.n_c, n_abc=t.n_abc,
        baskets=total,
        support=t.n_abc.cast("float64") / total,
        confidence=t.n_abc.cast("float64") / t.n_ab,
        lift=(t.n_abc.cast("float64") * total) / (t.n_ab.cast("float64") * t.n_c),
    )


def bundles(bi: ir.Table, thresholds: Thresholds | None = None, *, prices: ir.Table | None = None,
            baskets: int | None = None, min_lift: float = 1.0) -> ir.Table:
    """Bundle suggestions: frequent pairs {A, B} with lift above ``min_lift`` and their expected
    basket uplift.

    The uplift assumes the baskets that hold one item of the pair without the other would take
    the other at the rate seen among the baskets holding the first (the rule's confidence):
    ``extra_items = (n_a − n_ab)·conf(A→B) + (n_b − n_ab)·conf(B→A)`` over all N baskets, so
    ``uplift_items_per_basket = extra_items / N``; with ``prices`` (``item, price`` in minor units)
    ``uplift_per_basket`` is the same in money (``price_b`` per extra B, ``price_a`` per extra A,
    fractional minor units). It is an upper bound of what a bundle offer can add, for ranking."""
    n = int(basket_count(bi).execute()) if baskets is None else baskets
    min_count = (thresholds or Thresholds()).count_for(n)
    pairs = pair_counts(bi, min_count)
    counts = item_counts(bi)
    ca = counts.select(ca_item="item", n_a="n")
    cb = counts.select(cb_item="item", n_b="n")
    t = pairs.join(ca, pairs.a == ca.ca_item).join(cb, pairs.b == cb.cb_item)
    total = ibis.literal(n, type="int64")
    conf_ab = t.n_ab.cast("float64") / t.n_a
    conf_ba = t.n_ab.cast("float64") / t.n_b
    extra_b = (t.n_a - t.n_ab).cast("float64") * conf_ab
    extra_a = (t.n_b - t.n_ab).cast("float64") * conf_ba
    lift = (t.n_ab.cast("float64") * total) / (t.n_a.cast("float64") * t.n_b)
    out = t.select(
        a=t.a, b=t.b, n_a=t.n_a, n_b=t.n_b, n_ab=t.n_ab, support=t.n_ab.cast("float64") / total,
        confidence_ab=conf_ab, confidence_ba=conf_ba, lift=lift,
        extra_a=extra_a, extra_b=extra_b,
        uplift_items_per_basket=(extra_a + extra_b) / total,
    ).filter(lambda r: r.lift > min_lift)
    if prices is None:
        return out
    kind = out.a.type()
    pa_ = prices.select(pa_item=prices.item.cast(kind), price_a=prices.price.cast("float64"))
    pb_ = prices.select(pb_item=prices.item.cast(kind), price_b=prices.price.cast("float64"))
    j = out.left_join(pa_, out.a == pa_.pa_item).left_join(pb_, out.b == pb_.pb_item)
    return j.drop("pa_item", "pb_item").mutate(
        uplift_per_basket=(j.extra_a * j.price_a.fill_null(0.0) + j.extra_b * j.price_b.fill_null(0.0))
        / total)


def unit_prices(lines: ir.Table, products: ir.Table | None = None) -> ir.Table:
    """``item, price`` (minor units): the catalogue's list price, else the mean paid unit price of
    the lines (``line_total / quantity``)."""
    paid = lines.filter(lines.quantity > 0)
    seen = paid.group_by(item=paid.sku.cast("string")).aggregate(
        seen=(paid.line_total.cast("float64") / paid.quantity).mean())
    if products is None:
        return seen.select("item", price=seen.seen)
    cat = products.select(c_item=products.sku.cast("string"), listed=products.price.cast("float64"))
    j = seen.outer_join(cat, seen.item == cat.c_item)
    return j.select(item=j.item.coalesce(j.c_item), price=j.listed.coalesce(j.seen))
