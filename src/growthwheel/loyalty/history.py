"""Members from the shop's history (issue 12 item 3): importing customers and orders makes members.

:func:`sync_members` reads the warehouse — every customer (``customers``) and every buyer of a
paid order (``orders``) — and, a batch of customers per store transaction:

* **growth value** from the *imported* paid orders inside the rolling window: each order earns
  ``floor((total_amount - refunded_amount) / growth_minor_per_unit)`` (the checkout's rule with a
  refund's claw-back already applied), dated at the order's time, as a ``growth_entries`` row of
  kind ``import``. Orders committed through the checkout (``orders.source = 'checkout'``) are left
  out: the checkout recorded their growth itself, so nothing is counted twice;
* **tier** re-evaluated over the window from every growth entry (imported and checkout), as the
  daily tier review does; ``tier_since`` moves only when the tier changes;
* **birthday** from the customer's attributes (kept when the warehouse has none), so the member
  API and page agree with the profile; ``joined_at`` from the sign-up (else the first order).

Idempotent: a customer's ``import`` entries are replaced as a whole by each run, so running it
twice, or again after a crash (the batches already committed stay done), changes nothing more.
Writes are set-based (one multi-row statement per table and batch), so a million customers take
minutes, not hours (``bench/members_sync_bench.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import ibis
from ibis.backends import BaseBackend
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from growthwheel.accounts.models import utcnow
from growthwheel.loyalty import repository
from growthwheel.loyalty.models import GrowthEntry, Member
from growthwheel.loyalty.service import DEFAULT_PROGRAM, LoyaltyProgram, tier_for
from growthwheel.store.db import insert_for
from growthwheel.warehouse.schema import CHECKOUT_SOURCE, PAID_STATUSES

#: Customers per store transaction.
SYNC_BATCH = 5_000
#: Growth entry kind of the imported orders.
IMPORT_KIND = "import"

SessionFactory = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class Person:
    """What the warehouse says about one customer."""

    birthday: date | None = None
    joined_at: datetime | None = None


@dataclass(frozen=True)
class SyncResult:
    """What one sync did."""

    customers: int
    growth_entries: int
    with_tier: int
    with_birthday: int


def _has(backend: BaseBackend, name: str) -> bool:
    return name in backend.list_tables()


Growth = dict[str, list[tuple[str, datetime, int]]]
"""Customer → (order id, order time, growth) of each imported paid order in the window."""


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def read_history(backend: BaseBackend, now: datetime,
                 program: LoyaltyProgram = DEFAULT_PROGRAM) -> tuple[dict[str, Person], Growth]:
    """From the warehouse (any Ibis backend): each customer's birthday and joining time, and the
    growth of each imported paid order inside the window, by customer."""
    people: dict[str, Person] = {}
    growth: Growth = defaultdict(list)
    first_order: dict[str, datetime] = {}
    if _has(backend, "orders"):
        o = backend.table("orders")
        paid = o.filter(o.status.isin(list(PAID_STATUSES)) & o.customer_id.notnull())
        firsts = paid.group_by("customer_id").aggregate(first=paid.ordered_at.min()).to_pyarrow()
        for cid, first in zip(firsts["customer_id"].to_pylist(), firsts["first"].to_pylist(), strict=True):
            first_order[str(cid)] = first
        start = now - timedelta(days=program.window_days)
        # (A warehouse written before ``source`` existed, opened read-only, has only imports.)
        imported = (paid.source.isnull() | (paid.source != CHECKOUT_SOURCE)) if "source" in paid.columns \
            else ibis.literal(True)
        in_window = (paid.ordered_at > _naive_utc(start)) & (paid.ordered_at <= _naive_utc(now))
        recent = paid.filter(in_window & imported)
        table = recent.select(recent.customer_id, recent.order_id, recent.ordered_at,
                              net=recent.total_amount - recent.refunded_amount.fill_null(0)).to_pyarrow()
        columns = (table[c].to_pylist() for c in ("customer_id", "order_id", "ordered_at", "net"))
        for cid, oid, at, net in zip(*columns, strict=True):
            amount = max(int(net or 0), 0) // program.growth_minor_per_unit
            if amount:
                growth[str(cid)].append((str(oid), at, amount))
    if _has(backend, "customers"):
        c = backend.table("customers")
        rows = c.select("customer_id", "birthday", "signed_up_at").to_pyarrow()
        columns = (rows[n].to_pylist() for n in ("customer_id", "birthday", "signed_up_at"))
        for cid, birthday, signed in zip(*columns, strict=True):
            people[str(cid)] = Person(birthday=birthday, joined_at=signed or first_order.get(str(cid)))
    for cid, first in first_order.items():
        people.setdefault(cid, Person(joined_at=first))
    return people, dict(growth)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value



def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def sync_members(open_session: SessionFactory, people: dict[str, Person], growth: Growth,
                 now: datetime | None = None, *, program: LoyaltyProgram = DEFAULT_PROGRAM,
                 batch: int | None = None) -> SyncResult:
    """Write members, imported growth and tiers for ``people`` (see the module docstring), a batch
    of customers per transaction."""
    now = now or utcnow()
    start = now - timedelta(days=program.window_days)
    customers = sorted(set(people) | set(growth))
    entries = with_tier = with_birthday = 0
    for group in _batches(customers, batch or SYNC_BATCH):
        with open_session() as session:
            ladder = repository.tiers(session)
            session.execute(delete(GrowthEntry).where(GrowthEntry.kind == IMPORT_KIND,
                                                      GrowthEntry.customer_id.in_(group)))
            rows = [{"customer_id": cid, "effective_at": _aware(at), "recorded_at": now, "amount": amount,
                     "kind": IMPORT_KIND, "order_id": oid}
                    for cid in group for oid, at, amount in growth.get(cid, ())]
            if rows:
                session.execute(insert(GrowthEntry), rows)
            entries += len(rows)
            totals = dict(session.execute(
                select(GrowthEntry.customer_id, func.sum(GrowthEntry.amount))
                .where(GrowthEntry.customer_id.in_(group), GrowthEntry.effective_at > start,
                       GrowthEntry.effective_at <= now)
                .group_by(GrowthEntry.customer_id)).all())
            members = []
            for cid in group:
                person = people.get(cid, Person())
                total = int(totals.get(cid) or 0)
                tier = tier_for(ladder, total)
                with_tier += tier is not None
                with_birthday += person.birthday is not None
                members.append({"customer_id": cid, "tier_code": tier, "growth": total,
                                "birthday": person.birthday, "joined_at": _aware(person.joined_at) or now,
                                "tier_since": now if tier else None, "evaluated_at": now})
            table = Member.__table__
            statement = insert_for(session)(table)
            ex = statement.excluded
            statement = statement.on_conflict_do_update(index_elements=[table.c.customer_id], set_={
                "tier_code": ex.tier_code, "growth": ex.growth, "evaluated_at": ex.evaluated_at,
                "birthday": func.coalesce(ex.birthday, table.c.birthday),
                "joined_at": func.coalesce(table.c.joined_at, ex.joined_at),
                "tier_since": _tier_since(table, ex),
            })
            session.execute(statement, members)  # one statement, executed for many rows
    return SyncResult(customers=len(customers), growth_entries=entries, with_tier=with_tier,
                      with_birthday=with_birthday)


def _tier_since(table: Any, ex: Any) -> Any:
    from sqlalchemy import case

    return case((table.c.tier_code.is_distinct_from(ex.tier_code), ex.tier_since), else_=table.c.tier_since)


def sync_from_warehouse(open_session: SessionFactory, backend: BaseBackend, now: datetime | None = None, *,
                        program: LoyaltyProgram = DEFAULT_PROGRAM, batch: int | None = None) -> SyncResult:
    """Read the history from ``backend`` and write the members (:func:`read_history` then
    :func:`sync_members`)."""
    now = now or utcnow()
    people, growth = read_history(backend, now, program)
    return sync_members(open_session, people, growth, now, program=program, batch=batch)
