"""Net Promoter Score and its confidence interval (pure: counts in, numbers out, no I/O).

A 0–10 answer is a **promoter** (9–10), a **passive** (7–8) or a **detractor** (0–6);
NPS = %promoters − %detractors, from −100 to +100.

With n answers and shares p_P, p_D the NPS estimate p_P − p_D is the mean of a trinomial
score (+1 / 0 / −1), whose variance per answer is p_P + p_D − (p_P − p_D)²; so

* **Wald**: NPS ± z·√((p_P + p_D − (p_P − p_D)²) / n). It collapses to a zero-width interval
  when every answer is in one group and under-covers for small n or extreme shares.
* **adjusted Wald** (Rocks, "Interval estimation for the net promoter score", *The American
  Statistician* 70(4), 2016 — the best-covering of the six methods he compared; also
  recommended by Sauro & Lewis, MeasuringU 2021): add 3 pseudo-answers, ¾ of one to the
  promoters and ¾ to the detractors (so ¾·2 + 1½ passives), n' = n + 3, and use the same
  variance at the adjusted shares around the adjusted centre. Like Agresti–Coull for one
  proportion it pulls the centre towards 0 and never has zero width. Bounds are clipped to ±100.

``tests/surveys/test_nps.py`` checks the variance against numpy's variance of the ±1/0 scores,
and the coverage of both intervals against simulated answers with a known true NPS.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

GROUPS = ("promoter", "passive", "detractor")
Method = Literal["adjusted_wald", "wald"]
METHODS: tuple[Method, ...] = ("adjusted_wald", "wald")
#: The pseudo-answers of the adjusted Wald interval: ¾ promoter, ¾ detractor, 3 in all.
ADJUST_EACH = 0.75
ADJUST_N = 3.0


def group_of(score: int) -> str:
    """``promoter`` (9–10), ``passive`` (7–8) or ``detractor`` (0–6)."""
    if not 0 <= score <= 10:
        raise ValueError(f"an NPS score is 0..10, not {score}")
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


@dataclass(frozen=True)
class Counts:
    """How many answers fell in each group (the sufficient statistics of NPS)."""

    promoters: int
    passives: int
    detractors: int

    @property
    def n(self) -> int:
        """All answers."""
        return self.promoters + self.passives + self.detractors

    @classmethod
    def of(cls, scores: Iterable[int]) -> Counts:
        """The counts of 0–10 ``scores``."""
        tally = {"promoter": 0, "passive": 0, "detractor": 0}
        for score in scores:
            tally[group_of(int(score))] += 1
        return cls(tally["promoter"], tally["passive"], tally["detractor"])


@dataclass(frozen=True)
class Estimate:
    """NPS (points, −100..100) of some answers with its interval at ``confidence``."""

    counts: Counts
    nps: float | None
    low: float | None
    high: float | None
    wald_low: float | None
    wald_high: float | None
    method: Method
    confidence: float

    def as_dict(self) -> dict[str, object]:
        """Plain values for JSON."""
        c = self.counts
        return {"n": c.n, "promoters": c.promoters, "passives": c.passives, "detractors": c.detractors,
                "nps": self.nps, "low": self.low, "high": self.high, "wald_low": self.wald_low,
                "wald_high": self.wald_high, "method": self.method, "confidence": self.confidence}


def _z(confidence: float) -> float:
    if not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must be in [0.5, 1), not {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def variance(p_promoters: float, p_detractors: float) -> float:
    """The variance of one answer's trinomial score: p_P + p_D − (p_P − p_D)²."""
    return max(0.0, p_promoters + p_detractors - (p_promoters - p_detractors) ** 2)


def wald(counts: Counts, confidence: float = 0.95) -> tuple[float, float]:
    """The Wald interval of NPS as shares (−1..1); needs at least one answer."""
    n = counts.n
    if n == 0:
        raise ValueError("no answers")
    p, d = counts.promoters / n, counts.detractors / n
    half = _z(confidence) * math.sqrt(variance(p, d) / n)
    return max(-1.0, p - d - half), min(1.0, p - d + half)


def adjusted_wald(counts: Counts, confidence: float = 0.95) -> tuple[float, float]:
    """The adjusted Wald interval (Rocks 2016) of NPS as shares (−1..1)."""
    n = counts.n + ADJUST_N
    p, d = (counts.promoters + ADJUST_EACH) / n, (counts.detractors + ADJUST_EACH) / n
    half = _z(confidence) * math.sqrt(variance(p, d) / n)
    return max(-1.0, p - d - half), min(1.0, p - d + half)


def estimate(counts: Counts, confidence: float = 0.95, method: Method = "adjusted_wald") -> Estimate:
    """NPS in points with the ``method`` interval (and the Wald one beside it); ``None`` for no answers."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}")
    _z(confidence)
    if counts.n == 0:
        return Estimate(counts, None, None, None, None, None, method, confidence)
    share = (counts.promoters - counts.detractors) / counts.n
    w_low, w_high = wald(counts, confidence)
    low, high = adjusted_wald(counts, confidence) if method == "adjusted_wald" else (w_low, w_high)
    return Estimate(counts, round(share * 100, 2), round(low * 100, 2), round(high * 100, 2),
                    round(w_low * 100, 2), round(w_high * 100, 2), method, confidence)
