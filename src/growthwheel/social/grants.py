"""Granting referral rewards through the promotions domain: points into the ledger, coupons issued.

:func:`promotions_granter` is the ``service.Granter`` the settlement job uses: a ``points`` reward
becomes an earned points lot (usual expiry, ``loyalty.service.earn_points``); a ``coupon``
reward issues one code of the batch to the customer (``promotions.coupons.issue``), keyed
``referral:<referral id>:<side>`` so that a retry never issues a second code.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from growthwheel.errors import InvalidArgumentError
from growthwheel.loyalty import service as loyalty
from growthwheel.promotions import coupons
from growthwheel.social.models import ReferralReward


def promotions_granter(session: Session, reward: ReferralReward, now: datetime) -> str:
    """Grant ``reward`` at ``now``; returns ``points_lot:<id>`` or ``coupon:<code>``."""
    if reward.kind == "points":
        if not reward.points:
            raise InvalidArgumentError("points: the reward has no points to grant")
        lot_id = loyalty.earn_points(session, reward.customer_id, reward.points, now)
        return f"points_lot:{lot_id}" if lot_id is not None else "points_lot:none"
    if not reward.coupon_batch_id:
        raise InvalidArgumentError("coupon_batch_id: the reward names no coupon batch")
    batch = coupons.get_batch(session, reward.coupon_batch_id)
    result = coupons.issue(session, batch, [reward.customer_id],
                           issue_key=f"referral:{reward.referral_id}:{reward.side}", now=now)
    code = result.issued.get(reward.customer_id)
    return f"coupon:{code}" if code else "coupon:issued-earlier"
