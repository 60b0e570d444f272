"""``growthwheel points …``: the daily points and membership jobs (moved from ``promotions.cli``).

Wiring (in ``cli/main.py``)::

    from growthwheel.loyalty.cli import loyalty_app, points_app
    app.add_typer(points_app, name="points")
    app.add_typer(loyalty_app, name="loyalty")

The daily jobs (``points expire``, ``points daily``; the worker runs them on its schedule) commit a
batch of customers per transaction (``--batch``, default ``loyalty.DAILY_BATCH``), so checkouts
never wait for a whole run, and a run after a crash does only what is left.
"""

from __future__ import annotations

from typing import Annotated

import typer

from growthwheel.cli.common import out, parse_now, print_json
from growthwheel.config import settings
from growthwheel.loyalty import service as loyalty
from growthwheel.store.db import migrate, session_scope

points_app = typer.Typer(help="Points and membership jobs.", no_args_is_help=True)
loyalty_app = typer.Typer(help="Membership from the shop's history.", no_args_is_help=True)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON")]
Now = Annotated[str | None, typer.Option("--now", help="Run as of this time (ISO, with zone; default now)")]


# ---------------------------------------------------------------------------------------------
# points and membership jobs
# ---------------------------------------------------------------------------------------------


Batch = Annotated[int | None, typer.Option("--batch", min=1, max=10_000,
                                            help="Customers per transaction (default 20)")]


def _unit_of_work() -> loyalty.SessionFactory:
    """One store transaction per call (for the jobs that commit in batches)."""
    cfg = settings()
    migrate(cfg)
    return lambda: session_scope(cfg)


@points_app.command("expire")
def expire(now: Now = None, as_json: AsJson = False, batch: Batch = None) -> None:
    """Expire every lot of points whose expiry has passed (the daily expiry job)."""
    result = loyalty.expire_points_batched(_unit_of_work(), parse_now(now), batch=batch)
    if as_json:
        print_json({"customers": result.customers, "points": result.points})
    else:
        out.print(f"{result.points:,} points expired for {result.customers:,} customer(s)", highlight=False)


@points_app.command("daily")
def daily(now: Now = None, as_json: AsJson = False, batch: Batch = None) -> None:
    """The daily jobs: expire points, re-evaluate tiers over the rolling window, issue birthday
    coupons (birthdays by the shop's time zone); a batch of customers per transaction."""
    when = parse_now(now)
    done = loyalty.run_daily(_unit_of_work(), when, settings().shop().timezone, batch=batch)
    expired, changes, birthdays = done.expired, done.tier_changes, done.birthday_coupons
    result = {"points_expired": expired.points, "customers_expired": expired.customers,
              "tier_changes": [{"customer_id": c.customer_id, "old": c.old, "new": c.new} for c in changes],
              "birthday_coupons": birthdays}
    if as_json:
        print_json(result)
        return
    out.print(f"{expired.points:,} points expired; {len(changes)} tier change(s); "
              f"{len(birthdays)} birthday coupon(s)", highlight=False)


@loyalty_app.command("sync")
def sync(as_json: AsJson = False) -> None:
    """Make members from the imported customers and orders: growth value and tiers from the paid
    orders over the rolling window, birthdays from the customers (idempotent; a batch of customers
    per transaction; through the server when one owns the warehouse)."""
    from growthwheel.jobs import warehouse_access

    cfg = settings()
    migrate(cfg)
    result = warehouse_access.sync_members(cfg, lambda: session_scope(cfg))
    if as_json:
        print_json(result)
        return
    out.print(f"{result['customers']:,} member(s) synced: {result['growth_entries']:,} imported order(s) "
              f"in the window, {result['with_tier']:,} with a tier, {result['with_birthday']:,} with a "
              "birthday", highlight=False)
