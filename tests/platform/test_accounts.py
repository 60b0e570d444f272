"""Accounts on SQLite and PostgreSQL: passwords, login and throttling, sessions and CSRF, API keys,
roles, the audit log, masking, and the ``users`` / ``apikeys`` commands."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
import typer
from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, Request
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from growthwheel.accounts import api as accounts_api
from growthwheel.accounts import service
from growthwheel.accounts.cli import apikeys_app, users_app
from growthwheel.accounts.models import ApiKey, AuditEntry, LoginFailure, User, UserSession
from growthwheel.api import deps
from growthwheel.api.app import create_app
from growthwheel.api.deps import Principal
from growthwheel.config import Settings, set_settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.store.db import session_scope

# --------------------------------------------------------------------------------------------
# Pure parts: masking, throttling arithmetic, CSRF tokens
# --------------------------------------------------------------------------------------------


def test_mask_email_keeps_only_the_first_letter_and_the_domain() -> None:
    assert service.mask_email("alice.wang@example.com") == "a***@example.com"
    assert service.mask_email("Z@qq.com") == "Z***@qq.com"
    assert service.mask_email("not-an-address") == "***"
    assert service.mask_email(None) is None


def test_mask_phone_hides_the_middle_digits() -> None:
    assert service.mask_phone("13812345678") == "138****5678"
    assert service.mask_phone("+86 138-1234-5678") == "+86 138-****-5678"
    assert service.mask_phone("4155550123") == "******0123"  # 10 digits: only the last four
    assert service.mask_phone("12345") == "*****"
    assert service.mask_phone(None) is None
    for phone in ("13812345678", "+86 138-1234-5678", "4155550123"):
        assert (service.mask_phone(phone) or "").count("*") >= 4  # never enough left to call the number


def test_throttle_wait_counts_failures_in_the_window() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    window = timedelta(minutes=15)
    failures = [now - timedelta(minutes=m) for m in (14, 10, 6, 3, 1)]  # oldest first
    # five failures, the oldest 14 min ago: allowed again when it is 15 min old → 60 s
    assert service.throttle_wait(failures, 5, window, now) == 60
    assert service.throttle_wait(failures[1:], 5, window, now) == 0
    # six failures, limit five: the two oldest must age out; the second oldest (10 min) → 300 s
    six = [now - timedelta(minutes=12), *failures[1:], now]
    six.sort()
    assert service.throttle_wait(six, 5, window, now) == 5 * 60
    # failures older than the window do not count
    assert service.throttle_wait([now - timedelta(minutes=20)] * 9, 5, window, now) == 0


def test_csrf_tokens_are_bound_to_secret_session_and_age() -> None:
    secret, other = b"s" * 32, b"o" * 32
    now = datetime(2025, 1, 1, tzinfo=UTC)
    token = service.anonymous_csrf_token(secret, now)
    assert service.valid_anonymous_csrf_token(secret, token, now=now + timedelta(hours=1))
    assert not service.valid_anonymous_csrf_token(other, token, now=now)
    assert not service.valid_anonymous_csrf_token(secret, token, now=now + timedelta(hours=13))
    stamp, nonce, mac = token.split(".")
    assert not service.valid_anonymous_csrf_token(secret, f"{int(stamp) + 1}.{nonce}.{mac}", now=now)
    assert service.session_csrf_token(secret, "a") != service.session_csrf_token(secret, "b")
    assert service.session_csrf_token(secret, "a") != service.session_csrf_token(other, "a")


def test_server_secret_is_created_once_private(tmp_path: Any) -> None:
    first = service.server_secret(tmp_path)
    service._secrets.clear()  # as another process would: read from disk
    assert service.server_secret(tmp_path) == first
    assert len(first) == 32
    mode = stat.S_IMODE(os.stat(tmp_path / "secret.key").st_mode)
    assert mode == 0o600


# --------------------------------------------------------------------------------------------
# Users and passwords
# --------------------------------------------------------------------------------------------


def test_password_hashing_and_user_creation(store_cfg: Settings) -> None:
    hashed = service.hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert service.verify_password(hashed, "correct horse battery")
    assert not service.verify_password(hashed, "correct horse batterY")
    assert service.hash_password("correct horse battery") != hashed  # salted
    assert not service.verify_password("not a hash", "x")

    with session_scope(store_cfg) as session:
        user = service.create_user(session, "  Alice@Example.COM ", "operator", "correct horse battery")
        assert user.email == "alice@example.com"
    with session_scope(store_cfg) as session:
        row = session.scalars(sa.select(User)).one()
        assert row.role == "operator"
        assert row.active
        assert row.created_at.tzinfo is not None
        assert service.verify_password(row.password_hash, "correct horse battery")
        with pytest.raises(service.AccountConflictError, match="already exists"):
            service.create_user(session, "ALICE@example.com", "admin", "another password 1")
        with pytest.raises(InvalidArgumentError, match="at least 10"):
            service.create_user(session, "bob@example.com", "admin", "short1234")
        with pytest.raises(InvalidArgumentError, match="unknown role"):
            service.create_user(session, "bob@example.com", "root", "long enough pw")
        with pytest.raises(InvalidArgumentError, match="not an e-mail"):
            service.create_user(session, "bob", "admin", "long enough pw")


def test_login_rehashes_a_password_hashed_with_old_parameters(store_cfg: Settings) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    with session_scope(store_cfg) as session:
        user = service.create_user(session, "old@example.com", "admin", "old parameters pw")
        user.password_hash = weak.hash("old parameters pw")
    with session_scope(store_cfg) as session:
        service.log_in(session, "old@example.com", "old parameters pw", ip="10.0.0.1")
    with session_scope(store_cfg) as session:
        stored = session.scalars(sa.select(User.password_hash)).one()
    assert "m=8192,t=1,p=1" not in stored
    assert not PasswordHasher().check_needs_rehash(stored)
    assert service.verify_password(stored, "old parameters pw")


# --------------------------------------------------------------------------------------------
# The app: login / logout / me and a few probe routes using the dependencies
# --------------------------------------------------------------------------------------------


def _probe_router() -> APIRouter:
    router = APIRouter()

    @router.get("/t/login-page")
    def login_page(request: Request) -> dict[str, str]:
        return {"csrf": deps.csrf_token(request)}

    @router.get("/t/page")
    def page(request: Request, user: Annotated[Principal, Depends(deps.current_user_page)]) -> dict[str, str]:
        return {"user": user.name, "csrf": deps.csrf_token(request)}

    @router.post("/t/page", dependencies=[Depends(deps.check_csrf)])
    def post_page(user: Annotated[Principal, Depends(deps.current_user_page)]) -> dict[str, str]:
        return {"posted_by": user.name}

    @router.post("/t/write")
    def write(who: Annotated[Principal, Depends(deps.require_scope("write"))]) -> dict[str, str]:
        return {"by": who.name}

    @router.get("/t/admin")
    def admin(who: Annotated[Principal, Depends(deps.require_role("admin"))]) -> dict[str, str]:
        return {"by": who.name}

    return router


@pytest.fixture
def app(store_cfg: Settings) -> Any:
    app = create_app(store_cfg, routers=[accounts_api.router, _probe_router()])
    deps.install(app)
    return app


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def _anon_token(client: TestClient) -> str:
    response = client.get("/t/login-page")
    assert response.status_code == 200
    return str(response.json()["csrf"])


def _login(client: TestClient, email: str, password: str, **extra: str) -> Any:
    data = {"email": email, "password": password, "csrf_token": _anon_token(client), **extra}
    return client.post("/login", data=data, follow_redirects=False)


def _audit(cfg: Settings, action: str) -> list[AuditEntry]:
    with session_scope(cfg) as session:
        return list(session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)
                                    .order_by(AuditEntry.id)))


def test_login_sets_a_session_cookie_and_me_answers(
    client: TestClient, store_cfg: Settings, make_user: Callable[..., Any]
) -> None:
    alice = make_user("operator", email="alice@example.com")
    response = _login(client, "ALICE@example.com", alice.password, next="/customers?q=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/customers?q=1"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("gw_session=")
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "path=/" in flags
    assert f"max-age={7 * 24 * 3600}" in flags
    assert "secure" not in flags  # plain http here; see the https test
    token = client.cookies["gw_session"]
    with session_scope(store_cfg) as session:
        stored = session.scalars(sa.select(UserSession)).one()
        assert stored.id == hashlib.sha256(token.encode()).hexdigest()  # only the hash is kept
        assert session.scalars(sa.select(User.last_login_at)).one() is not None

    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json() == {"kind": "user", "id": alice.id, "name": "alice@example.com", "role": "operator",
                         "scopes": ["ingest", "read", "write"], "can_see_pii": True}
    [entry] = _audit(store_cfg, "login.succeeded")
    assert (entry.actor_kind, entry.actor_name, entry.ip) == ("user", "alice@example.com", "testclient")


def test_cookie_is_secure_over_https(app: Any, make_user: Callable[..., Any]) -> None:
    user = make_user("admin")
    with TestClient(app, base_url="https://testserver") as client:
        response = _login(client, user.email, user.password)
        assert response.status_code == 303
        flags = [part.strip().lower() for part in response.headers["set-cookie"].split(";")]
        assert "secure" in flags


def test_open_redirects_are_refused(client: TestClient, make_user: Callable[..., Any]) -> None:
    user = make_user("admin")
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        client.cookies.clear()
        response = _login(client, user.email, user.password, next=evil)
        assert response.headers["location"] == "/"


def test_analyst_sees_no_personal_data(client: TestClient, make_user: Callable[..., Any]) -> None:
    analyst = make_user("analyst")
    _login(client, analyst.email, analyst.password)
    me = client.get("/api/v1/me").json()
    assert me["role"] == "analyst"
    assert me["scopes"] == ["read"]
    assert me["can_see_pii"] is False
    assert client.post("/t/write").status_code == 403  # read only
    assert client.get("/t/admin").json()["code"] == "forbidden"


def test_wrong_password_goes_back_to_the_login_page(
    client: TestClient, store_cfg: Settings, make_user: Callable[..., Any]
) -> None:
    user = make_user("admin")
    response = _login(client, user.email, "wrong password!", next="/imports")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?error=invalid_credentials&next=%2Fimports"
    assert "gw_session" not in client.cookies
    assert client.get("/api/v1/me").status_code == 401
    unknown = _login(client, "nobody@example.com", "whatever password")
    assert unknown.headers["location"].startswith("/login?error=invalid_credentials")  # same answer
    failed = _audit(store_cfg, "login.failed")
    assert [(e.actor_kind, e.target, e.detail["reason"]) for e in failed] == [
        ("anonymous", f"user:{user.email}", "wrong_password"),
        ("anonymous", "user:nobody@example.com", "unknown_user"),
    ]


def test_disabled_user_cannot_log_in_and_loses_sessions(
    client: TestClient, store_cfg: Settings, make_user: Callable[..., Any]
) -> None:
    user = make_user("operator")
    _login(client, user.email, user.password)
    assert client.get("/api/v1/me").status_code == 200
    with session_scope(store_cfg) as session:
        service.set_active(session, user.email, False)
    assert client.get("/api/v1/me").status_code == 401
    client.cookies.clear()
    assert _login(client, user.email, user.password).headers["location"].startswith("/login?error=")


def test_login_is_throttled_per_email_through_the_shared_store(
    app: Any, store_cfg: Settings, make_user: Callable[..., Any]
) -> None:
    user = make_user("admin")
    other_process = create_app(store_cfg, routers=[accounts_api.router, _probe_router()])
    with TestClient(app) as first, TestClient(other_process) as second:
        for attempt in range(service.EMAIL_FAILURE_LIMIT):
            client = first if attempt % 2 else second  # failures counted in the shared store
            assert _login(client, user.email, f"wrong password {attempt}").status_code == 303
        response = _login(first, user.email, user.password)  # even the right password now
        assert response.status_code == 429
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == "too_many_requests"
        retry_after = int(response.headers["retry-after"])
        assert 15 * 60 - 30 <= retry_after <= 15 * 60
        assert body["retry_after"] == retry_after
        assert "gw_session" not in first.cookies
        assert _login(second, user.email, user.password).status_code == 429

        # sixteen minutes later the failures have aged out
        with session_scope(store_cfg) as session:
            session.execute(sa.update(LoginFailure).values(at=datetime.now(UTC) - timedelta(minutes=16)))
        response = _login(first, user.email, user.password)
        assert response.status_code == 303
        assert response.headers["location"] == "/"
    with session_scope(store_cfg) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(LoginFailure)) == 0
    assert len(_audit(store_cfg, "login.throttled")) == 2


def test_login_is_throttled_per_client_address(
    client: TestClient, make_user: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "IP_FAILURE_LIMIT", 3)
    user = make_user("admin")
    for n in range(3):  # three different e-mails, one failure each, from one address
        assert _login(client, f"guess{n}@example.com", "wrong password").status_code == 303
    response = _login(client, user.email, user.password)
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0


def test_browsers_get_the_login_page_back_when_refused(
    client: TestClient, make_user: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "EMAIL_FAILURE_LIMIT", 1)
    user = make_user("admin")
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    no_token = client.post("/login", data={"email": user.email, "password": user.password, "next": "/x"},
                           headers=html)
    assert no_token.status_code == 403
    assert no_token.headers["content-type"].startswith("text/html")
    assert 'name="csrf_token"' in no_token.text  # a fresh form to try again with
    assert 'value="/x"' in no_token.text
    assert _login(client, user.email, "wrong password").status_code == 303
    data = {"email": user.email, "password": user.password, "csrf_token": _anon_token(client)}
    throttled = client.post("/login", data=data, headers=html, follow_redirects=False)
    assert throttled.status_code == 429
    assert throttled.headers["content-type"].startswith("text/html")
    assert int(throttled.headers["retry-after"]) > 800
    assert "gw_session" not in client.cookies


def test_sessions_expire_when_idle_or_old(
    client: TestClient, store_cfg: Settings, make_user: Callable[..., Any]
) -> None:
    user = make_user("admin")
    _login(client, user.email, user.password)
    now = datetime.now(UTC)
    with session_scope(store_cfg) as session:
        session.execute(sa.update(UserSession).values(last_seen_at=now - timedelta(hours=11)))
    assert client.get("/api/v1/me").status_code == 200  # 11 h idle: still on, and touched
    with session_scope(store_cfg) as session:
        seen = session.scalars(sa.select(UserSession.last_seen_at)).one()
        assert now - timedelta(minutes=1) < seen
        session.execute(sa.update(UserSession).values(last_seen_at=now - timedelta(hours=12, minutes=1)))
    assert client.get("/api/v1/me").status_code == 401  # 12 h idle: over

    client.cookies.clear()
    _login(client, user.email, user.password)
    with session_scope(store_cfg) as session:
        session.execute(sa.update(UserSession).values(created_at=now - timedelta(days=7, minutes=1)))
    response = client.get("/api/v1/me")
    assert response.status_code == 401  # 7 days after login: over, however active
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthenticated"


def test_logout_deletes_the_session(
    client: TestClient, store_cfg: Settings, make_user: Callable[..., Any]
) -> None:
    user = make_user("admin")
    _login(client, user.email, user.password)
    old_cookie = client.cookies["gw_session"]
    csrf = client.get("/t/page").json()["csrf"]
    response = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert 'gw_session=""' in response.headers["set-cookie"] or "max-age=0" in response.headers[
        "set-cookie"].lower()
    with session_scope(store_cfg) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(UserSession)) == 0
    client.cookies.set("gw_session", old_cookie)  # a stolen copy of the cookie is worthless now
    assert client.get("/api/v1/me").status_code == 401
    [entry] = _audit(store_cfg, "logout")
    assert (entry.actor_kind, entry.actor_name) == ("user", user.email)


# --------------------------------------------------------------------------------------------
# CSRF and console pages
# --------------------------------------------------------------------------------------------


def test_login_form_without_or_with_a_wrong_csrf_token_is_refused(
    client: TestClient, store_cfg: Settings, make_user: Callable[..., Any]
) -> None:
    user = make_user("admin")
    forged = service.anonymous_csrf_token(b"x" * 32)  # signed with another server's secret
    stale = service.anonymous_csrf_token(service.server_secret(store_cfg.data_dir),
                                         datetime.now(UTC) - timedelta(hours=13))
    for token in (None, "", "garbage", forged, stale):
        data = {"email": user.email, "password": user.password}
        if token is not None:
            data["csrf_token"] = token
        response = client.post("/login", data=data, follow_redirects=False)
        assert response.status_code == 403, token
        assert response.json()["code"] == "csrf_failed"
    # a valid token posted from another site is refused too (Fetch Metadata)
    response = client.post("/login", data={"email": user.email, "password": user.password,
                                           "csrf_token": _anon_token(client)},
                           headers={"Sec-Fetch-Site": "cross-site"}, follow_redirects=False)
    assert response.status_code == 403
    assert "gw_session" not in client.cookies
    assert _audit(store_cfg, "login.succeeded") == []


def test_logout_and_console_forms_need_the_session_token(
    client: TestClient, store_cfg: Settings, make_user: Callable[..., Any]
) -> None:
    user = make_user("operator")
    anonymous_token = _anon_token(client)
    _login(client, user.email, user.password)
    page = client.get("/t/page")
    assert page.json()["user"] == user.email
    token = page.json()["csrf"]
    assert token == service.session_csrf_token(service.server_secret(store_cfg.data_dir),
                                                client.cookies["gw_session"])
    other_session = service.session_csrf_token(service.server_secret(store_cfg.data_dir), "another")
    for bad in ({}, {"csrf_token": "wrong"}, {"csrf_token": anonymous_token}, {"csrf_token": other_session}):
        assert client.post("/t/page", data=bad).status_code == 403
        response = client.post("/logout", data=bad, follow_redirects=False)
        assert response.status_code == 403
        assert response.json()["code"] == "csrf_failed"
    assert client.get("/api/v1/me").status_code == 200  # still logged in
    assert client.post("/t/page", data={"csrf_token": token}).json() == {"posted_by": user.email}
    assert client.post("/t/page", headers={"X-CSRF-Token": token}).status_code == 200
    # an Authorization header does not excuse a cookie-carrying form from its token
    assert client.post("/t/page", headers={"Authorization": "Bearer gw_x"}).status_code == 403
    # the session cookie alone cannot change state from another site
    assert client.post("/t/write", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert client.post("/t/write", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200


def test_console_pages_send_anonymous_visitors_to_login(client: TestClient) -> None:
    response = client.get("/t/page?customer=42&tab=orders", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/t/page%3Fcustomer%3D42%26tab%3Dorders"
    htmx = client.get("/t/page", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.status_code == 401
    assert htmx.headers["hx-redirect"] == "/login?next=/t/page"
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").headers["www-authenticate"] == "Bearer"


# --------------------------------------------------------------------------------------------
# API keys
# --------------------------------------------------------------------------------------------


def test_api_key_is_shown_once_stored_hashed_and_scoped(client: TestClient, store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        key, row = service.create_api_key(session, "shop backend", ["ingest", "read"], created_by="tests")
    assert key.startswith("gw_")
    assert len(key) == 3 + 43  # 32 random bytes, URL-safe base64
    with session_scope(store_cfg) as session:
        stored = session.scalars(sa.select(ApiKey)).one()
        columns = [str(getattr(stored, c.key)) for c in ApiKey.__table__.columns]
        assert all(key not in value for value in columns)  # the key itself is nowhere
        assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert stored.prefix == key[:11]
        assert stored.last_used_at is None

    auth = {"Authorization": f"Bearer {key}"}
    me = client.get("/api/v1/me", headers=auth)
    assert me.status_code == 200
    assert me.json() == {"kind": "api_key", "id": row.id, "name": "shop backend", "role": None,
                         "scopes": ["ingest", "read"], "can_see_pii": True}
    forbidden = client.post("/t/write", headers=auth)
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "forbidden"
    assert "write" in forbidden.json()["detail"]
    assert client.get("/t/admin", headers=auth).status_code == 403  # keys have no role
    with session_scope(store_cfg) as session:
        assert session.scalars(sa.select(ApiKey.last_used_at)).one() is not None

    for bad in (f"Bearer {key}x", "Bearer gw_unknown", f"Basic {key}", "Bearer"):
        response = client.get("/api/v1/me", headers={"Authorization": bad})
        assert response.status_code == 401, bad
        assert response.json()["code"] == "unauthenticated"


def test_write_scope_allows_and_revoked_key_is_refused(
    client: TestClient, store_cfg: Settings, make_api_key: Callable[..., str]
) -> None:
    key = make_api_key("write", "read", name="ops")
    auth = {"Authorization": f"Bearer {key}"}
    assert client.post("/t/write", headers=auth).json() == {"by": "ops"}  # no CSRF needed with a key
    with session_scope(store_cfg) as session:
        _row, changed = service.revoke_api_key(session, key[:11])
        assert changed
    response = client.post("/t/write", headers=auth)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    with session_scope(store_cfg) as session:
        _row, changed = service.revoke_api_key(session, key)  # by the whole key: already revoked
        assert not changed
    assert [e.target for e in _audit(store_cfg, "api_key.revoked")] == [f"api_key:{key[:11]}"]


def test_api_key_scopes_are_validated(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        with pytest.raises(InvalidArgumentError, match="unknown scope admin"):
            service.create_api_key(session, "x", ["read", "admin"], created_by="t")
        with pytest.raises(InvalidArgumentError, match="at least one scope"):
            service.create_api_key(session, "x", [], created_by="t")


def test_audit_log_records_every_state_change(
    client: TestClient, store_cfg: Settings, make_user: Callable[..., Any], make_api_key: Callable[..., str]
) -> None:
    user = make_user("admin")
    make_api_key("ingest", name="pos")
    _login(client, user.email, "not the password")
    _login(client, user.email, user.password)
    client.post("/logout", data={"csrf_token": client.get("/t/page").json()["csrf"]})
    with session_scope(store_cfg) as session:
        rows = session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id)).all()
        trail = [(r.action, r.actor_kind, r.target) for r in rows]
        assert trail == [
            ("user.created", "system", f"user:{user.email}"),
            ("api_key.created", "system", trail[1][2]),
            ("login.failed", "anonymous", f"user:{user.email}"),
            ("login.succeeded", "user", f"user:{user.email}"),
            ("logout", "user", f"user:{user.email}"),
        ]
        assert rows[1].detail == {"name": "pos", "scopes": ["ingest"]}
        assert rows[0].detail == {"role": "admin"}
        assert all(r.at.tzinfo is not None for r in rows)
        assert [r.ip for r in rows[2:]] == ["testclient"] * 3
        principal = Principal(kind="api_key", id="k1", name="pos", scopes=frozenset({"write"}), ip="10.1.1.1")
        service.audit(session, principal, "coupon.redeemed", "coupon:SPRING", {"amount_minor": 500})
    [entry] = _audit(store_cfg, "coupon.redeemed")
    actor = (entry.actor_kind, entry.actor_id, entry.actor_name, entry.ip)
    assert actor == ("api_key", "k1", "pos", "10.1.1.1")
    assert entry.detail == {"amount_minor": 500}


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


@pytest.fixture
def cli(store_cfg: Settings) -> Iterator[Callable[..., Any]]:
    app = typer.Typer()
    app.add_typer(users_app, name="users")
    app.add_typer(apikeys_app, name="apikeys")
    runner = CliRunner()
    set_settings(store_cfg)

    def run(*args: str, input: str | None = None) -> Any:
        return runner.invoke(app, list(args), input=input)

    yield run
    set_settings(None)


def test_cli_users_create_and_list(cli: Callable[..., Any], store_cfg: Settings) -> None:
    done = cli("users", "create", "Ops@Example.com", "--role", "operator", "--password-stdin",
               input="a long password\n")
    assert done.exit_code == 0, done.output
    assert "created user ops@example.com (operator)" in done.stdout
    prompted = cli("users", "create", "ana@example.com", "--role", "analyst",
                   input="analyst password\nanalyst password\n")
    assert prompted.exit_code == 0, prompted.output
    assert "analyst password" not in prompted.output  # hidden input is not echoed
    with session_scope(store_cfg) as session:
        ana = session.scalars(sa.select(User).where(User.email == "ana@example.com")).one()
        assert service.verify_password(ana.password_hash, "analyst password")

    listed = cli("users", "list", "--json")
    assert listed.exit_code == 0
    users = json.loads(listed.stdout)
    assert [(u["email"], u["role"], u["active"]) for u in users] == [
        ("ana@example.com", "analyst", True), ("ops@example.com", "operator", True)]
    assert all("password" not in "".join(u) for u in users)
    assert "ops@example.com" in cli("users", "list").stdout

    cases = [
        (("users", "create", "x@example.com", "--role", "admin"), "one password\nanother one\n",
         "error: the two passwords differ"),
        (("users", "create", "x@example.com", "--role", "admin", "--password-stdin"), "short\n",
         "error: the password must have at least 10 characters"),
        (("users", "create", "OPS@example.com", "--role", "admin", "--password-stdin"), "long enough pw\n",
         "error: a user ops@example.com already exists"),
        (("users", "create", "not-an-email", "--role", "admin", "--password-stdin"), "long enough pw\n",
         "error: 'not-an-email' is not an e-mail address"),
    ]
    for args, stdin, message in cases:
        failed = cli(*args, input=stdin)
        assert failed.exit_code == 1, failed.output
        assert failed.stderr.strip().splitlines()[-1] == message
    bad_role = cli("users", "create", "x@example.com", "--role", "root", "--password-stdin", input="x" * 12)
    assert bad_role.exit_code == 2
    assert "root" in bad_role.output
    with session_scope(store_cfg) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(User)) == 2


def test_cli_apikeys_create_list_revoke(cli: Callable[..., Any], app: Any) -> None:
    created = cli("apikeys", "create", "shop backend", "--scope", "ingest", "--scope", "read")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("gw_")
    assert len(key) == 46
    assert "shown once" in created.stderr
    with TestClient(app) as client:
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"}).json()
        assert (me["name"], me["scopes"]) == ("shop backend", ["ingest", "read"])

        listed = cli("apikeys", "list", "--json")
        assert key not in listed.stdout
        [row] = json.loads(listed.stdout)
        assert (row["prefix"], row["scopes"], row["revoked"]) == (key[:11], ["ingest", "read"], False)
        assert row["created_by"].startswith("cli")

        revoked = cli("apikeys", "revoke", key[:11])
        assert revoked.exit_code == 0, revoked.output
        assert f"revoked: {key[:11]} (shop backend)" in revoked.stdout
        assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert "already revoked" in cli("apikeys", "revoke", key[:11]).stdout

    unknown = cli("apikeys", "revoke", "gw_nothere")
    assert unknown.exit_code == 1
    assert unknown.stderr.strip() == "error: no API key gw_nothere"
    bad_scope = cli("apikeys", "create", "x", "--scope", "admin")
    assert bad_scope.exit_code == 2
    no_scope = cli("apikeys", "create", "x")
    assert no_scope.exit_code == 2
