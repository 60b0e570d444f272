"""The budget allocator: split a total over channels with saturating response curves.

Pure numerics, no I/O. Given a response curve per channel (expected outcome — revenue or
conversions — as a function of spend), a total budget in integer minor units, per-channel bounds
and a reserve share (机动预算, held back for surprises), :func:`allocate` returns the split that
maximises the total expected outcome:

* the amounts are integers that add up to ``total − reserve`` exactly, and the reserve is
  ``round_half_up(total × reserve_share)``, so amounts + reserve = total to the minor unit;
* every channel stays within its ``[lower, upper]`` bounds (an infeasible set of bounds is refused
  with the reason);
* channels not held at a bound end with equal marginal returns (the optimality condition of a
  concave problem: one more unit anywhere returns the same), found by bisection on the marginal
  return ``μ`` — each channel's spend at ``μ`` is the inverse of its marginal-response curve;
* it is deterministic: no random start, no optimiser tolerance that depends on the starting split
  (the failure users of Robyn and PyMC-Marketing report, where the allocator returns the split it
  started from). The integer rounding gives the leftover units by largest remainder, ties to the
  channel listed first.

Curves:

* ``hill``: ``f(x) = beta · x^s / (x^s + k^s)`` — ``k`` is the spend at half saturation, ``s`` the
  shape. ``s ≤ 1`` is concave; ``s > 1`` is S-shaped, and the allocator then works on the concave
  part beyond the inflection point (a channel is either off or past its inflection), which is the
  KKT point on that part, not a global search.
* ``exponential``: ``f(x) = beta · (1 − exp(−x / k))``, concave.
* ``power``: ``f(x) = beta · (x / k)^s`` with ``0 < s < 1`` — concave without a ceiling (the demo
  shop's true acquisition curves: new customers ∝ spend^elasticity); ``beta`` is the outcome at
  spend ``k``.

Spend ``x`` is in the same unit as the budget (minor units); ``beta`` is in the unit of the
outcome.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

CurveKind = Literal["hill", "exponential", "power"]
#: Bisection steps: a bracket within a factor of two of the answer reaches double precision in
#: about 55 halvings; every loop below is bounded, so no input makes a request run for long.
_ITERATIONS = 64
#: Spend beyond any budget (minor units): inverse curves are held below it, never infinite.
_SPEND_CAP = 1e30


@dataclass(frozen=True)
class Curve:
    """A channel's response curve with its spend bounds (minor units; ``upper`` ``None`` = none)."""

    channel: str
    kind: CurveKind
    beta: float
    k: float
    s: float = 1.0
    lower: int = 0
    upper: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("hill", "exponential", "power"):
            raise ValueError(f"curves[{self.channel}].kind: one of hill, exponential, power")
        for name in ("beta", "k", "s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"curves[{self.channel}].{name}: must be a positive number")
        if self.kind == "power" and not self.s < 1:
            raise ValueError(f"curves[{self.channel}].s: below 1 for a power curve (else it never saturates)")
        if self.lower < 0:
            raise ValueError(f"curves[{self.channel}].lower: must not be negative")
        if self.upper is not None and self.upper < self.lower:
            raise ValueError(f"curves[{self.channel}].upper: must be at least lower")

    def response(self, x: float) -> float:
        """Expected outcome at spend ``x``."""
        if x <= 0:
            return 0.0
        if self.kind == "exponential":
            return self.beta * -math.expm1(-x / self.k)
        if self.kind == "power":
            return self.beta * math.pow(x / self.k, self.s)
        r = math.pow(x / self.k, self.s)
        return self.beta * r / (1.0 + r)

    def marginal(self, x: float) -> float:
        """Derivative of the response at ``x`` (outcome per unit of spend)."""
        if self.kind == "exponential":
            return self.beta / self.k * math.exp(-max(x, 0.0) / self.k)
        if self.kind == "power":
            return math.inf if x <= 0 else self.beta * self.s / self.k * math.pow(x / self.k, self.s - 1)
        if x <= 0:
            return self.beta / self.k if self.s == 1 else (math.inf if self.s < 1 else 0.0)
        r = math.pow(x / self.k, self.s)
        return self.beta * self.s * r / (x * (1.0 + r) ** 2)

    @property
    def peak(self) -> float:
        """Spend where the marginal return is highest (0 unless S-shaped)."""
        if self.kind == "hill" and self.s > 1:
            return self.k * math.pow((self.s - 1) / (self.s + 1), 1 / self.s)
        return 0.0

    def spend_at(self, mu: float) -> float:
        """The spend whose marginal return is ``mu`` on the decreasing part of the marginal curve
        (0 when even the best unit returns less than ``mu``), before bounds."""
        top = self.marginal(self.peak)
        if mu >= top:
            return 0.0
        if mu <= 0:
            return _SPEND_CAP
        # In logarithms: tiny returns and scales would overflow a direct quotient.
        log_mu, log_beta, log_k = math.log(mu), math.log(self.beta), math.log(self.k)
        if self.kind == "exponential":
            return min(self.k * (log_beta - log_k - log_mu), _SPEND_CAP)
        if self.kind == "power":
            return _capped_exp(log_k + (log_mu + log_k - log_beta - math.log(self.s)) / (self.s - 1))
        if self.s == 1:
            return max(_capped_exp(0.5 * (log_beta + log_k - log_mu)) - self.k, 0.0)
        # Far out the marginal is about beta·s·k^s·x^-(s+1): start the bracket there.
        far = _capped_exp((log_beta + math.log(self.s) + self.s * log_k - log_mu) / (self.s + 1))
        lo, hi = self.peak, max(self.peak, self.k, far) * 2
        for _ in range(2100):  # doubling from 1e-300 reaches the cap within 1100 steps
            if hi >= _SPEND_CAP or not self.marginal(hi) > mu:
                break
            lo, hi = hi, hi * 2
        hi = min(hi, _SPEND_CAP)
        for _ in range(_ITERATIONS):
            mid = 0.5 * (lo + hi)
            if self.marginal(mid) > mu:
                lo = mid
            else:
                hi = mid
            if hi - lo <= lo * 1e-15:
                break
        return 0.5 * (lo + hi)

    def clipped(self, mu: float) -> float:
        """:meth:`spend_at` held within the bounds."""
        x = max(self.spend_at(mu), float(self.lower))
        return x if self.upper is None else min(x, float(self.upper))


@dataclass(frozen=True)
class Line:
    """One channel of an allocation."""

    channel: str
    spend: int
    outcome: float
    marginal_return: float
    roas: float | None
    bound: Literal["lower", "upper"] | None


@dataclass(frozen=True)
class Allocation:
    """The answer: a line per channel (in the order given), the reserve and the totals."""

    lines: tuple[Line, ...]
    total: int
    reserve: int
    allocated: int
    outcome: float
    marginal_return: float


def reserve_amount(total: int, share: float) -> int:
    """The reserve of ``total`` at ``share``, half-up to the minor unit."""
    return int((Decimal(total) * Decimal(str(share))).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def evaluate(curves: Sequence[Curve], spend: Sequence[int | float]) -> float:
    """Total expected outcome of a split (one amount per curve), e.g. the current split."""
    if len(spend) != len(curves):
        raise ValueError("spend: one amount per channel")
    return sum(c.response(float(x)) for c, x in zip(curves, spend, strict=True))


def allocate(curves: Sequence[Curve], total: int, *, reserve_share: float = 0.0) -> Allocation:
    """Split ``total`` (minor units) over ``curves``; see the module docstring for the rules."""
    if not curves:
        raise ValueError("curves: give at least one channel")
    names = [c.channel for c in curves]
    if len(set(names)) != len(names):
        raise ValueError("curves: each channel once")
    if total < 0:
        raise ValueError("total: must not be negative")
    if not 0 <= reserve_share < 1:
        raise ValueError("reserve_share: between 0 (no reserve) and 1 (exclusive)")
    reserve = reserve_amount(total, reserve_share)
    budget = total - reserve
    low = sum(c.lower for c in curves)
    if low > budget:
        raise ValueError(f"bounds: the lower bounds add up to {low}, more than the {budget} to allocate")
    if all(c.upper is not None for c in curves):
        high = sum(c.upper for c in curves if c.upper is not None)
        if high < budget:
            raise ValueError(f"bounds: the upper bounds add up to {high}, less than the {budget} to allocate")

    def spent(mu: float) -> float:
        return sum(c.clipped(mu) for c in curves)

    # μ_hi: no channel goes beyond its lower bound; μ_lo: the budget is reached.
    mu_hi = max(c.marginal(max(c.peak, float(c.lower), 1.0)) for c in curves) * 2.0
    mu_lo = mu_hi
    for _ in range(120):  # a factor of 1024 a step: from the largest double to the smallest
        if spent(mu_lo) >= budget or mu_lo / 1024.0 == 0.0:
            break  # reached, or the curves are saturated: the rest is placed by _integers
        mu_lo /= 1024.0
    for _ in range(_ITERATIONS):  # bisection in log space: spent() does not increase with μ
        mid = math.sqrt(mu_lo * mu_hi)
        if spent(mid) >= budget:
            mu_lo = mid
        else:
            mu_hi = mid
        if mu_lo <= 0.0 or mu_hi <= mu_lo * (1.0 + 1e-15):
            break
    floats = [c.clipped(mu_lo) for c in curves]
    # S-shaped curves jump from 0 to past the inflection: the part not taken at μ_lo goes, in
    # order, to the channels that would jump (so that the budget is spent).
    excess = sum(floats) - budget
    if excess > 0:
        above = [c.clipped(mu_hi) for c in curves]
        for i in range(len(curves)):
            give = min(excess, floats[i] - above[i])
            floats[i] -= give
            excess -= give
    amounts = _integers(floats, budget, curves)
    lines = []
    free_marginals = []
    for c, x in zip(curves, amounts, strict=True):
        bound: Literal["lower", "upper"] | None = None
        if x <= c.lower and c.spend_at(mu_lo) <= c.lower:
            bound = "lower"
        elif c.upper is not None and x >= c.upper:
            bound = "upper"
        m = c.marginal(float(x))
        if bound is None:
            free_marginals.append(m)
        lines.append(Line(channel=c.channel, spend=x, outcome=c.response(float(x)), marginal_return=m,
                          roas=c.response(float(x)) / x if x > 0 else None, bound=bound))
    return Allocation(
        lines=tuple(lines), total=total, reserve=reserve, allocated=sum(amounts),
        outcome=sum(line.outcome for line in lines),
        marginal_return=min(free_marginals) if free_marginals else mu_lo,
    )


def _integers(floats: Sequence[float], budget: int, curves: Sequence[Curve]) -> list[int]:
    """Whole minor units adding up to ``budget``: floors, then the leftover by largest remainder
    (ties to the earlier channel), never past a bound."""
    amounts = [max(math.floor(x), c.lower) for x, c in zip(floats, curves, strict=True)]
    amounts = [a if c.upper is None else min(a, c.upper) for a, c in zip(amounts, curves, strict=True)]
    left = budget - sum(amounts)
    order = sorted(range(len(curves)), key=lambda i: (-(floats[i] - math.floor(floats[i])), i))
    step = 1 if left > 0 else -1
    # Round robin over the channels with room, one unit each per round, in ``order``; whole
    # rounds are taken at once (the same result in at most one pass per channel that fills up).
    while left != 0:
        room = {i: _room(curves[i], amounts[i], step) for i in order}
        open_ = [i for i in order if room[i] > 0]
        if not open_:  # cannot happen once the bounds were checked
            raise ValueError("bounds: cannot place the budget within the bounds")
        rounds = abs(left) // len(open_)
        if rounds == 0:
            for i in open_[:abs(left)]:
                amounts[i] += step
            break
        for i in open_:
            give = int(min(rounds, room[i]))
            amounts[i] += step * give
            left -= step * give
    return amounts


def _room(curve: Curve, amount: int, step: int) -> float:
    """Units ``amount`` may still move by in the direction of ``step`` within the curve's bounds."""
    if step < 0:
        return amount - curve.lower
    return math.inf if curve.upper is None else curve.upper - amount


def _capped_exp(x: float) -> float:
    """``exp(x)`` held at :data:`_SPEND_CAP` instead of overflowing."""
    return _SPEND_CAP if x >= math.log(_SPEND_CAP) else math.exp(x)
