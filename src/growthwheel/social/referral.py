"""Referral (邀请有礼), the pure part: invite codes, normalising contact signals, self-referral checks.

No I/O here; ``social.service`` stores and settles. The rules:

- **Invite codes** are 8 symbols from a 29-symbol alphabet without look-alikes (no ``0 O 1 I L``,
  no ``U V``), drawn with ``secrets``: 29⁸ ≈ 5 × 10¹¹ codes, so with a million customers a random
  guess hits someone's code about once in 500,000 tries. Codes are read
  case-insensitively and with spaces or dashes ignored (``abcd-efgh`` = ``ABCDEFGH``).
- **Self-referral**: an invitee whose phone, shipping address or device id matches one already
  seen for the inviter is refused (at binding) or cancelled (when the first paid order shows it).
  Values are compared after normalisation (below) and stored only as SHA-256 digests.
- **Reward timing**: the first paid order of the invitee must survive the refund window
  (``ReferralPolicy.refund_window_days``, 7 by default): eligible at ``paid_at + window``; a refund
  before that moment cancels the reward, a refund after it does not take it back.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from growthwheel.errors import InvalidArgumentError

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"
"""Digits and capitals without the ambiguous ``0 O 1 I L`` and ``U V`` (29 symbols)."""
CODE_LENGTH = 8
SignalKind = Literal["phone", "address", "device"]
SIGNAL_KINDS: tuple[SignalKind, ...] = ("phone", "address", "device")
RewardKind = Literal["points", "coupon"]

_SEPARATORS = re.compile(r"[\s\-_]+")
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def new_invite_code() -> str:
    """A fresh random invite code (``CODE_LENGTH`` symbols of ``CODE_ALPHABET``)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    """An invite code as typed (any case, spaces or dashes) in its stored form.

    Raises ``InvalidArgumentError`` naming ``code`` when it cannot be a code at all.
    """
    code = _SEPARATORS.sub("", text).upper()
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        raise InvalidArgumentError(f"code: {text!r} is not an invite code ({CODE_LENGTH} letters and digits)")
    return code


def normalise_phone(text: str) -> str | None:
    """A phone number as its digits, without a leading ``+86`` / ``0086`` / trunk ``0``.

    ``+86 138-0013-8000``, ``008613800138000`` and ``13800138000`` are the same number. Returns
    ``None`` when fewer than 5 digits are left (not a usable signal).
    """
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isdigit())
    if digits.startswith("00"):
        digits = digits[2:]
    if digits.startswith("86") and len(digits) == 13:  # +86 mobile: 86 + 11 digits
        digits = digits[2:]
    digits = digits.lstrip("0")
    return digits if len(digits) >= 5 else None


def normalise_address(text: str) -> str | None:
    """A shipping address reduced to lower-case letters and digits (NFKC: full-width → ASCII).

    ``上海市 浦东新区 世纪大道１００号`` and ``上海市浦东新区世纪大道100号`` match; so do
    ``12 Main St.`` and ``12 main st``. ``None`` for an address with nothing left.
    """
    folded = _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())
    return folded or None


def normalise_device(text: str) -> str | None:
    """A device id trimmed and lower-cased (``None`` when empty)."""
    device = text.strip().casefold()
    return device or None


_NORMALISERS = {"phone": normalise_phone, "address": normalise_address, "device": normalise_device}


def digest(kind: SignalKind, value: str) -> str:
    """SHA-256 (hex) of a normalised signal, salted with its kind."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def signal_digests(phone: str | None, address: str | None, device: str | None) -> dict[SignalKind, str]:
    """The digests of whichever signals are given and usable after normalisation."""
    out: dict[SignalKind, str] = {}
    raw_values: tuple[tuple[SignalKind, str | None], ...] = (
        ("phone", phone), ("address", address), ("device", device))
    for kind, raw in raw_values:
        value = None if raw is None else _NORMALISERS[kind](raw)
        if value is not None:
            out[kind] = digest(kind, value)
    return out


def self_referral_reason(
    invitee: dict[SignalKind, str], inviter_known: set[tuple[str, str]]
) -> str | None:
    """``same_phone`` / ``same_address`` / ``same_device`` if one of the invitee's digests is among
    the inviter's known ``(kind, digest)`` pairs (checked in that order), else ``None``."""
    for kind in SIGNAL_KINDS:
        value = invitee.get(kind)
        if value is not None and (kind, value) in inviter_known:
            return f"same_{kind}"
    return None


@dataclass(frozen=True)
class Reward:
    """What one side of a referral receives: ``points`` or a coupon from ``coupon_batch_id``."""

    kind: RewardKind
    points: int | None = None
    coupon_batch_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "points" and (self.points is None or self.points <= 0):
            raise InvalidArgumentError("points: a points reward needs a positive number of points")
        if self.kind == "coupon" and not self.coupon_batch_id:
            raise InvalidArgumentError("coupon_batch_id: a coupon reward needs the coupon batch")


@dataclass(frozen=True)
class ReferralPolicy:
    """The programme: the refund window and what each side gets."""

    refund_window_days: int = 7
    inviter: Reward = Reward("points", points=500)
    invitee: Reward = Reward("points", points=200)

    def __post_init__(self) -> None:
        if not 0 <= self.refund_window_days <= 365:
            raise InvalidArgumentError("refund_window_days: must be between 0 and 365")

    def eligible_at(self, paid_at: datetime) -> datetime:
        """When an order paid at ``paid_at`` has survived its refund window."""
        return paid_at + timedelta(days=self.refund_window_days)


def refund_cancels(eligible_at: datetime, refunded_at: datetime) -> bool:
    """Whether a refund at ``refunded_at`` falls inside the window ending at ``eligible_at``."""
    return refunded_at < eligible_at
