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


def _refuse() -> None:
    from growthwheel.errors import InvalidArgumentError

    raise InvalidArgumentError("variant 'holdout': n must be at least 2 (got 1)")


@pytest.mark.parametrize(("language", "title"), [("en", "This page could not be shown"),
                                                  ("zh-CN", "无法显示此页面")])
def test_a_console_page_refused_by_the_domain_is_an_html_page_for_a_browser(
    client: TestClient, language: str, title: str
) -> None:
    """A domain error raised while a browser opens a console page is a page in the reader's
    language naming the status and the reason (not raw JSON, which also made Chromium ask for a
    favicon that is not there); a script asking for JSON still gets problem+json."""
    if not any(getattr(r, "path", "") == "/probe-refused" for r in client.app.routes):
        client.app.add_api_route("/probe-refused", _refuse)  # type: ignore[attr-defined]
    client.cookies.clear()  # an earlier test remembered a language
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Language": language}
    page = client.get("/probe-refused", headers=browser)
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert f"<h1>{title}</h1>" in page.text
    assert 'data-code="invalid_argument"' in page.text
    assert "n must be at least 2 (got 1)" in page.text
    script = client.get("/probe-refused", headers={"Accept": "application/json"})
    assert script.status_code == 422
    assert script.headers["content-type"] == "application/problem+json"
