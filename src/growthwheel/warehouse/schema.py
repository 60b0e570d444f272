"""The warehouse's fact tables: what an import accepts and what is stored.

Each table has two views:

* ``inputs``: the columns of the *generic* import format (CSV, Parquet or JSON Lines), with the kind
  of value each holds and whether it is required. Shop-specific formats (Shopify, Taobao) are
  translated into these columns by their adapters in ``warehouse/formats``.
* ``stored``: the columns of the table in the warehouse, with their SQL type. Money is stored as
  ``BIGINT`` minor units, timestamps as UTC ``TIMESTAMP`` plus a shop-local ``DATE`` for day
  boundaries, identifiers as text exactly as the source system wrote them.

Every stored table also has bookkeeping columns ``_row_hash`` (a hash of the business columns, used
to tell an unchanged row from an updated one) and ``_import_id`` (the import run that wrote it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["id", "text", "money", "int", "datetime", "date", "bool", "status", "json"]

#: Order statuses, in the order an order usually moves through them.
ORDER_STATUSES = (
    "pending",  # placed, not paid
    "paid",
    "shipped",
    "completed",
    "partially_refunded",
    "refunded",
    "cancelled",  # closed without payment (or payment voided)
)
#: Statuses of an order that was paid; only these count toward GMV, orders and buyers.
PAID_STATUSES = ("paid", "shipped", "completed", "partially_refunded", "refunded")

#: Event types the product knows; any other non-empty type is kept as a custom event.
STANDARD_EVENT_TYPES = ("view", "search", "add_to_cart", "checkout", "purchase")


@dataclass(frozen=True)
class Input:
    """One column of the generic import format."""

    name: str
    kind: Kind
    doc: str
    required: bool = False
    min_value: int | None = None
    max_value: int | None = None


@dataclass(frozen=True)
class Stored:
    """One column of a stored fact table."""

    name: str
    sql_type: str
    doc: str


@dataclass(frozen=True)
class Table:
    """A fact table: its import columns, stored columns and key."""

    name: str
    doc: str
    key: tuple[str, ...]
    inputs: tuple[Input, ...]
    stored: tuple[Stored, ...]
    aliases: tuple[str, ...] = field(default=())

    def input(self, name: str) -> Input:
        """The input column called ``name``."""
        for column in self.inputs:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the required input columns."""
        return tuple(c.name for c in self.inputs if c.required)

    @property
    def stored_names(self) -> tuple[str, ...]:
        """Names of the stored business columns, in order."""
        return tuple(c.name for c in self.stored)


_UTM = (
    Input("utm_source", "text", "UTM source, e.g. `douyin`, `baidu`, `newsletter`"),
    Input("utm_medium", "text", "UTM medium, e.g. `cpc`, `social`, `email`"),
    Input("utm_campaign", "text", "UTM campaign name"),
)
_UTM_STORED = (
    Stored("utm_source", "VARCHAR", "UTM source"),
    Stored("utm_medium", "VARCHAR", "UTM medium"),
    Stored("utm_campaign", "VARCHAR", "UTM campaign"),
)

CUSTOMERS = Table(
    name="customers",
    doc="One row per customer, keyed by the shop's own customer id.",
    key=("customer_id",),
    inputs=(
        Input("customer_id", "id", "the shop's customer id", required=True),
        Input("email", "text", "email address"),
        Input("phone", "text", "phone number as written"),
        Input("name", "text", "display name"),
        Input("gender", "text", "as the shop records it"),
        Input("birthday", "date", "ISO date"),
        Input("city", "text", "city"),
        Input("province", "text", "province or state"),
        Input("country", "text", "country"),
        Input("signed_up_at", "datetime", "when the account was created"),
        Input("channel", "text", "acquisition channel (defaults to `utm_source`, else `direct`)"),
        *_UTM,
        Input("accepts_marketing", "bool", "consent to marketing messages"),
        Input("tags", "text", "tags separated by `;`"),
    ),
    stored=(
        Stored("customer_id", "VARCHAR", "the shop's customer id"),
        Stored("email", "VARCHAR", "email address"),
        Stored("phone", "VARCHAR", "phone number"),
        Stored("name", "VARCHAR", "display name"),
        Stored("gender", "VARCHAR", "gender"),
        Stored("birthday", "DATE", "birthday"),
        Stored("city", "VARCHAR", "city"),
        Stored("province", "VARCHAR", "province or state"),
        Stored("country", "VARCHAR", "country"),
        Stored("signed_up_at", "TIMESTAMP", "sign-up time, UTC"),
        Stored("channel", "VARCHAR", "acquisition channel"),
        *_UTM_STORED,
        Stored("accepts_marketing", "BOOLEAN", "marketing consent"),
        Stored("tags", "VARCHAR", "tags separated by `;`"),
    ),
)

PRODUCTS = Table(
    name="products",
    doc="The catalogue, keyed by SKU.",
    key=("sku",),
    inputs=(
        Input("sku", "id", "stock-keeping unit", required=True),
        Input("name", "text", "product name", required=True),
        Input("category", "text", "category (use `/` for a path, e.g. `Beauty/Skincare`)"),
        Input("brand", "text", "brand"),
        Input("price", "money", "list price, major units"),
        Input("cost", "money", "unit cost, major units (for gross margin)"),
        Input("currency", "text", "ISO 4217 code; defaults to the shop currency"),
        Input("consumption_cycle_days", "int", "typical days until a buyer needs more", min_value=1),
        Input("launched_at", "date", "launch date"),
    ),
    stored=(
        Stored("sku", "VARCHAR", "stock-keeping unit"),
        Stored("name", "VARCHAR", "product name"),
        Stored("category", "VARCHAR", "category"),
        Stored("brand", "VARCHAR", "brand"),
        Stored("price", "BIGINT", "list price, minor units"),
        Stored("cost", "BIGINT", "unit cost, minor units"),
        Stored("currency", "VARCHAR", "currency"),
        Stored("consumption_cycle_days", "BIGINT", "consumption cycle in days"),
        Stored("launched_at", "DATE", "launch date"),
    ),
)

_ORDER_STORED = (
    Stored("order_id", "VARCHAR", "the shop's order id"),
    Stored("customer_id", "VARCHAR", "buyer"),
    Stored("ordered_at", "TIMESTAMP", "when the order was placed, UTC"),
    Stored("order_date", "DATE", "the shop-local date the order was placed"),
    Stored("paid_at", "TIMESTAMP", "when it was paid, UTC"),
    Stored("status", "VARCHAR", "one of " + ", ".join(ORDER_STATUSES)),
    Stored("currency", "VARCHAR", "currency"),
    Stored("channel", "VARCHAR", "channel credited with the order (last touch)"),
    *_UTM_STORED,
    Stored("coupon_code", "VARCHAR", "coupon code used"),
    Stored("item_count", "BIGINT", "units in the order"),
    Stored("gross_amount", "BIGINT", "goods before discounts (total + discount), minor units"),
    Stored("discount_amount", "BIGINT", "discounts on goods, minor units"),
    Stored("total_amount", "BIGINT", "goods after discounts, excluding shipping, minor units"),
    Stored("shipping_amount", "BIGINT", "shipping charged, minor units"),
    Stored("refunded_amount", "BIGINT", "refunded so far, minor units"),
    Stored("points_used", "BIGINT", "points the buyer spent on the order"),
    Stored("points_earned", "BIGINT", "points the order earned"),
    Stored("source", "VARCHAR", "`checkout` (committed through Growthwheel's checkout API) or `import`"),
)

#: ``orders.source`` of an order committed through the checkout API: a later import of the same
#: ``order_id`` (the shop's own export) leaves it as it is (see ``warehouse/ingest.py``).
CHECKOUT_SOURCE = "checkout"
IMPORT_SOURCE = "import"

ORDERS = Table(
    name="orders",
    doc=(
        "One row per order. Importing `order_lines` writes the order rows too (totals are the sums "
        "of the lines); importing `orders` alone is for order-level exports without items."
    ),
    key=("order_id",),
    inputs=(
        Input("order_id", "id", "the shop's order id", required=True),
        Input("customer_id", "id", "buyer", required=True),
        Input("ordered_at", "datetime", "ISO 8601 date or date-time", required=True),
        Input("total", "money", "goods after discounts, excluding shipping", required=True),
        Input("discount", "money", "discounts on goods"),
        Input("shipping", "money", "shipping charged"),
        Input("refunded_amount", "money", "refunded so far"),
        Input("paid_at", "datetime", "payment time"),
        Input("status", "status", "order status (default `paid`)"),
        Input("currency", "text", "ISO 4217 code; must be the shop currency"),
        Input("channel", "text", "channel credited with the order (defaults to `utm_source`)"),
        *_UTM,
        Input("coupon_code", "text", "coupon code used"),
        Input("item_count", "int", "units in the order", min_value=0),
        Input("points_used", "int", "points the buyer spent on the order", min_value=0),
        Input("points_earned", "int", "points the order earned", min_value=0),
    ),
    stored=_ORDER_STORED,
)

ORDER_LINES = Table(
    name="order_lines",
    doc=(
        "One row per order line. A line import is applied order by order: an order's lines are "
        "replaced as a whole when a newer version of the order arrives, and if any line of an "
        "order is invalid the whole order is quarantined."
    ),
    key=("order_id", "line_no"),
    inputs=(
        Input("order_id", "id", "the shop's order id", required=True),
        Input("customer_id", "id", "buyer", required=True),
        Input("ordered_at", "datetime", "ISO 8601 date or date-time; no offset = shop time", required=True),
        Input("sku", "id", "product SKU", required=True),
        Input("quantity", "int", "units, at least 1", required=True, min_value=1),
        Input("line_total", "money", "amount charged for the line after discounts", required=True),
        Input("unit_price", "money", "price per unit before discounts"),
        Input("discount", "money", "discount on this line"),
        Input("currency", "text", "ISO 4217 code; must be the shop currency"),
        Input("status", "status", "order status (default `paid`)"),
        Input("channel", "text", "channel credited with the order (defaults to `utm_source`)"),
        Input("product_name", "text", "product name at the time of the order"),
        Input("category", "text", "product category at the time of the order"),
        Input("paid_at", "datetime", "payment time"),
        Input("refunded_amount", "money", "refunded on this line so far"),
        Input("shipping", "money", "order-level: shipping charged (same on every line, or first line only)"),
        Input("coupon_code", "text", "order-level: coupon code used"),
        *_UTM,
        Input("promotion_ids", "text", "promotions that discounted this line, separated by `;`"),
        Input("coupon_codes", "text", "coupon codes that discounted this line, separated by `;`"),
        Input("points_amount", "money", "part of the line paid with points"),
        Input("points_used", "int", "order-level: points the buyer spent", min_value=0),
        Input("points_earned", "int", "order-level: points the order earned", min_value=0),
    ),
    stored=(
        Stored("order_id", "VARCHAR", "order"),
        Stored("line_no", "BIGINT", "1-based position of the line in its order"),
        Stored("sku", "VARCHAR", "product SKU"),
        Stored("product_name", "VARCHAR", "product name"),
        Stored("category", "VARCHAR", "category (from the line, else the catalogue)"),
        Stored("quantity", "BIGINT", "units"),
        Stored("unit_price", "BIGINT", "price per unit before discounts, minor units"),
        Stored("discount_amount", "BIGINT", "discount on the line, minor units"),
        Stored("line_total", "BIGINT", "amount charged after discounts, minor units"),
        Stored("refunded_amount", "BIGINT", "refunded on the line, minor units"),
        Stored("promotion_ids", "VARCHAR", "promotions that discounted the line, `;`-separated"),
        Stored("coupon_codes", "VARCHAR", "coupon codes that discounted the line, `;`-separated"),
        Stored("points_amount", "BIGINT", "part of the line paid with points, minor units"),
    ),
    aliases=("lines",),
)

EVENTS = Table(
    name="events",
    doc="Behaviour events (views, searches, carts, checkouts, purchases, custom), keyed by event id.",
    key=("event_id",),
    inputs=(
        Input("event_id", "id", "unique id from the client; re-sending it changes nothing", required=True),
        Input("type", "id", "view, search, add_to_cart, checkout, purchase or a custom name", required=True),
        Input("occurred_at", "datetime", "ISO 8601 date-time", required=True),
        Input("customer_id", "id", "known customer (this or `anonymous_id` is required)"),
        Input("anonymous_id", "id", "device / cookie id before the customer identifies"),
        Input("session_id", "id", "session"),
        Input("sku", "id", "product concerned"),
        Input("order_id", "id", "order concerned (for `purchase`)"),
        Input("url", "text", "page URL; UTM parameters are read from it when not given"),
        Input("referrer", "text", "referring URL"),
        *_UTM,
        Input("device", "text", "e.g. `mobile`, `desktop`, `mini_program`"),
        Input("properties", "json", "any other properties, as a JSON object"),
    ),
    stored=(
        Stored("event_id", "VARCHAR", "event id"),
        Stored("type", "VARCHAR", "event type"),
        Stored("occurred_at", "TIMESTAMP", "when, UTC"),
        Stored("event_date", "DATE", "shop-local date"),
        Stored("customer_id", "VARCHAR", "customer"),
        Stored("anonymous_id", "VARCHAR", "anonymous id"),
        Stored("session_id", "VARCHAR", "session"),
        Stored("sku", "VARCHAR", "product"),
        Stored("order_id", "VARCHAR", "order"),
        Stored("url", "VARCHAR", "page URL"),
        Stored("referrer", "VARCHAR", "referrer"),
        *_UTM_STORED,
        Stored("device", "VARCHAR", "device"),
        Stored("properties", "VARCHAR", "JSON object"),
    ),
)

AD_SPEND = Table(
    name="ad_spend",
    doc="Advertising spend per day, channel and campaign.",
    key=("date", "channel", "utm_campaign"),
    inputs=(
        Input("date", "date", "ISO date of the spend (shop-local)", required=True),
        Input("channel", "id", "channel, matched against orders' `channel` for CAC and ROAS", required=True),
        Input("spend", "money", "amount spent, major units", required=True),
        *_UTM,
        Input("impressions", "int", "impressions", min_value=0),
        Input("clicks", "int", "clicks", min_value=0),
        Input("currency", "text", "ISO 4217 code; must be the shop currency"),
    ),
    stored=(
        Stored("date", "DATE", "date"),
        Stored("channel", "VARCHAR", "channel"),
        *_UTM_STORED,
        Stored("spend", "BIGINT", "spend, minor units"),
        Stored("impressions", "BIGINT", "impressions"),
        Stored("clicks", "BIGINT", "clicks"),
    ),
)

REVIEWS = Table(
    name="reviews",
    doc="Product reviews with a 1–5 rating.",
    key=("review_id",),
    inputs=(
        Input("review_id", "id", "review id", required=True),
        Input("sku", "id", "product reviewed", required=True),
        Input("rating", "int", "1 to 5", required=True, min_value=1, max_value=5),
        Input("created_at", "datetime", "when it was written", required=True),
        Input("order_id", "id", "order it reviews"),
        Input("customer_id", "id", "author"),
        Input("title", "text", "title"),
        Input("body", "text", "text of the review"),
        Input("language", "text", "language code, e.g. `zh`, `en`"),
    ),
    stored=(
        Stored("review_id", "VARCHAR", "review id"),
        Stored("sku", "VARCHAR", "product"),
        Stored("rating", "BIGINT", "1 to 5"),
        Stored("created_at", "TIMESTAMP", "when, UTC"),
        Stored("review_date", "DATE", "shop-local date"),
        Stored("order_id", "VARCHAR", "order"),
        Stored("customer_id", "VARCHAR", "author"),
        Stored("title", "VARCHAR", "title"),
        Stored("body", "VARCHAR", "text"),
        Stored("language", "VARCHAR", "language"),
    ),
)

#: Why an ``inventory`` row without exactly one of ``on_hand`` and ``received`` is refused.
INVENTORY_ONE_OF = "give either on_hand (a stock snapshot) or received (a receipt): exactly one per row"
#: ``inventory.location`` when a row names none.
DEFAULT_LOCATION = "default"

INVENTORY = Table(
    name="inventory",
    doc=(
        "Stock per SKU and day: a snapshot of the units on hand (`on_hand`) or a supplier receipt "
        "(`received`, with its lead time), one of the two per row; keyed by SKU, date, kind "
        "(`snapshot` or `receipt`) and location."
    ),
    key=("sku", "date", "kind", "location"),
    inputs=(
        Input("sku", "id", "product SKU", required=True),
        Input("date", "date", "ISO date of the snapshot (end of day) or of the receipt", required=True),
        Input("on_hand", "int", "units on hand at the end of the day (a snapshot)", min_value=0),
        Input("received", "int", "units received from a supplier that day (a receipt)", min_value=0),
        Input("lead_time_days", "int", "receipt: days from the purchase order to the receipt", min_value=0),
        Input("unit_cost", "money", "unit cost, major units (for turnover at cost)"),
        Input("location", "text", "warehouse or store (default `default`)"),
    ),
    stored=(
        Stored("sku", "VARCHAR", "product SKU"),
        Stored("date", "DATE", "shop-local date"),
        Stored("kind", "VARCHAR", "`snapshot` (on hand) or `receipt` (received)"),
        Stored("location", "VARCHAR", "warehouse or store"),
        Stored("on_hand", "BIGINT", "units on hand at the end of the day"),
        Stored("received", "BIGINT", "units received"),
        Stored("lead_time_days", "BIGINT", "days from purchase order to receipt"),
        Stored("unit_cost", "BIGINT", "unit cost, minor units"),
    ),
    aliases=("stock",),
)

TABLES: dict[str, Table] = {
    t.name: t for t in (CUSTOMERS, PRODUCTS, ORDERS, ORDER_LINES, EVENTS, AD_SPEND, REVIEWS, INVENTORY)
}

#: Bookkeeping tables of the import machinery.
QUARANTINE_STORED = (
    Stored("import_id", "VARCHAR", "import run"),
    Stored("table_name", "VARCHAR", "table the row was meant for"),
    Stored("file", "VARCHAR", "source file"),
    Stored("row_number", "BIGINT", "1-based data row in the file (header excluded)"),
    Stored("column_name", "VARCHAR", "column at fault"),
    Stored("value", "VARCHAR", "the value as written"),
    Stored("reason", "VARCHAR", "why it was refused"),
    Stored("quarantined_at", "TIMESTAMP", "when, UTC"),
)
IMPORTS_STORED = (
    Stored("import_id", "VARCHAR", "import run"),
    Stored("table_name", "VARCHAR", "target table"),
    Stored("format", "VARCHAR", "generic, shopify or taobao"),
    Stored("files", "VARCHAR", "files, `;`-separated"),
    Stored("rows_read", "BIGINT", "data rows read"),
    Stored("inserted", "BIGINT", "new rows"),
    Stored("updated", "BIGINT", "rows replaced by a newer version"),
    Stored("unchanged", "BIGINT", "rows identical to what was stored"),
    Stored("quarantined", "BIGINT", "rows refused"),
    Stored("finished_at", "TIMESTAMP", "when it committed, UTC"),
)


def resolve_table(name: str) -> Table:
    """The table called ``name`` (or one of its aliases); ``KeyError`` with the valid names."""
    for table in TABLES.values():
        if name == table.name or name in table.aliases:
            return table
    raise KeyError(f"unknown table {name!r}; choose one of: {', '.join(TABLES)}")


def ddl(name: str, columns: tuple[Stored, ...], bookkeeping: bool = True) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for a stored table."""
    cols = [f'"{c.name}" {c.sql_type}' for c in columns]
    if bookkeeping:
        cols += ['"_row_hash" UBIGINT', '"_import_id" VARCHAR']
    return f'CREATE TABLE IF NOT EXISTS "{name}" ({", ".join(cols)})'
