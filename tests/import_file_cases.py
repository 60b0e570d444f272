"""Bad import files, one of each kind people upload, with what the reader must be told.

Shared by the ingest, API / console and CLI tests of issue 13 (import file errors in the reader's
language, the file named as uploaded, the row where there is one)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

BOM = b"\xef\xbb\xbf"
GBK_CUSTOMERS = "customer_id,name\nc1,张三\n".encode("gbk")


@dataclass(frozen=True)
class BadFile:
    """One bad file: its name as uploaded, its bytes, the import's format and table, the error's
    code, words the English and the Chinese text must hold, and the data row it names (if any)."""

    id: str
    name: str
    content: bytes
    code: str
    en: str
    zh: str
    row: int | None = None
    fmt: str = "generic"
    table: str = "customers"


def _parquet_then_cut() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"customer_id": ["c1", "c2"]}), buffer)
    return buffer.getvalue()[:-20]  # a damaged Parquet file: its footer cut off


BAD_FILES = [
    BadFile("empty", "空文件.csv", b"", "file_empty", "is empty", "是空文件"),
    BadFile("blank_lines", "blank.csv", b"\n  \r\n\n", "file_empty", "is empty", "是空文件"),
    BadFile("bom_only", "bom-only.csv", BOM + b"\n", "file_empty", "is empty", "是空文件"),
    BadFile("xlsx_renamed_csv", "报表.csv", b"PK\x03\x04" + bytes(60), "file_not_text",
            "Excel .xlsx workbook", "Excel .xlsx 工作簿"),
    BadFile("binary_junk", "junk.csv", b"customer_id\n\x00\x17\x88\x00\xff", "file_not_text",
            "binary data", "二进制数据"),
    BadFile("gbk", "店铺导出.csv", GBK_CUSTOMERS, "file_not_utf8", "GBK/GB18030",
            "iconv -f GB18030 -t UTF-8", row=1),
    BadFile("not_utf8_latin1", "latin.csv", "customer_id,name\nc1,Zoë\n".encode("latin-1"),
            "file_not_utf8", "is not UTF-8 text (first at line 2)", "不是 UTF-8 编码的文本（第 2 行起）",
            row=1),
    BadFile("bom_that_lies", "bom-gbk.csv", BOM + GBK_CUSTOMERS, "file_not_utf8",
            "byte-order mark but is not UTF-8", "字节顺序标记（BOM）开头，内容却不是 UTF-8", row=1),
    BadFile("utf16", "unicode.csv", "customer_id,name\nc1,Ann\n".encode("utf-16"), "file_not_utf8",
            "UTF-16", "UTF-16 编码"),
    BadFile("malformed_jsonl", "客户.jsonl",
            b'{"customer_id": "c1"}\n{"customer_id": "c2",,}\n{"customer_id": "c3"}\n',
            "file_unreadable", "at line 2", "第 2 行", row=2),
    BadFile("damaged_parquet", "客户.parquet", _parquet_then_cut(), "file_unreadable",
            "cannot be read as Parquet", "无法按 Parquet 读取"),
    BadFile("missing_columns", "客户名单.csv", "邮箱,name\na@b.c,X\n".encode(), "missing_columns",
            "lacks the column(s) this table needs: customer_id", "缺少这张表必需的列：customer_id"),
    BadFile("not_a_taobao_export", "orders.csv", b"order_id,total\n1,2\n", "file_format",
            "neither a Taobao", "既不是淘宝订单报表", fmt="taobao", table="order_lines"),
]
