"""Pacing against target (pure) and follower tiers, worked by hand."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from growthwheel.marketing.campaigns import pacing
from growthwheel.marketing.influencers.tiers import tier_of

D = date(2025, 11, 1)
WARM = pacing.Phase("warm_up", "蓄水", D, D + timedelta(days=3))  # 4 days
PEAK = pacing.Phase("peak", "爆发", D + timedelta(days=4), D + timedelta(days=6))  # 3 days


def test_last_year_profile_spreads_the_target_like_last_year() -> None:
    shift = pacing.LAST_YEAR_SHIFT
    # Last year: warm-up days sold 1 each (weight 4), peak days 2, 2, 8 (weight 12).
    history = {d - shift: v for d, v in zip(WARM.days() + PEAK.days(), [1, 1, 1, 1, 2, 2, 8], strict=True)}
    out = pacing.pace_phases([WARM, PEAK], as_of=D + timedelta(days=5), target_gmv=1600.0,
                             target_new_buyers=None,
                             gmv_by_day=dict.fromkeys(WARM.days() + PEAK.days(), 100.0),
                             new_buyers_by_day={}, profile="last_year", history=history)
    warm, peak = out
    assert warm.share == pytest.approx(0.25)
    assert peak.share == pytest.approx(0.75)
    assert warm.gmv.target == pytest.approx(400)
    assert warm.gmv.status == "met"  # ended with 400 of 400
    # Peak: target 1200, after 2 of 3 days last year's profile expects (2 + 2) / 12 of it = 400.
    assert peak.gmv.expected == pytest.approx(400)
    assert peak.gmv.actual == pytest.approx(200)
    assert peak.gmv.pace == pytest.approx(0.5)
    assert peak.gmv.projected == pytest.approx(600)
    assert peak.gmv.status == "behind"
    assert peak.new_buyers.status == "no_target"
    total = pacing.overall(out, "gmv")
    assert total.expected == pytest.approx(800)
    assert total.actual == pytest.approx(600)
    assert total.status == "behind"


def test_linear_and_explicit_shares_and_the_fallback() -> None:
    # No history a year ago: last_year falls back to linear (days), explicit share kept.
    out = pacing.pace_phases([pacing.Phase("warm_up", "a", D, D + timedelta(days=3), share=0.5), PEAK],
                             as_of=D + timedelta(days=1), target_gmv=1000.0, target_new_buyers=10.0,
                             gmv_by_day={D: 130.0, D + timedelta(days=1): 130.0}, new_buyers_by_day={D: 5.0},
                             profile="last_year", history={})
    assert [p.share for p in out] == pytest.approx([0.5, 0.5])
    assert out[0].gmv.expected == pytest.approx(250)
    assert out[0].gmv.pace == pytest.approx(260 / 250)
    assert out[0].gmv.status == "on_track"
    assert out[0].new_buyers.status == "ahead"  # 5 against 2.5 expected
    assert out[1].gmv.status == "not_started"
    assert pacing.overall(out, "gmv").projected == pytest.approx(1040)
    with pytest.raises(ValueError, match="shares"):
        pacing.pace_phases([pacing.Phase("peak", "x", D, D, share=0.7), pacing.Phase("peak", "y", D, D, 0.6)],
                           as_of=D, target_gmv=1.0, target_new_buyers=None, gmv_by_day={},
                           new_buyers_by_day={})


@pytest.mark.parametrize(("followers", "tier"), [
    (12_000_000, "head"), (1_000_000, "head"), (999_999, "waist"), (500_000, "waist"), (100_000, "waist"),
    (99_999, "tail"), (10_000, "tail"), (9_999, "koc"), (0, "koc"),
])
def test_tiers_close_the_plans_gaps(followers: int, tier: str) -> None:
    assert tier_of(followers) == tier


def test_negative_followers_are_refused() -> None:
    with pytest.raises(ValueError, match="followers"):
        tier_of(-1)
