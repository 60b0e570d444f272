"""Issuing coupons under a crowd (issue 10, item 5), on SQLite and PostgreSQL: every caller is a
thread with its own session, released together by a barrier, bounded in time. The database's
rules decide: one code per customer (with or without an issue key), no IntegrityError reaching the
caller, ``issued_count`` moved in SQL so no issue is lost; an IntegrityError that does reach the
API is a 409 problem+json; migration 0006 on a store that already holds duplicates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from crowds import crowd
from growthwheel.accounts.models import utcnow
from growthwheel.api.app import create_app
from growthwheel.api.deps import DbSession
from growthwheel.config import Settings
from growthwheel.promotions import coupons
from growthwheel.promotions.models import CouponBatch, CouponCode
from growthwheel.store import db
from growthwheel.store.db import session_scope


def unique_batch(cfg: Settings) -> str:
    now = utcnow()
    with session_scope(cfg) as session:
        batch = coupons.create_batch(
            session, name="welcome", definition={"reward": {"type": "order_amount_off", "amount": 500}},
            valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=30))
        return batch.id


def issue(cfg: Settings, batch_id: str, customers: list[str], key: str | None) -> coupons.IssueResult:
    with session_scope(cfg) as session:
        return coupons.issue(session, coupons.get_batch(session, batch_id), customers, issue_key=key)


def codes_of(cfg: Settings, batch_id: str) -> list[tuple[str | None, str | None]]:
    with session_scope(cfg) as session:
        rows = session.execute(sa.select(CouponCode.customer_id, CouponCode.issue_key)
                               .where(CouponCode.batch_id == batch_id)).all()
        return [(c, k) for c, k in rows]


def issued_count(cfg: Settings, batch_id: str) -> int:
    with session_scope(cfg) as session:
        return int(session.scalar(sa.select(CouponBatch.issued_count).where(CouponBatch.id == batch_id)) or 0)


@pytest.mark.parametrize("key", [None, "birthday:2026"])
def test_a_crowd_issuing_to_one_customer_gives_one_code(store_cfg: Settings, key: str | None) -> None:
    batch_id = unique_batch(store_cfg)
    results = crowd(16, lambda _i: issue(store_cfg, batch_id, ["alice", "bob"], key))
    unexpected = [r for r in results if not isinstance(r, coupons.IssueResult)]
    assert unexpected == []
    # alice and bob got one code each; each caller was told either the code or "already"
    assert sorted(codes_of(store_cfg, batch_id)) == [("alice", key), ("bob", key)]
    for customer in ("alice", "bob"):
        assert sum(customer in r.issued for r in results) == 1
        assert sum(customer in r.already for r in results) == 15
    assert issued_count(store_cfg, batch_id) == 2


def test_concurrent_issues_to_different_customers_are_all_counted(store_cfg: Settings) -> None:
    batch_id = unique_batch(store_cfg)
    results = crowd(12, lambda i: issue(store_cfg, batch_id, [f"c{i}-{j}" for j in range(5)], None))
    assert all(isinstance(r, coupons.IssueResult) and len(r.issued) == 5 for r in results), results
    assert len(codes_of(store_cfg, batch_id)) == 60
    assert issued_count(store_cfg, batch_id) == 60  # issued_count = issued_count + n, in SQL


def test_a_crowd_choosing_one_shared_code_gets_one_batch_and_422s(store_cfg: Settings) -> None:
    now = utcnow()

    def create(_i: int) -> str:
        with session_scope(store_cfg) as session:
            return coupons.create_batch(
                session, name="spring", definition={"reward": {"type": "order_amount_off", "amount": 500}},
                valid_from=now, valid_until=now + timedelta(days=3), code_mode="shared",
                shared_code="SPRING20").id

    results = crowd(8, create)
    assert sum(r == "invalid_argument" for r in results) == 7, results
    with session_scope(store_cfg) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(CouponBatch)) == 1


# ---------------------------------------------------------------------------------------------
# An IntegrityError that reaches the API is a 409 problem+json, not a 500
# ---------------------------------------------------------------------------------------------


def test_an_integrity_error_is_answered_409_problem_json(store_cfg: Settings) -> None:
    batch_id = unique_batch(store_cfg)
    issue(store_cfg, batch_id, ["alice"], None)
    router = APIRouter()

    @router.post("/test/duplicate-code")
    def duplicate(session: DbSession) -> dict[str, str]:
        # a write the database refuses: a second unkeyed code of the same batch for alice
        session.add(CouponCode(code="DUPLICATE1", batch_id=batch_id, customer_id="alice", uses=0, max_uses=1))
        session.flush()
        return {"never": "reached"}

    with TestClient(create_app(store_cfg, routers=[router])) as client:
        response = client.post("/test/duplicate-code")
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "conflict"
    assert "coupon_codes" not in body["detail"]  # no SQL leaked
    assert codes_of(store_cfg, batch_id) == [("alice", None)]  # rolled back


# ---------------------------------------------------------------------------------------------
# Migration 0006 on a store that already holds what the new rules forbid
# ---------------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def bare_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """An empty operational store, not migrated (SQLite file or a new PostgreSQL database)."""
    if request.param == "sqlite":
        cfg = Settings(data_dir=tmp_path, database_url=None)
        yield cfg
        db.engine(cfg).dispose()
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database()
    cfg = Settings(data_dir=tmp_path, database_url=cluster.url(name))
    try:
        yield cfg
    finally:
        db.engine(cfg).dispose()
        cluster.drop_database(name)


def migrate_to(cfg: Settings, revision: str) -> None:
    alembic_cfg = Config()
    alembic_cfg.set_main_option("script_location", str(db.MIGRATIONS))
    with db.engine(cfg).begin() as connection:
        alembic_cfg.attributes["connection"] = connection
        command.upgrade(alembic_cfg, revision)


def seed_duplicates(session: Session) -> None:
    """What concurrent requests could leave before 0006: two unkeyed codes of one customer in one
    batch (one of them used), a lost issued_count, two open bargains of one customer on one offer."""
    t0, t1 = utcnow() - timedelta(hours=2), utcnow() - timedelta(hours=1)
    params = {"t0": t0, "t1": t1, "until": t1 + timedelta(days=9)}
    session.execute(sa.text(
        "INSERT INTO coupon_batches (id, name, definition, code_mode, valid_from, valid_until, used_count,"
        " used_amount, per_customer_limit, release_on_refund, active, issued_count, created_by, created_at)"
        " VALUES ('b1', 'old', '{}', 'unique', :t0, :until, 1, 500, 1, 'never', true, 1, 'seed', :t0)"),
        params)
    session.execute(sa.text(
        "INSERT INTO coupon_codes (code, batch_id, customer_id, issue_key, issued_at, uses, max_uses,"
        " created_at) VALUES ('CODEA', 'b1', 'alice', NULL, :t0, 1, 1, :t0),"
        " ('CODEB', 'b1', 'alice', NULL, :t1, 0, 1, :t1), ('CODEC', 'b1', 'bob', NULL, :t1, 0, 1, :t1),"
        " ('CODED', 'b1', 'bob', 'k', :t1, 0, 1, :t1)"), params)
    session.execute(sa.text(
        "INSERT INTO social_bargain_offers (id, name, sku, currency, start_price, floor_price, cuts,"
        " duration_minutes, active, created_by, created_at)"
        " VALUES ('o1', 'pot', 'POT', 'CNY', 10000, 5000, 5, 600, true, 'seed', :t0)"), params)
    session.execute(sa.text(
        "INSERT INTO social_bargains (id, offer_id, customer_id, currency, start_price, floor_price,"
        " cuts_total, cuts_done, current_price, seed, status, started_at, expires_at) VALUES"
        " ('g1', 'o1', 'carol', 'CNY', 10000, 5000, 5, 2, 8000, 1, 'open', :t0, :until),"
        " ('g2', 'o1', 'carol', 'CNY', 10000, 5000, 5, 0, 10000, 2, 'open', :t1, :until),"
        " ('g3', 'o1', 'dave', 'CNY', 10000, 5000, 5, 0, 10000, 3, 'open', :t1, :until)"), params)


def test_migration_0006_deduplicates_an_existing_store(bare_store: Settings) -> None:
    migrate_to(bare_store, "0005")
    with session_scope(bare_store) as session:
        seed_duplicates(session)
    migrate_to(bare_store, "0006")
    with session_scope(bare_store) as session:
        codes = dict(session.execute(sa.text("SELECT code, issue_key FROM coupon_codes")).all())
        # alice keeps both codes (the used one first issued keeps the unkeyed place)
        assert codes == {"CODEA": None, "CODEB": "dedup-0006:CODEB", "CODEC": None, "CODED": "k"}
        assert session.scalar(sa.text("SELECT issued_count FROM coupon_batches")) == 4
        bargains = dict(session.execute(sa.text("SELECT id, status FROM social_bargains")).all())
        assert bargains == {"g1": "open", "g2": "expired", "g3": "open"}  # the one with cuts stays open
    # the new rules now hold in the database
    with pytest.raises(sa.exc.IntegrityError), session_scope(bare_store) as session:
        session.execute(sa.text("INSERT INTO coupon_codes (code, batch_id, customer_id, uses, created_at)"
                                " VALUES ('CODEE', 'b1', 'bob', 0, :t)"), {"t": utcnow()})
    with pytest.raises(sa.exc.IntegrityError), session_scope(bare_store) as session:
        session.execute(sa.text(
            "INSERT INTO social_bargains (id, offer_id, customer_id, currency, start_price, floor_price,"
            " cuts_total, cuts_done, current_price, seed, status, started_at, expires_at) VALUES"
            " ('g4', 'o1', 'dave', 'CNY', 10000, 5000, 5, 0, 10000, 4, 'open', :t, :t)"), {"t": utcnow()})
    migrate_to(bare_store, "head")  # and later revisions apply on top
