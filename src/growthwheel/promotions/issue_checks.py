"""What to tell an operator before codes of a batch are issued to an audience.

Issuing cannot be taken back (the customers get their codes, messages may follow), so the console
asks for a confirmation and the API answers a ``dry_run`` with these warnings first:

* ``repeat_buyers``: the batch is for first orders only (``conditions.first_order_only``) and some
  of the audience have a paid order already (in the warehouse, imported or from the checkout, or
  committed at the checkout and not yet drained): they will hold a code they cannot redeem;
* ``over_redemption_cap``: the batch can be redeemed ``budget_count`` times in all, and the codes
  issued so far plus these would be more than what is left of it: some holders will find the
  batch used up.

Only customers who would get a new code count (those already served under the issue key do not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ibis.backends import BaseBackend
from sqlalchemy import select
from sqlalchemy.orm import Session

from growthwheel.promotions import repository
from growthwheel.promotions.definition import parse_definition
from growthwheel.promotions.models import CheckoutOrder, CouponBatch
from growthwheel.warehouse.schema import PAID_STATUSES
from growthwheel.web.i18n import Translator, format_count, k

_CHUNK = 5_000


@dataclass(frozen=True)
class IssueWarning:
    """One reason to think twice, with its numbers."""

    code: str
    """``repeat_buyers`` or ``over_redemption_cap``."""
    customers: int
    """Customers of the audience it concerns (repeat buyers; codes past the cap)."""
    audience: int
    """Customers who would get a new code."""
    cap: int | None = None
    """The batch's redemptions left (``budget_count − used_count``), for ``over_redemption_cap``."""
    codes: int | None = None
    """Codes issued after this issue (unredeemed so far + new), for ``over_redemption_cap``."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def paid_customers(session: Session, backend: BaseBackend | None, customer_ids: Sequence[str]) -> set[str]:
    """Those of ``customer_ids`` with a paid order: in the warehouse (when ``backend`` is given) or
    committed at the checkout."""
    wanted = set(customer_ids)
    found: set[str] = set()
    if backend is not None and "orders" in backend.list_tables():
        orders = backend.table("orders")
        paid = orders.filter(orders.status.isin(list(PAID_STATUSES)) & orders.customer_id.notnull())
        column = paid.select("customer_id").distinct().to_pyarrow().column("customer_id")
        found |= {str(c) for c in column.to_pylist()} & wanted
    ids = sorted(wanted - found)
    for start in range(0, len(ids), _CHUNK):
        part = ids[start:start + _CHUNK]
        found |= set(session.scalars(select(CheckoutOrder.customer_id).where(
            CheckoutOrder.customer_id.in_(part), CheckoutOrder.status != "refunded").distinct()))
    return found


def issue_warnings(session: Session, backend: BaseBackend | None, batch: CouponBatch,
                   customer_ids: Sequence[str], *, issue_key: str | None) -> tuple[int, list[IssueWarning]]:
    """How many customers would get a new code, and the warnings (see the module docstring)."""
    wanted = list(dict.fromkeys(customer_ids))
    served = repository.issued_customers(session, batch.id, issue_key, among=wanted) if wanted else set()
    fresh = [c for c in wanted if c not in served]
    warnings: list[IssueWarning] = []
    if not fresh:
        return 0, warnings
    if parse_definition(batch.definition).conditions.first_order_only:
        repeat = paid_customers(session, backend, fresh)
        if repeat:
            warnings.append(IssueWarning("repeat_buyers", len(repeat), len(fresh)))
    if batch.budget_count is not None:
        left = max(batch.budget_count - batch.used_count, 0)
        unredeemed = max(batch.issued_count - batch.used_count, 0)
        codes = unredeemed + len(fresh)
        if codes > left:
            warnings.append(IssueWarning("over_redemption_cap", codes - left, len(fresh), cap=left,
                                         codes=codes))
    return len(fresh), warnings


#: The catalogue key of each warning (``web/i18n/<lang>/promotions.json``).
WARNING_KEYS = {"repeat_buyers": k("coupons.warn.repeat_buyers"),
                "over_redemption_cap": k("coupons.warn.over_redemption_cap")}


def warning_text(t: Translator, warning: IssueWarning) -> str:
    """The warning in the reader's language."""
    return t(WARNING_KEYS[warning.code], customers=format_count(warning.customers),
             audience=format_count(warning.audience), cap=format_count(warning.cap),
             codes=format_count(warning.codes))
