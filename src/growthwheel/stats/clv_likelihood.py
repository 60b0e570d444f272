"""The log-likelihoods of the CLV models, per row and summed with their gradients, in the data's
time scale: BG/NBD (Fader, Hardie & Lee 2005), Pareto/NBD (Schmittlein, Morrison & Colombo 1987,
with Fader & Hardie's 2005 note) and Gamma-Gamma spend (Colombo & Jiang 1999; Fader, Hardie & Lee
2005 "RFM and CLV"). Pure numerics, in log space; the models, the fits and the predictions are in
:mod:`growthwheel.stats.clv`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


def wsum(w: Array, v: Array) -> float:
    """``Σ w·v`` without BLAS: a threaded ``dot`` collapses when other processes hold the cores."""
    return float(np.add.reduce(w * v))


@dataclass(frozen=True)
class Rows:
    """Fitting data with the distinct frequencies pre-indexed (x-only terms are computed once each)."""

    x: Array
    t_x: Array
    big_t: Array
    w: Array
    xu: Array
    xi: IntArray
    repeat: npt.NDArray[np.bool_]

    @classmethod
    def of(cls, x: Array, t_x: Array, big_t: Array, w: Array) -> Rows:
        xu, xi = np.unique(x, return_inverse=True)
        return cls(x, t_x, big_t, w, xu.astype(np.float64), xi.astype(np.intp), x > 0)


def bgnbd_ll_rows(theta: Array | Sequence[float], d: Rows
                   ) -> tuple[Array, Array, Array, Array, Array]:
    """Per-row BG/NBD log-likelihood, with the pieces its gradient reuses."""
    r, alpha, a, b = (float(v) for v in theta)
    xu = d.xu
    # Terms that depend on x only: gammaln(r+x) - gammaln(r) + betaln(a, b+x) - betaln(a, b).
    base_u = (special.gammaln(r + xu) - special.gammaln(r) + special.gammaln(a + b)
              + special.gammaln(b + xu) - special.gammaln(b) - special.gammaln(a + b + xu))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_b_x1_u = np.where(xu > 0, np.log(b + xu - 1), 0.0)
    x = d.x
    log_at = np.log(alpha + d.big_t)
    log_atx = np.log(alpha + d.t_x)
    a3 = -(r + x) * log_at
    a4 = np.where(d.repeat, math.log(a) - log_b_x1_u[d.xi] - (r + x) * log_atx, -np.inf)
    lae = np.logaddexp(a3, a4)
    return base_u[d.xi] + r * math.log(alpha) + lae, a4, lae, log_at, log_atx


def bgnbd_ll_grad(theta: Array, d: Rows, grad: bool = True) -> tuple[float, Array]:
    """Sum of weighted BG/NBD log-likelihoods and its gradient with respect to (r, alpha, a, b)."""
    r, alpha, a, b = (float(v) for v in theta)
    ll, a4, lae, log_at, log_atx = bgnbd_ll_rows(theta, d)
    value = wsum(d.w, ll)
    if not grad:
        return value, np.zeros(4)
    x, xu = d.x, d.xu
    w4 = np.exp(a4 - lae)  # share of the "dropped out right after t_x" term
    w3 = 1.0 - w4
    dr_u = special.digamma(r + xu) - special.digamma(r)
    da_u = special.digamma(a + b) - special.digamma(a + b + xu)
    db_u = da_u + special.digamma(b + xu) - special.digamma(b)
    with np.errstate(divide="ignore"):
        inv_b_x1_u = np.where(xu > 0, 1.0 / (b + xu - 1), 0.0)
    dr = dr_u[d.xi] + math.log(alpha) - w3 * log_at - w4 * log_atx
    dalpha = r / alpha - (r + x) * (w3 / (alpha + d.big_t) + w4 / (alpha + d.t_x))
    da = da_u[d.xi] + w4 / a
    db = db_u[d.xi] - w4 * inv_b_x1_u[d.xi]
    g = np.array([wsum(d.w, dr), wsum(d.w, dalpha), wsum(d.w, da), wsum(d.w, db)])
    return value, g


def log1mexp(v: Array) -> Array:
    """``log(1 - exp(v))`` for ``v <= 0``, accurate near 0 and for very negative ``v``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v > -math.log(2.0), np.log(-np.expm1(v)), np.log1p(-np.exp(v)))


def log_hyp2f1(a: Array, b: Array, c: Array, z: Array) -> Array:
    """``log 2F1(a, b; c; z)`` for ``0 <= z < 1``, via Euler's transformation where the direct
    evaluation overflows or fails."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        direct = np.log(special.hyp2f1(a, b, c, z))
        bad = ~np.isfinite(direct)
        if np.any(bad):
            ab, bb, cb, zb = (np.broadcast_to(v, direct.shape)[bad] for v in (a, b, c, z))
            euler = np.log(special.hyp2f1(cb - ab, cb - bb, cb, zb)) + (cb - ab - bb) * np.log1p(-zb)
            direct = direct.copy()
            direct[bad] = euler
    return np.asarray(direct, dtype=np.float64)


def pnbd_log_a0(r: float, alpha: float, s: float, beta: float, x: Array, t_x: Array,
                 big_t: Array) -> Array:
    """``log A0`` of the Pareto/NBD likelihood (Fader & Hardie 2005 note, eq. 4); ``-inf`` when
    ``t_x == T`` (no time in which the customer could have dropped out unseen)."""
    k = r + s + x
    hi = max(alpha, beta)
    second = np.full_like(x, s + 1.0) if alpha >= beta else r + x
    diff = abs(alpha - beta)
    log_f_tx = log_hyp2f1(k, second, k + 1.0, diff / (hi + t_x)) - k * np.log(hi + t_x)
    log_f_t = log_hyp2f1(k, second, k + 1.0, diff / (hi + big_t)) - k * np.log(hi + big_t)
    # A0 = F(t_x) - F(T) >= 0; computed as F(t_x) * (1 - F(T)/F(t_x)).
    return np.asarray(log_f_tx + log1mexp(np.minimum(log_f_t - log_f_tx, 0.0)), dtype=np.float64)


def pnbd_terms(theta: Array | Sequence[float], x: Array, t_x: Array, big_t: Array
                ) -> tuple[Array, Array, Array]:
    """Per row: the log-likelihood, ``log L1`` (alive at T) and ``log L2`` (dropped out in (t_x, T])
    without the common factor, and the common factor ``log Γ(r+x) α^r β^s / Γ(r)``."""
    r, alpha, s, beta = (float(v) for v in theta)
    common = special.gammaln(r + x) - special.gammaln(r) + r * math.log(alpha) + s * math.log(beta)
    log_l1 = -(r + x) * np.log(alpha + big_t) - s * np.log(beta + big_t)
    log_l2 = math.log(s) - np.log(r + s + x) + pnbd_log_a0(r, alpha, s, beta, x, t_x, big_t)
    return common + np.logaddexp(log_l1, log_l2), log_l1, log_l2


def pnbd_ll(theta: Array, d: Rows) -> float:
    """Sum of weighted Pareto/NBD log-likelihoods with respect to (r, alpha, s, beta)."""
    ll, _, _ = pnbd_terms(theta, d.x, d.t_x, d.big_t)
    return wsum(d.w, ll)


@dataclass(frozen=True)
class SpendRows:
    """Gamma-Gamma data (scaled spends) with the sums that do not depend on the parameters."""

    x: Array
    m: Array
    w: Array
    xu: Array
    wu: Array  # total weight per distinct x
    sum_w: float
    sum_wx_log_xm: float  # Σ w x (log x + log m)
    sum_w_log_m: float  # Σ w log m

    @classmethod
    def of(cls, x: Array, m: Array, w: Array) -> SpendRows:
        xu, xi = np.unique(x, return_inverse=True)
        wu = np.bincount(xi, weights=w, minlength=len(xu)).astype(np.float64)
        log_m = np.log(m)
        return cls(x, m, w, xu.astype(np.float64), wu, float(w.sum()),
                   float(wsum(w, x * (np.log(x) + log_m))), wsum(w, log_m))


def gg_ll_grad(theta: Array, d: SpendRows, grad: bool = True) -> tuple[float, Array]:
    """Sum of weighted Gamma-Gamma log-likelihoods of mean spends ``m`` over ``x`` purchases:
    ``log Γ(px+q) − log Γ(px) − log Γ(q) + q log v + (px−1) log m + px log x − (px+q) log(v+mx)``."""
    p, q, v = (float(t) for t in theta)
    pxu = p * d.xu
    log_vmx = np.log(v + d.m * d.x)
    weighted_log_vmx = d.w * log_vmx
    sum_log_vmx = float(weighted_log_vmx.sum())
    sum_x_log_vmx = wsum(weighted_log_vmx, d.x)
    value = (wsum(d.wu, special.gammaln(pxu + q) - special.gammaln(pxu))
             + d.sum_w * (q * math.log(v) - special.gammaln(q))
             + p * d.sum_wx_log_xm - d.sum_w_log_m - p * sum_x_log_vmx - q * sum_log_vmx)
    if not grad:
        return value, np.zeros(3)
    psi_u = special.digamma(pxu + q)
    dp = float(wsum(d.wu, d.xu * (psi_u - special.digamma(pxu)))) + d.sum_wx_log_xm - sum_x_log_vmx
    dq = wsum(d.wu, psi_u) - d.sum_w * special.digamma(q) + d.sum_w * math.log(v) - sum_log_vmx
    dv = d.sum_w * q / v - wsum(d.w, (p * d.x + q) / (v + d.m * d.x))
    return value, np.array([dp, dq, dv])
