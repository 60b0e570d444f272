"""Taobao 订单报表 + 宝贝报表 → generic staging, on the shipped examples and small made-up files.

Expected numbers are worked out by hand in the comments, or read independently from the order
report with pandas (its own GBK decoding and ``="…"`` stripping).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from growthwheel.errors import ImportFileError
from growthwheel.warehouse.formats import taobao
from growthwheel.warehouse.schema import CUSTOMERS, EVENTS, ORDER_LINES, Table

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "taobao"
ORDERS_GBK = EXAMPLES / "ExportOrderList.csv"
ORDERS_BOM = EXAMPLES / "ExportOrderList-utf8-bom.csv"
ITEMS = EXAMPLES / "ExportOrderDetailList.csv"

ORDER_HEADER = (
    "订单编号,买家会员名,买家应付货款,买家应付邮费,总金额,买家实际支付金额,订单状态,收货人姓名,"
    "收货地址,联系手机,订单创建时间,订单付款时间,宝贝标题,宝贝总数量,退款金额"
)
ITEM_HEADER = "订单编号,标题,价格,购买数量,外部系统编号,商品属性,套餐信息,备注,订单状态,商家编码"


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


def _stage(
    con: duckdb.DuckDBPyConnection, paths: list[Path], table: Table = ORDER_LINES
) -> list[dict[str, object]]:
    taobao.stage(con, table, paths, "staged")
    cursor = con.execute("SELECT * FROM staged ORDER BY _file_idx, _row")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _by_order(lines: list[dict[str, object]]) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for line in lines:
        out.setdefault(str(line["order_id"]), []).append(line)
    return out


def _unwrap(value: str) -> str:
    return value[2:-1] if value.startswith('="') else value


def _write(path: Path, text: str, encoding: str = "gbk") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_items_are_joined_to_orders(con: duckdb.DuckDBPyConnection) -> None:
    lines = _stage(con, [ORDERS_GBK, ITEMS])
    assert len(lines) == 27  # one line per row of the 宝贝报表
    assert {line["_file"] for line in lines} == {str(ITEMS)}
    assert [line["_row"] for line in lines] == list(range(1, 28))
    orders = _by_order(lines)
    assert len(orders) == 15
    first = orders["3712345678901234501"]
    assert [line["sku"] for line in first] == ["TEA-LJ-250", "CUP-CEL-01"]  # 外部系统编号
    assert [line["quantity"] for line in first] == ["1", "2"]
    assert [line["unit_price"] for line in first] == ["168.00", "59.00"]
    assert {line["customer_id"] for line in first} == {"tb_lixiaoyun"}
    assert first[0]["ordered_at"] == "2024-03-01T10:02:13"  # shop time, no offset
    assert first[0]["paid_at"] == "2024-03-01T10:02:40"
    assert first[0]["product_name"] == "西湖龙井2024新茶明前特级 250g礼盒装"
    assert {line["currency"] for line in first} == {"CNY"}


def test_paid_goods_are_spread_over_items_exactly(con: duckdb.DuckDBPyConnection) -> None:
    orders = _by_order(_stage(con, [ORDERS_GBK, ITEMS]))
    first = orders["3712345678901234501"]
    # Paid 266.00 for 168.00 x1 + 59.00 x2 = 286.00 (a 20.00 shop coupon).
    # 26600 * 16800 / 28600 = 15625.17, 26600 * 11800 / 28600 = 10974.83 -> 15625 + 10974 = 26599;
    # the fen left goes to the larger remainder, the second line.
    assert [line["line_total"] for line in first] == ["156.25", "109.75"]
    assert [line["discount"] for line in first] == ["11.75", "8.25"]
    # Points (集分宝) lower what the buyer paid: 259.50 for 238.00 + 25.00.
    # 25950 * 23800 / 26300 = 23483.27, 25950 * 2500 / 26300 = 2466.73 -> 23483 + 2466 + 1.
    assert [line["line_total"] for line in orders["3712345678901234510"]] == ["234.83", "24.67"]


def test_line_totals_match_the_order_report(con: duckdb.DuckDBPyConnection) -> None:
    report = pd.read_csv(ORDERS_GBK, encoding="gbk", dtype=str, keep_default_na=False)
    report.columns = [c.strip() for c in report.columns]
    orders = _by_order(_stage(con, [ORDERS_GBK, ITEMS]))
    for _, row in report.iterrows():
        lines = orders[_unwrap(row["订单编号"])]
        total = sum(Decimal(str(line["line_total"])) for line in lines)
        refunded = sum(Decimal(str(line["refunded_amount"])) for line in lines)
        paid, postage = Decimal(row["买家实际支付金额"]), Decimal(row["买家应付邮费"])
        expected = paid - postage if paid > 0 else Decimal(row["买家应付货款"])
        assert total == expected, row["订单编号"]
        assert refunded == min(Decimal(row["退款金额"]), expected)
        assert lines[0]["shipping"] == row["买家应付邮费"]
        assert all(line["shipping"] is None for line in lines[1:])
        for line in lines:
            gross = Decimal(str(line["unit_price"])) * int(str(line["quantity"]))
            assert gross - Decimal(str(line["discount"])) == Decimal(str(line["line_total"]))


def test_statuses(con: duckdb.DuckDBPyConnection) -> None:
    orders = _by_order(_stage(con, [ORDERS_GBK, ITEMS]))
    status = {oid[-2:]: {line["status"] for line in lines} for oid, lines in orders.items()}
    expected = {
        "01": "completed",  # 交易成功
        "03": "shipped",  # 卖家已发货，等待买家确认
        "04": "paid",  # 买家已付款，等待卖家发货
        "05": "pending",  # 等待买家付款
        "06": "cancelled",  # 交易关闭, never paid
        "07": "refunded",  # 交易关闭 after payment, 退款金额 238.00
        "08": "partially_refunded",  # 交易成功 with 退款金额 59.00 of 614.00
        "09": "partially_refunded",  # shipped, 89.90 of 201.70 refunded
    }
    for suffix, value in expected.items():
        assert status[suffix] == {value}, suffix


@pytest.mark.parametrize(
    ("status", "paid_at", "refund", "paid", "expected"),
    [
        ("交易成功", "2024-03-01 10:00:00", 0, 10000, "completed"),
        ("交易成功", "2024-03-01 10:00:00", 10000, 10000, "refunded"),
        ("交易成功", "2024-03-01 10:00:00", 100, 10000, "partially_refunded"),
        ("交易关闭", "", 0, 0, "cancelled"),
        ("交易关闭", "2024-03-01 10:00:00", 10000, 10000, "refunded"),
        ("交易关闭", "2024-03-01 10:00:00", 0, 10000, "cancelled"),
        ("等待买家付款", "", 0, 0, "pending"),
        ("买家已付款，等待卖家发货", "2024-03-01 10:00:00", 0, 10000, "paid"),
        ("卖家已发货，等待买家确认", "2024-03-01 10:00:00", 0, 10000, "shipped"),
        ("买家已签收", "2024-03-01 10:00:00", 0, 10000, "completed"),
        ("交易被淘宝关闭", "", 0, 0, "cancelled"),
        ("预售中", "", 0, 0, "预售中"),  # unknown: passed on, validation quarantines it
    ],
)
def test_status_table(status: str, paid_at: str, refund: int, paid: int, expected: str) -> None:
    assert taobao.order_status(status, paid_at, refund, paid) == expected


def test_gbk_and_utf8_bom_stage_identically(con: duckdb.DuckDBPyConnection) -> None:
    columns = "* EXCLUDE (_file)"
    taobao.stage(con, ORDER_LINES, [ORDERS_GBK, ITEMS], "gbk")
    taobao.stage(con, ORDER_LINES, [ORDERS_BOM, ITEMS], "bom")
    gbk = con.execute(f"SELECT {columns} FROM gbk ORDER BY _file_idx, _row").fetchall()
    bom = con.execute(f"SELECT {columns} FROM bom ORDER BY _file_idx, _row").fetchall()
    assert gbk == bom
    assert len(gbk) == 27
    assert ORDERS_GBK.read_bytes()[:3] != b"\xef\xbb\xbf"
    assert ORDERS_BOM.read_bytes()[:3] == b"\xef\xbb\xbf"
    taobao.stage(con, CUSTOMERS, [ORDERS_GBK], "c_gbk")
    taobao.stage(con, CUSTOMERS, [ORDERS_BOM], "c_bom")
    assert (
        con.execute("SELECT * EXCLUDE (_file) FROM c_gbk ORDER BY _row").fetchall()
        == con.execute("SELECT * EXCLUDE (_file) FROM c_bom ORDER BY _row").fetchall()
    )


def test_wrapped_values_are_unwrapped_and_ids_kept_as_text(
    con: duckdb.DuckDBPyConnection,
) -> None:
    assert b'="3712345678901234501"' in ORDERS_GBK.read_bytes()
    lines = _stage(con, [ITEMS, ORDERS_GBK])  # any order of files
    ids = {str(line["order_id"]) for line in lines}
    assert "3712345678901234501" in ids
    assert all(i.isdigit() and len(i) == 19 for i in ids)
    assert {line["customer_id"] for line in lines} >= {"0571茶友", "茶香满屋88"}
    assert taobao.clean('="0012"') == "0012"
    assert taobao.clean(" 13812345678\t") == "13812345678"


def test_sku_falls_back_to_merchant_code_then_title(con: duckdb.DuckDBPyConnection) -> None:
    orders = _by_order(_stage(con, [ORDERS_GBK, ITEMS]))
    skus = [line["sku"] for line in orders["3712345678901234515"]]
    assert skus == ["CUP-CEL-01", "GIFT-BOX-M", "新客试饮装 龙井5g 体验装"]


def test_order_report_alone_gives_one_line_per_order(con: duckdb.DuckDBPyConnection) -> None:
    lines = _stage(con, [ORDERS_BOM])
    assert len(lines) == 15
    assert {line["_file"] for line in lines} == {str(ORDERS_BOM)}
    first = _by_order(lines)["3712345678901234503"][0]
    assert first["quantity"] == "4"  # 宝贝总数量
    assert first["sku"] == (  # 宝贝标题: the titles joined
        "西湖龙井2024新茶明前特级 250g礼盒装，"
        "福建茉莉龙珠 100g罐装 浓香型，"
        "龙泉青瓷品茗杯 手工单只装"
    )
    assert first["line_total"] == "376.80"  # 实付 376.80 − 邮费 0.00
    assert first["unit_price"] is None
    assert first["status"] == "shipped"


def test_customers_from_the_order_report(con: duckdb.DuckDBPyConnection) -> None:
    rows = _stage(con, [ORDERS_GBK, ITEMS], CUSTOMERS)
    by_id = {r["customer_id"]: r for r in rows}
    assert len(rows) == 10  # 15 orders by 10 buyers
    lin = by_id["tb_lixiaoyun"]
    assert (lin["name"], lin["province"], lin["city"]) == ("李晓云", "浙江省", "杭州市")
    assert lin["country"] == "CN"
    assert lin["phone"] == "13812345678"  # written '13812345678 in the export
    assert by_id["茶香满屋88"]["phone"] == "13900001111"  # written ="13900001111"
    assert lin["_file"] == str(ORDERS_GBK)


def test_missing_headers_name_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "orders.csv", "订单编号,买家会员名,订单状态\n=\"1\",tb_a,交易成功\n")
    with pytest.raises(ImportFileError) as err:
        taobao.stage(duckdb.connect(), ORDER_LINES, [path], "staged")
    assert str(path) in err.value.message
    assert "订单创建时间" in err.value.message
    assert "买家实际支付金额" in err.value.message


def test_files_that_are_not_taobao_reports_are_refused(tmp_path: Path) -> None:
    other = _write(tmp_path / "other.csv", "Name,Email\n#1,a@example.com\n", "utf-8")
    with pytest.raises(ImportFileError, match=r"other\.csv.*订单报表"):
        taobao.stage(duckdb.connect(), ORDER_LINES, [other], "staged")
    with pytest.raises(ImportFileError, match="no 订单报表"):
        taobao.stage(duckdb.connect(), ORDER_LINES, [ITEMS], "staged")
    with pytest.raises(ImportFileError, match="events"):
        taobao.stage(duckdb.connect(), EVENTS, [ORDERS_GBK], "staged")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81\x30")
    with pytest.raises(ImportFileError, match="not a text file"):
        taobao.stage(duckdb.connect(), ORDER_LINES, [binary], "staged")


def test_plain_utf8_and_spreadsheet_dates(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    orders = _write(
        tmp_path / "orders.csv",
        ORDER_HEADER
        + '\n="0001",00buyer,100.00,10.00,110.00,110.00,交易成功,张三,'
        "广东省 深圳市 南山区 科技园(518057),13500000000,2024/3/5 9:07,2024/3/5 9:08,"
        "绿茶,3,0.00\n",
        "utf-8",
    )
    items = _write(
        tmp_path / "items.csv",
        ITEM_HEADER
        + '\n="0001",绿茶,40.00,2,GT-1,,,,交易成功,\n="0001",杯子,25.00,1,,,,,交易成功,CUP-9\n',
        "utf-8",
    )
    lines = _stage(con, [orders, items])
    assert [line["order_id"] for line in lines] == ["0001", "0001"]
    assert {line["customer_id"] for line in lines} == {"00buyer"}
    assert lines[0]["ordered_at"] == "2024-03-05T09:07:00"
    assert [line["sku"] for line in lines] == ["GT-1", "CUP-9"]
    # Goods paid 110.00 − 10.00 = 100.00 over 80.00 and 25.00:
    # 10000 * 8000 / 10500 = 7619.05, 10000 * 2500 / 10500 = 2380.95 -> 7619 + 2380 + 1 (second).
    assert [line["line_total"] for line in lines] == ["76.19", "23.81"]
    assert [line["discount"] for line in lines] == ["3.81", "1.19"]


def test_unreadable_values_and_orphan_items_reach_validation(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    orders = _write(
        tmp_path / "orders.csv",
        ORDER_HEADER
        + '\n="1",buyer1,50.00,0.00,50.00,五十,交易成功,甲,,,2024-03-01 10:00:00,'
        "2024-03-01 10:01:00,茶,1,0.00\n"
        '="2",buyer2,50.00,0.00,50.00,50.00,交易成功,乙,,,2024-03-02 10:00:00,'
        "2024-03-02 10:01:00,茶,1,0.00\n",
    )
    items = _write(
        tmp_path / "items.csv",
        ITEM_HEADER
        + '\n="1",茶,50.00,1,T-1,,,,交易成功,\n="2",茶,50.00,-1,T-1,,,,交易成功,\n'
        '="9",茶,50.00,1,T-1,,,,交易成功,\n',
    )
    lines = _by_order(_stage(con, [orders, items]))
    assert lines["1"][0]["line_total"] == "五十"  # 买家实际支付金额 as written
    assert lines["2"][0]["quantity"] == "-1"
    orphan = lines["9"][0]
    assert (orphan["customer_id"], orphan["ordered_at"]) == (None, None)
    assert orphan["line_total"] == "50.00"
