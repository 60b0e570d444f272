"""Shopify orders export → generic staging, checked on the shipped example and small made-up files.

Expected numbers are worked out by hand in the comments, or read independently from Shopify's own
order-level columns (``Subtotal``, ``Discount Amount``) with the ``csv`` module.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from growthwheel.errors import ImportFileError
from growthwheel.warehouse.formats import shopify
from growthwheel.warehouse.schema import CUSTOMERS, ORDER_LINES, PRODUCTS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shopify" / "orders_export.csv"


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


def _lines(con: duckdb.DuckDBPyConnection, path: Path = EXAMPLE) -> list[dict[str, object]]:
    shopify.stage(con, ORDER_LINES, [path], "staged")
    cursor = con.execute("SELECT * FROM staged ORDER BY _file_idx, _row")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _by_order(lines: list[dict[str, object]]) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for line in lines:
        out.setdefault(str(line["order_id"]), []).append(line)
    return out


def _write(tmp_path: Path, rows: list[dict[str, str]], name: str = "orders.csv") -> Path:
    header = list(rows[0])
    path = tmp_path / name
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _order_row(**values: str) -> dict[str, str]:
    row = {
        "Name": "#1", "Email": "a@example.com", "Financial Status": "paid", "Paid at": "",
        "Fulfillment Status": "", "Currency": "CNY", "Shipping": "0.00", "Discount Code": "",
        "Discount Amount": "0.00", "Created at": "2024-03-05 14:07:11 +0800",
        "Lineitem quantity": "1", "Lineitem name": "Tea", "Lineitem price": "10.00",
        "Lineitem sku": "T-1", "Cancelled at": "", "Refunded Amount": "0.00",
        "Lineitem discount": "0.00", "Phone": "", "Billing Phone": "",
    }
    row.update(values)
    return row


def test_example_stages_one_row_per_line_item(con: duckdb.DuckDBPyConnection) -> None:
    lines = _lines(con)
    assert len(lines) == 26  # 26 data rows in the export
    assert len(_by_order(lines)) == 15
    assert [line["_row"] for line in lines] == list(range(1, 27))
    assert {line["_file"] for line in lines} == {str(EXAMPLE)}


def test_order_discount_is_allocated_by_largest_remainder(con: duckdb.DuckDBPyConnection) -> None:
    order = _by_order(_lines(con))["#1002"]
    # SAVE20: 20.00 over 168.00 + 89.90 + 59.00 = 316.90 (fen weights 16800, 8990, 5900).
    # 2000 * w / 31690 = 1060.27, 567.37, 372.36 -> floors 1060, 567, 372 (sum 1999); the fen
    # left goes to the largest remainder, the second line's (11770 vs 8600 and 11320, of 31690).
    assert [line["discount"] for line in order] == ["10.60", "5.68", "3.72"]
    assert [line["line_total"] for line in order] == ["157.40", "84.22", "55.28"]
    assert [line["unit_price"] for line in order] == ["168.00", "89.90", "59.00"]
    assert {line["coupon_code"] for line in order} == {"SAVE20"}


def test_line_discounts_and_totals_add_up_to_shopify_order_columns(
    con: duckdb.DuckDBPyConnection,
) -> None:
    with EXAMPLE.open(encoding="utf-8") as f:
        heads = {r["Name"]: r for r in csv.DictReader(f) if r["Created at"]}
    orders = _by_order(_lines(con))
    discounted = 0
    for name, head in heads.items():
        lines = orders[name]
        discount = sum(Decimal(str(line["discount"])) for line in lines)
        total = sum(Decimal(str(line["line_total"])) for line in lines)
        assert discount == Decimal(head["Discount Amount"]), name
        assert total == Decimal(head["Subtotal"]), name  # Shopify's subtotal is after discounts
        for line in lines:
            gross = Decimal(str(line["unit_price"])) * int(str(line["quantity"]))
            assert gross - Decimal(str(line["discount"])) == Decimal(str(line["line_total"]))
        discounted += discount > 0
    assert discounted == 5


def test_lineitem_discount_is_not_counted_twice(con: duckdb.DuckDBPyConnection) -> None:
    order = _by_order(_lines(con))["#1009"]
    # Lineitem discount 16.80 on the first line and Discount Amount 16.80 for the order: the order
    # discount already contains the line's, so nothing is left to spread.
    assert [line["discount"] for line in order] == ["16.80", "0.00"]
    assert [line["line_total"] for line in order] == ["151.20", "179.80"]


def test_refunds_are_allocated_over_line_totals(con: duckdb.DuckDBPyConnection) -> None:
    orders = _by_order(_lines(con))
    partial = orders["#1004"]
    # TEAPOT50 first: 5000 over 42800 / 23600 -> 3222.89 / 1777.11 -> 3223 / 1777.
    assert [line["line_total"] for line in partial] == ["395.77", "218.23"]
    # Refund 59.00 over 39577 / 21823 (sum 61400): 3803.00 / 2096.998 -> floors 3803 / 2096, the
    # fen left goes to the second line (remainder 61300 vs 100).
    assert [line["refunded_amount"] for line in partial] == ["38.03", "20.97"]
    # A full refund of 250.00 includes 12.00 shipping: only the goods' 238.00 sits on the line.
    assert [line["refunded_amount"] for line in orders["#1003"]] == ["238.00"]
    assert [line["refunded_amount"] for line in orders["#1001"]] == ["0.00", "0.00"]


def test_statuses_map_onto_order_statuses(con: duckdb.DuckDBPyConnection) -> None:
    orders = _by_order(_lines(con))
    status = {name: {line["status"] for line in lines} for name, lines in orders.items()}
    expected = {
        "#1001": "shipped",  # paid + fulfilled
        "#1002": "paid",  # paid, unfulfilled
        "#1003": "refunded",
        "#1004": "partially_refunded",
        "#1005": "cancelled",  # voided
        "#1006": "pending",
        "#1007": "pending",  # authorized
        "#1010": "paid",
        "#1012": "refunded",  # cancelled after payment and refunded
        "#1015": "shipped",  # partially fulfilled
    }
    for name, value in expected.items():
        assert status[name] == {value}, name


@pytest.mark.parametrize(
    ("financial", "fulfillment", "cancelled", "expected"),
    [
        ("paid", "fulfilled", "", "shipped"),
        ("paid", "unfulfilled", "", "paid"),
        ("partially_paid", "", "", "paid"),
        ("authorized", "", "", "pending"),
        ("pending", "", "2024-03-06 18:00:00 +0800", "cancelled"),
        ("voided", "", "2024-03-06 18:00:00 +0800", "cancelled"),
        ("expired", "", "", "cancelled"),
        ("refunded", "fulfilled", "2024-03-06 18:00:00 +0800", "refunded"),
        ("Partially_Refunded", "", "", "partially_refunded"),
        ("", "", "", None),
        ("on_hold", "", "", "on_hold"),  # unknown: passed on, validation quarantines it
    ],
)
def test_order_status_table(
    financial: str, fulfillment: str, cancelled: str, expected: str | None
) -> None:
    assert shopify.order_status(financial, fulfillment, cancelled) == expected


def test_ids_times_sku_and_shipping(con: duckdb.DuckDBPyConnection) -> None:
    orders = _by_order(_lines(con))
    # Email lower-cased (#1002 is written WangFang@Example.cn), else the order's phone.
    assert {line["customer_id"] for line in orders["#1002"]} == {"wangfang@example.cn"}
    assert {line["customer_id"] for line in orders["#1010"]} == {"+8613800138000"}
    first = orders["#1004"][0]
    assert first["ordered_at"] == "2024-03-05T14:07:11+08:00"
    assert first["paid_at"] == "2024-03-05T14:07:20+08:00"
    assert first["currency"] == "CNY"
    # Custom line item without a SKU: its name stands in.
    assert [line["sku"] for line in orders["#1008"]] == ["TEA-PE-357", "Gift wrapping 礼品包装"]
    # Shipping is an order amount: first line only.
    assert [line["shipping"] for line in orders["#1001"]] == ["12.00", None]
    assert all(line["category"] is None and line["channel"] is None for line in orders["#1001"])


def test_customers_are_the_buyers_with_their_latest_details(
    con: duckdb.DuckDBPyConnection,
) -> None:
    shopify.stage(con, CUSTOMERS, [EXAMPLE], "buyers")
    rows = con.execute(
        "SELECT customer_id, email, phone, name, city, province, country, accepts_marketing "
        "FROM buyers ORDER BY customer_id"
    ).fetchall()
    by_id = {r[0]: r for r in rows}
    assert len(rows) == 12  # 15 orders, three repeat buyers
    # Alice ordered from Shanghai (#1001), then Hangzhou (#1008): the latest address wins.
    assert by_id["alice.chen@example.com"][4:7] == ("Hangzhou", "Zhejiang", "CN")
    assert by_id["+8613800138000"][1:4] == (None, "+8613800138000", "张伟")
    assert by_id["bob.smith@example.com"][7] == "false"
    assert by_id["lina@example.cn"][7] == "true"


def test_missing_headers_name_the_file_and_the_headers(tmp_path: Path) -> None:
    row = _order_row()
    del row["Lineitem price"], row["Created at"]
    path = _write(tmp_path, [row])
    with pytest.raises(ImportFileError) as err:
        shopify.stage(duckdb.connect(), ORDER_LINES, [path], "staged")
    assert str(path) in err.value.message
    assert "Created at" in err.value.message
    assert "Lineitem price" in err.value.message


def test_other_tables_and_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="products"):
        shopify.stage(duckdb.connect(), PRODUCTS, [EXAMPLE], "staged")
    missing = tmp_path / "nope.csv"
    with pytest.raises(ImportFileError, match=r"nope\.csv"):
        shopify.stage(duckdb.connect(), ORDER_LINES, [missing], "staged")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ImportFileError, match="empty"):
        shopify.stage(duckdb.connect(), ORDER_LINES, [empty], "staged")


def test_unreadable_values_are_passed_on_as_written(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        [
            _order_row(Name="#1", **{"Lineitem price": "12,5O"}),
            _order_row(Name="#2", **{"Discount Amount": "ten"}),
            _order_row(Name="#3", **{"Lineitem quantity": "-1", "Lineitem price": "3.00"}),
            _order_row(Name="#4", Email="", **{"Billing Phone": ""}),
        ],
    )
    lines = _by_order(_lines(con, path))
    assert lines["#1"][0]["unit_price"] == "12,5O"
    assert lines["#1"][0]["line_total"] == "12,5O"
    assert lines["#2"][0]["discount"] == "ten"
    assert lines["#3"][0]["quantity"] == "-1"
    assert lines["#4"][0]["customer_id"] is None  # nobody to credit: quarantined, not guessed


def test_rows_of_an_order_need_not_be_adjacent_and_bom_is_dropped(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    rows = [
        _order_row(Name="#7", **{"Discount Amount": "1.00", "Lineitem price": "2.00"}),
        _order_row(Name="#8"),
        _order_row(
            Name="#7", Email="", **{"Created at": "", "Financial Status": "", "Discount Amount": "",
                                    "Lineitem sku": "T-2", "Lineitem price": "1.00"},
        ),
    ]
    path = _write(tmp_path, rows)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # as Excel saves "CSV UTF-8"
    order = _by_order(_lines(con, path))["#7"]
    # 1.00 over 2.00 and 1.00: 66.67 / 33.33 fen -> 66 / 33, the fen left to the first line.
    assert [(line["_row"], line["discount"]) for line in order] == [(1, "0.67"), (3, "0.33")]
    assert {line["customer_id"] for line in order} == {"a@example.com"}
