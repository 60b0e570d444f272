"""Every query of the segments domain: saved segments in the operational store, membership and tags
in the warehouse.

Warehouse tables (DuckDB; created on first write by :func:`ensure_tables`):

* ``segment_members`` (``segment_id``, ``customer_id``, ``entered_at``): who is in each saved
  segment now, and since when (UTC);
* ``segment_membership_events`` (``segment_id``, ``customer_id``, ``event`` = ``entered`` |
  ``left``, ``at``): the history, one row per change found by a refresh;
* ``customer_tags`` (``customer_id``, ``tag``, ``source`` = ``manual`` | ``rule``, ``rule_id``,
  ``tagged_at``): manual tags and those set by tag rules (``rule_id`` = the segment's id).

Writes take a raw DuckDB connection and run in one transaction each; the statements are fixed
text with ``?`` parameters (segment ids, tags, times and customer ids are never pasted in), and
the new membership comes from the compiled Ibis expression (``segments.compile``). Reads are
Ibis expressions.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import ibis
import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends import BaseBackend
from sqlalchemy import select
from sqlalchemy.orm import Session

from growthwheel.customers.repository import people
from growthwheel.segments.compile import TAGS_TABLE, imported_tags
from growthwheel.segments.models import Segment

MEMBERS_TABLE = "segment_members"
EVENTS_TABLE = "segment_membership_events"

_DDL = (
    f"CREATE TABLE IF NOT EXISTS {MEMBERS_TABLE} ("
    "segment_id VARCHAR, customer_id VARCHAR, entered_at TIMESTAMP)",
    f"CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} ("
    "segment_id VARCHAR, customer_id VARCHAR, event VARCHAR, "
    "\"at\" TIMESTAMP)",
    f"CREATE TABLE IF NOT EXISTS {TAGS_TABLE} ("
    "customer_id VARCHAR, tag VARCHAR, source VARCHAR, rule_id VARCHAR, "
    "tagged_at TIMESTAMP)",
)

#: Builds the new membership (one ``customer_id`` column) from a backend over the write connection.
MembersQuery = Callable[[BaseBackend], ir.Table]


# ---------------------------------------------------------------------------------------------
# Operational store
# ---------------------------------------------------------------------------------------------


def segment_by_id(session: Session, segment_id: str) -> Segment | None:
    """The segment with this id, or ``None``."""
    return session.get(Segment, segment_id)


def segment_by_name(session: Session, name: str) -> Segment | None:
    """The segment with this name, or ``None``."""
    return session.scalars(select(Segment).where(Segment.name == name)).first()


def all_segments(session: Session) -> list[Segment]:
    """Every saved segment, by name."""
    return list(session.scalars(select(Segment).order_by(Segment.name)))


def rules_with_tag(session: Session, tag: str) -> list[Segment]:
    """The tag rules that set ``tag``."""
    return list(session.scalars(select(Segment).where(Segment.tag == tag)))


# ---------------------------------------------------------------------------------------------
# Warehouse writes (DuckDB)
# ---------------------------------------------------------------------------------------------


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the segment and tag tables if they are missing."""
    for statement in _DDL:
        con.execute(statement)


def _count(result: duckdb.DuckDBPyConnection) -> int:
    row = result.fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class MembershipChange:
    """What one refresh changed."""

    members: int
    entered: int
    left: int
    tagged: int = 0
    untagged: int = 0


def _in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[], Any]) -> Any:
    con.execute("BEGIN TRANSACTION")
    try:
        result = work()
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return result


def materialise(
    con: duckdb.DuckDBPyConnection,
    segment_id: str,
    members: MembersQuery,
    at: datetime,
    *,
    tag: str | None = None,
) -> MembershipChange:
    """Replace the membership of ``segment_id`` by ``members`` in one transaction.

    The difference with the previous membership is written to ``segment_membership_events``
    (``entered`` / ``left`` at ``at``, naive UTC); members who stay keep their ``entered_at``.
    With ``tag`` (a tag rule) the tag is set, with source ``rule``, on every member who lacks it
    and removed from the customers who are no longer members.
    """
    ensure_tables(con)
    backend: BaseBackend = ibis.duckdb.from_connection(con)
    suffix = uuid.uuid4().hex
    new, entered, left = f"_seg_new_{suffix}", f"_seg_entered_{suffix}", f"_seg_left_{suffix}"

    def work() -> MembershipChange:
        expr = members(backend).select("customer_id").distinct()
        backend.create_table(new, expr, temp=True)
        con.execute(
            f"CREATE TEMP TABLE {entered} AS SELECT n.customer_id FROM {new} n "
            f"ANTI JOIN (SELECT customer_id FROM {MEMBERS_TABLE} WHERE segment_id = ?) m "
            "ON n.customer_id = m.customer_id",
            [segment_id],
        )
        con.execute(
            f"CREATE TEMP TABLE {left} AS SELECT m.customer_id FROM {MEMBERS_TABLE} m "
            f"ANTI JOIN {new} n ON n.customer_id = m.customer_id WHERE m.segment_id = ?",
            [segment_id],
        )
        n_left = _count(con.execute(
            f"INSERT INTO {EVENTS_TABLE} SELECT ?, customer_id, 'left', ? FROM {left}", [segment_id, at]
        ))
        n_entered = _count(con.execute(
            f"INSERT INTO {EVENTS_TABLE} SELECT ?, customer_id, 'entered', ? FROM {entered}",
            [segment_id, at],
        ))
        if n_left:
            con.execute(
                f"DELETE FROM {MEMBERS_TABLE} WHERE segment_id = ? "
                f"AND customer_id IN (SELECT customer_id FROM {left})",
                [segment_id],
            )
        con.execute(f"INSERT INTO {MEMBERS_TABLE} SELECT ?, customer_id, ? FROM {entered}", [segment_id, at])
        n_members = _count(con.execute(f"SELECT count(*) FROM {new}"))
        tagged = untagged = 0
        if tag is not None:
            untagged = _count(con.execute(
                f"DELETE FROM {TAGS_TABLE} t WHERE t.source = 'rule' AND t.rule_id = ? AND "
                f"(t.tag <> ? OR NOT EXISTS (SELECT 1 FROM {new} n WHERE n.customer_id = t.customer_id))",
                [segment_id, tag],
            ))
            tagged = _count(con.execute(
                f"INSERT INTO {TAGS_TABLE} SELECT n.customer_id, ?, 'rule', ?, ? FROM {new} n "
                f"ANTI JOIN (SELECT customer_id FROM {TAGS_TABLE} WHERE source = 'rule' AND rule_id = ?) t "
                "ON n.customer_id = t.customer_id",
                [tag, segment_id, at, segment_id],
            ))
        for name in (new, entered, left):
            con.execute(f"DROP TABLE {name}")
        return MembershipChange(n_members, n_entered, n_left, tagged, untagged)

    result: MembershipChange = _in_transaction(con, work)
    return result


def forget_segment(con: duckdb.DuckDBPyConnection, segment_id: str) -> int:
    """Delete a segment's current members and the tags it set as a rule (its history stays);
    returns the number of members removed."""
    ensure_tables(con)

    def work() -> int:
        con.execute(f"DELETE FROM {TAGS_TABLE} WHERE source = 'rule' AND rule_id = ?", [segment_id])
        return _count(con.execute(f"DELETE FROM {MEMBERS_TABLE} WHERE segment_id = ?", [segment_id]))

    removed: int = _in_transaction(con, work)
    return removed


def unknown_customers(con: duckdb.DuckDBPyConnection, customer_ids: Sequence[str]) -> list[str]:
    """The ids among ``customer_ids`` that are neither in ``customers`` nor in ``orders`` (sorted)."""
    ids = pa.table({"customer_id": pa.array(sorted(set(customer_ids)), pa.string())})
    name = f"_ids_{uuid.uuid4().hex}"
    con.register(name, ids)
    try:
        rows = con.execute(
            f"SELECT customer_id FROM {name} ANTI JOIN (SELECT customer_id FROM customers UNION "
            "SELECT customer_id FROM orders WHERE customer_id IS NOT NULL) k USING (customer_id) "
            "ORDER BY customer_id"
        ).fetchall()
    finally:
        con.unregister(name)
    return [str(r[0]) for r in rows]


def change_manual_tag(
    con: duckdb.DuckDBPyConnection, tag: str, add: Sequence[str], remove: Sequence[str], at: datetime
) -> tuple[int, int]:
    """Add the manual ``tag`` to the customers ``add`` and remove it from ``remove``, in one
    transaction; returns (added, removed), not counting customers that already had / lacked it."""
    ensure_tables(con)
    name = f"_tag_ids_{uuid.uuid4().hex}"
    ids = pa.table({
        "customer_id": pa.array([*sorted(set(add)), *sorted(set(remove))], pa.string()),
        "add": pa.array([True] * len(set(add)) + [False] * len(set(remove)), pa.bool_()),
    })
    con.register(name, ids)

    def work() -> tuple[int, int]:
        removed = _count(con.execute(
            f"DELETE FROM {TAGS_TABLE} WHERE source = 'manual' AND tag = ? AND customer_id IN "
            f"(SELECT customer_id FROM {name} WHERE NOT add)",
            [tag],
        ))
        added = _count(con.execute(
            f"INSERT INTO {TAGS_TABLE} SELECT i.customer_id, ?, 'manual', NULL, ? FROM {name} i "
            f"ANTI JOIN (SELECT customer_id FROM {TAGS_TABLE} WHERE source = 'manual' AND tag = ?) t "
            "ON i.customer_id = t.customer_id WHERE i.add",
            [tag, at, tag],
        ))
        return added, removed

    try:
        changed: tuple[int, int] = _in_transaction(con, work)
    finally:
        con.unregister(name)
    return changed


# ---------------------------------------------------------------------------------------------
# Warehouse reads (Ibis)
# ---------------------------------------------------------------------------------------------


def has_table(backend: BaseBackend, name: str) -> bool:
    """Whether the warehouse has the table ``name`` yet."""
    return name in backend.list_tables()


def members(backend: BaseBackend, segment_id: str) -> ir.Table:
    """The current members of a segment with their profile: ``customer_id``, ``entered_at`` and
    the attributes of ``customers`` (null for buyers known only from orders)."""
    m = backend.table(MEMBERS_TABLE)
    m = m.filter(m.segment_id == segment_id).select("customer_id", "entered_at")
    profile = people(backend).rename(_cid="customer_id")
    joined = m.left_join(profile, m.customer_id == profile._cid)
    return joined.drop("_cid")


def history(backend: BaseBackend, segment_id: str, limit: int) -> list[dict[str, Any]]:
    """The latest ``limit`` refreshes that changed the membership: ``at``, ``entered``, ``left``."""
    e = backend.table(EVENTS_TABLE)
    e = e.filter(e.segment_id == segment_id)
    agg = e.group_by("at").aggregate(
        entered=(e.event == "entered").sum(), left=(e.event == "left").sum()
    )
    rows: list[dict[str, Any]] = agg.order_by(ibis.desc("at")).limit(limit).to_pyarrow().to_pylist()
    return rows


def tag_counts(backend: BaseBackend) -> list[dict[str, Any]]:
    """Every tag with its number of customers, split by where it comes from (a customer may
    carry a tag from several sources): ``tag``, ``customers``, ``manual``, ``rule``, ``imported``."""
    rows = imported_tags(backend.table("customers")).mutate(source=ibis.literal("imported"))
    if has_table(backend, TAGS_TABLE):
        rows = backend.table(TAGS_TABLE).select("customer_id", "tag", "source").union(rows, distinct=False)
    agg = rows.group_by("tag").aggregate(
        customers=rows.customer_id.nunique(),
        manual=rows.customer_id.nunique(where=rows.source == "manual"),
        rule=rows.customer_id.nunique(where=rows.source == "rule"),
        imported=rows.customer_id.nunique(where=rows.source == "imported"),
    )
    found: list[dict[str, Any]] = agg.order_by([ibis.desc("customers"), "tag"]).to_pyarrow().to_pylist()
    return found
