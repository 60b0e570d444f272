"""The segment definition language: pydantic models of the documented JSON schema.

A definition is one **node**. A node is a group or a condition (``docs/segments.md`` has the
full description with examples):

* groups: ``{"all": [node, ...]}`` (AND; an empty list matches every customer),
  ``{"any": [node, ...]}`` (OR, at least one node), ``{"not": node}``;
* conditions, told apart by ``"type"``:

  - ``attribute``: a column of the customer profile (``city``, ``channel``, ``signed_up_at`` …)
    with ``equals`` / ``in`` / ``contains`` / ``between`` / ``within`` / ``is_set``;
  - ``orders``: the count, amount or units of the customer's paid orders (or of their lines in a
    category / SKU) inside a time window, compared with a number;
  - ``events``: the count of the customer's behaviour events of one type inside a window;
  - ``tag``: the customer carries a tag (manual, from a tag rule, or imported);
  - ``score``: an RFM / lifecycle / CLV score of the customer;
  - ``funnel``: how far the customer got in an ordered funnel entered between two days (the
    funnel page's drill-down: ``insight.funnels``).

Every condition is two-valued: a customer for whom a value is unknown (a null city, no score)
simply does not match it, so ``{"not": c}`` is exactly the customers that ``c`` does not match.

Values are validated here (field names, operators, value types); the few checks that need the
shop (money decimals for the currency, score columns that exist) happen when the definition is
compiled (``segments.compile``). :func:`parse_definition` turns JSON into a :data:`Node`,
:func:`definition_json_schema` gives the JSON Schema.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from growthwheel.errors import InvalidArgumentError

#: Limits that keep one definition (and the query it compiles to) a reasonable size.
MAX_NODES = 200
MAX_DEPTH = 12
MAX_LIST = 1000
MAX_TEXT = 200
#: Largest magnitude of a number in a definition (counts, amounts in major units, scores).
MAX_NUMBER = Decimal(10) ** 15

FieldKind = Literal["text", "date", "timestamp", "bool", "contact"]

#: Profile attributes a condition may test, with their kind. ``email`` and ``phone`` only support
#: ``is_set``: matching on their text would let a role that sees them masked read them back one
#: preview count at a time.
ATTRIBUTES: dict[str, FieldKind] = {
    "customer_id": "text",
    "name": "text",
    "gender": "text",
    "city": "text",
    "province": "text",
    "country": "text",
    "channel": "text",
    "utm_source": "text",
    "utm_medium": "text",
    "utm_campaign": "text",
    "birthday": "date",
    "signed_up_at": "timestamp",
    "accepts_marketing": "bool",
    "email": "contact",
    "phone": "contact",
}

#: Which operators each kind of attribute supports.
ATTRIBUTE_OPS: dict[str, tuple[str, ...]] = {
    "text": ("equals", "in", "contains", "is_set"),
    "date": ("equals", "in", "between", "within", "is_set"),
    "timestamp": ("between", "within", "is_set"),
    "bool": ("equals", "is_set"),
    "contact": ("is_set",),
}

Comparison = Literal[">=", ">", "<=", "<", "=", "!=", "between"]
Unit = Literal["days", "weeks", "months"]
ScoreField = Literal[
    "rfm_segment", "rfm_class", "rfm_score", "r_score", "f_score", "m_score", "lifecycle_stage", "clv",
    "p_alive",
]
_TEXT_SCORES = ("rfm_segment", "rfm_class", "lifecycle_stage")
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
Number = Annotated[Decimal, Field(allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Window(_Strict):
    """A span of shop-local days ending at the latest on ``as_of``.

    Either relative — ``{"last": 30, "unit": "days"}``: the 30 days ending on ``as_of``,
    inclusive (``weeks`` are 7 days, ``months`` calendar months: the last 1 month before
    2025-03-31 starts on 2025-03-01) — or absolute — ``{"from": "2025-01-01", "to": "2025-01-31"}``,
    both inclusive; a missing ``from`` is open, a missing ``to`` means ``as_of``. Days after
    ``as_of`` never count.
    """

    last: int | None = Field(default=None, ge=1, le=36_500, description="Number of units.")
    unit: Unit = Field(default="days", description="days, weeks or months.")
    start: date | None = Field(default=None, alias="from", description="First day (inclusive).")
    end: date | None = Field(default=None, alias="to", description="Last day (inclusive).")

    @model_validator(mode="after")
    def _one_form(self) -> Window:
        if self.last is not None and (self.start is not None or self.end is not None):
            raise ValueError('a window is either {"last": N, "unit": ...} or {"from": ..., "to": ...}')
        if self.last is None and self.start is None and self.end is None:
            raise ValueError('a window needs "last" or "from" / "to"')
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f'"from" {self.start} is after "to" {self.end}')
        return self


class AttributeCondition(_Strict):
    """A test on one column of the customer profile."""

    TYPE: ClassVar[str] = "attribute"
    type: Literal["attribute"]
    field: str = Field(description="One of: " + ", ".join(ATTRIBUTES) + ".")
    op: Literal["equals", "in", "contains", "between", "within", "is_set"] = Field(
        description="equals / in / contains (case-insensitive substring) for text; equals / in / "
        "between / within for dates; between / within for signed_up_at; equals for "
        "accepts_marketing; is_set for every field."
    )
    value: bool | Text | list[Text | None] | None = Field(
        default=None,
        description="equals: one value; in: a list; contains: text; between: [from, to] ISO dates "
        "(inclusive, shop-local; null for an open end); is_set: none.",
    )
    window: Window | None = Field(default=None, description="within: the window of days.")

    @model_validator(mode="after")
    def _check(self) -> AttributeCondition:
        kind = ATTRIBUTES.get(self.field)
        if kind is None:
            raise ValueError(f"unknown attribute {self.field!r}; choose one of: {', '.join(ATTRIBUTES)}")
        if self.op not in ATTRIBUTE_OPS[kind]:
            raise ValueError(f"{self.field!r} supports {', '.join(ATTRIBUTE_OPS[kind])}, not {self.op!r}")
        value = self.value
        if self.op == "is_set":
            if value is not None or self.window is not None:
                raise ValueError("is_set takes no value")
            return self
        if self.op == "within":
            if self.window is None or value is not None:
                raise ValueError('within takes a "window" and no "value"')
            return self
        if self.window is not None:
            raise ValueError(f'{self.op} takes a "value", not a "window"')
        if self.op == "in":
            if not isinstance(value, list) or not value or len(value) > MAX_LIST:
                raise ValueError(f"in takes a list of 1 to {MAX_LIST} values")
            if any(v is None for v in value):
                raise ValueError('in takes no null values (use {"op": "is_set"} inside "not")')
            if kind == "date":
                for v in value:
                    _date(v)
        elif self.op == "between":
            if not isinstance(value, list) or len(value) != 2 or value == [None, None]:
                raise ValueError("between takes [from, to] (one of them may be null)")
            lo, hi = (None if v is None else _date(v) for v in value)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"between: {lo} is after {hi}")
        elif self.op == "equals":
            if kind == "bool":
                if not isinstance(value, bool):
                    raise ValueError(f"{self.field!r} equals true or false")
            elif not isinstance(value, str):
                raise ValueError("equals takes one text value")
            elif kind == "date":
                _date(value)
        elif self.op == "contains" and not isinstance(value, str):
            raise ValueError("contains takes one text value")
        return self

    def dates(self) -> tuple[date | None, date | None]:
        """``between``: the two bounds as dates."""
        assert isinstance(self.value, list)
        lo, hi = (None if v is None else _date(v) for v in self.value)
        return lo, hi


def _date(text: Any) -> date:
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not an ISO date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date (YYYY-MM-DD)") from None


def _in_range(value: Any) -> Any:
    """A field validator: every number in ``value`` is at most :data:`MAX_NUMBER` in magnitude."""
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, Decimal) and v.copy_abs() > MAX_NUMBER:
            raise ValueError(f"{v} is out of range (at most {MAX_NUMBER:,} in magnitude)")
    return value


class _Compared(_Strict):
    """A number compared with ``op`` / ``value``."""

    op: Comparison = Field(default=">=", description=">=, >, <=, <, =, != or between.")
    value: Number | list[Number] = Field(
        description="A number, or [low, high] (inclusive) for between. Amounts are in major units "
        "of the shop currency (`\"99.90\"`), exact to the currency's minor unit."
    )

    _range = field_validator("value")(_in_range)

    @model_validator(mode="after")
    def _check_value(self) -> _Compared:
        if self.op == "between":
            if not isinstance(self.value, list) or len(self.value) != 2:
                raise ValueError("between takes [low, high]")
            if self.value[0] > self.value[1]:
                raise ValueError(f"between: {self.value[0]} is above {self.value[1]}")
        elif isinstance(self.value, list):
            raise ValueError(f"{self.op} takes one number")
        return self

    def bounds(self) -> list[Decimal]:
        """The compared numbers (one, or two for between)."""
        return list(self.value) if isinstance(self.value, list) else [self.value]


def _names(values: list[str] | None) -> list[str] | None:
    if values is not None and not values:
        raise ValueError("an empty list matches nothing: leave the filter out instead")
    return values


Names = Annotated[list[Text], Field(max_length=MAX_LIST)]


class OrdersCondition(_Compared):
    """An aggregate of the customer's paid orders (statuses that count toward GMV) in a window.

    Without a line filter (``category`` / ``sku``): ``count`` is the number of paid orders,
    ``amount`` the sum of their goods after discounts (``total_amount``), ``units`` the sum of
    their ``item_count``. With a line filter, only lines that match count: ``count`` is the number
    of paid orders with at least one matching line, ``amount`` the sum of the matching lines'
    ``line_total``, ``units`` their quantity. A category matches itself and its sub-categories
    (``Beauty`` matches ``Beauty/Skincare``); a line's category is its own, else the catalogue's.
    Customers without such orders have 0, so ``{"op": "=", "value": 0}`` finds them.
    """

    TYPE: ClassVar[str] = "orders"
    type: Literal["orders"]
    measure: Literal["count", "amount", "units"] = Field(default="count")
    window: Window | None = Field(default=None, description="Default: every order up to as_of.")
    category: Names | None = Field(default=None, description="Only lines in these categories.")
    sku: Names | None = Field(default=None, description="Only lines of these SKUs.")
    channel: Names | None = Field(default=None, description="Only orders credited to these channels.")

    _non_empty = field_validator("category", "sku", "channel")(_names)

    @model_validator(mode="after")
    def _integral(self) -> OrdersCondition:
        if self.measure != "amount":
            for v in self.bounds():
                if v != v.to_integral_value():
                    raise ValueError(f"{self.measure} is compared with whole numbers, not {v}")
        return self


class EventsCondition(_Compared):
    """The number of the customer's events of one ``event`` type in a window (events carrying
    the customer's id; anonymous browsing before sign-in is not counted)."""

    TYPE: ClassVar[str] = "events"
    type: Literal["events"]
    event: Text = Field(description="Event type: view, search, add_to_cart, checkout, purchase or custom.")
    window: Window | None = Field(default=None, description="Default: every event up to as_of.")
    category: Names | None = Field(default=None, description="Only events on SKUs in these categories.")
    sku: Names | None = Field(default=None, description="Only events on these SKUs.")

    _non_empty = field_validator("category", "sku")(_names)

    @model_validator(mode="after")
    def _integral(self) -> EventsCondition:
        for v in self.bounds():
            if v != v.to_integral_value():
                raise ValueError(f"event counts are compared with whole numbers, not {v}")
        return self


class TagCondition(_Strict):
    """The customer carries any (or all) of ``tags``: manual tags, tags set by tag rules, and the
    tags imported in the customers file (``tags`` column, ``;``-separated)."""

    TYPE: ClassVar[str] = "tag"
    type: Literal["tag"]
    tags: Annotated[list[Text], Field(min_length=1, max_length=MAX_LIST)]
    match: Literal["any", "all"] = "any"


class ScoreCondition(_Strict):
    """A test on one of the customer's scores (see ``segments.scores``).

    Text scores (``rfm_segment``, ``rfm_class``, ``lifecycle_stage``) take ``equals`` / ``in``; numeric scores
    take comparisons. ``rfm_score`` is the three-digit R-F-M code (``555`` best): ``equals`` /
    ``in`` / comparisons. ``clv`` is in major units of the shop currency. Customers without a
    score do not match.
    """

    TYPE: ClassVar[str] = "score"
    type: Literal["score"]
    field: ScoreField
    op: Literal["equals", "in", ">=", ">", "<=", "<", "=", "!=", "between"]
    value: Number | Text | list[Number | Text] = Field(description="A value, or a list for in / between.")

    _range = field_validator("value")(_in_range)

    @model_validator(mode="before")
    @classmethod
    def _numbers_from_text(cls, data: Any) -> Any:
        """Numeric scores accept numbers written as text (``"99.90"``, exact)."""
        if not isinstance(data, dict) or data.get("field") in (*_TEXT_SCORES, "rfm_score"):
            return data

        def number(v: Any) -> Any:
            if isinstance(v, str):
                try:
                    parsed = Decimal(v.strip())
                except ArithmeticError:
                    return v
                return parsed if parsed.is_finite() else v
            return v

        value = data.get("value")
        converted = [number(v) for v in value] if isinstance(value, list) else number(value)
        return {**data, "value": converted}

    @model_validator(mode="after")
    def _check(self) -> ScoreCondition:
        values = self.value if isinstance(self.value, list) else [self.value]
        many = isinstance(self.value, list)
        if self.op == "in" and (not many or not values or len(values) > MAX_LIST):
            raise ValueError(f"in takes a list of 1 to {MAX_LIST} values")
        if self.op == "between" and (not many or len(values) != 2):
            raise ValueError("between takes [low, high]")
        if self.op not in ("in", "between") and many:
            raise ValueError(f"{self.op} takes one value")
        text_field = self.field in _TEXT_SCORES
        if text_field and self.op not in ("equals", "in", "=", "!="):
            raise ValueError(f"{self.field} is text: use equals or in")
        if not text_field and self.field != "rfm_score" and any(isinstance(v, str) for v in values):
            raise ValueError(f"{self.field} is compared with numbers")
        return self


#: Most steps a funnel condition takes (as the funnel page offers).
MAX_FUNNEL_STEPS = 8


class FunnelCondition(_Strict):
    """The customer entered the ordered funnel ``steps`` (event types) with a first step on a
    shop-local day between ``from`` and ``to`` and, within ``window_days`` of it, got as far as
    step ``reached`` (1-based): exactly that far (``exact``, the default: reached it and not the
    next step) or at least that far. The funnel is the one of the funnel page
    (``insight.funnels``): the entrant's best attempt counts; anonymous browsing counts for the
    customer the device was later seen with. ``as_of`` plays no part."""

    TYPE: ClassVar[str] = "funnel"
    type: Literal["funnel"]
    steps: Annotated[list[Text], Field(min_length=2, max_length=MAX_FUNNEL_STEPS)]
    window_days: int = Field(default=14, ge=1, le=365, description="Conversion window (days).")
    start: date = Field(alias="from", description="First entry day (inclusive).")
    end: date = Field(alias="to", description="Last entry day (inclusive).")
    reached: int = Field(ge=1, le=MAX_FUNNEL_STEPS, description="Step number, 1-based.")
    exact: bool = Field(default=True, description="Stopped at that step (true) or got at least that far.")

    @model_validator(mode="after")
    def _check(self) -> FunnelCondition:
        if any(not s.strip() for s in self.steps):
            raise ValueError("a funnel step is an event type, not blank")
        if self.reached > len(self.steps):
            raise ValueError(f"reached is a step number, 1 to {len(self.steps)}")
        if self.start > self.end:
            raise ValueError(f'"from" {self.start} is after "to" {self.end}')
        return self


class AllGroup(_Strict):
    """Every node matches (AND). An empty list matches every customer."""

    TYPE: ClassVar[str] = "all"
    all: Annotated[list[Node], Field(max_length=MAX_NODES)]


class AnyGroup(_Strict):
    """At least one node matches (OR)."""

    TYPE: ClassVar[str] = "any"
    any: Annotated[list[Node], Field(min_length=1, max_length=MAX_NODES)]


class NotGroup(_Strict):
    """The node does not match."""

    TYPE: ClassVar[str] = "not"
    not_: Node = Field(alias="not")


Condition = (
    AttributeCondition | OrdersCondition | EventsCondition | TagCondition | ScoreCondition
    | FunnelCondition
)
_KINDS = ("all", "any", "not")


def _node_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in _KINDS:
            if key in value:
                return key
        kind = value.get("type")
        return kind if isinstance(kind, str) else None
    tag = getattr(type(value), "TYPE", None)
    return tag if isinstance(tag, str) else None


Node = Annotated[
    Union[  # noqa: UP007  (the recursive alias must be a typing.Union for pydantic)
        Annotated[AllGroup, Tag("all")],
        Annotated[AnyGroup, Tag("any")],
        Annotated[NotGroup, Tag("not")],
        Annotated[AttributeCondition, Tag("attribute")],
        Annotated[OrdersCondition, Tag("orders")],
        Annotated[EventsCondition, Tag("events")],
        Annotated[TagCondition, Tag("tag")],
        Annotated[ScoreCondition, Tag("score")],
        Annotated[FunnelCondition, Tag("funnel")],
    ],
    Discriminator(
        _node_kind,
        custom_error_type="invalid_node",
        custom_error_message='a node is {"all": [...]}, {"any": [...]}, {"not": {...}} or a condition '
        'whose "type" is attribute, orders, events, tag, score or funnel',
    ),
]

for _model in (AllGroup, AnyGroup, NotGroup):
    _model.model_rebuild()

_ADAPTER: TypeAdapter[Node] = TypeAdapter(Node)


class SegmentDefinitionError(InvalidArgumentError):
    """A segment definition that does not follow the schema (the message says where)."""

    code = "invalid_segment"


def _where(loc: tuple[int | str, ...]) -> str:
    """A readable path (``all[0].not.window.last``) from a pydantic error location, whose parts
    alternate between the tag the discriminator chose and the fields inside it."""
    path, expect_tag = "", True
    for part in loc:
        if expect_tag:
            expect_tag = False
            continue
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
        expect_tag = isinstance(part, int) or part == "not"
    return path.lstrip(".") or "(top)"


def children(node: Node) -> list[Node]:
    """The nodes directly inside a group (none for a condition)."""
    if isinstance(node, AllGroup):
        return list(node.all)
    if isinstance(node, AnyGroup):
        return list(node.any)
    if isinstance(node, NotGroup):
        return [node.not_]
    return []


def conditions(node: Node) -> list[Condition]:
    """Every condition in the tree, depth first."""
    found: list[Condition] = []
    stack = [node]
    while stack:
        current = stack.pop()
        inner = children(current)
        if inner:
            stack.extend(reversed(inner))
        elif not isinstance(current, AllGroup | AnyGroup | NotGroup):
            found.append(current)
    return found


def _check_size(node: Node) -> None:
    count, deepest = 0, 0
    stack: list[tuple[Node, int]] = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        count += 1
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children(current))
    if count > MAX_NODES:
        raise SegmentDefinitionError(f"the definition has {count} nodes; at most {MAX_NODES} are allowed")
    if deepest > MAX_DEPTH:
        raise SegmentDefinitionError(
            f"the definition nests {deepest} levels; at most {MAX_DEPTH} are allowed"
        )


def parse_definition(data: Any) -> Node:
    """Validate a definition given as JSON text, bytes or already-parsed JSON (dicts and lists).

    Raises :class:`SegmentDefinitionError` naming the place of the first problems.
    """
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise SegmentDefinitionError(f"the definition is not valid JSON: {exc}") from None
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json", by_alias=True, exclude_none=True)
    try:
        node = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:3]:
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{_where(tuple(error['loc']))}: {message}")
        more = exc.error_count() - len(problems)
        tail = f" (and {more} more)" if more > 0 else ""
        raise SegmentDefinitionError("invalid segment definition: " + "; ".join(problems) + tail) from None
    _check_size(node)
    return node


def _type_first(value: Any) -> Any:
    if isinstance(value, dict):
        ordered = {"type": value["type"]} if "type" in value else {}
        ordered.update({k: _type_first(v) for k, v in value.items() if k != "type"})
        return ordered
    if isinstance(value, list):
        return [_type_first(v) for v in value]
    return value


def definition_to_json(node: Node) -> dict[str, Any]:
    """The definition as plain JSON data (what is stored; :func:`parse_definition` reads it back)."""
    data: dict[str, Any] = _type_first(
        _ADAPTER.dump_python(node, mode="json", by_alias=True, exclude_none=True)
    )
    return data


def definition_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a segment definition."""
    schema = _ADAPTER.json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Growthwheel segment definition",
        "description": "A group ({\"all\": [...]}, {\"any\": [...]}, {\"not\": {...}}) or a condition "
        "(\"type\": attribute, orders, events, tag, score or funnel). See docs/segments.md.",
        **schema,
    }
