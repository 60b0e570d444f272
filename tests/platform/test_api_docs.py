"""The API docs (Swagger UI at /api/docs, ReDoc at /api/redoc) load nothing from the internet:
every script, style sheet and icon they reference is on this server, and each one is served."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from growthwheel.api.app import STATIC, create_app
from growthwheel.config import Settings

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
URL_IN_SCRIPT = re.compile(r"""(?:url|spec-url)\s*[:=]\s*["']([^"']+)["']""")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=None))) as test_client:
        yield test_client


@pytest.mark.parametrize(("page", "marker"), [("/api/docs", "SwaggerUIBundle"),
                                              ("/api/redoc", "<redoc")])
def test_docs_pages_reference_only_local_assets_and_they_are_served(
    client: TestClient, page: str, marker: str
) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert marker in html
    assert "cdn" not in html.lower()
    assert "fonts.googleapis" not in html
    assets = ASSET.findall(html)
    assert assets, "the page references its scripts and styles"
    for url in [*assets, *URL_IN_SCRIPT.findall(html)]:
        assert url.startswith("/"), f"{page} references {url}"
        assert not url.startswith("//"), f"{page} references {url}"
        served = client.get(url)
        assert served.status_code == 200, url
        if url.startswith("/static/"):
            on_disk = STATIC / url.removeprefix("/static/")
            assert served.content == on_disk.read_bytes(), url
    assert "/api/openapi.json" in html
    assert client.get("/api/openapi.json").json()["paths"], "the docs have operations to show"


def test_vendored_assets_are_the_documented_versions() -> None:
    vendor = STATIC / "vendor"
    readme = (vendor / "README.md").read_text(encoding="utf-8")
    assert "swagger-ui-dist@5.35.0" in readme
    assert "redoc@2.5.2" in readme
    assert 'PACKAGE_VERSION:"5.35.0"' in (vendor / "swagger-ui" / "swagger-ui-bundle.js").read_text(
        encoding="utf-8")
    assert 'ReDoc Version: ","2.5.2"' in (vendor / "redoc" / "redoc.standalone.js").read_text(
        encoding="utf-8")
    for licence in ("swagger-ui/LICENSE", "swagger-ui/NOTICE", "redoc/LICENSE"):
        assert (vendor / licence).stat().st_size > 0
