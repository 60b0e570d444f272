"""Segment definition → Ibis boolean expression over the customers: pure, no I/O, no SQL text.

:func:`predicate` turns a definition into a boolean column of :attr:`Sources.customers` (every
customer: the ``customers`` table plus buyers known only from their orders); :func:`segment` is
that table filtered, :func:`member_ids` its ``customer_id`` column. Every value a user wrote
enters the expression as an Ibis literal (typed and escaped by the Ibis compiler), never as text
pasted into SQL, so ``"'; DROP TABLE customers; --"`` is just a city nobody lives in.

How conditions compile:

* ``attribute``: a comparison on the customer's column.
* ``orders`` / ``events`` / ``tag`` / ``score`` / ``funnel``: the set of customers whose aggregate (or tag, or
  score) satisfies the condition, as ``customer_id IN (subquery)``. Aggregates of customers
  without any matching row are 0: when the comparison holds at 0 (``= 0``, ``< 3``) the
  condition is compiled as ``NOT IN`` (the customers whose non-zero aggregate fails it), so
  customers without orders match ``{"measure": "count", "op": "=", "value": 0}``.
* Every condition is made two-valued (an unknown value does not match), so ``not`` is the exact
  complement and groups combine with ``&``, ``|`` and ``~``.

Time: ``as_of`` (a shop-local date, :class:`Context`) is the last day that counts; windows are
shop-local days (``order_date``, ``event_date``); a window on ``signed_up_at`` (stored in UTC)
is turned into UTC bounds at the shop's midnights.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import reduce
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from growthwheel.customers.repository import people, text_literal
from growthwheel.errors import NoDataError
from growthwheel.segments import scores as scores_module
from growthwheel.segments.definition import (
    ATTRIBUTES,
    MAX_NUMBER,
    AllGroup,
    AnyGroup,
    AttributeCondition,
    EventsCondition,
    FunnelCondition,
    Node,
    NotGroup,
    OrdersCondition,
    ScoreCondition,
    SegmentDefinitionError,
    TagCondition,
    Window,
    conditions,
)
from growthwheel.warehouse.schema import PAID_STATUSES

TAGS_TABLE = "customer_tags"
TAG_SEPARATOR = ";"


@dataclass(frozen=True)
class Context:
    """What a definition is evaluated against: the day, the shop's time zone and currency."""

    as_of: date
    """The last shop-local day that counts; relative windows end on it."""
    timezone: str = "Asia/Shanghai"
    currency_exponent: int = 2
    """Minor-unit digits of the shop currency (amounts in definitions are major units)."""


@dataclass(frozen=True)
class Sources:
    """The tables a definition reads (Ibis tables of one backend)."""

    customers: ir.Table
    """Every customer: ``customer_id`` and the profile attributes."""
    orders: ir.Table
    order_lines: ir.Table
    products: ir.Table
    events: ir.Table
    tags: ir.Table
    """``customer_id``, ``tag``: one row per tag a customer carries."""
    scores: ir.Table | None = None
    """``customer_id`` and score columns (``segments.scores``); needed only by score conditions."""
    funnels: dict[str, ir.Table] = field(default_factory=dict)
    """The customers of each funnel condition (:func:`funnel_key`), found when the sources are
    loaded; a condition not found there compiles to the Ibis funnel expression."""


def imported_tags(customers: ir.Table) -> ir.Table:
    """(customer_id, tag) from the ``tags`` column of the customers file: ``;``-separated,
    trimmed, empty ones dropped."""
    t = customers.filter(customers.tags.notnull())
    # Unnest in a projection of its own: Spark refuses a generator nested in an expression.
    t = t.select(customer_id=t.customer_id, tag=t.tags.split(TAG_SEPARATOR).unnest())
    t = t.mutate(tag=t.tag.strip())
    return t.filter(t.tag != "")


def customer_tags(backend: BaseBackend) -> ir.Table:
    """Every (customer_id, tag) a customer carries: rows of the warehouse table ``customer_tags``
    (manual and rule tags) plus the tags imported with the customers."""
    imported = imported_tags(backend.table("customers"))
    if TAGS_TABLE not in backend.list_tables():
        return imported
    stored = backend.table(TAGS_TABLE)
    return stored.select("customer_id", "tag").union(imported, distinct=False)


def funnel_key(c: FunnelCondition) -> str:
    """What identifies a funnel condition's customers in :attr:`Sources.funnels`."""
    return c.model_dump_json(by_alias=True)


def _funnel_members(events: ir.Table, c: FunnelCondition) -> ir.Table:
    from growthwheel.insight.funnels import funnel_members

    return funnel_members(events, c.steps, reached=c.reached, exact=c.exact,
                          window=timedelta(days=c.window_days), start=c.start, end=c.end)


def load_sources(backend: BaseBackend, node: Node | None = None, as_of: date | None = None) -> Sources:
    """The tables of ``backend``; the score table is resolved (``segments.scores``) only when
    ``node`` has a score condition (and then ``as_of`` is required), the customers of funnel
    conditions only when it has some (on DuckDB they are found in memory, once)."""
    everyone = people(backend)
    needs_scores = node is not None and any(isinstance(c, ScoreCondition) for c in conditions(node))
    found = None
    if needs_scores:
        if as_of is None:
            raise ValueError("score conditions need as_of")
        found = scores_module.score_table(backend, as_of)
    funnels = {}
    if node is not None:
        for c in conditions(node):
            if isinstance(c, FunnelCondition):
                funnels[funnel_key(c)] = _funnel_members(backend.table("events"), c)
    return Sources(
        funnels=funnels,
        customers=everyone,
        orders=backend.table("orders"),
        order_lines=backend.table("order_lines"),
        products=backend.table("products"),
        events=backend.table("events"),
        tags=customer_tags(backend),
        scores=found,
    )


# ---------------------------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------------------------


def _minus_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    if index < 12:  # before year 1: the window starts with time itself
        return date.min
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def window_days(window: Window | None, as_of: date) -> tuple[date | None, date]:
    """The first (``None``: open) and last shop-local day of ``window``, both inclusive.

    ``{"last": 30, "unit": "days"}`` as of 2025-03-31 is 2025-03-02 .. 2025-03-31;
    ``{"last": 1, "unit": "months"}`` is 2025-03-01 .. 2025-03-31. The last day is never after
    ``as_of``.
    """
    if window is None:
        return None, as_of
    if window.last is not None:
        if window.unit == "months":
            start = _minus_months(as_of, window.last)
            return (None if start == date.min else start + timedelta(days=1)), as_of
        days = window.last * (7 if window.unit == "weeks" else 1)
        if days - 1 >= as_of.toordinal():
            return None, as_of
        return as_of - timedelta(days=days - 1), as_of
    end = as_of if window.end is None else min(window.end, as_of)
    return window.start, end


def _all_of(conds: Sequence[ir.BooleanValue]) -> ir.BooleanValue:
    return reduce(lambda a, b: a & b, conds[1:], conds[0]) if conds else ibis.literal(True)


def _in_days(column: ir.Value, first: date | None, last: date | None) -> ir.BooleanValue:
    conds = [] if first is None else [column >= ibis.literal(first)]
    if last is not None:
        conds.append(column <= ibis.literal(last))
    return _all_of(conds)


def _utc_midnight(day: date, tz: ZoneInfo, days_later: int = 0) -> datetime | None:
    """The shop's midnight at the start of ``day`` (plus ``days_later``) as a naive UTC time (how
    timestamps are stored); ``None`` when that falls outside the calendar (an open bound)."""
    try:
        local = datetime.combine(day + timedelta(days=days_later), time(0), tzinfo=tz)
        return local.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        return None


def _in_days_utc(column: ir.Value, first: date | None, last: date | None, tz: ZoneInfo) -> ir.BooleanValue:
    low = None if first is None else _utc_midnight(first, tz)
    high = None if last is None else _utc_midnight(last, tz, 1)
    conds = [] if low is None else [column >= ibis.literal(low)]
    if high is not None:
        conds.append(column < ibis.literal(high))
    return _all_of(conds)


# ---------------------------------------------------------------------------------------------
# Comparisons
# ---------------------------------------------------------------------------------------------


def _compare(value: ir.Value, op: str, bounds: Sequence[Any]) -> ir.BooleanValue:
    if op == "between":
        return (value >= bounds[0]) & (value <= bounds[1])
    rhs = bounds[0]
    result: ir.BooleanValue
    if op == ">=":
        result = value >= rhs
    elif op == ">":
        result = value > rhs
    elif op == "<=":
        result = value <= rhs
    elif op == "<":
        result = value < rhs
    elif op in ("=", "equals"):
        result = value == rhs
    elif op == "!=":
        result = value != rhs
    else:  # pragma: no cover - the definition models only allow the operators above
        raise AssertionError(op)
    return result


def _holds_at_zero(op: str, bounds: Sequence[int]) -> bool:
    zero = 0
    return {
        ">=": lambda: zero >= bounds[0],
        ">": lambda: zero > bounds[0],
        "<=": lambda: zero <= bounds[0],
        "<": lambda: zero < bounds[0],
        "=": lambda: zero == bounds[0],
        "!=": lambda: zero != bounds[0],
        "between": lambda: bounds[0] <= zero <= bounds[1],
    }[op]()


def _minor(amount: Decimal, exponent: int) -> int:
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise SegmentDefinitionError(
            f"amount {amount} has more decimals than the shop currency allows ({exponent})"
        )
    return int(scaled)


def _category_match(column: ir.StringValue, categories: Sequence[str]) -> ir.BooleanValue:
    """``column`` is one of ``categories`` or below one of them (``Beauty`` matches ``Beauty/Skincare``)."""
    names = [text_literal(c) for c in categories]
    exact: ir.BooleanValue = column.isin(names)
    below = [column.startswith(name + "/") for name in names]
    return reduce(lambda a, b: a | b, below, exact)


def _category_bounds(column: ir.StringValue, categories: Sequence[str]) -> ir.BooleanValue:
    """A range holding every value :func:`_category_match` accepts (and a few more), as two
    comparisons with constants that an engine can check against a row group's min/max: a name
    ``P`` and the names below it (``P/...``) lie in ``[P, P + "0")``, as ``/`` sorts just before
    ``0`` (in code point order, which is the byte order of UTF-8)."""
    names = [text_literal(c) for c in categories]
    low, high = min(names), max(name + "0" for name in names)
    return (column >= ibis.literal(low)) & (column < ibis.literal(high))


# ---------------------------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------------------------


class _Compiler:
    def __init__(self, sources: Sources, ctx: Context) -> None:
        self.src = sources
        self.ctx = ctx
        self.cust = sources.customers
        self.tz = ZoneInfo(ctx.timezone)

    def node(self, node: Node) -> ir.BooleanValue:
        if isinstance(node, AllGroup):
            return _all_of([self.node(child) for child in node.all])
        if isinstance(node, AnyGroup):
            parts = [self.node(child) for child in node.any]
            return reduce(lambda a, b: a | b, parts[1:], parts[0])
        if isinstance(node, NotGroup):
            return ~self.node(node.not_)
        if isinstance(node, AttributeCondition):
            result = self.attribute(node)
        elif isinstance(node, OrdersCondition):
            result = self.orders(node)
        elif isinstance(node, EventsCondition):
            result = self.events(node)
        elif isinstance(node, TagCondition):
            result = self.tag(node)
        elif isinstance(node, FunnelCondition):
            result = self.funnel(node)
        else:
            result = self.score(node)
        return result.fill_null(False)

    # -- profile attributes --------------------------------------------------------------------

    def attribute(self, c: AttributeCondition) -> ir.BooleanValue:
        kind = ATTRIBUTES[c.field]
        column = self.cust[c.field]
        if c.op == "is_set":
            if kind in ("text", "contact"):
                return column.notnull() & (column.strip() != "")
            return column.notnull()
        if c.op in ("within", "between"):
            lo, hi = window_days(c.window, self.ctx.as_of) if c.op == "within" else c.dates()
            span = _in_days_utc(column, lo, hi, self.tz) if kind == "timestamp" else _in_days(column, lo, hi)
            return column.notnull() & span
        if kind == "bool":
            return column == ibis.literal(bool(c.value))
        if kind == "date":
            values = c.value if isinstance(c.value, list) else [c.value]
            days = [date.fromisoformat(str(v)) for v in values]
            return column.isin(days) if c.op == "in" else column == ibis.literal(days[0])
        if c.op == "in":
            assert isinstance(c.value, list)
            return column.isin([text_literal(str(v)) for v in c.value])
        text = text_literal(str(c.value))
        if c.op == "contains":
            return column.lower().contains(text.lower())
        return column == ibis.literal(text)

    # -- aggregates ----------------------------------------------------------------------------

    def _members(self, rows: ir.Table, value: str, op: str, bounds: Sequence[int]) -> ir.BooleanValue:
        """Customers whose aggregate ``value`` (a column of ``rows``, one row per customer with
        any activity; 0 for the others) satisfies the comparison."""
        ids = self.cust.customer_id
        if _holds_at_zero(op, bounds):
            failing = rows.filter(~_compare(rows[value], op, bounds))
            return ~ids.isin(failing.customer_id)
        return ids.isin(rows.filter(_compare(rows[value], op, bounds)).customer_id)

    def _lines_maybe_in(self, lines: ir.Table, categories: Sequence[str]) -> ir.Table:
        """The lines that can be in ``categories`` (a superset of those that are, each line once):
        those whose own category matches, and those without one whose SKU is a product's in
        ``categories``. Cheap to find: the engine filters the SKUs while scanning the lines, and
        the own categories are first bounded by a constant range (:func:`_category_bounds`) that
        it checks against each row group's min/max, so row groups without an own category in
        range are skipped (at 60M lines without one, 0.55 CPU s to scan them for nothing
        before). The exact test (:meth:`_line_categories`, a join with every product) then sees
        few lines (at 60M lines, a category condition took 3.8 CPU s instead of 6.0)."""
        p = self.src.products
        skus = p.filter(_category_match(p.category, categories)).select(_c_sku="sku")
        own = lines.filter(_category_bounds(lines.category, categories)
                           & _category_match(lines.category, categories))
        bare = lines.filter(lines.category.isnull())
        bare = bare.semi_join(skus, bare.sku == skus._c_sku)
        return own.union(bare)

    def _line_categories(self, lines: ir.Table) -> ir.Table:
        products = self.src.products.select(_p_sku="sku", _p_category="category")
        joined = lines.left_join(products, lines.sku == products._p_sku)
        return joined.mutate(_category=ibis.coalesce(joined.category, joined._p_category))

    def orders(self, c: OrdersCondition) -> ir.BooleanValue:
        o = self.src.orders
        first, last = window_days(c.window, self.ctx.as_of)
        keep = o.status.isin(list(PAID_STATUSES)) & o.customer_id.notnull() & _in_days(
            o.order_date, first, last
        )
        if c.channel:
            keep = keep & o.channel.isin([text_literal(v) for v in c.channel])
        o = o.filter(keep)
        if c.category or c.sku:
            paid = o.select(_order_id="order_id", _customer_id="customer_id")
            lines = self.src.order_lines
            if c.sku:
                lines = lines.filter(lines.sku.isin([text_literal(v) for v in c.sku]))
            if c.category:
                lines = self._line_categories(self._lines_maybe_in(lines, c.category))
                lines = lines.filter(_category_match(lines._category, c.category))
            joined = lines.join(paid, lines.order_id == paid._order_id)
            grouped = joined.group_by(customer_id=joined._customer_id)
            if c.measure == "count":
                rows = grouped.aggregate(value=joined.order_id.nunique())
            elif c.measure == "amount":
                rows = grouped.aggregate(value=joined.line_total.fill_null(0).sum())
            else:
                rows = grouped.aggregate(value=joined.quantity.fill_null(0).sum())
        else:
            grouped = o.group_by("customer_id")
            if c.measure == "count":
                rows = grouped.aggregate(value=o.count())
            elif c.measure == "amount":
                rows = grouped.aggregate(value=o.total_amount.fill_null(0).sum())
            else:
                rows = grouped.aggregate(value=o.item_count.fill_null(0).sum())
        if c.measure == "amount":
            bounds = [_minor(b, self.ctx.currency_exponent) for b in c.bounds()]
        else:
            bounds = [int(b) for b in c.bounds()]
        return self._members(rows, "value", c.op, bounds)

    def events(self, c: EventsCondition) -> ir.BooleanValue:
        e = self.src.events
        first, last = window_days(c.window, self.ctx.as_of)
        keep = (e.type == ibis.literal(text_literal(c.event))) & e.customer_id.notnull()
        keep = keep & _in_days(e.event_date, first, last)
        if c.sku:
            keep = keep & e.sku.isin([text_literal(v) for v in c.sku])
        e = e.filter(keep)
        if c.category:
            products = self.src.products.select(_p_sku="sku", _p_category="category")
            e = e.join(products, e.sku == products._p_sku)
            e = e.filter(_category_match(e._p_category, c.category))
        rows = e.group_by("customer_id").aggregate(value=e.count())
        return self._members(rows, "value", c.op, [int(b) for b in c.bounds()])

    # -- tags and scores -----------------------------------------------------------------------

    def tag(self, c: TagCondition) -> ir.BooleanValue:
        wanted = sorted({text_literal(t).strip() for t in c.tags})
        tags = self.src.tags
        tags = tags.filter(tags.tag.isin(wanted) & tags.customer_id.notnull())
        if c.match == "any" or len(wanted) == 1:
            return self.cust.customer_id.isin(tags.customer_id)
        counted = tags.group_by("customer_id").aggregate(n=tags.tag.nunique())
        return self.cust.customer_id.isin(counted.filter(counted.n == len(wanted)).customer_id)

    def funnel(self, c: FunnelCondition) -> ir.BooleanValue:
        found = self.src.funnels.get(funnel_key(c))
        members = found if found is not None else _funnel_members(self.src.events, c)
        return self.cust.customer_id.isin(members.customer_id)

    def score(self, c: ScoreCondition) -> ir.BooleanValue:
        table = self.src.scores
        if table is None:
            raise NoDataError(
                "this segment tests customer scores, but there are none: compute them first "
                "(e.g. `growthwheel clv score`)"
            )
        if c.field not in table.columns:
            raise NoDataError(f"the customer scores have no column {c.field!r}: compute it first")
        column = table[c.field]
        values = c.value if isinstance(c.value, list) else [c.value]
        literals = [self._score_literal(column, c.field, v) for v in values]
        if c.op == "in":
            cond = column.isin(literals)
        else:
            cond = _compare(column, c.op, literals)
        matching = table.filter(cond.fill_null(False) & table.customer_id.notnull())
        return self.cust.customer_id.isin(matching.customer_id)

    def _score_literal(self, column: ir.Value, field: str, value: Decimal | str) -> Any:
        if column.type().is_string():
            if isinstance(value, Decimal):
                if value != value.to_integral_value():
                    raise SegmentDefinitionError(f"{field} is text here: {value} is not one of its values")
                return str(int(value))
            return text_literal(value)
        if isinstance(value, str):
            try:
                value = Decimal(value)
            except ArithmeticError:
                raise SegmentDefinitionError(f"{field} is a number here, not {value!r}") from None
            if not value.is_finite() or value.copy_abs() > MAX_NUMBER:
                raise SegmentDefinitionError(f"{field}: {value} is out of range")
        if field == "clv":
            value = value.scaleb(self.ctx.currency_exponent)
        if column.type().is_integer() and value == value.to_integral_value():
            return int(value)
        return float(value)


def predicate(node: Node, sources: Sources, ctx: Context) -> ir.BooleanValue:
    """The definition as a boolean column of ``sources.customers``."""
    return _Compiler(sources, ctx).node(node)


def segment(node: Node, sources: Sources, ctx: Context) -> ir.Table:
    """The customers (``sources.customers`` columns) that the definition matches."""
    return sources.customers.filter(predicate(node, sources, ctx))


def member_ids(node: Node, sources: Sources, ctx: Context) -> ir.Table:
    """``customer_id`` of the matching customers (each once)."""
    return segment(node, sources, ctx).select("customer_id")
