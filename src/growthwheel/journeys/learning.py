"""What the journeys' triggers learn from the shop's history, learned once a shop-local day.

Two triggers rest on something learned from every order: ``lifecycle`` on the stage thresholds
(from the repeat gaps of all customers, :func:`growthwheel.insight.lifecycle.thresholds_for`) and
``replenishment`` without a set cycle on each product's consumption cycle (the median interval
between consecutive purchase days of that product by one customer, :func:`product_cycles`).
Both change slowly, and learning them reads every order (or order line): the costliest part of a
tick. So they are learned **once a day** and kept:

* in memory, per warehouse (``key``: the data directory) and shop-local day;
* in ``<data dir>/journeys-learned.json`` (when ``key`` is a data directory), so the process that
  ticks (the server that owns the warehouse, or a worker) finds what another process learned;
* the worker's daily ``journeys.learn`` job (00:20 shop time) learns both ahead of the first tick
  of the day, so no tick pays for it; a tick that finds nothing for today learns and keeps it.

A day's values are used all day: an order placed today moves them tomorrow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import ibis
import ibis.expr.types as ir

from growthwheel.insight.lifecycle import Thresholds, thresholds_for
from growthwheel.insight.rfm import paid_orders

CACHE_FILE = "journeys-learned.json"
CYCLE_COLUMNS = ("sku", "learned", "n")

T = TypeVar("T")
_MEMORY: dict[tuple[str, date], dict[str, Any]] = {}
_LOCK = threading.Lock()

if TYPE_CHECKING:  # pandas is imported where used: listing journeys does not need it
    import pandas as pd


def _file(key: str) -> Path | None:
    path = Path(key)
    return path / CACHE_FILE if path.is_dir() else None


def _read_file(key: str, today: date) -> dict[str, Any]:
    path = _file(key)
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # unreadable: learned again
    if not isinstance(data, dict) or data.get("day") != today.isoformat():
        return {}
    values = data.get("values")
    return dict(values) if isinstance(values, dict) else {}


def _write_file(key: str, today: date, values: dict[str, Any]) -> None:
    path = _file(key)
    if path is None:
        return
    temp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        temp.write_text(json.dumps({"day": today.isoformat(), "values": values}), encoding="utf-8")
        os.replace(temp, path)  # atomic: a reader sees the old file or the new one
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()


def remembered(key: str | None, today: date, name: str, compute: Callable[[], T],
               encode: Callable[[T], Any], decode: Callable[[Any], T]) -> T:
    """The value ``name`` learned for ``today`` in warehouse ``key``: from memory, else from the
    data directory's file, else ``compute()`` (then kept in both). ``key`` ``None``: computed."""
    if key is None:
        return compute()
    with _LOCK:
        values = _MEMORY.get((key, today))
        if values is None or name not in values:  # (another process may have learned it since)
            values = {**(values or {}), **_read_file(key, today)}
            for old in [k for k in _MEMORY if k[0] == key and k[1] != today]:
                del _MEMORY[old]
            _MEMORY[(key, today)] = values
        if name in values:
            return decode(values[name])
    found = compute()
    with _LOCK:
        values = _MEMORY.setdefault((key, today), {})
        values[name] = encode(found)
        merged = {**_read_file(key, today), **values}
        _write_file(key, today, merged)
    return found


def forget(key: str | None = None) -> None:
    """Drop what is kept in memory (for ``key``, or everything); the files stay."""
    with _LOCK:
        for old in [k for k in _MEMORY if key is None or k[0] == key]:
            del _MEMORY[old]


# ---------------------------------------------------------------------------------------------
# What is learned
# ---------------------------------------------------------------------------------------------


def thresholds(orders: ir.Table, today: date, key: str | None) -> Thresholds:
    """The lifecycle thresholds learned from the repeat gaps up to ``today``, once a day."""
    return remembered(key, today, "thresholds", lambda: thresholds_for(orders, end=today),
                      dataclasses.asdict, lambda data: Thresholds(**data))


def product_cycles(orders: ir.Table, lines: ir.Table, today: date) -> pd.DataFrame:
    """Each product's learned consumption cycle: ``sku``, ``learned`` (the exact median interval in days
    between consecutive purchase days of the product by one customer, paid orders up to
    ``today``) and ``n`` (how many intervals). One query: distinct (customer, sku, day), a lag
    window per (customer, sku), a median per sku."""
    paid = paid_orders(orders, end=today).select("order_id", "customer_id", "order_date")
    bought = lines.select("order_id", "sku").join(paid, "order_id").select(
        "customer_id", "sku", day="order_date").distinct()
    prev = bought.day.lag().over(group_by=[bought.customer_id, bought.sku], order_by=bought.day)
    gaps = bought.mutate(gap=bought.day.delta(prev, unit="day")).filter(lambda t: t.gap.notnull())
    learned = gaps.group_by("sku").aggregate(learned=gaps.gap.median(), n=gaps.count())
    frame = learned.execute()
    import pandas as pd

    return pd.DataFrame({"sku": frame["sku"].astype("string"), "learned": frame["learned"].astype("float64"),
                         "n": frame["n"].astype("int64")})


def cycles(orders: ir.Table, lines: ir.Table, today: date, key: str | None) -> pd.DataFrame:
    """:func:`product_cycles`, once a day."""
    def encode(frame: pd.DataFrame) -> list[list[Any]]:
        return [[str(s), float(v), int(n)] for s, v, n in
                zip(frame["sku"].tolist(), frame["learned"].tolist(), frame["n"].tolist(), strict=True)]

    def decode(rows: list[list[Any]]) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({"sku": pd.Series([r[0] for r in rows], dtype="string"),
                             "learned": pd.Series([r[1] for r in rows], dtype="float64"),
                             "n": pd.Series([r[2] for r in rows], dtype="int64")})

    return remembered(key, today, "cycles", lambda: product_cycles(orders, lines, today), encode, decode)


def cycles_table(frame: pd.DataFrame, *, min_repeats: int, skus: list[str] | None) -> ir.Table:
    """The learned cycles a trigger may use (at least ``min_repeats`` intervals; its ``skus``), as
    a table to join: ``l_sku``, ``learned``."""
    import pandas as pd

    keep = frame[frame["n"] >= min_repeats]
    if skus:
        keep = keep[keep["sku"].isin(skus)]
    return ibis.memtable(pd.DataFrame({"l_sku": keep["sku"].astype("string").tolist(),
                                       "learned": keep["learned"].astype("float64").tolist()}),
                         schema={"l_sku": "string", "learned": "float64"})


def learn_all(backend: Any, today: date, key: str | None) -> dict[str, Any]:
    """Learn (or find already learned) today's thresholds and product cycles of the warehouse
    behind ``backend``: the worker's daily ``journeys.learn`` job."""
    names = set(backend.list_tables())
    if "orders" not in names:
        return {"learned": False}
    orders = backend.table("orders")
    th = thresholds(orders, today, key)
    found: dict[str, Any] = {"learned": True, "day": today.isoformat(), "thresholds_source": th.source}
    if "order_lines" in names:
        found["products_with_cycles"] = len(cycles(orders, backend.table("order_lines"), today, key))
    return found
