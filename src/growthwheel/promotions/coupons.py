"""Coupons: batches, unguessable codes, issuing, redemption tied to an order, release on refund.

**Codes.** A generated code is 12 characters drawn with :mod:`secrets` from a 31-character
alphabet without the look-alikes 0/O, 1/I/L (``23456789ABCDEFGHJKMNPQRSTUVWXYZ``: 59 bits of
randomness), plus one check character (weighted sum modulo 31), so a mistyped code is refused as malformed
before any lookup. Codes are matched case-insensitively, ignoring spaces and dashes. A batch has
either generated codes (each usable once, optionally issued to one customer, who alone may use
it) or one **shared** code chosen by the operator (e.g. ``SPRING20``), limited only by the batch.

**Limits.** A batch has a validity window, an optional budget (a number of redemptions and/or
an amount of discount) and a per-customer limit. Redeeming takes, each in one atomic conditional
statement (see ``promotions.repository``): one use of the code, one redemption and the discount
from the batch budget, one of the customer's uses. If any is exhausted the order fails with
``coupon_used_up`` and the transaction is rolled back, so nothing is half-taken.

**Release.** ``release_on_refund`` says when a refund gives the coupon back: ``never``;
``full_refund`` (when the order is refunded in full); ``full_refund_within_validity`` (the
default: a full refund while the batch is still valid). A released redemption gives back the code
use, the budget (count and amount) and the customer's use.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from growthwheel.accounts.models import new_id, utcnow
from growthwheel.accounts.schemas import Principal
from growthwheel.accounts.service import audit
from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.facts import service as facts
from growthwheel.kit.ids import canonical_id
from growthwheel.promotions import repository, rules
from growthwheel.promotions.definition import Definition, check_holdout, check_rule, parse_definition, to_rule
from growthwheel.promotions.errors import (
    CouponNotApplicableError,
    CouponNotFoundError,
    CouponUsedUpError,
)
from growthwheel.promotions.models import CheckoutOrder, CouponBatch, CouponCode

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
"""Code characters: digits and capitals without 0, 1, I, L and O."""
CODE_LENGTH = 12
"""Random characters of a generated code (a check character follows)."""
MAX_GENERATE = 100_000
_MAX_DRAWS = 5
"""Draws of fresh codes before giving up (a collision of 59-bit codes is already improbable)."""
_SHARED = re.compile(r"^[A-Z0-9_-]{3,32}$")
_SEPARATORS = re.compile(r"[\s-]+")


def _check_char(body: str) -> str:
    """Check character of ``body``: ``Σ position × value`` modulo 31, the alphabet's size. As 31 is
    prime and the weights 1…12 are not multiples of it, every single wrong character and every
    swap of two neighbouring characters changes the sum, so the code no longer checks."""
    total = sum(weight * ALPHABET.index(char) for weight, char in enumerate(body, start=1))
    return ALPHABET[total % len(ALPHABET)]


def generate_code(length: int = CODE_LENGTH) -> str:
    """A new unguessable code: ``length`` random characters and a check character."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(length))
    return body + _check_char(body)


def normalize_code(text: str) -> str:
    """A code as stored: upper case, no spaces or dashes."""
    return _SEPARATORS.sub("", text).upper()


def well_formed(code: str) -> bool:
    """Whether ``code`` (normalised) has the shape and check character of a generated code."""
    return (len(code) == CODE_LENGTH + 1 and all(c in ALPHABET for c in code)
            and _check_char(code[:-1]) == code[-1])


def coupon_promotion(batch: CouponBatch) -> rules.Promotion:
    """The pricing core's COUPON-layer promotion of a batch (its id is ``coupon:<batch id>``)."""
    return to_rule(parse_definition(batch.definition), promotion_id=f"coupon:{batch.id}", name=batch.name,
                   layer=rules.Layer.COUPON)


# ---------------------------------------------------------------------------------------------
# Batches, generation, issuing
# ---------------------------------------------------------------------------------------------


def create_batch(
    session: Session, *, name: str, definition: Definition | dict[str, object], valid_from: datetime,
    valid_until: datetime, code_mode: str = "unique", shared_code: str | None = None,
    budget_count: int | None = None, budget_amount: int | None = None, per_customer_limit: int = 1,
    release_on_refund: str = "full_refund_within_validity", principal: Principal | None = None,
    actor_name: str | None = None,
) -> CouponBatch:
    """Create a coupon batch (and, for ``code_mode="shared"``, its one code)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidArgumentError.coded("err.name_length", field="name")
    parsed = definition if isinstance(definition, Definition) else parse_definition(definition)
    if parsed.is_item:
        raise InvalidArgumentError.coded("err.coupon.item_reward", field="definition.reward.type",
                                         reward=parsed.reward.type)
    check_rule(parsed, layer=rules.Layer.COUPON)
    check_holdout(session, parsed)
    if valid_from.tzinfo is None or valid_until.tzinfo is None:
        raise InvalidArgumentError.coded("err.time_zone", field="valid_from / valid_until")
    if valid_until <= valid_from:
        raise InvalidArgumentError.coded("err.valid_until_after", field="valid_until")
    if code_mode not in ("unique", "shared"):
        raise InvalidArgumentError.coded("err.coupon.code_mode", field="code_mode")
    if budget_count is not None and budget_count < 1:
        raise InvalidArgumentError.coded("err.at_least_one", field="budget_count")
    if budget_amount is not None and budget_amount < 1:
        raise InvalidArgumentError.coded("err.positive_minor", field="budget_amount")
    if per_customer_limit < 1:
        raise InvalidArgumentError.coded("err.at_least_one", field="per_customer_limit")
    if release_on_refund not in ("never", "full_refund", "full_refund_within_validity"):
        raise InvalidArgumentError.coded("err.coupon.release", field="release_on_refund")
    code: str | None = None
    if code_mode == "shared":
        if shared_code is None:
            raise InvalidArgumentError.coded("err.coupon.shared_needs_code", field="shared_code")
        code = normalize_code(shared_code)
        if not _SHARED.match(code):
            raise InvalidArgumentError.coded("err.coupon.shared_shape", field="shared_code")
        if repository.coupon_code(session, code) is not None:
            raise InvalidArgumentError.coded("err.coupon.code_taken", field="shared_code", code=code)
    elif shared_code is not None:
        raise InvalidArgumentError.coded("err.coupon.shared_only", field="shared_code")
    row = CouponBatch(
        name=name, definition=parsed.model_dump(mode="json"), code_mode=code_mode, shared_code=code,
        valid_from=valid_from, valid_until=valid_until, budget_count=budget_count,
        budget_amount=budget_amount, used_count=0, used_amount=0, per_customer_limit=per_customer_limit,
        release_on_refund=release_on_refund, active=True, issued_count=0,
        created_by=actor_name or (principal.name if principal else "system"),
        created_at=utcnow(),
    )
    if code is None:
        session.add(row)
        session.flush()
    else:
        try:
            with session.begin_nested():  # the same code chosen by a concurrent request
                session.add(row)
                session.flush()
                session.add(CouponCode(code=code, batch_id=row.id, uses=0, max_uses=None,
                                       created_at=utcnow()))
        except IntegrityError:
            raise InvalidArgumentError.coded("err.coupon.code_taken", field="shared_code",
                                                code=code) from None
    audit(session, principal, "coupon_batch.create", f"coupon_batch:{row.id}",
          {"name": name, "code_mode": code_mode, "budget_count": budget_count,
           "budget_amount": budget_amount},
          actor_name=actor_name)
    return row


def get_batch(session: Session, batch_id: str) -> CouponBatch:
    """The batch with this id."""
    found = repository.batch(session, batch_id)
    if found is None:
        raise CouponNotFoundError.coded("err.coupon.no_batch", batch_id=batch_id)
    return found


def _new_codes(session: Session, count: int) -> list[str]:
    codes: list[str] = []
    while len(codes) < count:
        wanted = {generate_code() for _ in range(count - len(codes))}
        wanted -= set(codes) | repository.existing_codes(session, sorted(wanted))
        codes.extend(sorted(wanted))
    return codes


def generate_codes(session: Session, batch: CouponBatch, count: int, *, principal: Principal | None = None,
                   actor_name: str | None = None) -> list[str]:
    """Generate ``count`` single-use bearer codes for a ``unique`` batch (to print or hand out)."""
    if batch.code_mode != "unique":
        raise InvalidArgumentError.coded("err.coupon.generate_shared", field="count")
    if not 1 <= count <= MAX_GENERATE:
        raise InvalidArgumentError.coded("err.count_range", field="count", most=MAX_GENERATE)
    now = utcnow()
    codes: list[str] = []
    for _draw in range(_MAX_DRAWS):  # a code drawn by a concurrent request at the same moment: draw again
        drawn = _new_codes(session, count - len(codes))
        inserted = repository.insert_codes(session, [
            {"code": c, "batch_id": batch.id, "uses": 0, "max_uses": 1, "created_at": now} for c in drawn])
        codes += [c for c in drawn if c in inserted]
        if len(codes) == count:
            break
    else:  # pragma: no cover - 59-bit codes
        raise GrowthwheelError("could not draw unused coupon codes; try again")
    audit(session, principal, "coupon.generate", f"coupon_batch:{batch.id}", {"count": count},
          actor_name=actor_name)
    return codes


@dataclass(frozen=True)
class IssueResult:
    """What issuing did: codes for the newly served customers; those who had one already."""

    issued: dict[str, str]
    already: list[str]


def issue(
    session: Session, batch: CouponBatch, customer_ids: Sequence[str], *, issue_key: str | None = None,
    now: datetime | None = None, principal: Principal | None = None, actor_name: str | None = None,
) -> IssueResult:
    """Give each customer their own code of a ``unique`` batch. Issuing again with the same
    ``issue_key`` (``segment:<id>``, ``birthday:2026``…) skips those who were served."""
    if batch.code_mode != "unique":
        raise InvalidArgumentError.coded("err.coupon.shared_not_issued", field="batch")
    if not batch.active:
        raise CouponNotApplicableError.coded("err.coupon.batch_disabled", name=batch.name)
    now = now or utcnow()
    if now >= batch.valid_until:
        raise CouponNotApplicableError.coded("err.coupon.batch_expired", name=batch.name,
                                             when=batch.valid_until.isoformat())
    wanted = list(dict.fromkeys(canonical_id(c, f"customer_ids[{i}]") for i, c in enumerate(customer_ids)))
    served = repository.issued_customers(session, batch.id, issue_key)
    fresh = [c for c in wanted if c not in served]
    issued: dict[str, str] = {}
    # The database decides who gets a code: rows that would give a customer a second code of the
    # batch under this key (or reuse an existing code) are skipped, not raised, so two issues
    # racing for one customer give one code and neither fails (issue 10).
    for _draw in range(_MAX_DRAWS):
        if not fresh:
            break
        codes = _new_codes(session, len(fresh))
        rows = [{"code": code, "batch_id": batch.id, "customer_id": customer, "issue_key": issue_key,
                 "issued_at": now, "uses": 0, "max_uses": 1, "created_at": now}
                for customer, code in zip(fresh, codes, strict=True)]
        inserted = repository.insert_codes(session, rows)
        issued.update({customer: code for code, customer in inserted.items() if customer is not None})
        left = [c for c in fresh if c not in issued]
        served |= repository.issued_customers(session, batch.id, issue_key, among=left) if left else set()
        fresh = [c for c in left if c not in served]  # left out by a code collision: draw again
    if fresh:  # pragma: no cover - 59-bit codes: a collision on every one of _MAX_DRAWS draws
        raise GrowthwheelError("could not draw unused coupon codes; try again")
    repository.count_issued(session, batch.id, len(issued))
    facts.record_events(session, [
        {"event_id": f"coupon_issued:{code}", "type": "coupon_issued", "occurred_at": now,
         "customer_id": customer, "properties": {"code": code, "batch_id": batch.id, "issue_key": issue_key}}
        for customer, code in issued.items()])
    session.expire(batch, ["issued_count"])
    audit(session, principal, "coupon.issue", f"coupon_batch:{batch.id}",
          {"issued": len(issued), "already": len(wanted) - len(issued), "issue_key": issue_key},
          actor_name=actor_name)
    return IssueResult(issued={c: issued[c] for c in wanted if c in issued},
                       already=[c for c in wanted if c not in issued])


# ---------------------------------------------------------------------------------------------
# Resolving codes at checkout, redeeming, releasing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedCoupon:
    """A code of the cart with its batch, as the pricing core's :class:`rules.Coupon`."""

    code: CouponCode
    batch: CouponBatch
    coupon: rules.Coupon


def resolve(session: Session, codes: Sequence[str], customer_id: str, now: datetime) -> list[ResolvedCoupon]:
    """Look up the cart's codes: each must exist, be in its validity window, belong to nobody or to
    this customer, and still have a use left for them (checked again, atomically, at commit)."""
    found: list[ResolvedCoupon] = []
    seen_batches: set[str] = set()
    for index, text in enumerate(codes):
        code = normalize_code(text)
        where = f"coupon_codes[{index}]"
        pair = repository.coupon_code_with_batch(session, code) if code else None
        if pair is None:
            mistyped = len(code) == CODE_LENGTH + 1 and not well_formed(code)
            if mistyped:
                raise CouponNotFoundError.coded("err.coupon.mistyped", field=where, text=text)
            raise CouponNotFoundError.coded("err.coupon.unknown", field=where, text=text)
        row, batch = pair
        if not batch.active:
            raise CouponNotApplicableError.coded("err.coupon.disabled", field=where, code=code)
        if now < batch.valid_from:
            raise CouponNotApplicableError.coded("err.coupon.not_yet", field=where, code=code,
                                                 when=batch.valid_from.isoformat())
        if now >= batch.valid_until:
            raise CouponNotApplicableError.coded("err.coupon.expired", field=where, code=code,
                                                 when=batch.valid_until.isoformat())
        if row.customer_id is not None and row.customer_id != customer_id:
            raise CouponNotApplicableError.coded("err.coupon.someone_else", field=where, code=code)
        if batch.id in seen_batches:
            raise InvalidArgumentError.coded("err.coupon.one_per_batch", field=where, name=batch.name)
        seen_batches.add(batch.id)
        if row.max_uses is not None and row.uses >= row.max_uses:
            raise CouponUsedUpError.coded("err.coupon.used", field=where, code=code)
        if batch.budget_count is not None and batch.used_count >= batch.budget_count:
            raise CouponUsedUpError.coded("err.coupon.batch_spent", field=where, code=code)
        found.append(ResolvedCoupon(code=row, batch=batch,
                                    coupon=rules.Coupon(code=code, promotion=coupon_promotion(batch))))
    return found


def redeem(session: Session, resolved: ResolvedCoupon, *, customer_id: str, order_id: str, discount: int,
           now: datetime) -> str:
    """Take the coupon for ``order_id`` and return the redemption's id (atomically; raises
    :class:`CouponUsedUpError` when any limit is reached — the caller's transaction must then be
    rolled back)."""
    code, batch = resolved.code.code, resolved.batch
    redemption_id = new_id()
    refused = repository.redeem_coupon(session, code=code, batch_id=batch.id, amount=discount,
                                       customer_id=customer_id, limit=batch.per_customer_limit,
                                       redemption_id=redemption_id, order_id=order_id, now=now)
    if refused == "code":
        raise CouponUsedUpError.coded("err.coupon.used", code=code)
    if refused == "batch":
        raise CouponUsedUpError.coded("err.coupon.budget_spent", code=code, name=batch.name)
    if refused == "customer":
        raise CouponUsedUpError.coded("err.coupon.per_customer", code=code,
                                      limit=batch.per_customer_limit)
    return redemption_id


def release_for_refund(session: Session, order: CheckoutOrder, *, fully_refunded: bool,
                       now: datetime) -> list[str]:
    """Give back the order's coupons whose batch rule allows it after this refund; returns their codes."""
    released: list[str] = []
    if not fully_refunded:
        return released
    for redemption in repository.redemptions_of_order(session, order.id):
        if redemption.status != "redeemed":
            continue
        batch = repository.batch(session, redemption.batch_id)
        if batch is None or batch.release_on_refund == "never":
            continue
        if batch.release_on_refund == "full_refund_within_validity" and now >= batch.valid_until:
            continue
        repository.give_back_use(session, redemption)
        redemption.status = "released"
        redemption.released_at = now
        released.append(redemption.code)
    session.flush()
    return released
