"""``growthwheel users …`` and ``growthwheel apikeys …``: manage console users and API keys.

Each command brings the operational store up to date (``migrate``), does its work in one
transaction and prints one clear line on error (exit code 1).
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from growthwheel.accounts import service
from growthwheel.accounts.schemas import ApiKeyOut, UserOut
from growthwheel.config import settings
from growthwheel.errors import GrowthwheelError
from growthwheel.store.db import migrate, session_scope

users_app = typer.Typer(help="Console users and their roles.", no_args_is_help=True)
apikeys_app = typer.Typer(help="API keys for the shop's systems.", no_args_is_help=True)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class RoleChoice(StrEnum):
    """Console roles."""

    admin = "admin"
    operator = "operator"
    analyst = "analyst"


class ScopeChoice(StrEnum):
    """API key scopes."""

    ingest = "ingest"
    read = "read"
    write = "write"


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in this environment
        return "cli"


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(1)


@contextmanager
def _store() -> Iterator[Session]:
    """Migrate, then one transaction; domain errors become one line on stderr and exit code 1."""
    try:
        cfg = settings()
        migrate(cfg)
        with session_scope(cfg) as session:
            yield session
    except GrowthwheelError as exc:
        raise _fail(exc.message) from None


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if password.endswith("\r"):
            password = password[:-1]
        if not password:
            raise _fail("--password-stdin: no password on standard input")
        return password
    first = typer.prompt("Password", hide_input=True)
    second = typer.prompt("Repeat password", hide_input=True)
    if first != second:
        raise _fail("the two passwords differ")
    return str(first)


def _when(value: object) -> str:
    return "–" if value is None else str(value)[:19]


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument(help="The user's e-mail (their login)")],
    role: Annotated[RoleChoice, typer.Option("--role", help="admin, operator or analyst")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin")
    ] = False,
) -> None:
    """Create a console user (asks for the password twice unless --password-stdin)."""
    try:
        service.normalize_email(email)
    except GrowthwheelError as exc:
        raise _fail(exc.message) from None
    password = _read_password(password_stdin)
    try:
        service.check_password(password)
    except GrowthwheelError as exc:
        raise _fail(exc.message) from None
    with _store() as session:
        user = service.create_user(session, email, role.value, password, actor_name=_cli_actor())
        address, user_role = user.email, user.role
    out.print(f"created user {address} ({user_role})", highlight=False)


@users_app.command("set-password")
def users_set_password(
    email: Annotated[str, typer.Argument(help="The user's e-mail")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin")
    ] = False,
) -> None:
    """Give a user a new password (ends their sessions)."""
    password = _read_password(password_stdin)
    with _store() as session:
        user = service.set_password(session, email, password, actor_name=_cli_actor())
        address = user.email
    out.print(f"password changed for {address}", highlight=False)


@users_app.command("list")
def users_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array")] = False,
) -> None:
    """List console users."""
    with _store() as session:
        rows = [UserOut.model_validate(u) for u in service.list_users(session)]
    if as_json:
        sys.stdout.write(json.dumps([r.model_dump(mode="json") for r in rows], indent=2) + "\n")
        return
    table = Table(title=f"{len(rows)} user(s)")
    for column in ("email", "role", "active", "created (UTC)", "last login (UTC)"):
        table.add_column(column)
    for r in rows:
        table.add_row(r.email, r.role, "yes" if r.active else "no", _when(r.created_at),
                      _when(r.last_login_at))
    out.print(table)


@apikeys_app.command("create")
def apikeys_create(
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. 'shop backend'")],
    scope: Annotated[
        list[ScopeChoice], typer.Option("--scope", help="ingest, read or write (repeat for several)")
    ],
) -> None:
    """Create an API key and print it once (only its hash is kept: store it now)."""
    with _store() as session:
        key, row = service.create_api_key(session, name, [s.value for s in scope], created_by=_cli_actor())
        prefix, scopes = row.prefix, row.scopes
    sys.stdout.write(key + "\n")
    err.print(
        f"API key {name!r} ({prefix}…, scopes: {scopes}) — shown once: store it now; "
        f"revoke with `growthwheel apikeys revoke {prefix}`",
        highlight=False,
    )


@apikeys_app.command("list")
def apikeys_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array")] = False,
) -> None:
    """List API keys (their prefixes; keys themselves are never stored)."""
    with _store() as session:
        rows = [ApiKeyOut.model_validate(k) for k in service.list_api_keys(session)]
    if as_json:
        sys.stdout.write(json.dumps([r.model_dump(mode="json") for r in rows], indent=2) + "\n")
        return
    table = Table(title=f"{len(rows)} API key(s)")
    for column in ("prefix", "name", "scopes", "created by", "created (UTC)", "last used (UTC)", "status"):
        table.add_column(column)
    for r in rows:
        table.add_row(r.prefix, r.name, " ".join(r.scopes), r.created_by, _when(r.created_at),
                      _when(r.last_used_at), "revoked" if r.revoked else "active")
    out.print(table)


@apikeys_app.command("revoke")
def apikeys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix as listed (e.g. gw_AbCd1234)")],
) -> None:
    """Revoke an API key: requests with it are refused from now on."""
    with _store() as session:
        row, changed = service.revoke_api_key(session, prefix, actor_name=_cli_actor())
        shown, name = row.prefix, row.name
    out.print(f"{'revoked' if changed else 'already revoked'}: {shown} ({name})", highlight=False)
