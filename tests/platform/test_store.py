"""The operational store on SQLite and PostgreSQL: migrations, UTC times, one transaction per request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from growthwheel.accounts.models import AuditEntry, LoginFailure
from growthwheel.api.app import create_app
from growthwheel.api.deps import db_session
from growthwheel.config import Settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.store import db
from growthwheel.store.db import Base, migrate, session_scope

ACCOUNT_TABLES = {"users", "user_sessions", "login_failures", "api_keys", "audit_log"}


def _schema(cfg: Settings) -> dict[str, Any]:
    """Everything a migration could change: tables, columns, indexes, constraints, version."""
    with db.engine(cfg).connect() as conn:
        inspector = sa.inspect(conn)
        shape: dict[str, Any] = {}
        for table in sorted(inspector.get_table_names()):
            shape[table] = {
                "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)
                ),
                "unique": sorted(str(u["name"]) for u in inspector.get_unique_constraints(table)),
                "fks": sorted(str(f["name"]) for f in inspector.get_foreign_keys(table)),
            }
        shape["version"] = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    return shape


def test_migrations_run_twice_without_change(store_cfg: Settings) -> None:
    before = _schema(store_cfg)
    migrate(store_cfg)
    migrate(store_cfg)
    after = _schema(store_cfg)
    assert after == before
    assert ACCOUNT_TABLES <= set(after)
    script = ScriptDirectory.from_config(_alembic_config())
    assert after["version"] == [script.get_current_head()]


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    return config


def test_migration_matches_the_models(store_cfg: Settings) -> None:
    """The hand-written migrations create exactly what every domain's models declare (names,
    types, indexes and constraints included), on SQLite and PostgreSQL."""
    from growthwheel.store import models as _models  # noqa: F401  (every domain's tables)

    with db.engine(store_cfg).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
        tables = set(sa.inspect(conn).get_table_names())
    assert diffs == []
    assert ACCOUNT_TABLES <= tables
    assert {"inventory_plans", "rec_customers", "review_cases", "survey_answers", "campaigns"} <= tables


def test_downgrade_then_upgrade_again(store_cfg: Settings) -> None:
    from alembic import command

    config = _alembic_config()
    with db.engine(store_cfg).begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    with db.engine(store_cfg).connect() as conn:
        assert not ACCOUNT_TABLES & set(sa.inspect(conn).get_table_names())
    migrate(store_cfg)
    with db.engine(store_cfg).connect() as conn:
        assert ACCOUNT_TABLES <= set(sa.inspect(conn).get_table_names())


def test_a_store_at_the_newest_migration_is_not_migrated_again(store_cfg: Settings,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``migrate`` skips Alembic when the store is at the head (``db.head_revision``, the same as
    Alembic's), and still upgrades a store one migration behind."""
    from alembic import command

    assert db.head_revision() == ScriptDirectory.from_config(_alembic_config()).get_current_head()
    config = _alembic_config()
    with db.engine(store_cfg).begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "-1")
    calls: list[str] = []
    real = command.upgrade

    def upgrade(cfg: Config, revision: str, **kwargs: Any) -> None:
        calls.append(revision)
        real(cfg, revision, **kwargs)

    monkeypatch.setattr(command, "upgrade", upgrade)
    migrate(store_cfg)
    assert calls == ["head"]
    assert _schema(store_cfg)["version"] == [db.head_revision()]
    migrate(store_cfg)
    assert calls == ["head"]  # at the head: Alembic not called


def test_times_are_stored_in_utc_and_read_back_aware(store_cfg: Settings) -> None:
    shanghai = timezone(timedelta(hours=8))
    at = datetime(2025, 6, 18, 0, 30, tzinfo=shanghai)  # 2025-06-17 16:30 UTC
    with session_scope(store_cfg) as session:
        session.add(LoginFailure(at=at, email="x@example.com", ip="1.1.1.1"))
    with session_scope(store_cfg) as session:
        row = session.scalars(sa.select(LoginFailure)).one()
        assert row.at == datetime(2025, 6, 17, 16, 30, tzinfo=UTC)
        assert row.at.utcoffset() == timedelta(0)
        # comparisons in SQL use the same UTC instant
        later = session.scalars(
            sa.select(LoginFailure).where(LoginFailure.at > datetime(2025, 6, 17, 16, 29, tzinfo=UTC))
        ).all()
        earlier = session.scalars(
            sa.select(LoginFailure).where(LoginFailure.at > datetime(2025, 6, 18, 0, 31, tzinfo=shanghai))
        ).all()
        assert len(later) == 1
        assert earlier == []


def test_naive_times_are_refused(store_cfg: Settings) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), session_scope(store_cfg) as session:
        session.add(LoginFailure(at=datetime(2025, 1, 1), email="x@example.com", ip="1.1.1.1"))  # noqa: DTZ001


def _audit_count(cfg: Settings, action: str) -> int:
    with session_scope(cfg) as session:
        return session.scalar(sa.select(sa.func.count()).where(AuditEntry.action == action)) or 0


def _app_with_probe(cfg: Settings, seen: dict[str, Any]) -> Any:
    router = APIRouter()

    @router.post("/t/ok")
    def ok(
        session: Annotated[Session, Depends(db_session)],
        again: Annotated[Session, Depends(db_session, scope="function")],
    ) -> dict[str, bool]:
        session.add(AuditEntry(actor_kind="system", action="probe.ok", target="t", detail={}))
        return {"same_session": session is again}

    @router.post("/t/fail")
    def fail(session: Annotated[Session, Depends(db_session)]) -> None:
        session.add(AuditEntry(actor_kind="system", action="probe.fail", target="t", detail={}))
        session.flush()
        raise InvalidArgumentError("no")

    app = create_app(cfg, routers=[router])
    inner = app.build_middleware_stack

    def build() -> Any:
        asgi = inner()

        async def probe(scope: Any, receive: Any, send: Any) -> None:
            async def watch(message: Any) -> None:
                if message["type"] == "http.response.start":  # is the row committed already?
                    seen[scope["path"]] = _audit_count(cfg, "probe.ok")
                await send(message)

            await asgi(scope, receive, watch)

        return probe

    app.build_middleware_stack = build  # type: ignore[method-assign]
    return app


def test_request_session_commits_before_the_response_and_rolls_back_on_error(store_cfg: Settings) -> None:
    seen: dict[str, Any] = {}
    with TestClient(_app_with_probe(store_cfg, seen)) as client:
        response = client.post("/t/ok")
        assert response.status_code == 200
        assert response.json() == {"same_session": True}
        assert seen["/t/ok"] == 1  # visible to another connection when the response started
        failed = client.post("/t/fail")
        assert failed.status_code == 422
        assert failed.json()["code"] == "invalid_argument"
    assert _audit_count(store_cfg, "probe.fail") == 0
    assert _audit_count(store_cfg, "probe.ok") == 1
