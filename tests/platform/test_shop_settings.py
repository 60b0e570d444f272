"""The shop's settings (``shop.json``): read once, and again whenever the file changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from growthwheel.config import Settings
from growthwheel.errors import ConfigError


def test_shop_settings_are_read_again_when_the_file_changes(tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path, database_url=None)
    assert cfg.shop().timezone == "Asia/Shanghai"  # no file: the defaults
    cfg.save_shop(cfg.shop().model_copy(update={"timezone": "Europe/Berlin"}))
    assert cfg.shop().timezone == "Europe/Berlin"
    answer = cfg.shop()
    answer.currency = "XXX"  # a caller changing its copy changes nobody else's
    assert cfg.shop().currency != "XXX"
    (tmp_path / "shop.json").write_text(json.dumps({"timezone": "Asia/Tokyo", "currency": "JPY"}),
                                        encoding="utf-8")
    assert (cfg.shop().timezone, cfg.shop().currency) == ("Asia/Tokyo", "JPY")
    (tmp_path / "shop.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        cfg.shop()
    (tmp_path / "shop.json").unlink()
    assert cfg.shop().timezone == "Asia/Shanghai"
    assert Settings(data_dir=tmp_path, database_url=None, shop_timezone="UTC").shop().timezone == "UTC"
