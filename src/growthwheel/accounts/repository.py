"""Every query of the accounts domain (no commits: the caller owns the transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from growthwheel.accounts.models import ApiKey, AuditEntry, LoginFailure, User, UserSession


def user_by_email(session: Session, email: str) -> User | None:
    """The user with this (already lower-cased) e-mail."""
    return session.scalars(select(User).where(User.email == email)).one_or_none()


def user_by_id(session: Session, user_id: str) -> User | None:
    """The user with this id."""
    return session.get(User, user_id)


def users(session: Session) -> Sequence[User]:
    """Every user, by e-mail."""
    return session.scalars(select(User).order_by(User.email)).all()


def failure_times(
    session: Session, since: datetime, *, email: str | None = None, ip: str | None = None
) -> list[datetime]:
    """Times of failed logins since ``since`` for an e-mail or a client address, oldest first."""
    query = select(LoginFailure.at).where(LoginFailure.at > since)
    if email is not None:
        query = query.where(LoginFailure.email == email)
    if ip is not None:
        query = query.where(LoginFailure.ip == ip)
    return list(session.scalars(query.order_by(LoginFailure.at)))


def clear_failures(session: Session, *, email: str | None = None, before: datetime | None = None) -> None:
    """Forget failed logins of an e-mail, or all those older than ``before``."""
    query = delete(LoginFailure)
    if email is not None:
        query = query.where(LoginFailure.email == email)
    if before is not None:
        query = query.where(LoginFailure.at < before)
    session.execute(query)


def session_by_hash(session: Session, token_hash: str) -> UserSession | None:
    """The login session whose token hashes to ``token_hash``."""
    return session.get(UserSession, token_hash)


def delete_sessions(session: Session, *, user_id: str) -> None:
    """Log a user out everywhere."""
    session.execute(delete(UserSession).where(UserSession.user_id == user_id))


def delete_stale_sessions(session: Session, *, created_before: datetime, seen_before: datetime) -> None:
    """Remove sessions past their absolute or idle expiry."""
    session.execute(
        delete(UserSession).where(
            (UserSession.created_at < created_before) | (UserSession.last_seen_at < seen_before)
        )
    )


def api_key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    """The API key whose SHA-256 is ``key_hash``."""
    return session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash)).one_or_none()


def api_keys_by_prefix(session: Session, prefix: str) -> Sequence[ApiKey]:
    """API keys whose display prefix starts with ``prefix``."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return session.scalars(
        select(ApiKey).where(ApiKey.prefix.like(escaped + "%", escape="\\")).order_by(ApiKey.created_at)
    ).all()


def api_keys(session: Session) -> Sequence[ApiKey]:
    """Every API key, oldest first."""
    return session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)).all()


def audit_entries(session: Session, *, action: str | None = None, limit: int = 100) -> Sequence[AuditEntry]:
    """The newest audit entries (optionally of one action), newest first."""
    query = select(AuditEntry)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    return session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)).all()
