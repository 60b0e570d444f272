"""The customer list behind the console's ``/customers``: filters, sorting, a total, export.

A list is described by a :class:`ListQuery`: an optional segment **definition** (what a
drill-down from an insight page sends: the RFM cell, lifecycle stage … expressed in the segment
language of ``segments.definition``, evaluated as of ``as_of``), or the members of a saved
segment (as of its last refresh), narrowed by simple filters (channel, buyers only) and the
free-text search of the list, then sorted by one column with the customer id as the tie-break.

:func:`filter_definition` gives the definition that selects exactly the listed customers when there
is no free-text search (the search also matches e-mail and phone for some roles, which a segment
cannot test): saving the list as a segment saves that definition, so the segment's count equals
the list's total as of the same day.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from growthwheel.accounts.service import mask_email, mask_phone
from growthwheel.customers import repository
from growthwheel.segments import repository as segments_repository
from growthwheel.segments.compile import Context, load_sources, segment
from growthwheel.segments.definition import Node, definition_to_json, parse_definition
from growthwheel.warehouse.schema import PAID_STATUSES

#: Columns the list sorts by (``last_order``: the latest paid order day).
SORTS = ("customer_id", "name", "orders", "net_revenue", "last_order", "signed_up_at")
#: Filter of buyers: everyone, customers with a paid order, customers without.
BUYERS = ("", "yes", "no")
#: Columns of an export, in order (money in major units of the shop currency).
EXPORT_COLUMNS = ("customer_id", "name", "email", "phone", "city", "channel", "signed_up_at",
                  "orders", "net_revenue", "last_order")


@dataclass(frozen=True)
class ListQuery:
    """What the customer list shows."""

    q: str = ""
    definition: Node | None = None
    as_of: date | None = None
    segment_id: str | None = None
    channel: str = ""
    buyers: str = ""
    sort: str = "customer_id"
    descending: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def filter_definition(query: ListQuery) -> Node | None:
    """The definition of the listed customers without the free-text search: the drill-down's
    definition and the filters, all of them (``None`` for a saved segment's members, which are
    already a segment)."""
    if query.segment_id:
        return None
    parts: list[dict[str, Any]] = []
    if query.definition is not None:
        parts.append(definition_to_json(query.definition))
    if query.channel:
        parts.append({"type": "attribute", "field": "channel", "op": "equals", "value": query.channel})
    if query.buyers == "yes":
        parts.append({"type": "orders", "measure": "count", "op": ">=", "value": 1})
    elif query.buyers == "no":
        parts.append({"type": "orders", "measure": "count", "op": "=", "value": 0})
    if len(parts) == 1 and query.definition is not None:
        return query.definition
    return parse_definition({"all": parts})


def _summaries(con: BaseBackend) -> ir.Table:
    o = con.table("orders")
    o = o.filter(o.status.isin(PAID_STATUSES) & o.customer_id.notnull())
    return o.group_by(_cid="customer_id").aggregate(
        orders=o.order_id.count(),
        net_minor=(o.total_amount.fill_null(0) - o.refunded_amount.fill_null(0)).sum(),
        last_order=o.order_date.max(),
    )


def _search(table: ir.Table, q: str, match_contact: bool) -> ir.Table:
    """The list's free-text search (the same matching as ``repository.search``)."""
    needle = repository.text_literal(q).strip().lower()
    if not needle:
        return table
    return table.filter(repository.search_condition(table, needle, match_contact=match_contact))


def customer_table(con: BaseBackend, query: ListQuery, ctx: Context, *, match_contact: bool) -> ir.Table:
    """The listed customers with their profile columns and ``orders``, ``net_minor`` (net revenue
    in minor units) and ``last_order``, not yet sorted."""
    node = filter_definition(query)
    if query.segment_id:
        people = repository.people(con)
        if segments_repository.has_table(con, segments_repository.MEMBERS_TABLE):
            ids = segments_repository.members(con, query.segment_id).select(_mid="customer_id")
            people = people.semi_join(ids, people.customer_id == ids._mid)
        else:
            people = people.filter(ibis.literal(False))
        table = people
    elif node is not None:
        table = segment(node, load_sources(con, node, ctx.as_of), ctx)
    else:
        table = repository.people(con)
    table = _search(table, query.q, match_contact)
    stats = _summaries(con)
    joined = table.left_join(stats, table.customer_id == stats._cid)
    return joined.select(
        "customer_id", "name", "email", "phone", "city", "channel", "signed_up_at",
        orders=joined.orders.fill_null(0), net_minor=joined.net_minor.fill_null(0),
        last_order=joined.last_order,
    )


def _sorted(table: ir.Table, query: ListQuery) -> ir.Table:
    column = {"net_revenue": "net_minor"}.get(query.sort, query.sort)
    if column not in table.columns:
        column = "customer_id"
    key = ibis.desc(column, nulls_first=False) if query.descending else ibis.asc(column, nulls_first=False)
    tie = ibis.desc("customer_id") if query.descending else ibis.asc("customer_id")
    return table.order_by([key, tie] if column != "customer_id" else [key])


def list_page(con: BaseBackend, query: ListQuery, ctx: Context, *, match_contact: bool,
              offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """One page of the sorted list and the total number of customers it holds."""
    table = customer_table(con, query, ctx, match_contact=match_contact)
    total = int(table.count().to_pyarrow().as_py())
    rows = repository.rows(_sorted(table, query).limit(limit, offset=offset)) if total else []
    return rows, total


def export_rows(con: BaseBackend, query: ListQuery, ctx: Context, *, can_see_pii: bool,
                exponent: int, zone: tzinfo) -> Iterator[list[Any]]:
    """Every listed customer, sorted as the list, as export rows (:data:`EXPORT_COLUMNS`): contact
    masked unless ``can_see_pii``, times in ``zone`` with their offset, net revenue in major units."""
    table = _sorted(customer_table(con, query, ctx, match_contact=can_see_pii), query)
    for batch in table.to_pyarrow_batches(chunk_size=10_000):
        for row in batch.to_pylist():
            email, phone = row["email"], row["phone"]
            if not can_see_pii:
                email, phone = mask_email(email), mask_phone(phone)
            signed = row["signed_up_at"]
            if isinstance(signed, datetime):
                signed = (signed if signed.tzinfo else signed.replace(tzinfo=UTC)).astimezone(zone)
            yield [row["customer_id"], row["name"], email, phone, row["city"], row["channel"], signed,
                   int(row["orders"]), Decimal(int(row["net_minor"])).scaleb(-exponent),
                   row["last_order"]]
