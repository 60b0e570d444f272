"""What pricing says to a person — the checkout nudge ("spend ¥12.00 more to save ¥30.00") and
why a promotion did not apply — in their language, from the catalogues: the console's
price-a-cart tryout and the pricing API (which follows ``Accept-Language``; English keeps the
pricing core's own text) say it the same way."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from growthwheel.kit.money import currency_exponent
from growthwheel.web.i18n import Translator, format_money, k

#: Why a promotion did not apply: the pricing core's code → catalogue key.
REASON_KEYS = {
    "not_started": k("promotions.reason.not_started"),
    "ended": k("promotions.reason.ended"),
    "wrong_channel": k("promotions.reason.wrong_channel"),
    "wrong_tier": k("promotions.reason.wrong_tier"),
    "wrong_segment": k("promotions.reason.wrong_segment"),
    "not_first_order": k("promotions.reason.not_first_order"),
    "no_eligible_lines": k("promotions.reason.no_eligible_lines"),
    "below_min_quantity": k("promotions.reason.below_min_quantity"),
    "below_min_amount": k("promotions.reason.below_min_amount"),
    "below_threshold": k("promotions.reason.below_threshold"),
    "no_stock": k("promotions.reason.no_stock"),
    "no_member_price": k("promotions.reason.no_member_price"),
    "incomplete_bundle": k("promotions.reason.incomplete_bundle"),
    "no_benefit": k("promotions.reason.no_benefit"),
    "not_combinable": k("promotions.reason.not_combinable"),
    "worse_combination": k("promotions.reason.worse_combination"),
}


def reason_text(t: Translator, code: str) -> str:
    """Why a promotion did not apply, in ``t``'s language."""
    return t(REASON_KEYS.get(code, k("promotions.reason.other")))


class NudgeFigures(Protocol):
    """What a nudge says: how much (or how many items) is missing and what it would save."""

    @property
    def short_amount(self) -> int: ...

    @property
    def short_quantity(self) -> int: ...

    @property
    def would_save(self) -> int: ...


def money_text(minor: int, currency: str) -> str:
    """Minor units as the shop's money text (``¥1,234.50``)."""
    exponent = currency_exponent(currency)
    return format_money(Decimal(minor).scaleb(-exponent), currency, places=exponent)


def nudge_text(t: Translator, nudge: NudgeFigures, currency: str) -> str:
    """The nudge in ``t``'s language."""
    if nudge.short_quantity:
        if nudge.would_save:
            return t(k("promotions.nudge.items_save"), n=nudge.short_quantity,
                     save=money_text(nudge.would_save, currency))
        return t(k("promotions.nudge.items"), n=nudge.short_quantity)
    if nudge.would_save:
        return t(k("promotions.nudge.spend_save"), short=money_text(nudge.short_amount, currency),
                 save=money_text(nudge.would_save, currency))
    return t(k("promotions.nudge.spend"), short=money_text(nudge.short_amount, currency))
