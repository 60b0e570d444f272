"""Bayesian read-out of an effect estimate: chance to win, expected loss, credible interval.

Like GrowthBook's "effect" Bayesian engine, the data enter through a Gaussian approximation of the
effect estimate ``Δ̂ ~ N(Δ, se²)`` (absolute or relative, from the same sufficient statistics as the
frequentist tests). With a Gaussian prior ``Δ ~ N(m₀, v₀)`` the posterior is Gaussian with precision
``1/v₀ + 1/se²`` and mean ``(m₀/v₀ + Δ̂/se²) / precision``; without a prior (the default, a flat
improper prior) the posterior is ``N(Δ̂, se²)``. A weak proper prior (e.g. relative effects with
``sd = 0.3``) shrinks noisy early estimates towards zero.

From the posterior ``N(μ, σ²)``:

* chance to win ``P(Δ > 0) = Φ(μ/σ)`` (for a metric where higher is better);
* expected loss of shipping the treatment ``E[max(0, −Δ)] = σ φ(μ/σ) − μ Φ(−μ/σ)`` — how much is
  given up, on average over the posterior, if the treatment is in fact worse;
* risk of keeping the control ``E[max(0, Δ)] = σ φ(μ/σ) + μ Φ(μ/σ)``;
* the equal-tailed ``1 − alpha`` credible interval ``μ ± z σ``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy import special

from growthwheel.errors import InvalidArgumentError


@dataclass(frozen=True)
class Posterior:
    """Posterior summary of an effect (same scale as the estimate it was built from)."""

    mean: float
    sd: float
    chance_to_win: float
    expected_loss: float
    risk_control: float
    ci_lower: float
    ci_upper: float

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (non-finite floats as ``None``)."""
        return {k: (v if math.isfinite(v) else None) for k, v in asdict(self).items()}


def posterior(
    estimate: float,
    se: float,
    *,
    alpha: float = 0.05,
    prior_mean: float = 0.0,
    prior_sd: float | None = None,
    higher_is_better: bool = True,
) -> Posterior:
    """Gaussian posterior of an effect from its estimate and standard error.

    ``prior_sd=None`` is the flat (improper) prior. ``higher_is_better=False`` is for metrics where
    a decrease wins (refund rate, page load time): chance to win becomes ``P(Δ < 0)`` and the losses
    swap. An estimate without a usable standard error (NaN, or zero) gives NaN summaries.
    """
    if not 0.0 < alpha < 1.0:
        raise InvalidArgumentError(f"alpha: {alpha!r} must be between 0 and 1")
    if prior_sd is not None and not prior_sd > 0.0:
        raise InvalidArgumentError(f"prior_sd: {prior_sd!r} must be positive")
    if not (math.isfinite(estimate) and math.isfinite(se) and se > 0.0):
        nan = math.nan
        return Posterior(nan, nan, nan, nan, nan, nan, nan)
    if prior_sd is None:
        mu, sigma = estimate, se
    else:
        precision = 1.0 / prior_sd**2 + 1.0 / se**2
        mu = (prior_mean / prior_sd**2 + estimate / se**2) / precision
        sigma = math.sqrt(1.0 / precision)
    direction = 1.0 if higher_is_better else -1.0
    m = direction * mu  # the posterior of the gain, "up is good"
    z = m / sigma
    pdf = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    chance = float(special.ndtr(z))
    loss_treatment = sigma * pdf - m * float(special.ndtr(-z))
    loss_control = sigma * pdf + m * chance
    q = float(special.ndtri(1.0 - alpha / 2.0))
    return Posterior(
        mean=mu,
        sd=sigma,
        chance_to_win=chance,
        expected_loss=max(loss_treatment, 0.0),
        risk_control=max(loss_control, 0.0),
        ci_lower=mu - q * sigma,
        ci_upper=mu + q * sigma,
    )
