"""Numbers as a reader sees them: a change that rounds to 0.0 % is no news (neither red nor green,
no sign), and a channel or period without ad spend has no CAC ("–"), not ¥0.00."""

from __future__ import annotations

from fractions import Fraction

import pytest

from growthwheel.insight.kpis import cac
from growthwheel.web.i18n import format_change


@pytest.mark.parametrize("change", [0.0, -0.0001, 0.00049, -0.00049])
def test_a_change_that_rounds_to_zero_is_neutral(change: float) -> None:
    assert format_change(change, True) == ("0.0%", "neutral")
    assert format_change(change, False) == ("0.0%", "neutral")


def test_a_real_change_keeps_its_sign_and_tone() -> None:
    assert format_change(-0.0006, True) == ("-0.1%", "bad")
    assert format_change(-0.0006, False) == ("-0.1%", "good")
    assert format_change(0.125, True) == ("+12.5%", "good")
    assert format_change(None, True) == ("–", "none")


def test_cac_needs_spend() -> None:
    assert cac({"ad_spend": 0, "new_buyers": 12}) is None  # an organic channel: no acquisition cost
    assert cac({"ad_spend": None, "new_buyers": 12}) is None
    assert cac({"ad_spend": 30_000, "new_buyers": 0}) is None  # spend but nobody new: undefined
    assert cac({"ad_spend": 30_000, "new_buyers": 12}) == Fraction(2_500)
