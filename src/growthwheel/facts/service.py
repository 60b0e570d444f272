"""Acting facts flow back into the warehouse, through the one ingest path. Records never commit.

**Recording.** The checkout (``promotions.orders``) calls :func:`record_order` at the end of an
order's commit and of each refund, in the same transaction: the order as it now stands (every
line with what it paid, the promotions and coupons that discounted it, the part paid with points,
what has been refunded; order-level shipping and points) becomes one ``fact_outbox`` row in the
generic ``order_lines`` import columns. Points moves, coupon issues and redemptions and message
statuses are recorded as ``events`` rows (:func:`record_event`, types in :data:`EVENT_TYPES`) with a
deterministic ``event_id``. A rolled-back act leaves no fact; a committed one leaves its fact.

**Draining.** :func:`drain` (the worker's ``facts.drain`` job, every few seconds, handing the work
to the server when it owns the warehouse) reads the pending rows in id order, keeps the latest
row of each order (each row is the whole order), imports orders with ``ingest.import_rows(
"order_lines", …, origin="checkout")`` and events with ``import_rows("events", …)`` — the same
validation, quarantine and keyed merge as any import — and only after the warehouse committed
marks the rows done in the store. A process killed between the two leaves the rows pending; the
next drain imports them again, which the keyed merge turns into "unchanged": nothing is lost and
nothing counted twice. Orders stored with ``source = 'checkout'`` are left alone by a later import
of the same ``order_id`` from the shop's export (see ``warehouse.ingest_merge.classify``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pyarrow as pa
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.orm import Session

from growthwheel.accounts.models import utcnow
from growthwheel.config import Settings
from growthwheel.facts.models import FactCursor, FactRow
from growthwheel.kit.money import currency_exponent, major_text
from growthwheel.warehouse.schema import CHECKOUT_SOURCE, EVENTS, ORDER_LINES

#: Event types of the facts recorded here (custom types of the ``events`` table).
EVENT_TYPES = (
    "points_moved", "coupon_issued", "coupon_redeemed", "coupon_released",
    "message_queued", "message_sent", "message_delivered", "message_opened", "message_clicked",
    "message_bounced", "message_unsubscribed", "message_failed",
)
#: How far back a message sweep looks again before its cursor (a row committed late is still seen;
#: event ids make the repeats harmless).
SWEEP_OVERLAP = timedelta(minutes=10)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Pending facts read per drain (the orders among them are imported in one import).
DRAIN_BATCH = 5_000

SessionFactory = Callable[[], AbstractContextManager[Session]]
Importer = Callable[[str, pa.Table, str], Any]
"""Imports rows into a warehouse table (``ingest.import_rows`` with the checkout origin)."""


def _iso(when: datetime) -> str:
    return when.isoformat()


# ---------------------------------------------------------------------------------------------
# Recording (inside the act's transaction)
# ---------------------------------------------------------------------------------------------


def order_rows(order: Any, lines: Sequence[Any]) -> list[dict[str, str | None]]:
    """The generic ``order_lines`` rows of a checkout order as it stands (``order``: a
    ``CheckoutOrder``; ``lines``: its ``CheckoutOrderLine`` rows). Pure: no I/O."""
    exp = currency_exponent(order.currency)
    priced = (order.priced or {}).get("priced") or {}
    by_line = {str(p.get("line_id")): p for p in priced.get("lines") or []}
    order_ids = [str(line_id) for line_id in (p.get("line_id") for p in priced.get("lines") or [])]
    ordered = sorted(lines, key=lambda ln: order_ids.index(ln.line_id) if ln.line_id in order_ids
                     else len(order_ids))
    coupons = list((order.priced or {}).get("coupons") or [])
    rows: list[dict[str, str | None]] = []
    for n, line in enumerate(ordered):
        discounts = (by_line.get(line.line_id) or {}).get("discounts") or []
        promotions = sorted({str(d["promotion_id"]) for d in discounts
                             if d.get("layer") in ("item", "order") and d.get("promotion_id")})
        codes = sorted({str(d["coupon_code"]) for d in discounts if d.get("coupon_code")})
        points = sum(int(d.get("amount") or 0) for d in discounts if d.get("layer") == "points")
        rows.append({
            "order_id": order.id, "customer_id": order.customer_id, "ordered_at": _iso(order.committed_at),
            "paid_at": _iso(order.committed_at), "sku": line.sku, "quantity": str(line.quantity),
            "unit_price": major_text(line.unit_price, exp), "discount": major_text(line.discount, exp),
            "line_total": major_text(line.paid, exp),
            "refunded_amount": major_text(line.refunded_amount, exp),
            "currency": order.currency, "status": order.status,
            "shipping": major_text(order.shipping, exp) if n == 0 else None,
            "coupon_code": coupons[0] if coupons else None,
            "promotion_ids": ";".join(promotions) or None, "coupon_codes": ";".join(codes) or None,
            "points_amount": major_text(points, exp),
            "points_used": str(order.points_used), "points_earned": str(order.points_earned),
        })
    return rows


_INSERT_FACT = insert(cast(Table, FactRow.__table__))
"""One fact row, written at once (a Core insert built once: the ORM's unit of work added a flush,
and a ``RETURNING id`` nobody reads, to every act)."""


def record_order(session: Session, order: Any, lines: Sequence[Any], *, now: datetime | None = None) -> None:
    """Record the order as it now stands (after its commit or a refund) as a fact to drain."""
    _write(session, {"kind": "order", "key": order.id, "payload": order_rows(order, lines),
                     "created_at": now or utcnow()})


def record_event(session: Session, *, event_id: str, type: str, occurred_at: datetime,
                 customer_id: str | None, order_id: str | None = None,
                 properties: Mapping[str, Any] | None = None) -> None:
    """Record one acting event (a points move, a coupon, a message status) as a fact to drain;
    ``event_id`` makes it idempotent (recording or draining it twice changes nothing)."""
    props = json.dumps(dict(properties), ensure_ascii=False, sort_keys=True) if properties else None
    row = {"event_id": event_id, "type": type, "occurred_at": _iso(occurred_at), "customer_id": customer_id,
           "order_id": order_id, "properties": props}
    _write(session, {"kind": "event", "key": event_id, "payload": row, "created_at": utcnow()})


_BATCH = "growthwheel.facts.batch"
"""The ``Session.info`` key of the facts kept by :func:`batched`."""


@contextmanager
def batched(session: Session) -> Iterator[None]:
    """Keep the facts recorded within the block and write them in one multi-row ``INSERT`` when it
    ends (a checkout records three or more facts: one round trip instead of one each). Nested, the
    outermost block writes. A block left by an exception writes nothing: the caller's transaction,
    which holds the act, rolls back. Do not enclose a savepoint that may roll back facts recorded
    inside it (they would still be written)."""
    if _BATCH in session.info:
        yield
        return
    kept: list[dict[str, Any]] = []
    session.info[_BATCH] = kept
    try:
        yield
    finally:
        del session.info[_BATCH]
    if kept:
        session.execute(_INSERT_FACT, kept)


def _write(session: Session, row: dict[str, Any]) -> None:
    kept = session.info.get(_BATCH)
    if kept is None:
        session.execute(_INSERT_FACT, row)
    else:
        kept.append(row)


def message_event_id(kind: str, message_key: str) -> str:
    """The event id of a message's ``kind`` status (``delivered``, ``opened``, ``bounced``,
    ``unsubscribed``): one per message, whoever reports it (a long key is hashed to fit)."""
    if len(message_key) > 250:
        message_key = "#" + hashlib.sha256(message_key.encode("utf-8")).hexdigest()
    return f"message_{kind}:{message_key}"


def sweep_messages(session: Session, now: datetime | None = None) -> int:
    """Record the message facts of the outbox and the channels since the last sweep; returns how
    many. From the outbox: each message queued (``message_queued``), sent (``message_sent``) and
    given up (``message_failed``), keyed by the outbox row id; a sent message was accepted by its
    provider (SMTP 250, a webhook's 2xx), so it is also ``message_delivered``. From the channels:
    each tracked click (``message_clicked``, keyed by the click id) and each status reported after
    the send (``channel_message_events``): ``message_delivered`` (a provider's callback),
    ``message_opened`` (the open pixel), ``message_bounced`` (SMTP 5xx at send time or a bounce
    callback), ``message_unsubscribed`` (the one-click link) — keyed by the message key, so a
    delivery both accepted at send time and confirmed by a callback is one fact, and each status
    is one fact per message however often it is reported."""
    from growthwheel.jobs.models import OutboxRow
    from growthwheel.journeys.channels.models import ChannelClick, ChannelMessageEvent

    now = now or utcnow()
    cursor = session.get(FactCursor, "messages")
    since = (cursor.at - SWEEP_OVERLAP) if cursor is not None else _EPOCH
    found: list[dict[str, Any]] = []

    def collect(**event: Any) -> None:  # recorded once below, the new ones only
        found.append(event)

    def props(row: OutboxRow) -> dict[str, Any]:
        found = {"channel": row.channel, "journey_id": row.journey_id, "step_id": row.step_id,
                 "message_key": row.key}
        return {k: v for k, v in found.items() if v is not None}

    for row in session.scalars(select(OutboxRow).where(OutboxRow.customer_id.is_not(None), (
            (OutboxRow.created_at > since) | (OutboxRow.sent_at > since) | (OutboxRow.dead_at > since)))):
        if row.created_at > since:
            collect(event_id=f"message_queued:{row.id}", type="message_queued",
                         occurred_at=row.created_at, customer_id=row.customer_id, properties=props(row))
        if row.sent_at is not None and row.sent_at > since:
            collect(event_id=f"message_sent:{row.id}", type="message_sent",
                         occurred_at=row.sent_at, customer_id=row.customer_id, properties=props(row))
            collect(event_id=message_event_id("delivered", row.key), type="message_delivered",
                    occurred_at=row.sent_at, customer_id=row.customer_id,
                    properties={**props(row), "source": "send"})
        if row.dead_at is not None and row.dead_at > since:
            collect(event_id=f"message_failed:{row.id}", type="message_failed",
                         occurred_at=row.dead_at, customer_id=row.customer_id,
                         properties={**props(row), "reason": row.dead_reason})
    for click in session.scalars(select(ChannelClick).where(ChannelClick.clicked_at > since)):
        collect(event_id=f"message_clicked:{click.id}", type="message_clicked",
                     occurred_at=click.clicked_at, customer_id=click.customer_id,
                     properties={"channel": click.channel, "message_key": click.message_key,
                                 "url": click.url})
    for status in session.scalars(select(ChannelMessageEvent).where(ChannelMessageEvent.at > since)):
        found_props = {"channel": status.channel, "message_key": status.message_key, "source": status.source,
                       "detail": status.detail}
        collect(event_id=message_event_id(status.kind, status.message_key), type=f"message_{status.kind}",
                occurred_at=status.at, customer_id=status.customer_id,
                properties={k: v for k, v in found_props.items() if v is not None})
    # The overlap finds the last minutes' facts again: record only those not recorded yet.
    recorded: set[str] = set()
    keys = [e["event_id"] for e in found]
    for start in range(0, len(keys), 500):
        recorded |= set(session.scalars(select(FactRow.key).where(FactRow.key.in_(keys[start:start + 500]))))
    fresh = list({e["event_id"]: e for e in reversed(found) if e["event_id"] not in recorded}.values())[::-1]
    record_events(session, fresh)
    if cursor is None:
        session.add(FactCursor(name="messages", at=now))
    else:
        cursor.at = now
    return len(fresh)


#: Drained facts are kept this long (for a look at what went in), then deleted.
KEEP_DONE = timedelta(days=7)


def purge_done(session: Session, now: datetime | None = None) -> int:
    """Delete the facts drained more than :data:`KEEP_DONE` ago, at most once an hour; returns how
    many."""
    now = now or utcnow()
    cursor = session.get(FactCursor, "purged")
    if cursor is not None and now - cursor.at < timedelta(hours=1):
        return 0
    old = delete(FactRow).where(FactRow.done_at.is_not(None), FactRow.done_at < now - KEEP_DONE)
    result = session.execute(old, execution_options={"synchronize_session": False})
    if cursor is None:
        session.add(FactCursor(name="purged", at=now))
    else:
        cursor.at = now
    return int(getattr(result, "rowcount", 0) or 0)


def record_events(session: Session, events: Sequence[Mapping[str, Any]]) -> None:
    """Record many events at once (keys as :func:`record_event`), in one multi-row insert per
    thousand (issuing a coupon to a whole segment records one ``coupon_issued`` each)."""
    rows = []
    for e in events:
        props = e.get("properties")
        text = json.dumps(dict(props), ensure_ascii=False, sort_keys=True) if props else None
        payload = {"event_id": e["event_id"], "type": e["type"], "occurred_at": _iso(e["occurred_at"]),
                   "customer_id": e.get("customer_id"), "order_id": e.get("order_id"), "properties": text}
        rows.append({"kind": "event", "key": e["event_id"], "payload": payload, "created_at": utcnow()})
    for start in range(0, len(rows), 1000):
        session.execute(insert(FactRow), rows[start:start + 1000])


# ---------------------------------------------------------------------------------------------
# Draining (a worker job, or the server's writer thread)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrainResult:
    """What one drain did."""

    facts: int
    orders: int
    events: int
    left: bool
    """More facts were pending than one batch took."""


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> pa.Table:
    return pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in columns})


def pending(session: Session, limit: int) -> list[FactRow]:
    """The oldest ``limit`` facts not yet in the warehouse."""
    return list(session.scalars(select(FactRow).where(FactRow.done_at.is_(None)).order_by(FactRow.id)
                                .limit(limit)))


def drain(open_session: SessionFactory, importer: Importer, *, batch: int | None = None,
          now: datetime | None = None) -> DrainResult:
    """Move up to ``batch`` pending facts into the warehouse (see the module docstring).

    ``importer(table, rows, source)`` imports into the warehouse and commits there; the rows are
    marked done in the store only afterwards, so a crash in between repeats the import (keyed:
    no change) rather than losing it. Drains must not run two at once (the worker's job lease, or
    the server's single writer thread): an older state of an order is never imported after a
    newer one because each drain takes the pending rows in id order and keeps each order's last.
    """
    size = batch or DRAIN_BATCH
    with open_session() as session:
        rows = pending(session, size + 1)
        facts = [(r.id, r.kind, r.key, r.payload) for r in rows[:size]]
    if not facts:
        return DrainResult(0, 0, 0, False)
    latest: dict[str, list[dict[str, Any]]] = {}
    events: dict[str, dict[str, Any]] = {}
    for _id, kind, key, payload in facts:
        if kind == "order":
            latest.pop(key, None)
            latest[key] = list(payload)
        else:
            events[key] = dict(payload)
    if latest:
        lines = [line for order in latest.values() for line in order]
        importer("order_lines", _table(lines, [c.name for c in ORDER_LINES.inputs]), "checkout")
    if events:
        importer("events", _table(list(events.values()), [c.name for c in EVENTS.inputs]), "acting facts")
    ids = [i for i, *_ in facts]
    with open_session() as session:
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            session.execute(update(FactRow).where(FactRow.id.in_(part)).values(done_at=now or utcnow()),
                            execution_options={"synchronize_session": False})
    return DrainResult(facts=len(facts), orders=len(latest), events=len(events), left=len(rows) > size)


def direct_importer(cfg: Settings) -> Importer:
    """Import straight into the warehouse (the process holds it: the server's writer thread, or a
    worker when no server runs)."""
    from growthwheel.warehouse import ingest

    def run(table: str, rows: pa.Table, source: str) -> Any:
        return ingest.import_rows(table, rows, source, cfg=cfg, origin=CHECKOUT_SOURCE)

    return run


def drain_all(open_session: SessionFactory, importer: Importer, *, batch: int | None = None) -> DrainResult:
    """:func:`drain` until nothing is pending; the totals."""
    facts = orders = events = 0
    while True:
        done = drain(open_session, importer, batch=batch)
        facts, orders, events = facts + done.facts, orders + done.orders, events + done.events
        if not done.left:
            return DrainResult(facts, orders, events, False)
