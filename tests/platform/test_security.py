"""Security of the whole app as assembled by ``create_app``: every route refuses an anonymous
request, forms need their CSRF token, analysts never see personal data, hostile search input is
inert, and a fuzz run of the OpenAPI schema finds no server error."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.warehouse.ingest import import_files

#: Routes open to anyone: the login page and form, liveness, the API docs and static files.
PUBLIC = {
    ("GET", "/login"), ("POST", "/login"), ("GET", "/api/v1/health"),
    ("GET", "/api/docs"), ("GET", "/api/redoc"), ("GET", "/api/openapi.json"),
    # A message's unsubscribe and click links: no login, the signed token is the credential
    # (forged tokens are refused in tests/journeys).
    ("GET", "/m/u/{token}"), ("POST", "/m/u/{token}"), ("GET", "/m/c/{token}"), ("GET", "/m/o/{token}"),
    # Providers' delivery / bounce callbacks: HMAC-signed with channels.json's status_secret.
    ("POST", "/m/status"),
    # A survey link's answer page: no login, the signed token is the credential (tests/surveys).
    ("GET", "/s/{token}"), ("POST", "/s/{token}"),
}
#: Loopback hand-off for other local processes; refused without the server.json token (tested below).
INTERNAL = re.compile(r"^/api/v1/internal/")

CUSTOMERS = (
    "customer_id,email,phone,name\n"
    "c-alice,alice.secret@example.com,13800138000,Alice\n"
    "c-bob,bob.hidden@example.org,+86 139-1234-5678,Bob\n"
)
LINES = (
    "order_id,customer_id,ordered_at,sku,quantity,line_total\n"
    "o1,c-alice,2025-03-01,S1,1,10.00\n"
    "o2,c-bob,2025-03-02,S1,2,20.00\n"
)


def walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every (method, path) the app serves, through included routers at any depth."""
    for route in routes:
        if hasattr(route, "original_router"):
            yield from walk(route.original_router.routes, prefix + route.include_context.prefix)
        elif hasattr(route, "methods") and route.methods:
            for method in sorted(route.methods - {"HEAD"}):
                yield method, prefix + route.path


@pytest.fixture
def client(store_cfg: Settings, tmp_path: Path) -> Iterator[TestClient]:
    (tmp_path / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (tmp_path / "lines.csv").write_text(LINES, encoding="utf-8")
    import_files("customers", [tmp_path / "customers.csv"], cfg=store_cfg)
    import_files("order_lines", [tmp_path / "lines.csv"], cfg=store_cfg)
    with TestClient(create_app(store_cfg)) as test_client:
        yield test_client


def test_every_route_refuses_anonymous_requests(client: TestClient) -> None:
    routes = sorted(set(walk(client.app.routes)))  # type: ignore[attr-defined]
    assert len(routes) >= 15  # the walk sees the whole app, not a corner of it
    checked = 0
    for method, path in routes:
        if (method, path) in PUBLIC:
            continue
        url = re.sub(r"\{[^}]+\}", "x", path)
        response = client.request(method, url, follow_redirects=False)
        if path.startswith("/api/"):
            expected = {401, 403} if INTERNAL.match(path) else {401}
            assert response.status_code in expected, (method, path, response.status_code)
            assert response.headers["content-type"].startswith("application/problem+json")
        elif method == "GET":
            assert response.status_code == 303, (method, path, response.status_code)
            assert response.headers["location"].startswith("/login")
        else:  # console form posts: no session, no CSRF token
            assert response.status_code in {401, 403, 303}, (method, path, response.status_code)
        checked += 1
    assert checked >= 12


def test_public_routes_answer(client: TestClient) -> None:
    assert client.get("/api/v1/health").json()["status"] == "ok"
    assert client.get("/login").status_code == 200
    assert client.get("/api/openapi.json").json()["info"]["title"] == "Growthwheel"
    assert client.get("/static/vendor/echarts.min.js").status_code == 200


def test_forms_refuse_a_missing_or_forged_csrf_token(
    client: TestClient, make_user: Callable[..., Any], log_in: Callable[..., Any]
) -> None:
    admin = make_user("admin")
    no_token = client.post("/login", data={"email": admin.email, "password": admin.password},
                           follow_redirects=False)
    assert no_token.status_code == 403
    forged = client.post("/login", data={"email": admin.email, "password": admin.password,
                                         "csrf_token": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    log_in(client, admin.email, admin.password)
    # Logged in, a form post without the token is still refused and the session survives it.
    assert client.post("/logout", follow_redirects=False).status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200


def test_analyst_never_sees_an_unmasked_phone_or_email(
    client: TestClient, make_user: Callable[..., Any], log_in: Callable[..., Any]
) -> None:
    analyst = make_user("analyst")
    log_in(client, analyst.email, analyst.password)
    secrets = ("alice.secret@example.com", "bob.hidden@example.org", "13800138000", "139-1234-5678")
    pages = [
        client.get("/customers"),
        client.get("/customers/c-alice"),
        client.get("/customers/c-bob"),
        client.get("/customers", params={"q": "alice"}),
        client.get("/api/v1/customers"),
        client.get("/api/v1/customers/c-alice"),
        client.get("/api/v1/customers", params={"q": "secret"}),
    ]
    for response in pages:
        assert response.status_code == 200, response.url
        for secret in secrets:
            assert secret not in response.text, (response.url, secret)
    assert "Alice" in pages[1].text  # the profile itself is shown, only masked


def test_hostile_search_input_is_inert(
    client: TestClient, make_user: Callable[..., Any], log_in: Callable[..., Any]
) -> None:
    admin = make_user("admin")
    log_in(client, admin.email, admin.password)
    for probe in ("' OR 1=1 --", "<script>alert(1)</script>", "\"; DROP TABLE customers; --",
                  "%' UNION SELECT email FROM customers --", "<img src=x onerror=alert(1)>"):
        api = client.get("/api/v1/customers", params={"q": probe})
        assert api.status_code == 200
        assert api.json()["items"] == []  # matched literally: nobody is called that
        page = client.get("/customers", params={"q": probe})
        assert page.status_code == 200
        assert "<script>alert(1)</script>" not in page.text
        assert "<img src=x onerror" not in page.text
    # The tables are intact afterwards.
    assert len(client.get("/api/v1/customers").json()["items"]) == 2


def _fuzz(client: TestClient, operation: Any, key: str, failures: list[str]) -> None:
    """Up to 25 generated requests for one operation; server errors are collected."""

    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        response = client.request(
            case.method, case.formatted_path, params=case.query,
            json=case.body if isinstance(case.body, dict | list) else None,
            headers={"Authorization": f"Bearer {key}"},
        )
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} {case.query}: {response.status_code}")

    run()


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_openapi_fuzz_finds_no_server_error(
    client: TestClient, make_api_key: Callable[..., str]
) -> None:
    key = make_api_key("read", "write", "ingest")
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", client.app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:
        _fuzz(client, operation, key, failures)
    assert failures == []


def test_console_upload_is_size_limited_like_the_api(
    client: TestClient, make_user: Callable[..., Any], log_in: Callable[..., Any]
) -> None:
    admin = make_user("admin")
    log_in(client, admin.email, admin.password)
    client.app.state.max_upload_bytes = 1000  # type: ignore[attr-defined]
    page = client.get("/imports")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    big = ("order_id,customer_id,ordered_at,sku,quantity,line_total\n" + "o9,c9,2025-01-01,S,1,1.00\n" * 200)
    response = client.post("/imports", data={"csrf_token": token.group(1), "table": "order_lines",
                                             "format": "generic"},
                           files={"files": ("big.csv", big.encode(), "text/csv")}, follow_redirects=False)
    assert response.status_code == 413
    uploads = client.app.state.cfg.data_dir / "uploads"  # type: ignore[attr-defined]
    assert not uploads.exists() or not any(uploads.rglob("big.csv"))  # nothing kept
    small = client.post("/imports", data={"csrf_token": token.group(1), "table": "order_lines",
                                           "format": "generic"},
                        files={"files": ("small.csv", LINES.encode(), "text/csv")}, follow_redirects=False)
    assert small.status_code == 303  # to the job's progress page
