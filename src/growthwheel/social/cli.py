"""``growthwheel social …``: the social-selling jobs, for cron.

Wiring (in ``cli/main.py``)::

    from growthwheel.social.cli import social_app
    app.add_typer(social_app, name="social")

Each job is one transaction on the operational store (so it runs while the server runs), safe to
run twice or concurrently, and prints what it did as JSON. ``--now`` (ISO 8601 with an offset)
replays a job as of another time; the default is the current time.
"""

from __future__ import annotations

from typing import Annotated

import typer

from growthwheel.cli.common import parse_now, print_json, store_session
from growthwheel.social import deals, service
from growthwheel.social.grants import promotions_granter

social_app = typer.Typer(help="Referral, group-buying and bargain jobs.", no_args_is_help=True)

NowOption = Annotated[str | None, typer.Option("--now", help="Act as of this time (ISO 8601, with offset).")]


@social_app.command("settle-referrals")
def settle_referrals(
    now: NowOption = None,
    grant: Annotated[bool, typer.Option(help="Grant the rewards (points, coupons) at once.")] = True,
) -> None:
    """Settle referrals whose first order survived its refund window, and grant the rewards."""
    with store_session() as session:
        granter = promotions_granter if grant else None
        result = service.settle_referrals(session, parse_now(now), granter=granter)
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
    with store_session() as session:
        refunds = deals.expire_groups(session, parse_now(now))
        print_json({"refunds": [r.__dict__ for r in refunds]})


@social_app.command("expire-bargains")
def expire_bargains(now: NowOption = None) -> None:
    """Mark the bargains whose time ran out as expired."""
    with store_session() as session:
        print_json({"expired": deals.expire_bargains(session, parse_now(now))})
