"""Points ledger and membership tiers on SQLite and PostgreSQL, with answers worked out by hand."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from promo_store import at, points_state
from typer.testing import CliRunner

from growthwheel.config import Settings, set_settings
from growthwheel.loyalty import service as loyalty
from growthwheel.loyalty.cli import points_app
from growthwheel.loyalty.errors import InsufficientPointsError, TierConfigError
from growthwheel.loyalty.models import PointsAccount
from growthwheel.loyalty.service import LoyaltyProgram, TierSpec
from growthwheel.promotions import coupons
from growthwheel.promotions.cli import coupons_app, promotions_app
from growthwheel.promotions.models import CouponCode
from growthwheel.store.db import session_scope

PROGRAM = LoyaltyProgram(points_expiry_days=100)


def test_points_are_spent_soonest_to_expire_first_and_expire_on_time(store_cfg: Settings) -> None:
    # Lots (100-day life):  A 100 pts earned 01-01 → expires 04-11
    #                       C  30 pts adjusted 01-15 → expires 04-25
    #                       B  50 pts earned 02-01 → expires 05-12
    with session_scope(store_cfg) as s:
        loyalty.earn_points(s, "alice", 100, at("2026-01-01"), order_id="o-a", program=PROGRAM)
        loyalty.adjust_points(s, "alice", 30, at("2026-01-15"), note="goodwill", program=PROGRAM)
        loyalty.earn_points(s, "alice", 50, at("2026-02-01"), order_id="o-b", program=PROGRAM)
    assert points_state(store_cfg, "alice")["remaining"] == [100, 30, 50]

    # Spend 120 on 03-01: A (soonest) gives 100, C gives 20; B untouched.
    with session_scope(store_cfg) as s:
        assert loyalty.spend_points(s, "alice", 120, at("2026-03-01"), order_id="o-c") == 120
    state = points_state(store_cfg, "alice")
    assert state["remaining"] == [0, 10, 50]
    assert state["balance"] == state["ledger_sum"] == state["lots_remaining"] == 60

    # Before C's expiry nothing expires; on 04-30 C's 10 left expire (A is empty already).
    with session_scope(store_cfg) as s:
        assert loyalty.expire_points(s, at("2026-04-24")).points == 0
    with session_scope(store_cfg) as s:
        result = loyalty.expire_points(s, at("2026-04-30"))
        assert (result.customers, result.points) == (1, 10)
    with session_scope(store_cfg) as s:  # running the job again finds nothing
        assert loyalty.expire_points(s, at("2026-04-30")).points == 0
    state = points_state(store_cfg, "alice")
    assert state["remaining"] == [0, 0, 50]
    assert state["balance"] == state["ledger_sum"] == 50
    assert state["by_kind"] == {"earn": 150, "adjust": 30, "redeem": -120, "expire": -10}

    # 60 > 50 left: refused, nothing changes.
    refused = pytest.raises(InsufficientPointsError, match="has 50 points, 60 asked")
    with refused, session_scope(store_cfg) as s:
        loyalty.spend_points(s, "alice", 60, at("2026-05-01"), order_id="o-d")
    assert points_state(store_cfg, "alice")["balance"] == 50

    # After B's expiry (05-12) the 50 cannot be spent even before the job runs: expired lazily.
    with pytest.raises(InsufficientPointsError), session_scope(store_cfg) as s:
        loyalty.spend_points(s, "alice", 1, at("2026-05-12T00:00"), order_id="o-e")
    with session_scope(store_cfg) as s:
        loyalty.expire_points(s, at("2026-05-12"))
    state = points_state(store_cfg, "alice")
    assert state["balance"] == state["ledger_sum"] == 0


def test_the_balance_can_never_go_below_zero(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as s:
        loyalty.earn_points(s, "bob", 10, at("2026-01-01"), order_id="o1", program=PROGRAM)
    with pytest.raises(InsufficientPointsError), session_scope(store_cfg) as s:
        loyalty.adjust_points(s, "bob", -11, at("2026-01-02"), note="oops", program=PROGRAM)
    # Even a direct write is refused by the database's CHECK constraint.
    with pytest.raises(sa.exc.IntegrityError), session_scope(store_cfg) as s:
        s.execute(sa.update(PointsAccount).where(PointsAccount.customer_id == "bob").values(balance=-1))
    # A claw-back larger than the balance takes what is there and reports the rest.
    with session_scope(store_cfg) as s:
        loyalty.spend_points(s, "bob", 7, at("2026-01-03"), order_id="o2")
        assert loyalty.claw_back(s, "bob", 10, at("2026-01-04"), order_id="o1") == 3
    state = points_state(store_cfg, "bob")
    assert state["balance"] == state["ledger_sum"] == 0


def _ladder(session: object) -> None:
    loyalty.set_tiers(session, [  # type: ignore[arg-type]
        TierSpec(code="silver", name="白银", min_growth=1000, points_multiplier_bp=12_000),
        TierSpec(code="gold", name="黄金", min_growth=5000, points_multiplier_bp=15_000, free_shipping=True),
    ], now=at("2025-01-01"))


def test_tiers_follow_growth_over_a_rolling_365_day_window(store_cfg: Settings) -> None:
    # Growth 3000 on 2025-01-10 (silver), 2500 on 2025-06-01 (5500: gold at once).
    # The window is (now - 365 days, now]: on 2026-01-09 both still count (gold); on 2026-01-11
    # the January growth has left (2500: silver); on 2026-06-02 nothing is left (no tier).
    with session_scope(store_cfg) as s:
        _ladder(s)
        loyalty.add_growth(s, "carol", 3000, effective_at=at("2025-01-10"), kind="earn", order_id="o1")
        assert loyalty.evaluate_member(s, "carol", at("2025-01-10")) == (None, "silver")
        loyalty.add_growth(s, "carol", 2500, effective_at=at("2025-06-01"), kind="earn", order_id="o2")
        assert loyalty.evaluate_member(s, "carol", at("2025-06-01")) == ("silver", "gold")
    with session_scope(store_cfg) as s:
        assert loyalty.recompute_tiers(s, at("2026-01-09")) == []
    with session_scope(store_cfg) as s:
        changes = loyalty.recompute_tiers(s, at("2026-01-11"))
        assert [(c.customer_id, c.old, c.new) for c in changes] == [("carol", "gold", "silver")]
        member = loyalty.ensure_member(s, "carol")
        assert member.growth == 2500
    with session_scope(store_cfg) as s:
        changes = loyalty.recompute_tiers(s, at("2026-06-02"))
        assert [(c.old, c.new) for c in changes] == [("silver", None)]


def test_the_tier_a_growth_reaches_is_chosen_in_sql_as_tier_for_does(store_cfg: Settings) -> None:
    from growthwheel.loyalty import repository

    start, end = at("2025-01-01"), at("2025-12-31")
    with session_scope(store_cfg) as s:
        _ladder(s)
        ladder = repository.tiers(s)
        growths = []
        for amount in [999, 1, 4000, -6000, 999, 1, 4999, 1, 7000]:
            loyalty.add_growth(s, "dave", amount, effective_at=at("2025-03-01"), kind="earn")
            growth, code = repository.growth_and_tier(s, "dave", start, end)
            assert code == loyalty.tier_for(ladder, growth)
            growths.append(growth)
        assert growths == [999, 1000, 5000, -1000, -1, 0, 4999, 5000, 12000]
        seen = [repository.growth_and_tier(s, "dave", start, end)]
        loyalty.add_growth(s, "erin", 5000, effective_at=at("2025-12-31"), kind="earn")
        loyalty.add_growth(s, "erin", 9000, effective_at=at("2025-01-01"), kind="earn")  # not in (start, end]
        seen.append(repository.growth_and_tier(s, "erin", start, end))
        seen.append(repository.growth_and_tier(s, "nobody", start, end))
    assert seen == [(12000, "gold"), (5000, "gold"), (0, None)]


def test_growth_earned_at_checkout_counts_at_once_in_the_window(store_cfg: Settings) -> None:
    # earn_growth is add_growth + evaluate_member (one statement on PostgreSQL): the new entry is
    # counted although the query's snapshot cannot see it, and entries older than 365 days are not.
    program = loyalty.DEFAULT_PROGRAM
    with session_scope(store_cfg) as s:
        _ladder(s)
        loyalty.add_growth(s, "gina", 4000, effective_at=at("2024-01-01"), kind="earn")  # left the window
        steps = [loyalty.earn_growth(s, "gina", amount, at(day), order_id=f"g{n}", program=program)
                 for n, (amount, day) in enumerate([(0, "2025-02-01"), (999, "2025-02-02"), (1, "2025-02-03"),
                                                     (4000, "2025-02-04"), (-4001, "2025-02-05")])]
        member = loyalty.ensure_member(s, "gina")
        entries = s.scalar(sa.text("SELECT count(*) FROM growth_entries WHERE customer_id = 'gina'"))
    assert steps == [(None, None), (None, None), (None, "silver"), ("silver", "gold"), ("gold", None)]
    assert member.growth == 999
    assert entries == 5  # the zero amount wrote no entry


def test_a_tier_ladder_must_rise(store_cfg: Settings) -> None:
    with pytest.raises(TierConfigError, match="strictly increasing"), session_scope(store_cfg) as s:
        loyalty.set_tiers(s, [TierSpec("a", "A", 100), TierSpec("b", "B", 100)])
    with pytest.raises(TierConfigError, match="unique"), session_scope(store_cfg) as s:
        loyalty.set_tiers(s, [TierSpec("a", "A", 100), TierSpec("a", "B", 200)])


def test_birthday_coupon_follows_the_shop_clock_once_a_year(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as s:
        batch = coupons.create_batch(
            s, name="生日券", definition={"reward": {"type": "order_amount_off", "amount": 2000}},
            valid_from=at("2025-01-01"), valid_until=at("2027-01-01"))
        tiers = [TierSpec("silver", "白银", 0, birthday_batch_id=batch.id)]
        loyalty.set_tiers(s, tiers, now=at("2025-01-01"))
        loyalty.set_birthday(s, "dan", date(1990, 3, 15))
        loyalty.set_birthday(s, "leap", date(2000, 2, 29))
        loyalty.evaluate_member(s, "dan", at("2025-01-01"))
        loyalty.evaluate_member(s, "leap", at("2025-01-01"))
    # 2026-03-14 16:30 UTC is already 03-15 00:30 in Shanghai: Dan's birthday there.
    with session_scope(store_cfg) as s:
        assert loyalty.issue_birthday_coupons(s, at("2026-03-14T15:30"), "Asia/Shanghai") == {}
    with session_scope(store_cfg) as s:
        issued = loyalty.issue_birthday_coupons(s, at("2026-03-14T16:30"), "Asia/Shanghai")
        assert list(issued) == ["dan"]
    with session_scope(store_cfg) as s:  # the job runs again that day: no second coupon
        assert loyalty.issue_birthday_coupons(s, at("2026-03-15T02:00"), "Asia/Shanghai") == {}
        codes = s.scalars(sa.select(CouponCode).where(CouponCode.customer_id == "dan")).all()
        assert [(c.issue_key, c.max_uses) for c in codes] == [("birthday:2026", 1)]
    # Born on 29 February: 28 February in a common year.
    with session_scope(store_cfg) as s:
        assert list(loyalty.issue_birthday_coupons(s, at("2026-02-28T04:00"), "Asia/Shanghai")) == ["leap"]


def test_cli_creates_generates_shows_and_runs_the_jobs(store_cfg: Settings, tmp_path: Path) -> None:
    app = typer.Typer()
    app.add_typer(promotions_app, name="promotions")
    app.add_typer(coupons_app, name="coupons")
    app.add_typer(points_app, name="points")
    runner = CliRunner()
    set_settings(store_cfg)

    def run(*args: str) -> Any:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    try:
        batch_file = tmp_path / "batch.json"
        batch_file.write_text(json.dumps({
            "name": "新人券", "definition": {"reward": {"type": "order_amount_off", "amount": 500},
                                          "conditions": {"first_order_only": True}},
            "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2026-12-31T00:00:00Z"}), encoding="utf-8")
        batch = json.loads(run("coupons", "create", "--file", str(batch_file), "--json"))
        codes = run("coupons", "generate", batch["id"], "--count", "3").split()
        assert len(codes) == 3
        assert all(coupons.well_formed(c) for c in codes)
        shown = json.loads(run("coupons", "show", codes[0], "--json"))
        assert (shown["batch_id"], shown["uses"], shown["max_uses"]) == (batch["id"], 0, 1)
        promo_file = tmp_path / "promo.json"
        promo_file.write_text(json.dumps({"name": "满200减20", "status": "active", "definition": {
            "reward": {"type": "spend_tiers", "tiers": [[20000, 2000]]}}}), encoding="utf-8")
        run("promotions", "create", "--file", str(promo_file))
        listed = json.loads(run("promotions", "list", "--json"))
        assert [(p["name"], p["layer"], p["status"]) for p in listed] == [("满200减20", "order", "active")]
        with session_scope(store_cfg) as s:
            loyalty.earn_points(s, "eve", 80, at("2026-01-01"), program=PROGRAM)  # expires 04-11
        assert json.loads(run("points", "expire", "--now", "2026-05-01T00:00:00+00:00", "--json")) == {
            "customers": 1, "points": 80}
        daily = json.loads(run("points", "daily", "--now", "2026-05-02T00:00:00+00:00", "--json"))
        assert daily["points_expired"] == 0
        bad = runner.invoke(app, ["promotions", "create", "--file", str(batch_file)])
        assert bad.exit_code != 0
        assert "valid_from: Extra inputs are not permitted" in str(bad.exception)  # a batch, not a promotion
    finally:
        set_settings(None)
