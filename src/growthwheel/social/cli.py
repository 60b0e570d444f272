"""``growthwheel social …``: the social-selling jobs, for cron.

Wiring (in ``cli/main.py``)::

    from growthwheel.social.cli import social_app
    app.add_typer(social_app, name="social")

Each job is one transaction on the operational store (so it runs while the server runs), safe to
run twice or concurrently, and prints what it did as JSON. ``--now`` (ISO 8601 with an offset)
replays a job as of another time; the default is the current time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from growthwheel.accounts.models import utcnow
from growthwheel.cli.common import print_json
from growthwheel.config import settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.social import service
from growthwheel.social.grants import promotions_granter
from growthwheel.store.db import migrate, session_scope

social_app = typer.Typer(help="Referral, group-buying and bargain jobs.", no_args_is_help=True)

NowOption = Annotated[str | None, typer.Option("--now", help="Act as of this time (ISO 8601, with offset).")]


def _now(value: str | None) -> datetime:
    if value is None:
        return utcnow()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgumentError(f"--now: {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise InvalidArgumentError("--now: give the UTC offset (e.g. 2026-06-18T12:00:00+08:00)")
    return parsed


@contextmanager
def _store() -> Iterator[Session]:
    cfg = settings()
    migrate(cfg)
    with session_scope(cfg) as session:
        yield session


@social_app.command("settle-referrals")
def settle_referrals(
    now: NowOption = None,
    grant: Annotated[bool, typer.Option(help="Grant the rewards (points, coupons) at once.")] = True,
) -> None:
    """Settle referrals whose first order survived its refund window, and grant the rewards."""
    with _store() as session:
        result = service.settle_referrals(session, _now(now), granter=promotions_granter if grant else None)
        print_json({
            "rewarded": result.rewarded,
            "rewards_written": len(result.rewards),
            "granted": [{"customer_id": r.customer_id, "kind": r.kind, "ref": r.grant_ref}
                        for r in result.granted],
            "failed": [{"customer_id": r.customer_id, "kind": r.kind, "error": r.grant_error}
                       for r in result.failed],
        })


@social_app.command("expire-groups")
def expire_groups(now: NowOption = None) -> None:
    """Fail the groups whose time ran out; print the refunds to issue to their paid members."""
    with _store() as session:
        refunds = service.expire_groups(session, _now(now))
        print_json({"refunds": [r.__dict__ for r in refunds]})


@social_app.command("expire-bargains")
def expire_bargains(now: NowOption = None) -> None:
    """Mark the bargains whose time ran out as expired."""
    with _store() as session:
        print_json({"expired": service.expire_bargains(session, _now(now))})
