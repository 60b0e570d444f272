"""An application over a fresh data directory for the API/page tests of one domain: a warehouse
imported from CSV texts, a migrated store, a read-write and a read-only API key and an operator."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from growthwheel.accounts import service as accounts
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.store import db
from growthwheel.warehouse import ingest

OPERATOR = ("ops@example.com", "pw-operator-0123456789")


def log_client_in(client: Any, email: str, password: str) -> None:
    """Log ``client`` (a ``TestClient`` of the whole app) in to the console: POST /login with a
    valid CSRF token (the session's, if the client already holds one); asserts success."""
    cfg: Settings = client.app.state.cfg
    secret = accounts.server_secret(cfg.data_dir)
    cookie = client.cookies.get("gw_session")
    token = accounts.session_csrf_token(secret, cookie) if cookie else accounts.anonymous_csrf_token(secret)
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    assert "gw_session" in client.cookies


@contextmanager
def app_over(folder: Path, name: str, files: Mapping[str, str], routers: Sequence[Any],
             prepare: Any = None) -> Iterator[tuple[Any, Settings, str, str]]:
    """``(app, cfg, read-write key, read-only key)`` over ``folder / "data"`` with each table of
    ``files`` (table name → CSV text) imported; ``prepare(session, cfg)`` may add to the store
    before the app is made. The store's engine is disposed of afterwards."""
    cfg = Settings(data_dir=folder / "data", database_url=None)
    for table, text in files.items():
        path = folder / f"{table}.csv"
        path.write_text(text, encoding="utf-8")
        ingest.import_files(table, [path], cfg=cfg)
    db.migrate(cfg)
    with db.session_scope(cfg) as session:
        key, _row = accounts.create_api_key(session, name, ("read", "write"), created_by="tests")
        reader, _row = accounts.create_api_key(session, f"{name}-read", ("read",), created_by="tests")
        accounts.create_user(session, OPERATOR[0], "operator", OPERATOR[1])
        if prepare is not None:
            prepare(session, cfg)
    try:
        yield create_app(cfg, routers=list(routers)), cfg, key, reader
    finally:
        db.engine(cfg).dispose()
