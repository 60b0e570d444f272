"""Issue 13: every whole-file import error has a code and words in both languages, names the file
as the client named it (with the row where there is one) and leaves the warehouse untouched; a
UTF-8 byte-order mark, a stray one in the header, and a file with only its header import fine."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from growthwheel.config import Settings
from growthwheel.errors import ImportFileError
from growthwheel.warehouse.ingest import import_files
from growthwheel.web.i18n import translator
from import_file_cases import BAD_FILES, BOM, BadFile


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A warehouse holding two customers from one good import."""
    folder = tmp_path_factory.mktemp("file_errors")
    cfg = Settings(data_dir=folder / "data")
    good = folder / "good.csv"
    good.write_text("customer_id,name\ng1,Ann\ng2,Bo\n", encoding="utf-8")
    import_files("customers", [good], cfg=cfg)
    return cfg


def _state(cfg: Settings) -> tuple[int, int, int]:
    con = duckdb.connect(str(cfg.warehouse_path), read_only=True)
    try:
        found = con.execute("SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM _imports), "
                            "(SELECT count(*) FROM _quarantine)").fetchone()
    finally:
        con.close()
    assert found is not None
    return int(found[0]), int(found[1]), int(found[2])


@pytest.mark.parametrize("bad", BAD_FILES, ids=[b.id for b in BAD_FILES])
def test_a_bad_file_is_refused_in_both_languages_naming_it_as_uploaded(
    cfg: Settings, tmp_path: Path, bad: BadFile
) -> None:
    stored = tmp_path / f"upload-1{Path(bad.name).suffix}"  # the server's copy has its own name
    stored.write_bytes(bad.content)
    before = _state(cfg)
    with pytest.raises(ImportFileError) as caught:
        import_files(bad.table, [stored], bad.fmt, cfg=cfg, names=[bad.name])
    exc = caught.value
    assert exc.code == bad.code
    assert exc.status == 422
    assert exc.message.startswith(f"{bad.name}: "), exc.message
    assert str(tmp_path) not in exc.message
    zh, en = exc.text(translator("zh")), exc.text(translator("en"))
    assert f"“{bad.name}”" in zh, zh
    assert bad.zh in zh, zh
    assert f'"{bad.name}"' in en, en
    assert bad.en in en, en
    assert "{" not in zh + en  # every placeholder filled
    assert getattr(exc, "row", None) == bad.row
    assert _state(cfg) == before  # nothing half-written


def test_the_same_errors_without_names_name_the_file_itself(cfg: Settings, tmp_path: Path) -> None:
    """As the CLI imports: the file's own name in the words, its path in the English line."""
    gbk = next(b for b in BAD_FILES if b.id == "gbk")
    path = tmp_path / "shop-export.csv"
    path.write_bytes(gbk.content)
    with pytest.raises(ImportFileError) as caught:
        import_files("customers", [path], cfg=cfg)
    assert caught.value.message.startswith(f"{path}: not UTF-8 text (first at row 1)")
    assert "“shop-export.csv”不是 UTF-8 编码" in caught.value.text(translator("zh"))


def test_byte_order_marks_are_stripped_and_a_header_only_file_is_noted(
    cfg: Settings, tmp_path: Path
) -> None:
    customers, imports, _ = _state(cfg)
    bom = tmp_path / "bom.csv"
    bom.write_bytes(BOM + "customer_id,name\nb1,王芳\n".encode())
    twice = tmp_path / "twice.csv"  # saved twice by a tool that adds a BOM each time
    twice.write_bytes(BOM + BOM + "Customer_ID,name\nb2,李雷\n".encode())
    stray = tmp_path / "stray.csv"  # a BOM inside a value (a row pasted from another file)
    stray.write_bytes("customer_id,name\n\ufeffb3,韩梅梅\n".encode())
    header_only = tmp_path / "header.csv"
    header_only.write_bytes(b"customer_id,name\r\n")
    result = import_files("customers", [bom, twice, stray, header_only], cfg=cfg)
    assert (result.rows_read, result.rows_quarantined) == (3, 0)
    assert result.ignored_columns == {}
    assert result.header_only == [str(header_only)]
    con = duckdb.connect(str(cfg.warehouse_path), read_only=True)
    try:
        stored = dict(con.execute("SELECT customer_id, name FROM customers WHERE customer_id LIKE '%b%' "
                                  "ORDER BY 1").fetchall())
    finally:
        con.close()
    assert stored == {"b1": "王芳", "b2": "李雷", "b3": "韩梅梅"}
    assert _state(cfg)[:2] == (customers + 3, imports + 1)
