"""An unknown console address answers an HTML page in the reader's language with a way back;
the API keeps answering problem+json."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.store import db


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app on a migrated SQLite store (the page does not read the store)."""
    cfg = Settings(data_dir=tmp_path_factory.mktemp("not-found"), database_url=None)
    db.migrate(cfg)
    with TestClient(create_app(cfg)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("language", "title", "home"),
    [("en-GB,en;q=0.9", "Page not found", "Back to the overview"),
     ("zh-CN,zh;q=0.9", "页面不存在", "返回概览")],
)
def test_unknown_console_url_is_an_html_page_in_the_readers_language(
    client: TestClient, language: str, title: str, home: str
) -> None:
    response = client.get("/promotionz/42?x=1", headers={"Accept-Language": language})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert f"<h1>{title}</h1>" in page
    assert f'href="/" data-testid="not-found-home">{home}</a>' in page
    assert "<code>/promotionz/42</code>" in page
    assert '"detail"' not in page  # no raw JSON
    # The language switch works on this page too, and is remembered.
    switched = client.get("/promotionz/42?lang=zh", headers={"Accept-Language": "en"})
    assert "页面不存在" in switched.text
    assert switched.cookies.get("gw_lang") or "lang" in switched.headers.get("set-cookie", "")


def test_a_script_in_the_address_is_shown_as_text(client: TestClient) -> None:
    response = client.get("/%3Cscript%3Ealert(1)%3C/script%3E")
    assert response.status_code == 404
    assert "<script>alert(1)" not in response.text
    assert "&lt;script&gt;alert(1)" in response.text


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api", "/static/nothing.js"])
def test_api_and_static_addresses_keep_problem_json(client: TestClient, path: str) -> None:
    response = client.get(path, headers={"Accept-Language": "zh-CN"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"
