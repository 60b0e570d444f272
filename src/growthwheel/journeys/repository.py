"""Every query of the journeys domain.

Operational store (SQLAlchemy): journeys, versions, enrolments, the step log, customer traits.
Warehouse (Ibis, read only): :class:`WarehouseView` — trigger candidates, paid orders of given
customers, contact details, segment membership. Orders committed through the checkout that the
warehouse has not received yet are read from the operational store (``checkout_orders``) and
merged by order id, so a goal sees an order the moment it is committed and never counts it twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ibis
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from growthwheel.journeys import triggers
from growthwheel.journeys.models import CustomerTrait, Enrolment, Journey, JourneyVersion, StepLog
from growthwheel.store.db import insert_for
from growthwheel.warehouse.schema import PAID_STATUSES

# ---------------------------------------------------------------------------------------------
# Journeys
# ---------------------------------------------------------------------------------------------


def journey(session: Session, ref: str) -> Journey | None:
    """A journey by id or by name."""
    found = session.get(Journey, ref)
    return found or session.scalars(select(Journey).where(Journey.name == ref)).first()


def journeys(session: Session, status: str | None = None) -> list[Journey]:
    """Journeys, newest first."""
    q = select(Journey).order_by(Journey.created_at.desc(), Journey.id)
    if status:
        q = q.where(Journey.status == status)
    return list(session.scalars(q))


def add_version(
    session: Session, journey_id: str, version: int, definition: dict[str, Any], now: datetime
) -> None:
    """Keep a definition version."""
    session.add(JourneyVersion(journey_id=journey_id, version=version, definition=definition, created_at=now))


def version_definition(session: Session, journey_id: str, version: int) -> dict[str, Any] | None:
    """The definition of one version."""
    row = session.get(JourneyVersion, (journey_id, version))
    return dict(row.definition) if row else None


# ---------------------------------------------------------------------------------------------
# Enrolments
# ---------------------------------------------------------------------------------------------



def insert_enrolments(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert enrolments; a (journey, customer, occurrence) already there is skipped by the database.
    Returns how many were new."""
    if not rows:
        return 0
    added = 0
    for start in range(0, len(rows), 500):
        statement = (
            insert_for(session)(Enrolment)
            .values(list(rows[start : start + 500]))
            .on_conflict_do_nothing(index_elements=["journey_id", "customer_id", "occurrence"])
            .returning(Enrolment.id)
        )
        added += len(session.execute(statement).all())
    return added


def last_entries(session: Session, journey_id: str, customers: Iterable[str]) -> dict[str, datetime]:
    """The latest entry of each of ``customers`` into the journey (those with one)."""
    wanted = list(dict.fromkeys(customers))
    found: dict[str, datetime] = {}
    for start in range(0, len(wanted), 900):
        q = (
            select(Enrolment.customer_id, func.max(Enrolment.entered_at))
            .where(Enrolment.journey_id == journey_id, Enrolment.customer_id.in_(wanted[start : start + 900]))
            .group_by(Enrolment.customer_id)
        )
        for customer, at in session.execute(q):
            if at is not None:
                found[str(customer)] = at if at.tzinfo else at.replace(tzinfo=UTC)
    return found


def due_enrolments(
    session: Session, now: datetime, limit: int, journey_ids: Sequence[str]
) -> list[Enrolment]:
    """Active enrolments of active journeys whose next move is due."""
    q = (
        select(Enrolment)
        .where(
            Enrolment.status == "active", Enrolment.due_at <= now, Enrolment.journey_id.in_(list(journey_ids))
        )
        .order_by(Enrolment.due_at, Enrolment.id)
        .limit(limit)
    )
    return list(session.scalars(q))


def take_turn(session: Session, enrolment_id: str, seq: int, values: dict[str, Any]) -> bool:
    """Move an enrolment if nobody moved it since we read it (``seq`` unchanged): one conditional
    UPDATE, which also locks the row until the transaction ends. False: another worker moved it."""
    done = session.execute(
        update(Enrolment)
        .where(Enrolment.id == enrolment_id, Enrolment.seq == seq, Enrolment.status == "active")
        .values(seq=seq + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(done, "rowcount", 0)) == 1


def log_step(
    session: Session, enrolment: Enrolment, step_id: str, outcome: str, detail: dict[str, Any], now: datetime
) -> None:
    """Record what a step did (once per enrolment and step)."""
    session.add(
        StepLog(
            enrolment_id=enrolment.id,
            journey_id=enrolment.journey_id,
            step_id=step_id,
            customer_id=enrolment.customer_id,
            outcome=outcome,
            detail=detail,
            at=now,
        )
    )


def open_goals(session: Session, journey_id: str, since: datetime) -> list[Enrolment]:
    """Enrolments whose goal window is still open (or closed after ``since``)."""
    q = select(Enrolment).where(
        Enrolment.journey_id == journey_id,
        Enrolment.goal_until > since,
        Enrolment.status.in_(("active", "held_out", "converted", "completed", "exited")),
    )
    return list(session.scalars(q))


# ---------------------------------------------------------------------------------------------
# Customer traits
# ---------------------------------------------------------------------------------------------


def set_trait(
    session: Session, customer_id: str, kind: str, name: str, value: str | None, source: str, now: datetime
) -> None:
    """Set (or, for ``remove``/``None``, delete) a tag or attribute."""
    session.execute(
        delete(CustomerTrait).where(
            CustomerTrait.customer_id == customer_id, CustomerTrait.kind == kind, CustomerTrait.name == name
        )
    )
    session.add(
        CustomerTrait(
            customer_id=customer_id, kind=kind, name=name, value=value, source=source, updated_at=now
        )
    )


def remove_trait(session: Session, customer_id: str, kind: str, name: str) -> None:
    """Delete a tag or attribute."""
    session.execute(
        delete(CustomerTrait).where(
            CustomerTrait.customer_id == customer_id, CustomerTrait.kind == kind, CustomerTrait.name == name
        )
    )


def traits(session: Session, customers: Sequence[str]) -> dict[str, tuple[set[str], dict[str, str | None]]]:
    """Tags and attributes of ``customers``."""
    out: dict[str, tuple[set[str], dict[str, str | None]]] = {}
    for start in range(0, len(customers), 900):
        q = select(CustomerTrait).where(CustomerTrait.customer_id.in_(list(customers[start : start + 900])))
        for row in session.scalars(q):
            tags, attrs = out.setdefault(row.customer_id, (set(), {}))
            if row.kind == "tag":
                tags.add(row.name)
            else:
                attrs[row.name] = row.value
    return out


def clicked_keys(session: Session, keys: Sequence[str]) -> set[str]:
    """The message keys among ``keys`` with at least one click."""
    from growthwheel.journeys.channels.models import ChannelClick

    found: set[str] = set()
    for start in range(0, len(keys), 900):
        found |= set(
            session.scalars(
                select(ChannelClick.message_key).where(
                    ChannelClick.message_key.in_(list(keys[start : start + 900]))
                )
            )
        )
    return found


def step_counts(session: Session, journey_id: str) -> list[tuple[str, str, int]]:
    """(step, outcome, enrolments) of the step log."""
    q = (
        select(StepLog.step_id, StepLog.outcome, func.count())
        .where(StepLog.journey_id == journey_id)
        .group_by(StepLog.step_id, StepLog.outcome)
        .order_by(StepLog.step_id, StepLog.outcome)
    )
    return [(str(s), str(o), int(n)) for s, o, n in session.execute(q)]


def enrolment_outcomes(session: Session, journey_id: str) -> list[tuple[bool, str, bool, int]]:
    """Per enrolment: held out?, status, converted?, revenue in the goal window."""
    q = select(
        Enrolment.held_out,
        Enrolment.status,
        Enrolment.converted_at.is_not(None),
        func.coalesce(Enrolment.conversion_amount, 0),
    ).where(Enrolment.journey_id == journey_id)
    return [(bool(h), str(s), bool(c), int(r)) for h, s, c, r in session.execute(q)]


# ---------------------------------------------------------------------------------------------
# Orders (warehouse + checkout) and the warehouse view
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFact:
    """A paid order as a goal sees it: net amount in minor units, UTC time."""

    order_id: str
    customer_id: str
    ordered_at: datetime
    amount: int


def checkout_orders(session: Session, customers: Sequence[str], since: datetime) -> list[OrderFact]:
    """Orders committed through the checkout (paid, not fully refunded) by ``customers``."""
    from growthwheel.promotions.models import CheckoutOrder

    out: list[OrderFact] = []
    for start in range(0, len(customers), 900):
        q = select(CheckoutOrder).where(
            CheckoutOrder.customer_id.in_(list(customers[start : start + 900])),
            CheckoutOrder.committed_at > since,
        )
        for row in session.scalars(q):
            if row.status in PAID_STATUSES:
                at = row.committed_at if row.committed_at.tzinfo else row.committed_at.replace(tzinfo=UTC)
                out.append(
                    OrderFact(row.id, row.customer_id, at, int(row.total) - int(row.refunded_amount or 0))
                )
    return out


class WarehouseView:
    """What the journeys read from the warehouse, over an Ibis backend (``None``: no warehouse)."""

    def __init__(self, backend: Any | None, *, cache_key: str | None = None) -> None:
        self.backend = backend
        self.cache_key = cache_key
        """Names the warehouse (its data directory) so learned lifecycle thresholds are kept a day."""
        self._names: set[str] = set(backend.list_tables()) if backend is not None else set()

    def has(self, name: str) -> bool:
        """Whether the warehouse holds table ``name``."""
        return name in self._names

    def candidates(self, trig: Any, window: triggers.Window) -> list[triggers.Candidate]:
        """Customers a warehouse trigger hit in ``window``."""
        if self.backend is None:
            return []
        return triggers.evaluate_warehouse(self.backend, trig, window, cache_key=self.cache_key)

    def _ids(self, customers: Sequence[str]) -> Any:
        import pandas as pd  # here: listing journeys needs no pandas

        return ibis.memtable(
            pd.DataFrame({"_cid": pd.Series(list(dict.fromkeys(customers)), dtype="string")})
        )

    def orders(self, customers: Sequence[str], since: datetime) -> list[OrderFact]:
        """Paid orders of ``customers`` placed after ``since`` (net of refunds)."""
        if self.backend is None or not customers or not self.has("orders"):
            return []
        o = self.backend.table("orders")
        ids = self._ids(customers)
        o = o.filter(
            o.status.isin(PAID_STATUSES) & (o.ordered_at > since.astimezone(UTC).replace(tzinfo=None))
        )
        o = o.join(ids, o.customer_id == ids._cid)
        net = o.total_amount.fill_null(0) - o.refunded_amount.fill_null(0)
        frame = o.select("order_id", "customer_id", "ordered_at", amount=net).execute()
        import pandas as pd

        return [
            OrderFact(str(i), str(c), pd.Timestamp(at).to_pydatetime().replace(tzinfo=UTC), int(a))
            for i, c, at, a in frame.itertuples(index=False, name=None)
        ]

    def contacts(self, customers: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Email, phone and name of ``customers`` (those the warehouse knows)."""
        if self.backend is None or not customers or not self.has("customers"):
            return {}
        c = self.backend.table("customers")
        ids = self._ids(customers)
        frame = (
            c.join(ids, c.customer_id == ids._cid).select("customer_id", "email", "phone", "name").execute()
        )
        return {
            str(row.customer_id): {
                "email": _text(row.email),
                "phone": _text(row.phone),
                "name": _text(row.name),
            }
            for row in frame.itertuples(index=False)
        }

    def segment_members(self, segment_id: str, customers: Sequence[str]) -> set[str]:
        """Which of ``customers`` are members of the segment now."""
        if self.backend is None or not customers or not self.has("segment_members"):
            return set()
        m = self.backend.table("segment_members")
        ids = self._ids(customers)
        m = m.filter(m.segment_id == segment_id)
        frame = m.join(ids, m.customer_id == ids._cid).select("customer_id").execute()
        return {str(x) for x in frame["customer_id"]}

    def tags(self, customers: Sequence[str]) -> dict[str, set[str]]:
        """Warehouse tags (manual and rule tags) of ``customers``."""
        if self.backend is None or not customers or not self.has("customer_tags"):
            return {}
        t = self.backend.table("customer_tags")
        ids = self._ids(customers)
        frame = t.join(ids, t.customer_id == ids._cid).select("customer_id", "tag").execute()
        out: dict[str, set[str]] = {}
        for customer, tag in frame.itertuples(index=False, name=None):
            out.setdefault(str(customer), set()).add(str(tag))
        return out


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def all_orders(
    session: Session, view: WarehouseView, customers: Sequence[str], since: datetime
) -> list[OrderFact]:
    """Warehouse orders plus checkout orders not (yet) in the warehouse, one per order id."""
    merged: dict[str, OrderFact] = {o.order_id: o for o in checkout_orders(session, customers, since)}
    merged.update({o.order_id: o for o in view.orders(customers, since)})
    return list(merged.values())
