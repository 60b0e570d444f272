"""Fixtures of the segment tests: the tea shop (``tea_shop.py``) in a data directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tea_shop import build

from growthwheel.config import Settings


@pytest.fixture(scope="session")
def tea_shop_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding the tea shop (built once; copy it before writing)."""
    root = tmp_path_factory.mktemp("tea-shop")
    return build(root / "data", root).data_dir


@pytest.fixture
def tea_shop(tea_shop_template: Path, tmp_path: Path) -> Settings:
    """Settings of a private copy of the tea shop (warehouse and an empty operational store)."""
    data = tmp_path / "data"
    shutil.copytree(tea_shop_template, data)
    return Settings(data_dir=data, database_url=None)
