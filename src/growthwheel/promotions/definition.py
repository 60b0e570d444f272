"""Promotions and coupons stored as data: the JSON shape, validated into the pricing core's dataclasses.

A promotion definition (``promotions.definition``) and a coupon batch definition
(``coupon_batches.definition``) are JSON objects; amounts are integers in minor units and rates in
basis points (10000 = 100 %)::

    {"reward": {"type": "spend_tiers", "tiers": [[20000, 2000], [30000, 5000]]},
     "conditions": {"categories": ["tea"], "min_quantity": 0},
     "exclusive": false, "combines_with": [], "priority": 0}

Reward ``type`` is one of ``percent_off`` (rate_bp), ``amount_off`` (amount), ``flash_sale``
(price; the stock is the promotion's ``stock``), ``member_price``, ``nth_item`` (n, rate_bp),
``bundle`` (skus, price), ``spend_tiers`` (tiers of [threshold, off]), ``every_x_off_y`` (every,
off, cap), ``quantity_tiers`` (tiers of [quantity, rate_bp]), ``order_amount_off`` (amount),
``order_percent_off`` (rate_bp, cap), ``gift`` (sku, quantity, value), ``free_shipping``. The
first six are item rewards (layer ``item``), the others order rewards (layer ``order``, or
``coupon`` for a coupon batch). See ``promotions.rules`` for what each does.

``holdout`` (optional) is the key of an experiment of kind ``holdout`` (see ``experiments``): the
customers it holds out do not get the promotion (or the coupon batch's discount), so its effect
can be measured; :func:`check_holdout` checks the key when the promotion or batch is created.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)
from sqlalchemy.orm import Session

from growthwheel.errors import InvalidArgumentError
from growthwheel.experiments import repository as experiments_repository
from growthwheel.experiments.schemas import KEY_PATTERN
from growthwheel.promotions import rules

_Money = Annotated[int, Field(ge=0, le=10**13)]
_Rate = Annotated[int, Field(ge=1, le=rules.BASIS)]
_Sku = Annotated[str, Field(min_length=1, max_length=128)]
_Quantity = Annotated[int, Field(ge=1, le=10**6)]
_Ref = Annotated[str, Field(min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PercentOffIn(_Strict):
    """Item: a percentage off each eligible line."""

    type: Literal["percent_off"]
    rate_bp: _Rate


class AmountOffIn(_Strict):
    """Item: an amount off each eligible unit."""

    type: Literal["amount_off"]
    amount: Annotated[int, Field(ge=1, le=10**13)]


class FlashSaleIn(_Strict):
    """Item: flash-sale price (秒杀) while the promotion's stock lasts."""

    type: Literal["flash_sale"]
    price: _Money


class MemberPriceIn(_Strict):
    """Item: member price by tier (from the cart line's ``member_prices``)."""

    type: Literal["member_price"]


class NthItemIn(_Strict):
    """Item: every n-th unit ``rate_bp`` off (第二件半价)."""

    type: Literal["nth_item"]
    n: Annotated[int, Field(ge=2, le=1000)]
    rate_bp: _Rate


class BundleIn(_Strict):
    """Item: a set of skus together for a price."""

    type: Literal["bundle"]
    skus: Annotated[list[_Sku], Field(min_length=2, max_length=50)]
    price: _Money


class SpendTiersIn(_Strict):
    """Order: spend-X-save-Y tiers (满减)."""

    type: Literal["spend_tiers"]
    tiers: Annotated[list[tuple[_Money, _Money]], Field(min_length=1, max_length=20)]


class EveryXOffYIn(_Strict):
    """Order: every X save Y (每满减), optional cap."""

    type: Literal["every_x_off_y"]
    every: Annotated[int, Field(ge=1, le=10**13)]
    off: Annotated[int, Field(ge=1, le=10**13)]
    cap: Annotated[int, Field(ge=1, le=10**13)] | None = None


class QuantityTiersIn(_Strict):
    """Order: N items X % off (满件折)."""

    type: Literal["quantity_tiers"]
    tiers: Annotated[list[tuple[_Quantity, _Rate]], Field(min_length=1, max_length=20)]


class OrderAmountOffIn(_Strict):
    """Order / coupon: an amount off the eligible lines."""

    type: Literal["order_amount_off"]
    amount: Annotated[int, Field(ge=1, le=10**13)]


class OrderPercentOffIn(_Strict):
    """Order / coupon: a percentage off the eligible lines, optional cap."""

    type: Literal["order_percent_off"]
    rate_bp: _Rate
    cap: Annotated[int, Field(ge=1, le=10**13)] | None = None


class GiftIn(_Strict):
    """Order: gift with purchase (满赠)."""

    type: Literal["gift"]
    sku: Annotated[str, Field(min_length=1, max_length=128)]
    quantity: Annotated[int, Field(ge=1, le=1000)] = 1
    value: _Money = 0


class FreeShippingIn(_Strict):
    """Order: free shipping (包邮)."""

    type: Literal["free_shipping"]


RewardIn = Annotated[
    PercentOffIn | AmountOffIn | FlashSaleIn | MemberPriceIn | NthItemIn | BundleIn | SpendTiersIn
    | EveryXOffYIn | QuantityTiersIn | OrderAmountOffIn | OrderPercentOffIn | GiftIn | FreeShippingIn,
    Field(discriminator="type"),
]
ITEM_TYPES = frozenset({"percent_off", "amount_off", "flash_sale", "member_price", "nth_item", "bundle"})

_Names = Annotated[list[Annotated[str, Field(min_length=1, max_length=128)]], Field(max_length=1000)]


class ConditionsIn(_Strict):
    """When a promotion applies (empty = no restriction); see ``rules.Conditions``."""

    skus: _Names = []
    categories: _Names = []
    segments: _Names = []
    tiers: _Names = []
    channels: _Names = []
    first_order_only: bool = False
    min_amount: _Money = 0
    min_quantity: Annotated[int, Field(ge=0, le=10**6)] = 0


class Definition(_Strict):
    """A promotion's or coupon batch's pricing definition."""

    reward: RewardIn
    conditions: ConditionsIn = ConditionsIn()
    exclusive: bool = False
    combines_with: Annotated[list[_Ref], Field(max_length=100)] = []
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    holdout: Annotated[str, Field(pattern=KEY_PATTERN, max_length=64)] | None = None
    """The key of a hold-out experiment whose held-out customers do not get this promotion."""

    @model_serializer(mode="wrap")
    def _without_empty_holdout(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("holdout") is None:
            data.pop("holdout", None)  # stored definitions without a hold-out keep their shape
        return data

    @property
    def is_item(self) -> bool:
        """Whether the reward is an item reward (layer ``item``)."""
        return self.reward.type in ITEM_TYPES


def parse_definition(data: Any, *, what: str = "definition") -> Definition:
    """Validate a definition (a dict or JSON text); errors name the field."""
    try:
        if isinstance(data, str | bytes):
            return Definition.model_validate_json(data)
        return Definition.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidArgumentError(f"{what}.{where}: {first.get('msg', 'invalid')}") from None


def _reward(reward: Any, stock_left: int) -> rules.Reward:
    match reward:
        case PercentOffIn(rate_bp=rate):
            return rules.PercentOff(rate)
        case AmountOffIn(amount=amount):
            return rules.AmountOff(amount)
        case FlashSaleIn(price=price):
            return rules.FlashSalePrice(price=price, stock_left=stock_left)
        case MemberPriceIn():
            return rules.MemberPrice()
        case NthItemIn(n=n, rate_bp=rate):
            return rules.NthItemOff(n=n, rate_bp=rate)
        case BundleIn(skus=skus, price=price):
            return rules.BundlePrice(skus=frozenset(skus), price=price)
        case SpendTiersIn(tiers=tiers):
            return rules.SpendTiers(tuple((a, b) for a, b in tiers))
        case EveryXOffYIn(every=every, off=off, cap=cap):
            return rules.EveryXOffY(every=every, off=off, cap=cap)
        case QuantityTiersIn(tiers=tiers):
            return rules.QuantityTiers(tuple((a, b) for a, b in tiers))
        case OrderAmountOffIn(amount=amount):
            return rules.OrderAmountOff(amount)
        case OrderPercentOffIn(rate_bp=rate, cap=cap):
            return rules.OrderPercentOff(rate_bp=rate, cap=cap)
        case GiftIn(sku=sku, quantity=quantity, value=value):
            return rules.GiftWithPurchase(sku=sku, quantity=quantity, value=value)
        case FreeShippingIn():
            return rules.FreeShipping()
    raise InvalidArgumentError(f"reward: unknown type {getattr(reward, 'type', reward)!r}")


def to_rule(
    definition: Definition, *, promotion_id: str, name: str, layer: rules.Layer,
    starts_at: datetime | None = None, ends_at: datetime | None = None, stock_left: int = 0,
) -> rules.Promotion:
    """The pricing core's :class:`rules.Promotion` for a stored definition."""
    c = definition.conditions
    conditions = rules.Conditions(
        skus=frozenset(c.skus), categories=frozenset(c.categories), segments=frozenset(c.segments),
        tiers=frozenset(c.tiers), channels=frozenset(c.channels), starts_at=starts_at, ends_at=ends_at,
        first_order_only=c.first_order_only, min_amount=c.min_amount, min_quantity=c.min_quantity,
    )
    return rules.Promotion(
        id=promotion_id, name=name, layer=layer, reward=_reward(definition.reward, stock_left),
        conditions=conditions, exclusive=definition.exclusive,
        combines_with=frozenset(definition.combines_with), priority=definition.priority,
    )


def check_holdout(session: Session, definition: Definition, *, what: str = "definition") -> None:
    """Refuse a ``holdout`` that is not a hold-out experiment a checkout can use: unknown, of kind
    ``experiment``, stopped (it holds nobody out any more) or randomising anonymous ids (a cart is
    priced for a customer id). A draft hold-out is accepted: it holds customers out once started."""
    key = definition.holdout
    if key is None:
        return
    field = f"{what}.holdout"
    exp = experiments_repository.by_key(session, key)
    if exp is None:
        raise InvalidArgumentError(f"{field}: no experiment {key!r}")
    if exp.kind != "holdout":
        raise InvalidArgumentError(f"{field}: experiment {key!r} is an A/B test, not a hold-out "
                                   "(create one with kind 'holdout' and holdout_share)")
    if exp.status == "stopped":
        raise InvalidArgumentError(f"{field}: hold-out {key!r} is stopped and holds nobody out")
    if exp.unit != "customer":
        raise InvalidArgumentError(f"{field}: hold-out {key!r} randomises anonymous ids; a promotion's "
                                   "hold-out must randomise customer ids")


def check_rule(definition: Definition, *, layer: rules.Layer, what: str = "definition") -> None:
    """Refuse a definition the pricing core would refuse (e.g. tiers that do not increase)."""
    try:
        to_rule(definition, promotion_id="check", name="check", layer=layer, stock_left=0)
    except rules.PricingInputError as exc:
        raise InvalidArgumentError(f"{what}: {exc.message}") from None
