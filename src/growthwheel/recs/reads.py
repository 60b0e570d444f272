"""The recommendation computations that read the warehouse, as named reads of
:mod:`growthwheel.analyst` (so they run in the server when one owns the warehouse, else here):

* ``recs_build``: :func:`growthwheel.recs.service.build` (what the refresh job stores);
* ``recs_evaluate``: every model's NDCG@10, recall@10, hit rate and coverage with each customer's
  last order held out, and the blend's weights;
* ``recs_copurchase``: co-purchase rules (pairs, or triples), per SKU or per category, and bundles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from growthwheel.errors import InvalidArgumentError, NoDataError


def _number(params: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = params.get(key, default)
    try:
        result = float(value if value is not None else default)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{key}: {value!r} is not a number") from None
    if not low <= result <= high:
        raise InvalidArgumentError(f"{key}: between {low:g} and {high:g}")
    return result


def build(con: Any, cfg: Any, params: Mapping[str, Any]) -> Any:
    """``recs_build``: params ``top`` (default 20), ``evaluate`` (default true)."""
    from growthwheel.recs import service

    top = int(_number(params, "top", service.STORED, 1, 100))
    return service.build(con, top=top, evaluate=bool(params.get("evaluate", True)))


def evaluate(con: Any, cfg: Any, params: Mapping[str, Any]) -> Any:
    """``recs_evaluate``: every model side by side (params ``models``: names, default all)."""
    from growthwheel.recs import evaluation, history, service
    from growthwheel.recs.recommenders import MODEL_NAMES

    models = list(params.get("models") or MODEL_NAMES)
    unknown = [m for m in models if m not in MODEL_NAMES]
    if unknown:
        raise InvalidArgumentError(f"model: {unknown[0]!r} is not one of {', '.join(MODEL_NAMES)}")
    h = history.from_lines(service.read_lines(con))
    return evaluation.evaluate(h, service.read_products(con), models=models).to_dict()


def copurchase(con: Any, cfg: Any, params: Mapping[str, Any]) -> Any:
    """``recs_copurchase``: params ``level`` (sku | category), ``size`` (2 | 3 | bundles),
    ``min_support`` (share, default 0.001), ``min_count`` (default 2), ``limit`` (default 50),
    ordered by lift (bundles: by uplift)."""
    from growthwheel.insight.rfm import paid_orders
    from growthwheel.recs import copurchase as cp

    level = str(params.get("level") or "sku")
    if level not in ("sku", "category"):
        raise InvalidArgumentError("level: sku or category")
    size = str(params.get("size") or "2")
    if size not in ("2", "3", "bundles"):
        raise InvalidArgumentError("size: 2, 3 or bundles")
    th = cp.Thresholds(min_support=_number(params, "min_support", 0.001, 0.0, 1.0),
                       min_count=int(_number(params, "min_count", 2, 1, 1e12)))
    limit = int(_number(params, "limit", 50, 1, 10_000))
    if not {"orders", "order_lines"} <= set(con.list_tables()):
        raise NoDataError("no order lines in the warehouse: import some with `growthwheel import`")
    paid = paid_orders(con.table("orders")).select(p_order="order_id")
    lines = con.table("order_lines")
    lines = lines.join(paid, lines.order_id == paid.p_order)
    bi = cp.basket_items(lines, item=level)
    n = int(cp.basket_count(bi).execute())
    if n == 0:
        raise NoDataError("no paid orders with lines in the warehouse")
    if size == "2":
        t = cp.pair_rules(bi, th, baskets=n)
        t = t.order_by([t.lift.desc(), t.antecedent, t.consequent])
    elif size == "3":
        t = cp.triple_rules(bi, th, baskets=n)
        t = t.order_by([t.lift.desc(), t.antecedent_a, t.antecedent_b, t.consequent])
    else:
        prices = cp.unit_prices(lines) if level == "sku" else None
        t = cp.bundles(bi, th, prices=prices, baskets=n)
        key = t.uplift_per_basket if prices is not None else t.uplift_items_per_basket
        t = t.order_by([key.desc(), t.a, t.b])
    frame = t.limit(limit).execute()
    return {"level": level, "size": size, "baskets": n, "min_count": th.count_for(n),
            "rows": frame.to_dict(orient="records")}
