"""Segments and tags: preview, save, refresh (membership with history), export, manual tags.

The service never commits the operational store (the request or CLI command owns that session).
Warehouse writes go through a **writer**: a function that runs ``fn(connection)`` with a
read-write DuckDB connection and returns its result. Outside the server that is
:func:`direct_writer` over ``warehouse.db.open_duckdb(cfg)``; inside it, the warehouse owner's
``run_write`` (so that writes queue behind imports on the one writer thread).

``as_of`` — the shop-local day a definition is evaluated as of — defaults to today in the shop's
time zone; in the demo shop (whose history ends on a fixed day) it is the day of the last order,
so that "last 30 days" means the last 30 days of the data (:func:`default_as_of`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, tzinfo
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import duckdb
import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend
from sqlalchemy.orm import Session

from growthwheel.accounts.schemas import Principal
from growthwheel.accounts.service import audit, mask_email, mask_phone
from growthwheel.config import Settings
from growthwheel.errors import GrowthwheelError, InvalidArgumentError, NoDataError
from growthwheel.kit import export
from growthwheel.kit.money import currency_exponent
from growthwheel.segments import repository
from growthwheel.segments.compile import Context, customer_tags, load_sources, member_ids, segment
from growthwheel.segments.definition import (
    Node,
    SegmentDefinitionError,
    TagCondition,
    conditions,
    definition_to_json,
    parse_definition,
)
from growthwheel.segments.models import Segment
from growthwheel.segments.schemas import CustomerSample, PreviewOut, RefreshOut, TagChangeOut

T = TypeVar("T")
Writer = Callable[[Callable[[duckdb.DuckDBPyConnection], T]], T]

DEMO_MARKER = "demo.json"
"""Written by ``sim.demo`` into a data directory holding the demo shop."""
SAMPLE_COLUMNS = ("customer_id", "name", "email", "phone", "city", "channel", "signed_up_at")
EXPORT_COLUMNS = (
    "customer_id", "name", "email", "phone", "gender", "birthday", "city", "province", "country",
    "channel", "signed_up_at", "accepts_marketing", "entered_at",
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SegmentNotFoundError(GrowthwheelError):
    """No saved segment with that id or name."""

    code = "segment_not_found"
    status = 404


class SegmentExistsError(GrowthwheelError):
    """A saved segment with that name exists already."""

    code = "segment_exists"
    status = 409


class NotRefreshedError(NoDataError):
    """The segment has no materialised membership yet."""

    code = "segment_not_refreshed"


def direct_writer(con: duckdb.DuckDBPyConnection) -> Writer[Any]:
    """A writer over a connection this process holds (the CLI, tests)."""

    def run(fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        return fn(con)

    return run


def _now() -> datetime:
    """The current time as naive UTC (how the warehouse stores times)."""
    return datetime.now(UTC).replace(tzinfo=None)


# ---------------------------------------------------------------------------------------------
# Names, tags, context
# ---------------------------------------------------------------------------------------------


def check_name(name: str) -> str:
    """A segment name as stored: trimmed, 1–200 characters, no control characters."""
    value = name.strip()
    if not value or len(value) > 200 or _CONTROL.search(value):
        raise InvalidArgumentError.coded("segments.error.name_rule", field="name")
    return value


def check_tag(tag: str) -> str:
    """A tag as stored: trimmed, 1–64 characters, no ``;`` (the separator of imported tags) and no
    control characters."""
    value = tag.strip()
    if not value or len(value) > 64 or ";" in value or _CONTROL.search(value):
        raise InvalidArgumentError.coded("segments.error.tag_rule", field="tag", tag=tag)
    return value


def default_as_of(cfg: Settings, backend: BaseBackend) -> date:
    """Today in the shop's time zone; for the demo shop, the day of its last order."""
    if (cfg.data_dir / DEMO_MARKER).exists():
        last = backend.table("orders").order_date.max().to_pyarrow().as_py()
        if isinstance(last, date):
            return last
    return datetime.now(ZoneInfo(cfg.shop().timezone)).date()


def context(cfg: Settings, backend: BaseBackend, as_of: date | None = None) -> Context:
    """The evaluation context for this data directory (shop time zone and currency)."""
    shop = cfg.shop()
    return Context(
        as_of=as_of or default_as_of(cfg, backend),
        timezone=shop.timezone,
        currency_exponent=currency_exponent(shop.currency),
    )


# ---------------------------------------------------------------------------------------------
# Preview
# ---------------------------------------------------------------------------------------------


def _masked(row: dict[str, Any], can_see_pii: bool) -> dict[str, Any]:
    if not can_see_pii:
        row = {**row, "email": mask_email(row.get("email")), "phone": mask_phone(row.get("phone"))}
    return row


def preview(
    backend: BaseBackend, definition: Node | dict[str, Any] | str, ctx: Context, *,
    sample: int = 20, can_see_pii: bool = True,
) -> PreviewOut:
    """How many customers match ``definition`` as of ``ctx.as_of``, with up to ``sample`` of them
    (a stable pseudo-random choice: ordered by a hash of the id).

    On DuckDB the members are computed once into a temporary table (dropped before returning) and
    the count and the sample are read from it: the segment's query, which scans the orders and
    events in its windows, runs once instead of twice (at 10 M customers that query is most of a
    preview). Other engines run it for the count and again for the sample."""
    node = definition if not isinstance(definition, dict | str) else parse_definition(definition)
    table = segment(node, load_sources(backend, node, ctx.as_of), ctx)
    if sample > 0 and backend.name == "duckdb":
        with table.cache() as members:
            count, rows = _count_and_sample(members, sample)
    else:
        count, rows = _count_and_sample(table, sample)
    return PreviewOut(
        count=count, as_of=ctx.as_of,
        sample=[CustomerSample(**_masked(r, can_see_pii)) for r in rows],
    )


def _count_and_sample(table: ir.Table, sample: int) -> tuple[int, list[dict[str, Any]]]:
    count = int(table.count().to_pyarrow().as_py())
    rows: list[dict[str, Any]] = []
    if sample > 0 and count:
        picked = table.order_by([table.customer_id.hash(), table.customer_id]).limit(sample)
        rows = picked.select(*SAMPLE_COLUMNS).to_pyarrow().to_pylist()
    return count, rows


# ---------------------------------------------------------------------------------------------
# Saved segments
# ---------------------------------------------------------------------------------------------


def _check_rule(node: Node, tag: str) -> None:
    for cond in conditions(node):
        if isinstance(cond, TagCondition) and tag in {t.strip() for t in cond.tags}:
            raise SegmentDefinitionError(
                f"a tag rule for {tag!r} cannot test the tag {tag!r} itself "
                "(each refresh would undo the last)"
            )


def create_segment(
    session: Session, name: str, definition: Node | dict[str, Any] | str, *,
    principal: Principal | None, actor_name: str | None = None,
    description: str | None = None, tag: str | None = None,
) -> Segment:
    """Save a segment (a tag rule when ``tag`` is given). Names are unique."""
    name = check_name(name)
    node = definition if not isinstance(definition, dict | str) else parse_definition(definition)
    if tag is not None:
        tag = check_tag(tag)
        _check_rule(node, tag)
    if repository.segment_by_name(session, name) is not None:
        raise SegmentExistsError.coded("segments.error.exists", field="name", name=name)
    creator = actor_name or (principal.name if principal else "system")
    row = Segment(
        name=name, description=(description or None), definition=definition_to_json(node), tag=tag,
        created_by=creator,
    )
    session.add(row)
    session.flush()
    audit(session, principal, "segment.create", f"segment:{row.id}",
          {"name": name, "tag": tag}, actor_name=actor_name)
    return row


def get_segment(session: Session, ref: str) -> Segment:
    """The segment whose id, else name, is ``ref``."""
    found = repository.segment_by_id(session, ref) or repository.segment_by_name(session, ref.strip())
    if found is None:
        raise SegmentNotFoundError.coded("segments.error.not_found", ref=ref)
    return found


def list_segments(session: Session) -> list[Segment]:
    """Every saved segment, by name."""
    return repository.all_segments(session)


def delete_segment(
    session: Session, seg: Segment, write: Writer[Any], *,
    principal: Principal | None, actor_name: str | None = None,
) -> int:
    """Delete a saved segment, its current membership and the tags it set as a rule (its
    membership history stays in the warehouse). Returns the number of members removed."""
    removed: int = write(lambda con: repository.forget_segment(con, seg.id))
    audit(session, principal, "segment.delete", f"segment:{seg.id}",
          {"name": seg.name, "members": removed}, actor_name=actor_name)
    session.delete(seg)
    return removed


def refresh_segment(
    session: Session, seg: Segment, ctx: Context, write: Writer[Any], *,
    principal: Principal | None, actor_name: str | None = None, at: datetime | None = None,
) -> RefreshOut:
    """Evaluate a saved segment as of ``ctx.as_of`` and materialise its membership in the
    warehouse (one transaction: members, entered/left history, rule tags), then record the
    counts on the segment."""
    node = parse_definition(seg.definition)
    started = time.perf_counter()
    when = at or _now()

    def members(backend: BaseBackend) -> Any:
        return member_ids(node, load_sources(backend, node, ctx.as_of), ctx)

    change: repository.MembershipChange = write(
        lambda con: repository.materialise(con, seg.id, members, when, tag=seg.tag)
    )
    seconds = time.perf_counter() - started
    seg.refreshed_at = when.replace(tzinfo=UTC)
    seg.members = change.members
    seg.as_of = ctx.as_of
    audit(session, principal, "segment.refresh", f"segment:{seg.id}",
          {"name": seg.name, "as_of": ctx.as_of, "members": change.members, "entered": change.entered,
           "left": change.left}, actor_name=actor_name)
    return RefreshOut(
        segment_id=seg.id, name=seg.name, as_of=ctx.as_of, members=change.members,
        entered=change.entered, left=change.left, tagged=change.tagged, untagged=change.untagged,
        seconds=round(seconds, 3),
    )


def member_rows(backend: BaseBackend, seg: Segment) -> Any:
    """The members of a refreshed segment with their profile, as an Arrow table sorted by id."""
    if seg.refreshed_at is None or not repository.has_table(backend, repository.MEMBERS_TABLE):
        raise NotRefreshedError.coded("segments.error.not_refreshed", name=seg.name)
    table = repository.members(backend, seg.id)
    return table.select(*EXPORT_COLUMNS).order_by("customer_id").to_pyarrow()


def csv_chunks(rows: Any, *, can_see_pii: bool, chunk: int = 10_000,
               zone: tzinfo | None = None) -> Iterator[str]:
    """CSV text (header first) of member rows (an Arrow table with :data:`EXPORT_COLUMNS`), in
    pieces, through the export writer (formula-like text defused); email and phone masked unless
    ``can_see_pii``. Times are in ``zone`` (the shop's, as the console shows them) with their
    offset (``2025-03-01 09:30:00+08:00``); without ``zone``, UTC (``+00:00``)."""
    where = zone or UTC

    def local(value: Any) -> Any:
        if isinstance(value, datetime):  # stored naive UTC
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(where)
        return value

    def values() -> Iterator[list[Any]]:
        for batch in rows.to_batches(max_chunksize=chunk):
            for row in batch.to_pylist():
                row = _masked(row, can_see_pii)
                yield [local(row[c]) for c in EXPORT_COLUMNS]

    return export.csv_chunks(EXPORT_COLUMNS, values(), chunk=chunk)


def history(backend: BaseBackend, seg: Segment, limit: int = 50) -> list[dict[str, Any]]:
    """The refreshes that changed the membership, newest first: ``at``, ``entered``, ``left``."""
    if not repository.has_table(backend, repository.EVENTS_TABLE):
        return []
    return repository.history(backend, seg.id, limit)


# ---------------------------------------------------------------------------------------------
# Tags
# ---------------------------------------------------------------------------------------------


def change_tag(
    session: Session, tag: str, write: Writer[Any], *, add: Sequence[str] = (), remove: Sequence[str] = (),
    principal: Principal | None, actor_name: str | None = None,
) -> TagChangeOut:
    """Give the manual ``tag`` to the customers ``add`` and take it from ``remove``.

    Every id must be a known customer (else nothing changes and the error lists the unknown
    ones). Only manual tags are removed: a tag set by a tag rule follows its rule, and imported
    tags follow the customers file.
    """
    tag = check_tag(tag)
    overlap = set(add) & set(remove)
    if overlap:
        raise InvalidArgumentError.coded("segments.error.add_and_remove", field="remove",
                                         ids=", ".join(sorted(overlap)[:5]))
    if not add and not remove:
        raise InvalidArgumentError.coded("segments.error.no_customers", field="add")

    def work(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
        unknown = repository.unknown_customers(con, [*add, *remove])
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:5])
            raise InvalidArgumentError.coded("segments.error.unknown_customers", field="add",
                                             ids=shown, n=len(unknown))
        return repository.change_manual_tag(con, tag, add, remove, _now())

    added, removed = write(work)
    audit(session, principal, "tag.change", f"tag:{tag}",
          {"added": added, "removed": removed, "customers": len(set(add)) + len(set(remove))},
          actor_name=actor_name)
    return TagChangeOut(tag=tag, added=added, removed=removed)


def list_tags(backend: BaseBackend) -> list[dict[str, Any]]:
    """Every tag with its number of customers by source (manual, rule, imported)."""
    return repository.tag_counts(backend)


def customer_tag_list(backend: BaseBackend, customer_id: str) -> list[str]:
    """The tags one customer carries (every source), sorted."""
    t = customer_tags(backend)
    found = t.filter(t.customer_id == ibis.literal(customer_id)).select("tag").distinct()
    return sorted(str(r["tag"]) for r in found.to_pyarrow().to_pylist())
