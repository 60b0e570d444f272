"""Ad platform report exports → ad_spend, through the real import (validation, quarantine, merge)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from growthwheel.config import Settings
from growthwheel.errors import ImportFileError, InvalidArgumentError
from growthwheel.marketing import service
from growthwheel.marketing.spend import iso_date, plain_number, translate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "marketing"


def _spend(cfg: Settings) -> list[tuple[str, str, str, int, int | None, int | None]]:
    con = duckdb.connect(str(cfg.warehouse_path), read_only=True)
    try:
        return [(str(d), c, k, s, i, cl) for d, c, k, s, i, cl in con.execute(
            "SELECT date, channel, utm_campaign, spend, impressions, clicks FROM ad_spend "
            "ORDER BY date, channel, utm_campaign").fetchall()]
    finally:
        con.close()


def test_google_ads_report_sums_segments_and_skips_totals(tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path, shop_currency="USD")
    result = service.import_spend("google_ads", [EXAMPLES / "google_ads_campaign_report.csv"], cfg=cfg)
    assert result.rows_quarantined == 0
    assert _spend(cfg) == [
        ("2024-12-01", "google", "Brand - Search", 11552, 1616, 131),  # two devices added up
        ("2024-12-01", "google", "PMax - Bestsellers", 121055, 48932, 702),
        ("2024-12-02", "google", "Brand - Search", 9003, 1311, 104),
        ("2024-12-02", "google", "PMax - Bestsellers", 118720, 47015, 688),
        ("2024-12-03", "google", "Brand - Search", 0, 0, 0),  # "--" is zero
        ("2024-12-03", "google", "PMax - Bestsellers", 130290, 51870, 741),
    ]
    again = service.import_spend("google_ads", [EXAMPLES / "google_ads_campaign_report.csv"], cfg=cfg)
    assert again.tables["ad_spend"].unchanged == 6  # idempotent


def test_meta_export_reads_currency_from_the_header(tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path, shop_currency="USD")
    service.import_spend("meta", [EXAMPLES / "meta_ads_manager_export.csv"], cfg=cfg, channel="Meta")
    rows = _spend(cfg)
    assert rows[0] == ("2024-12-01", "meta", "Winter Sale - Prospecting", 41170, 25510, 388)
    assert sum(r[3] for r in rows) == 41170 + 14418 + 40213 + 15067


def test_meta_export_in_another_currency_is_quarantined(tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path)  # a CNY shop
    result = service.import_spend("meta", [EXAMPLES / "meta_ads_manager_export.csv"], cfg=cfg)
    assert result.rows_quarantined == 4
    assert _spend(cfg) == []


def test_oceanengine_report_in_cny(tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path)
    result = service.import_spend("oceanengine", [EXAMPLES / "oceanengine_daily_report.csv"], cfg=cfg)
    assert result.rows_quarantined == 0
    rows = _spend(cfg)
    assert ("2024-12-01", "douyin", "双11返场-面霜", 351240 + 188010, 182004 + 96410, 4102 + 2215) in rows
    assert sum(r[3] for r in rows) == 1_288_885  # the report's own 总计


def test_bad_amount_is_quarantined_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "g.csv"
    bad.write_text("Campaign report\nDecember 1, 2024\nDay,Campaign,Cost\n"
                   "\"Dec 1, 2024\",A,12.5\n2024/12/2,A,twelve\n", encoding="utf-8")
    cfg = Settings(data_dir=tmp_path / "d")
    result = service.import_spend("google_ads", [bad], cfg=cfg)
    assert result.rows_quarantined == 1
    con = duckdb.connect(str(cfg.warehouse_path), read_only=True)
    q = con.execute("SELECT row_number, column_name, value FROM _quarantine").fetchall()
    con.close()
    assert q == [(5, "spend", "twelve")]  # line 5 of the file, as a person counts
    assert _spend(cfg) == [("2024-12-01", "google", "A", 1250, None, None)]


def test_wrong_file_and_platform_are_refused() -> None:
    with pytest.raises(ImportFileError, match="header"):
        translate("meta", [EXAMPLES / "oceanengine_daily_report.csv"])
    with pytest.raises(InvalidArgumentError, match="platform"):
        translate("tiktok", [EXAMPLES / "oceanengine_daily_report.csv"])


def test_value_translation() -> None:
    assert iso_date("Dec 1, 2024") == "2024-12-01"
    assert iso_date("December 11, 2024") == "2024-12-11"
    assert iso_date("2024/3/5") == "2024-03-05"
    assert iso_date("2024-02-30") == "2024-02-30"  # left as written: validation refuses it
    assert plain_number("¥1,234.50") == "1234.50"
    assert plain_number("--") == "0"
