"""Bargain (砍价): the cut sequence (property-based and by hand), and cutting on SQLite and
PostgreSQL — concurrent helpers never overshoot the floor, one cut per helper, expiry."""

from __future__ import annotations

import itertools
import random
import threading
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from growthwheel.config import Settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.social import bargain, deals
from growthwheel.store.db import session_scope

T0 = datetime(2026, 6, 18, 12, 0, tzinfo=UTC)


@st.composite
def bargains(draw: st.DrawFn) -> tuple[int, int, int, int]:
    floor = draw(st.integers(0, 10**7))
    cuts = draw(st.integers(1, 200))
    start = floor + draw(st.integers(cuts, cuts + 10**7))
    return start, floor, cuts, draw(st.integers(0, 2**62))


@settings(max_examples=300, deadline=None)
@given(bargains())
def test_cuts_are_positive_and_reach_the_floor_exactly_at_the_last_cut(
    case: tuple[int, int, int, int],
) -> None:
    start, floor, cuts, seed = case
    sequence = bargain.cut_sequence(start, floor, cuts, seed)
    assert len(sequence) == cuts
    assert all(isinstance(c, int) and c >= 1 for c in sequence)
    assert sum(sequence) == start - floor
    prices = [bargain.price_after(start, sequence, n) for n in range(1, cuts + 1)]
    assert all(p > floor for p in prices[:-1])  # never at the floor before the K-th cut ...
    assert prices[-1] == floor  # ... and exactly there at it, never below
    assert bargain.cut_sequence(start, floor, cuts, seed) == sequence  # deterministic in the seed


def test_a_worked_sequence() -> None:
    # P = 100.00, F = 90.00, K = 3, decay q = 1/2, seed 7. random.Random(7) draws the jitters
    # 91, 69, 100, so the weights j_i * 1^i * 2^(2-i) are 364, 138, 100 (sum 602). Each cut gets
    # 1 fen; the other 1000 - 3 = 997 fen split as 997*364/602 = 602.84, 997*138/602 = 228.55,
    # 997*100/602 = 165.61 -> floors 602 + 228 + 165 = 995; the 2 fen left go to the largest
    # remainders (.84 and .61): 603, 228, 166. Plus the 1 fen each: 604, 229, 167 (sum 1000).
    rng = random.Random(7)
    assert [rng.randint(50, 150) for _ in range(3)] == [91, 69, 100]
    assert bargain.cut_sequence(10000, 9000, 3, 7, decay=Fraction(1, 2)) == [604, 229, 167]
    # Smallest bargain: K cuts of one fen each.
    assert bargain.cut_sequence(1003, 1000, 3, 1) == [1, 1, 1]


def test_expected_cut_size_decreases() -> None:
    # With decay 4/5 the expected share of cut i is proportional to 0.8^i (jitter mean 100), so over
    # many seeds the mean first cut is about 0.8^-9 ≈ 7.5 times the mean tenth cut.
    means = [0.0] * 10
    seeds = range(400)
    for seed in seeds:
        for i, amount in enumerate(bargain.cut_sequence(1_000_000, 0, 10, seed)):
            means[i] += amount / len(seeds)
    assert all(a > b for a, b in itertools.pairwise(means))
    expected_first = 1_000_000 * (1 - 0.8) / (1 - 0.8**10)  # geometric share of the first cut
    assert means[0] == pytest.approx(expected_first, rel=0.05)
    assert bargain.cut_sequence(10_000, 0, 4, 3, decay=Fraction(1)) != bargain.cut_sequence(10_000, 0, 4, 4)


@pytest.mark.parametrize(("args", "field"), [
    ((100, 100, 1), "start_price"), ((100, -1, 1), "floor_price"), ((100, 98, 3), "cuts"),
    ((100, 0, 0), "cuts"), ((10**6, 0, bargain.MAX_CUTS + 1), "cuts"),
])
def test_impossible_bargains_are_refused_naming_the_field(args: tuple[int, int, int], field: str) -> None:
    with pytest.raises(InvalidArgumentError, match=rf"^{field}:"):
        bargain.cut_sequence(*args, seed=1)


def make_offer(cfg: Settings, **overrides: object) -> str:
    fields: dict[str, object] = {"name": "Teapot 砍价", "sku": "POT-1", "currency": "CNY",
                                 "start_price": 19900, "floor_price": 9900, "cuts": 5,
                                 "duration_minutes": 24 * 60, **overrides}
    with session_scope(cfg) as session:
        return deals.create_offer(session, principal=None, **fields).id  # type: ignore[arg-type]


def test_cuts_follow_the_sequence_one_per_helper_and_stop_at_the_floor(store_cfg: Settings) -> None:
    offer_id = make_offer(store_cfg)
    with session_scope(store_cfg) as session:
        row = deals.start_bargain(session, offer_id, "owner", now=T0)
        bargain_id, seed = row.id, row.seed
        with pytest.raises(deals.BargainExistsError):
            deals.start_bargain(session, offer_id, "owner", now=T0)
    expected = bargain.cut_sequence(19900, 9900, 5, seed)
    with session_scope(store_cfg) as session, pytest.raises(InvalidArgumentError, match=r"^helper_id:"):
        deals.cut(session, bargain_id, "owner", now=T0)
    for n in range(1, 6):
        with session_scope(store_cfg) as session:
            done = deals.cut(session, bargain_id, f"friend-{n}", now=T0 + timedelta(minutes=n))
            assert (done.seq, done.amount) == (n, expected[n - 1])
            assert done.price_after == 19900 - sum(expected[:n])
        if n == 2:
            with session_scope(store_cfg) as session, pytest.raises(deals.AlreadyCutError):
                deals.cut(session, bargain_id, "friend-2", now=T0 + timedelta(minutes=n))
    with session_scope(store_cfg) as session:
        row = deals.get_bargain(session, bargain_id)
        assert (row.status, row.current_price, row.cuts_done) == ("reached", 9900, 5)
        assert row.reached_at == T0 + timedelta(minutes=5)
        with pytest.raises(deals.BargainClosedError, match="reached"):
            deals.cut(session, bargain_id, "friend-6", now=T0 + timedelta(minutes=6))


def test_concurrent_helpers_never_overshoot_the_floor(store_cfg: Settings) -> None:
    offer_id = make_offer(store_cfg, cuts=8)
    with session_scope(store_cfg) as session:
        row = deals.start_bargain(session, offer_id, "owner", now=T0)
        bargain_id, seed = row.id, row.seed
    helpers = [f"h{n}" for n in range(20)] + ["h0", "h1", "h2", "h3"]  # four try to cut twice
    barrier = threading.Barrier(len(helpers))
    results: list[tuple[str, object]] = []
    lock = threading.Lock()

    def cut(helper: str) -> None:
        barrier.wait()
        try:
            with session_scope(store_cfg) as session:
                done = deals.cut(session, bargain_id, helper, now=T0 + timedelta(minutes=1))
                outcome: object = (done.seq, done.amount)
        except (deals.BargainClosedError, deals.AlreadyCutError) as exc:
            outcome = exc.code
        except BaseException as exc:  # a defect: shown by the assertion below
            outcome = repr(exc)
        with lock:
            results.append((helper, outcome))

    threads = [threading.Thread(target=cut, args=(h,)) for h in helpers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    cuts = sorted(o for _h, o in results if isinstance(o, tuple))
    expected = bargain.cut_sequence(19900, 9900, 8, seed)
    assert cuts == [(n, expected[n - 1]) for n in range(1, 9)]  # each cut number taken exactly once
    assert {o for _h, o in results if not isinstance(o, tuple)} <= {"bargain_closed", "already_cut"}
    winners = [h for h, o in results if isinstance(o, tuple)]
    assert len(set(winners)) == len(winners)  # nobody cut twice
    with session_scope(store_cfg) as session:
        row = deals.get_bargain(session, bargain_id)
        assert (row.status, row.current_price, row.cuts_done) == ("reached", 9900, 8)
        recorded = deals.bargain_cuts(session, bargain_id)
        assert sum(c.amount for c in recorded) == 10000
        assert min(c.price_after for c in recorded) == 9900


def test_an_expired_bargain_takes_no_cut(store_cfg: Settings) -> None:
    offer_id = make_offer(store_cfg, duration_minutes=60)
    with session_scope(store_cfg) as session:
        bargain_id = deals.start_bargain(session, offer_id, "owner", now=T0).id
        deals.cut(session, bargain_id, "friend", now=T0 + timedelta(minutes=59))
    with session_scope(store_cfg) as session:
        with pytest.raises(deals.BargainClosedError, match="expired"):
            deals.cut(session, bargain_id, "late", now=T0 + timedelta(minutes=60))
    with session_scope(store_cfg) as session:
        assert deals.expire_bargains(session, T0 + timedelta(minutes=59)) == 0
        assert deals.expire_bargains(session, T0 + timedelta(minutes=61)) == 1
    with session_scope(store_cfg) as session:
        row = deals.get_bargain(session, bargain_id)
        assert row.status == "expired"
        assert row.cuts_done == 1
        assert row.current_price == 19900 - deals.bargain_cuts(session, bargain_id)[0].amount
        # the customer may start a new bargain on the offer once the old one is over
        assert deals.start_bargain(session, offer_id, "owner", now=T0 + timedelta(hours=2)).status == "open"
