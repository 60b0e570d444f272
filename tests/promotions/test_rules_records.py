"""The pricing core's fast paths give exactly what the plain ones give.

``price_cart`` builds its result records without the frozen dataclasses' generated ``__init__``
and formats nudge amounts by integer arithmetic; these tests hold those shortcuts to the classes'
fields and to :func:`growthwheel.kit.money.major_text`.
"""

from __future__ import annotations

import dataclasses
import pickle
import random

import pytest

from growthwheel.kit.money import currency_exponent, major_text
from growthwheel.promotions.rules import (
    AppliedPromotion,
    Layer,
    LineDiscount,
    NotApplied,
    Nudge,
    PricedLine,
    format_money,
)
from growthwheel.promotions.rules.model import (
    new_applied,
    new_line_discount,
    new_not_applied,
    new_priced_line,
)

NUDGE = Nudge("p1", 800, 0, 2000, "spend 8.00 more to save 20.00")
DISCOUNT = LineDiscount("p1", Layer.ORDER, 120, "CODE")

CASES: list[tuple[type, object, tuple[object, ...]]] = [
    (LineDiscount, new_line_discount, ("p1", Layer.ITEM, 350, None)),
    (LineDiscount, new_line_discount, ("k1", Layer.COUPON, 1, "SAVE5")),
    (AppliedPromotion, new_applied, ("p2", "满200减20", Layer.ORDER, 2000, (("l1", 1200), ("l2", 800)))),
    (AppliedPromotion, new_applied, ("g", "gift", Layer.ORDER, 0, (), None, 0, "sku9", 2)),
    (AppliedPromotion, new_applied, ("s", "ship", Layer.COUPON, 0, (), "FREE", 800, None, 0)),
    (PricedLine, new_priced_line, ("l1", "sku1", 1999, 3, 5997, (DISCOUNT,), 0, 0, 5877)),
    (PricedLine, new_priced_line, ("gift:p", "sku9", 0, 1, 0, (), 0, 0, 0, True)),
    (NotApplied, new_not_applied, ("p3", "promo", Layer.ITEM, "no_stock", "the flash sale is sold out")),
    (NotApplied, new_not_applied, ("p4", "满300减30", Layer.ORDER, "below_threshold", "spend", None, NUDGE)),
]


@pytest.mark.parametrize(("cls", "build", "args"), CASES)
def test_a_fast_record_is_the_record_its_constructor_builds(cls: type, build: object,
                                                             args: tuple[object, ...]) -> None:
    assert callable(build)
    fast, plain = build(*args), cls(*args)
    assert type(fast) is cls
    assert fast == plain
    assert hash(fast) == hash(plain)
    assert repr(fast) == repr(plain)
    assert list(vars(fast)) == [f.name for f in dataclasses.fields(cls)]  # every field, in order
    assert dataclasses.asdict(fast) == dataclasses.asdict(plain)
    assert pickle.loads(pickle.dumps(fast)) == plain
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.promotion_id = "changed"  # type: ignore[attr-defined]


def test_every_field_of_the_fast_records_is_covered() -> None:
    """A field added to a record class must be added to its fast builder (and to CASES)."""
    for cls, build, args in CASES:
        assert callable(build)
        assert len(vars(build(*args))) == len(dataclasses.fields(cls))
    covered = {cls for cls, _, _ in CASES}
    assert covered == {LineDiscount, AppliedPromotion, PricedLine, NotApplied}


@pytest.mark.parametrize("currency", ["CNY", "JPY", "KWD", "usd"])
def test_money_text_by_integers_is_the_decimal_text(currency: str) -> None:
    rnd = random.Random(11)
    amounts = [0, 1, -1, 5, -5, 9, 10, 99, 100, -100, 101, 10**13, -(10**13), 10**19 - 1, 10**20, -(10**21)]
    amounts += [rnd.randint(-10**16, 10**16) for _ in range(2000)]
    exponent = currency_exponent(currency)
    for amount in amounts:
        assert format_money(amount, currency) == major_text(amount, exponent), amount


def test_money_text_refuses_an_unknown_currency_every_time() -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match="unknown currency"):
            format_money(100, "XXX")
