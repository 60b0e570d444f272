"""Purchase history as sparse matrices: the input of every recommender and of the evaluation.

A :class:`History` holds each customer's baskets (orders) in time order as rows of one sparse
basket × item matrix (each item once per basket), customers' baskets contiguous. Nothing here is
dense in customers × items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from growthwheel.errors import NoDataError

IntArray = npt.NDArray[np.int64]
EPOCH = np.datetime64("1970-01-01", "D")


@dataclass(frozen=True)
class History:
    """Baskets in time order per customer.

    ``customers[i]`` / ``items[j]`` are the ids behind indices; ``basket_customer[b]`` and
    ``basket_day[b]`` (days since 1970-01-01) describe basket ``b`` (row ``b`` of ``baskets``);
    customer ``i``'s baskets are rows ``ptr[i]:ptr[i + 1]``, oldest first.
    """

    customers: npt.NDArray[Any]
    items: npt.NDArray[Any]
    basket_customer: IntArray
    basket_day: IntArray
    baskets: sp.csr_matrix
    ptr: IntArray

    @property
    def n_customers(self) -> int:
        """Customers known (some may have no basket after a split)."""
        return len(self.customers)

    @property
    def n_items(self) -> int:
        """Items known."""
        return len(self.items)

    def counts(self) -> IntArray:
        """Baskets per customer."""
        return np.diff(self.ptr)

    def customer_items(self, weights: npt.NDArray[np.float64] | None = None) -> sp.csr_matrix:
        """Customer × item sums of basket rows (``weights`` per basket; 1 = purchase frequency)."""
        w = np.ones(len(self.basket_customer)) if weights is None else weights
        assign = sp.csr_matrix((w, (self.basket_customer, np.arange(len(self.basket_customer)))),
                               shape=(self.n_customers, len(self.basket_customer)))
        return (assign @ self.baskets).tocsr()

    def keep_baskets(self, keep: npt.NDArray[np.bool_]) -> History:
        """The same customers and items with only the baskets where ``keep`` is true."""
        bc = self.basket_customer[keep]
        ptr = np.zeros(self.n_customers + 1, dtype=np.int64)
        np.cumsum(np.bincount(bc, minlength=self.n_customers), out=ptr[1:])
        return History(self.customers, self.items, bc, self.basket_day[keep], self.baskets[keep], ptr)


def from_lines(frame: pd.DataFrame) -> History:
    """A history from rows of ``customer_id, order_id, ordered_at, sku`` (one per order line;
    repeated SKUs in an order count once). Orders are placed in time at their earliest
    ``ordered_at`` (ties by ``order_id``)."""
    need = {"customer_id", "order_id", "ordered_at", "sku"}
    missing = need - set(frame.columns)
    if missing:
        raise ValueError(f"missing columns: {', '.join(sorted(missing))}")
    f = frame.loc[frame.sku.notna() & frame.customer_id.notna(), list(need)]
    if f.empty:
        raise NoDataError("no purchases to learn recommendations from: import order lines first")
    when = pd.to_datetime(f.ordered_at, utc=True).dt.tz_convert(None)
    day = ((when.to_numpy().astype("datetime64[D]") - EPOCH).astype(np.int64))
    f = pd.DataFrame({"customer_id": f.customer_id.astype(str).to_numpy(),
                      "order_id": f.order_id.astype(str).to_numpy(),
                      "at": when.to_numpy(), "day": day, "sku": f.sku.astype(str).to_numpy()})
    orders = f.groupby("order_id", sort=False).agg(customer_id=("customer_id", "first"), at=("at", "min"),
                                                   day=("day", "min"))
    orders = orders.reset_index().sort_values(["customer_id", "at", "order_id"], kind="stable")
    cust_codes, customers = pd.factorize(orders.customer_id, sort=True)
    basket_of = pd.Series(np.arange(len(orders)), index=orders.order_id.to_numpy())
    item_codes, items = pd.factorize(f.sku, sort=True)
    rows = basket_of.loc[f.order_id.to_numpy()].to_numpy()
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, item_codes)),
                      shape=(len(orders), len(items)))
    m.sum_duplicates()
    m.data[:] = 1.0  # each item once per basket
    bc = cust_codes.astype(np.int64)
    ptr = np.zeros(len(customers) + 1, dtype=np.int64)
    np.cumsum(np.bincount(bc, minlength=len(customers)), out=ptr[1:])
    return History(np.asarray(customers, dtype=object), np.asarray(items, dtype=object), bc,
                   orders.day.to_numpy().astype(np.int64), m, ptr)


@dataclass(frozen=True)
class Split:
    """Each customer's last basket held out: ``train`` (everything else), the customers tested,
    their held-out items and the day of the held-out basket."""

    train: History
    users: IntArray
    targets: list[IntArray]
    day: IntArray


def hold_out_last(h: History, *, min_baskets: int = 2) -> Split:
    """The time-based split: for every customer with at least ``min_baskets`` baskets the last
    one is the target, the rest (and every other customer's baskets) is training data."""
    counts = h.counts()
    users = np.flatnonzero(counts >= min_baskets).astype(np.int64)
    last = h.ptr[users + 1] - 1
    keep = np.ones(len(h.basket_customer), dtype=bool)
    keep[last] = False
    targets = [h.baskets.indices[h.baskets.indptr[b]:h.baskets.indptr[b + 1]].astype(np.int64) for b in last]
    return Split(h.keep_baskets(keep), users, targets, h.basket_day[last])
