"""Accounts logic: users and passwords, login throttling, sessions, API keys, audit, masking.

Functions take the caller's SQLAlchemy ``Session`` and never commit: the request, CLI command or
job that owns the unit of work does. Secrets are never stored: passwords as argon2id hashes,
session tokens and API keys as SHA-256 digests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from growthwheel.accounts import repository
from growthwheel.accounts.models import ROLES, ApiKey, AuditEntry, LoginFailure, User, UserSession, utcnow
from growthwheel.accounts.schemas import ROLE_SCOPES, SCOPES, Principal
from growthwheel.errors import GrowthwheelError, InvalidArgumentError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
EMAIL_FAILURE_LIMIT = 5
"""Failed logins allowed per e-mail within ``FAILURE_WINDOW``."""
IP_FAILURE_LIMIT = 20
"""Failed logins allowed per client address within ``FAILURE_WINDOW`` (any e-mails)."""
FAILURE_WINDOW = timedelta(minutes=15)
SESSION_IDLE = timedelta(hours=12)
"""A session unused this long is over."""
SESSION_MAX_AGE = timedelta(days=7)
"""A session is over this long after login, used or not."""
SESSION_TOUCH = timedelta(minutes=1)
"""``last_seen_at`` / ``last_used_at`` are written at most this often (not on every request)."""
API_KEY_PREFIX = "gw_"
SECRET_FILE = "secret.key"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_dummy_hash: str | None = None


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class AuthenticationError(GrowthwheelError):
    """The request is not authenticated (no, unknown, expired or revoked credentials)."""

    code = "unauthenticated"
    status = 401


class LoginFailedError(AuthenticationError):
    """Wrong e-mail or password (the failure is recorded: the caller must still commit)."""

    code = "invalid_credentials"


class PermissionDeniedError(GrowthwheelError):
    """Authenticated, but the role or the key's scopes do not allow this."""

    code = "forbidden"
    status = 403


class CsrfError(GrowthwheelError):
    """A console form was posted without the right CSRF token."""

    code = "csrf_failed"
    status = 403


class TooManyAttemptsError(GrowthwheelError):
    """Too many failed logins: wait ``retry_after`` seconds."""

    code = "too_many_requests"
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AccountConflictError(GrowthwheelError):
    """The account already exists."""

    code = "conflict"
    status = 409


class AccountNotFoundError(GrowthwheelError):
    """No such user or API key."""

    code = "not_found"
    status = 404


# --------------------------------------------------------------------------------------------
# Audit and masking
# --------------------------------------------------------------------------------------------


def audit(
    session: Session,
    principal: Principal | None,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
    *,
    ip: str | None = None,
    actor_name: str | None = None,
) -> AuditEntry:
    """Write one audit entry for a state change made by ``principal``.

    ``principal=None`` means the server or the CLI acted on its own (``actor_kind="system"``),
    or, when ``ip`` is given, an anonymous web request (``"anonymous"``, e.g. a failed login).
    ``detail`` must not hold secrets; values that are not JSON are written as strings.
    """
    kind: str
    actor_id: str | None
    name: str | None
    if principal is not None:
        kind, actor_id, name = principal.kind, principal.id, actor_name or principal.name
        ip = ip or principal.ip
    else:
        kind, actor_id, name = ("anonymous" if ip else "system"), None, actor_name
    entry = AuditEntry(
        at=utcnow(),
        actor_kind=kind,
        actor_id=actor_id,
        actor_name=name,
        action=action,
        target=target[:255],
        detail=json.loads(json.dumps(detail or {}, default=str)),
        ip=ip,
    )
    session.add(entry)
    return entry


def mask_email(email: str | None) -> str | None:
    """``alice@example.com`` → ``a***@example.com`` (the domain stays; ``None`` stays ``None``)."""
    if email is None:
        return None
    email = email.strip()
    if not email:
        return email
    local, at, domain = email.rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def mask_phone(phone: str | None) -> str | None:
    """``13812345678`` → ``138****5678``; ``+86 138-1234-5678`` → ``+86 138-****-5678``.

    Digits are masked except the last four and, for numbers of 11 digits or more, the three
    that open the national number (the last eleven digits) and any country code before them;
    numbers of fewer than seven digits are masked whole. Separators are kept.
    """
    if phone is None:
        return None
    positions = [i for i, ch in enumerate(phone) if ch.isdigit()]
    n = len(positions)
    if n < 7:
        keep: set[int] = set()
    else:
        keep = set(positions[-4:])
        if n >= 11:
            keep |= set(positions[: n - 11 + 3])
    return "".join("*" if ch.isdigit() and i not in keep else ch for i, ch in enumerate(phone))


#: An e-mail address anywhere in a text.
_EMAIL_IN_TEXT = re.compile(r"[\w.+\-']+@[\w\-]+(?:\.[\w\-]+)+")
#: A run of digits that may be a phone number: 7 to 15 digits, single separators between them,
#: not part of a longer word, number or time (``2024-03-05`` is told apart below).
_PHONE_IN_TEXT = re.compile(r"(?<![\w.:/\-])\+?\d(?:[ ()\-]?\d){6,18}(?![\w:/]|\.\d)")
_DATE_LIKE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4}")


def mask_contacts(text: str | None) -> str | None:
    """``text`` with every e-mail address and phone-like number in it masked as
    :func:`mask_email` / :func:`mask_phone` do, for free text that may hold them (a raw CSV row
    refused by an import, a value of an unknown column). Dates are left alone; a long numeric id
    (7–15 digits) is masked too: over-masking is the safe side."""
    if not text:
        return text

    def phone(match: re.Match[str]) -> str:
        found = match.group(0)
        digits = sum(ch.isdigit() for ch in found)
        if digits > 15 or _DATE_LIKE.fullmatch(found):
            return found
        return mask_phone(found) or found

    text = _EMAIL_IN_TEXT.sub(lambda m: mask_email(m.group(0)) or "***", text)
    return _PHONE_IN_TEXT.sub(phone, text)


# --------------------------------------------------------------------------------------------
# Passwords and users
# --------------------------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    """The e-mail as stored: trimmed and lower-cased; refused when it is not an address."""
    value = email.strip().lower()
    if len(value) > 320 or not _EMAIL.match(value):
        raise InvalidArgumentError(f"{email!r} is not an e-mail address")
    return value


def check_password(password: str) -> None:
    """Refuse passwords shorter than ``MIN_PASSWORD_LENGTH`` (or absurdly long)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidArgumentError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidArgumentError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    """An argon2id hash (PHC string with salt and parameters) of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (``False`` for a malformed hash)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A random password (20 URL-safe characters, about 120 bits)."""
    return secrets.token_urlsafe(15)


def create_user(
    session: Session,
    email: str,
    role: str,
    password: str,
    *,
    actor: Principal | None = None,
    actor_name: str | None = None,
) -> User:
    """Add a console user (e-mail unique case-insensitively; password at least 10 characters)."""
    address = normalize_email(email)
    if role not in ROLES:
        raise InvalidArgumentError(f"unknown role {role!r} (choose {', '.join(ROLES)})")
    check_password(password)
    if repository.user_by_email(session, address) is not None:
        raise AccountConflictError(f"a user {address} already exists")
    user = User(email=address, role=role, password_hash=hash_password(password), active=True)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # created by someone else meanwhile
        raise AccountConflictError(f"a user {address} already exists") from None
    audit(session, actor, "user.created", f"user:{address}", {"role": role}, actor_name=actor_name)
    return user


def set_password(
    session: Session,
    email: str,
    password: str,
    *,
    actor: Principal | None = None,
    actor_name: str | None = None,
) -> User:
    """Give a user a new password and end all their sessions."""
    user = _user(session, email)
    check_password(password)
    user.password_hash = hash_password(password)
    repository.delete_sessions(session, user_id=user.id)
    repository.clear_failures(session, email=user.email)
    audit(session, actor, "user.password_set", f"user:{user.email}", actor_name=actor_name)
    return user


def set_active(
    session: Session,
    email: str,
    active: bool,
    *,
    actor: Principal | None = None,
    actor_name: str | None = None,
) -> User:
    """Enable or disable a user (disabling ends their sessions)."""
    user = _user(session, email)
    if user.active != active:
        user.active = active
        if not active:
            repository.delete_sessions(session, user_id=user.id)
        audit(session, actor, "user.enabled" if active else "user.disabled", f"user:{user.email}",
              actor_name=actor_name)
    return user


def list_users(session: Session) -> Sequence[User]:
    """Every user, by e-mail."""
    return repository.users(session)


def _user(session: Session, email: str) -> User:
    user = repository.user_by_email(session, normalize_email(email))
    if user is None:
        raise AccountNotFoundError(f"no user {email.strip().lower()}")
    return user


def user_principal(user: User, ip: str | None = None) -> Principal:
    """The principal of a logged-in user: their role's scopes."""
    return Principal(kind="user", id=user.id, name=user.email, role=user.role,
                     scopes=ROLE_SCOPES[user.role], ip=ip)


# --------------------------------------------------------------------------------------------
# Login, throttling, sessions
# --------------------------------------------------------------------------------------------


def throttle_wait(failures: Sequence[datetime], limit: int, window: timedelta, now: datetime) -> int:
    """Seconds to wait before another attempt, given failure times (oldest first) in the window.

    Attempts are allowed while fewer than ``limit`` failures are younger than ``window``; the
    wait ends when enough of them have aged out. ``0`` means go ahead.
    """
    recent = [t for t in failures if t > now - window]
    if len(recent) < limit:
        return 0
    frees_at = recent[len(recent) - limit] + window
    return max(1, math.ceil((frees_at - now).total_seconds()))


def token_hash(token: str) -> str:
    """The SHA-256 (hex) under which a session token or API key is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def log_in(
    session: Session,
    email: str,
    password: str,
    *,
    ip: str,
    user_agent: str | None = None,
    now: datetime | None = None,
) -> tuple[str, User]:
    """Check a password and open a session: returns the session token (for the cookie) and user.

    Raises ``TooManyAttemptsError`` (without checking the password) once an e-mail has had
    ``EMAIL_FAILURE_LIMIT`` failures, or an address ``IP_FAILURE_LIMIT``, within
    ``FAILURE_WINDOW``; raises ``LoginFailedError`` for a wrong e-mail or password. Failures are
    recorded and audited in ``session``: the caller must commit even when this raises.
    """
    now = now or utcnow()
    address = email.strip().lower()[:320]
    since = now - FAILURE_WINDOW
    repository.clear_failures(session, before=since)
    wait = max(
        throttle_wait(repository.failure_times(session, since, email=address), EMAIL_FAILURE_LIMIT,
                      FAILURE_WINDOW, now),
        throttle_wait(repository.failure_times(session, since, ip=ip), IP_FAILURE_LIMIT,
                      FAILURE_WINDOW, now),
    )
    if wait:
        audit(session, None, "login.throttled", f"user:{address}", {"retry_after": wait}, ip=ip,
              actor_name=address)
        raise TooManyAttemptsError(
            f"too many failed logins; try again in {math.ceil(wait / 60)} minute(s)", retry_after=wait
        )
    user = repository.user_by_email(session, address)
    if user is None:
        verify_password(_dummy(), password)  # same time as a real check: do not reveal who exists
        reason = "unknown_user"
    elif not verify_password(user.password_hash, password):
        reason = "wrong_password"
    elif not user.active:
        reason = "inactive"
    else:
        reason = ""
    if reason or user is None:
        session.add(LoginFailure(at=now, email=address, ip=ip))
        audit(session, None, "login.failed", f"user:{address}", {"reason": reason}, ip=ip,
              actor_name=address)
        raise LoginFailedError("wrong e-mail or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    repository.clear_failures(session, email=address)
    repository.delete_stale_sessions(session, created_before=now - SESSION_MAX_AGE,
                                     seen_before=now - SESSION_IDLE)
    token = secrets.token_urlsafe(32)
    session.add(UserSession(id=token_hash(token), user_id=user.id, created_at=now, last_seen_at=now,
                            ip=ip, user_agent=(user_agent or "")[:255] or None))
    user.last_login_at = now
    audit(session, user_principal(user, ip), "login.succeeded", f"user:{address}")
    return token, user


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    return _dummy_hash


def session_principal(
    session: Session, token: str, *, ip: str | None = None, now: datetime | None = None
) -> Principal | None:
    """The user behind a session cookie, or ``None`` when unknown, expired or the user is disabled.

    Keeps the session alive (``last_seen_at``, written at most once a minute).
    """
    now = now or utcnow()
    row = repository.session_by_hash(session, token_hash(token))
    if row is None:
        return None
    if row.created_at + SESSION_MAX_AGE <= now or row.last_seen_at + SESSION_IDLE <= now:
        session.delete(row)
        return None
    user = repository.user_by_id(session, row.user_id)
    if user is None or not user.active:
        return None
    if now - row.last_seen_at >= SESSION_TOUCH:
        row.last_seen_at = now
    return user_principal(user, ip)


def log_out(session: Session, token: str, principal: Principal | None) -> bool:
    """End the session of ``token``; ``True`` if there was one."""
    row = repository.session_by_hash(session, token_hash(token))
    if row is None:
        return False
    session.delete(row)
    audit(session, principal, "logout", f"user:{principal.name}" if principal else f"session:{row.user_id}")
    return True


# --------------------------------------------------------------------------------------------
# API keys
# --------------------------------------------------------------------------------------------


def create_api_key(
    session: Session,
    name: str,
    scopes: Iterable[str],
    *,
    created_by: str,
    actor: Principal | None = None,
) -> tuple[str, ApiKey]:
    """A new key ``gw_…``: returns the key (shown once, never stored) and its row."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidArgumentError("an API key needs a name of 1 to 200 characters")
    wanted = {s.strip().lower() for s in scopes}
    if not wanted:
        raise InvalidArgumentError(f"an API key needs at least one scope ({', '.join(sorted(SCOPES))})")
    unknown = wanted - SCOPES
    if unknown:
        raise InvalidArgumentError(
            f"unknown scope {', '.join(sorted(unknown))} (choose from {', '.join(sorted(SCOPES))})"
        )
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=key[: len(API_KEY_PREFIX) + 8], key_hash=token_hash(key),
                 scopes=" ".join(sorted(wanted)), created_by=created_by[:320], revoked=False)
    session.add(row)
    session.flush()
    audit(session, actor, "api_key.created", f"api_key:{row.prefix}",
          {"name": name, "scopes": sorted(wanted)}, actor_name=None if actor else created_by)
    return key, row


def api_key_principal(
    session: Session, key: str, *, ip: str | None = None, now: datetime | None = None
) -> Principal | None:
    """The machine client behind a key, or ``None`` when the key is unknown or revoked."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    row = repository.api_key_by_hash(session, token_hash(key))
    if row is None or row.revoked:
        return None
    now = now or utcnow()
    if row.last_used_at is None or now - row.last_used_at >= SESSION_TOUCH:
        row.last_used_at = now
    return Principal(kind="api_key", id=row.id, name=row.name, role=None, scopes=row.scope_set, ip=ip)


def revoke_api_key(
    session: Session, prefix: str, *, actor: Principal | None = None, actor_name: str | None = None
) -> tuple[ApiKey, bool]:
    """Revoke the key with this display prefix (or the whole key); refused when ambiguous.

    Returns the key and whether it was revoked now (``False``: it already was).
    """
    prefix = prefix.strip().rstrip("…").rstrip(".")
    if len(prefix) > len(API_KEY_PREFIX) + 8:  # the whole key
        row = repository.api_key_by_hash(session, token_hash(prefix))
        rows: Sequence[ApiKey] = [row] if row else []
    elif len(prefix) < len(API_KEY_PREFIX) + 4:
        raise InvalidArgumentError(f"{prefix!r}: give the key's prefix as listed (e.g. gw_AbCd1234)")
    else:
        rows = repository.api_keys_by_prefix(session, prefix)
    if not rows:
        raise AccountNotFoundError(f"no API key {prefix}")
    if len(rows) > 1:
        raise InvalidArgumentError(
            f"{prefix} matches {len(rows)} keys ({', '.join(r.prefix for r in rows)}): give more characters"
        )
    row = rows[0]
    if row.revoked:
        return row, False
    row.revoked = True
    row.revoked_at = utcnow()
    audit(session, actor, "api_key.revoked", f"api_key:{row.prefix}", {"name": row.name},
          actor_name=actor_name)
    return row, True


def list_api_keys(session: Session) -> Sequence[ApiKey]:
    """Every API key (revoked ones too), oldest first."""
    return repository.api_keys(session)


# --------------------------------------------------------------------------------------------
# Server secret and CSRF tokens
# --------------------------------------------------------------------------------------------

_secrets: dict[Path, bytes] = {}


def server_secret(data_dir: Path) -> bytes:
    """The server's signing key, ``<data_dir>/secret.key`` (32 random bytes, created 0600 once).

    Every process that opens the data directory reads the same key; creation is atomic, so
    two processes starting together still agree.
    """
    path = (data_dir / SECRET_FILE).resolve()
    cached = _secrets.get(path)
    if cached is not None:
        return cached
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
            try:
                os.link(tmp, path)  # fails if another process won the race: then use theirs
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise GrowthwheelError(f"{path}: not a hex key (delete it to make a new one)") from None
    if len(key) < 32:
        raise GrowthwheelError(f"{path}: key too short (delete it to make a new one)")
    _secrets[path] = key
    return key


def _mac(secret: bytes, message: str) -> str:
    digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def session_csrf_token(secret: bytes, session_token: str) -> str:
    """The CSRF token of a session: an HMAC of its cookie, so it is valid only with that cookie."""
    return _mac(secret, "session|" + session_token)


def anonymous_csrf_token(secret: bytes, now: datetime | None = None) -> str:
    """A signed, time-stamped CSRF token for forms shown before login (the login form)."""
    stamp = int((now or utcnow()).timestamp())
    nonce = secrets.token_urlsafe(9)
    return f"{stamp}.{nonce}.{_mac(secret, f'anon|{stamp}|{nonce}')}"


def valid_anonymous_csrf_token(
    secret: bytes, token: str, max_age: timedelta = SESSION_IDLE, now: datetime | None = None
) -> bool:
    """Whether ``token`` came from ``anonymous_csrf_token`` with this secret less than ``max_age`` ago."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit():
        return False
    stamp, nonce, mac = parts
    if not hmac.compare_digest(mac, _mac(secret, f"anon|{stamp}|{nonce}")):
        return False
    age = (now or utcnow()).timestamp() - int(stamp)
    return -60 <= age <= max_age.total_seconds()
