"""Event capture: record a batch, and read a customer's events with their anonymous history.

Where identities live: the link between an anonymous id and a customer is the event that carried
both (a sign-in, an identify call, a purchase), and that event is stored in the warehouse's
``events`` table like any other. :func:`identities` derives the links from it, so they can never
disagree with the events, need no second write (which could fail on its own), are idempotent
like the events themselves, and are read in the same query as the events they stitch — on DuckDB
and on Spark alike. Links therefore appear together with the identifying event, about a second
after it was accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from growthwheel.events import core
from growthwheel.warehouse.owner import WarehouseOwner
from growthwheel.warehouse.schema import EVENTS


def record_events(owner: WarehouseOwner, events: Sequence[Mapping[str, Any]], shop_tz: tzinfo) -> core.Batch:
    """Validate a batch whole and spool it durably; raises ``core.InvalidEventsError`` when any
    event is bad (then nothing is stored)."""
    batch = core.validate_batch(events, shop_tz)
    owner.append_events(batch.rows)
    return batch


def identities(backend: BaseBackend) -> ir.Table:
    """``anonymous_id``, ``customer_id``, ``linked_at``: each anonymous id with the first customer
    it was seen with (the rule of ``core.stitch``)."""
    events = backend.table("events")
    links = events.filter(events.anonymous_id.notnull(), events.customer_id.notnull())
    ranked = links.mutate(
        _rank=ibis.row_number().over(
            group_by=links.anonymous_id, order_by=[links.occurred_at, links.event_id]
        )
    )
    first = ranked.filter(ranked._rank == 0)
    return first.select("anonymous_id", "customer_id", linked_at=first.occurred_at)


def customer_events(backend: BaseBackend, customer_id: str) -> ir.Table:
    """A customer's events, oldest first, including the anonymous events of every device that
    identified as them first (those have ``stitched = True`` and ``customer_id`` filled in)."""
    events = backend.table("events").select(*EVENTS.stored_names)
    links = identities(backend)
    devices = links.filter(links.customer_id == customer_id).anonymous_id
    own = events.filter(events.customer_id == customer_id).mutate(stitched=ibis.literal(False))
    earlier = events.filter(events.customer_id.isnull(), events.anonymous_id.isin(devices)).mutate(
        customer_id=ibis.literal(customer_id, type="string"), stitched=ibis.literal(True)
    )
    both = own.union(earlier)
    return both.order_by([both.occurred_at, both.event_id])
