"""The .xlsx export (kit/export.py): read back with openpyxl, formula-like text is stored as the
same defused string the CSV writer writes (never as a formula), numbers stay numbers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

from openpyxl import load_workbook

from growthwheel.kit import export

HEADER = ["customer_id", "name", "orders", "amount", "when", "day", "flag"]
ROWS = [
    ["=HYPERLINK(\"http://x\",\"y\")", "+cmd|' /C calc'!A0", 3, Decimal("12.50"),
     datetime(2025, 3, 1, 9, 30, tzinfo=UTC), date(2025, 3, 1), True],
    ["c-2", "-12.50", 0, 1.25, None, None, False],
    ["@SUM(A1)", "王小明\x01", -4, Decimal(7), None, None, None],
    ["\uff1dcmd", "plain", 10**12, None, None, None, None],
]


def _sheet(data: bytes) -> list[list[object]]:
    book = load_workbook(io.BytesIO(data))
    ws = book.worksheets[0]
    return [[c.value for c in row] for row in ws.iter_rows()]


def test_xlsx_cells_match_the_csv_writer_and_hold_no_formula() -> None:
    data = export.xlsx_bytes(HEADER, ROWS, sheet="customers: RFM")
    sheet = _sheet(data)
    assert sheet[0] == HEADER
    text = "".join(export.csv_chunks(HEADER, ROWS))
    csv_rows = list(csv.reader(io.StringIO(text)))
    for got, written in zip(sheet[1:], csv_rows[1:], strict=True):
        for value, csv_text in zip(got, written, strict=True):
            if isinstance(value, int | float) and not isinstance(value, bool):
                assert Decimal(str(value)) == Decimal(csv_text)  # numbers stay numbers
            elif value is None:
                assert csv_text == ""
            else:
                assert isinstance(value, str)
                assert export.is_defused(value)
                assert value == csv_text.replace("\x01", "")
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["customers  RFM"]
    ws = book.worksheets[0]
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
    assert sheet[1][0] == "'=HYPERLINK(\"http://x\",\"y\")"
    assert sheet[1][4] == "2025-03-01 09:30:00+00:00"
    assert sheet[2][1] == "-12.50"  # a signed number written as text stays as written
    assert sheet[1][3] == 12.5
    assert sheet[3][3] == 7


def test_write_xlsx_to_a_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = export.write_xlsx(tmp_path / "out.xlsx", ["a"], [[1], ["=1+1"]])
    assert _sheet(path.read_bytes()) == [["a"], [1], ["'=1+1"]]
