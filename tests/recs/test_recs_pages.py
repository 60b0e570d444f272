"""The product block of a customer's profile page, in Chinese and English, from the stored lists;
the recommendation catalogues hold the same keys in both languages."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.recs import service
from growthwheel.store import db
from growthwheel.warehouse import connect

from .test_serving import NOW, _warehouse

I18N = Path(__file__).resolve().parents[2] / "src" / "growthwheel" / "web" / "i18n"


@pytest.fixture
def page(tmp_path: Path) -> Iterator[tuple[TestClient, Settings, dict[str, Any]]]:
    cfg = _warehouse(tmp_path)
    db.migrate(cfg)
    backend = connect(cfg)
    try:
        built = service.build(backend, evaluate=False, weights={"replenish": 1.0, "popularity": 0.1})
    finally:
        backend.disconnect()
    app = create_app(cfg)
    with TestClient(app) as test_client:
        yield test_client, cfg, built
    db.engine(cfg).dispose()


def test_profile_shows_the_block_in_both_languages(
        page: tuple[TestClient, Settings, dict[str, Any]], log_in: Callable[..., Any]) -> None:
    from growthwheel.accounts import service as accounts

    client, cfg, built = page
    with db.session_scope(cfg) as session:
        accounts.create_user(session, "analyst@example.com", "analyst", "pw-analyst-0123456789")
    log_in(client, "analyst@example.com", "pw-analyst-0123456789")
    before = client.get("/customers/c2", headers={"Accept-Language": "zh-CN"})
    assert before.status_code == 200
    assert "尚未计算推荐" in before.text  # nothing stored yet: said so, no error
    with db.session_scope(cfg) as session:
        service.save(session, built, NOW)
    zh = client.get("/customers/c2", headers={"Accept-Language": "zh-CN"})
    assert 'data-testid="recommended-products"' in zh.text
    assert "推荐商品" in zh.text
    assert "挂耳咖啡" in zh.text  # the overdue coffee, by name
    assert "到了回购周期" in zh.text
    en = client.get("/customers/c2", headers={"Accept-Language": "en"})
    assert "Recommended products" in en.text
    assert "Due again (consumption cycle)" in en.text
    new = client.get("/customers/c4", headers={"Accept-Language": "en"})
    assert new.status_code == 200
    assert 'data-testid="recommended-products"' in new.text


def test_catalogues_hold_the_same_keys() -> None:
    en = json.loads((I18N / "en" / "recs.json").read_text(encoding="utf-8"))
    zh = json.loads((I18N / "zh" / "recs.json").read_text(encoding="utf-8"))
    assert set(en) == set(zh)
    assert all(zh.values())
