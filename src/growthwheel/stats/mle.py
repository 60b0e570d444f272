"""Maximum likelihood inside bounds, for the CLV models (``stats.clv``): pure numerics, no I/O.

Parameters are optimised in log space inside ``[LOWER, UPPER]`` (the models scale their data so
these bounds do not depend on the time unit or the currency). :func:`solve` runs L-BFGS-B from the
most likely of a few starting points, then from the others if it does not converge; if none
converges, Nelder-Mead continues from the best point and L-BFGS-B polishes. The covariance is the
inverse of a numerical Hessian of the negative log-likelihood over the parameters the data
identify (:func:`solve`'s ``cov``; :func:`std_errors` scales it back).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize

Array = npt.NDArray[np.float64]

#: Bounds of every (scaled) parameter while optimising.
LOWER, UPPER = 1e-6, 1e6
_LOG_BOUNDS = (math.log(LOWER), math.log(UPPER))
#: A parameter whose log is this close to a bound is reported as being on it.
_AT_BOUND = 1e-3
#: Largest projected gradient (of the mean log-likelihood, in log parameters) deemed converged.
_GRAD_TOL = 1e-4


@dataclass(frozen=True)
class Problem:
    """A maximum-likelihood problem in scaled parameters ``theta`` (all positive)."""

    names: tuple[str, ...]
    loglik: Callable[[Array], float]
    loglik_grad: Callable[[Array], tuple[float, Array]] | None
    total_weight: float
    starts: list[Array]


@dataclass(frozen=True)
class Solution:
    theta: Array
    loglik: float
    converged: bool
    optimizer: str
    at_bounds: tuple[str, ...]
    cov: Array
    message: str


_BIG = 1e100


def _objective(problem: Problem) -> Callable[[Array], float]:
    """Mean negative log-likelihood in log parameters."""
    scale = 1.0 / problem.total_weight

    def f(u: Array) -> float:
        with np.errstate(all="ignore"):
            value = problem.loglik(np.exp(u))
        return -value * scale if math.isfinite(value) else _BIG

    return f


def _objective_grad(problem: Problem) -> Callable[[Array], tuple[float, Array]] | None:
    """Mean negative log-likelihood in log parameters with its gradient (one pass), when analytic."""
    if problem.loglik_grad is None:
        return None
    grad_fn = problem.loglik_grad
    scale = 1.0 / problem.total_weight

    def fg(u: Array) -> tuple[float, Array]:
        theta = np.exp(u)
        with np.errstate(all="ignore"):
            value, grad = grad_fn(theta)
        if not math.isfinite(value):
            return _BIG, np.zeros_like(u)
        grad = -grad * theta * scale
        return -value * scale, np.where(np.isfinite(grad), grad, 0.0)

    return fg


def _projected_gradient(problem: Problem, u: Array) -> Array:
    fg = _objective_grad(problem)
    if fg is not None:
        grad = fg(u)[1]
    else:
        grad = optimize.approx_fprime(u, _objective(problem), 1e-7)
    lo, hi = _LOG_BOUNDS
    # A component pushing against its bound is not a sign of non-convergence.
    grad = np.where((u <= lo + _AT_BOUND) & (grad > 0), 0.0, grad)
    grad = np.where((u >= hi - _AT_BOUND) & (grad < 0), 0.0, grad)
    return np.asarray(grad, dtype=np.float64)


def _lbfgsb(problem: Problem, u0: Array) -> optimize.OptimizeResult:
    bounds = [_LOG_BOUNDS] * len(u0)
    options = {"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9}
    fg = _objective_grad(problem)
    if fg is not None:
        return optimize.minimize(fg, u0, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    return optimize.minimize(_objective(problem), u0, jac="2-point", method="L-BFGS-B", bounds=bounds,
                             options=options)


def _converged(problem: Problem, u: Array, value: float) -> bool:
    return value < _BIG and bool(np.max(np.abs(_projected_gradient(problem, u))) < _GRAD_TOL)


def solve(problem: Problem, hessian: bool = True) -> Solution:
    """Maximise the likelihood.

    L-BFGS-B starts from the most likely of the starting points; if it does not converge, from
    each of the others; if none converges, Nelder-Mead continues from the best point found and
    L-BFGS-B polishes its result.
    """
    f = _objective(problem)
    lo, hi = _LOG_BOUNDS
    starts = sorted((np.clip(np.log(s), lo, hi) for s in problem.starts), key=f)
    tried: list[tuple[float, Array]] = []
    converged = False
    for start in starts:
        res = _lbfgsb(problem, start)
        tried.append((float(res.fun), np.asarray(res.x, dtype=np.float64)))
        if _converged(problem, tried[-1][1], tried[-1][0]):
            converged = True
            break
    value, u = min(tried, key=lambda c: c[0])
    optimizer = "L-BFGS-B" if len(tried) == 1 else f"L-BFGS-B ({len(tried)} starting points)"
    if not converged:
        nm = optimize.minimize(f, u, method="Nelder-Mead", bounds=[_LOG_BOUNDS] * len(u),
                               options={"maxiter": 20_000, "xatol": 1e-10, "fatol": 1e-14,
                                        "adaptive": True})
        polish = _lbfgsb(problem, np.asarray(nm.x, dtype=np.float64))
        value, u = min([(value, u), (float(nm.fun), np.asarray(nm.x, dtype=np.float64)),
                        (float(polish.fun), np.asarray(polish.x, dtype=np.float64))], key=lambda c: c[0])
        optimizer = f"L-BFGS-B ({len(starts)} starting points), then Nelder-Mead and L-BFGS-B"
        converged = _converged(problem, u, value)
    theta = np.exp(u)
    at_bounds = tuple(name for name, v in zip(problem.names, u, strict=True)
                      if v <= lo + _AT_BOUND or v >= hi - _AT_BOUND)
    if hessian:
        cov, message = _covariance(problem, theta, at_bounds)
    else:
        cov, message = np.full((len(theta), len(theta)), np.nan), ""
    loglik = problem.loglik(theta)
    if not converged:
        message = ("the optimiser did not converge; the parameters are the best found. " + message).strip()
    return Solution(theta, loglik, converged, optimizer, at_bounds, cov, message)


def _hessian(problem: Problem, theta: Array) -> Array:
    """Numerical Hessian of the negative log-likelihood (sum over customers) in ``theta``."""
    k = len(theta)
    hess = np.empty((k, k))
    if problem.loglik_grad is not None:
        grad_fn = problem.loglik_grad
        for i in range(k):
            h = 1e-5 * theta[i]
            up, down = theta.copy(), theta.copy()
            up[i] += h
            down[i] -= h
            hess[:, i] = -(grad_fn(up)[1] - grad_fn(down)[1]) / (2 * h)
        return (hess + hess.T) / 2
    f = problem.loglik
    steps = 5e-4 * theta

    def at(i: int, si: float, j: int, sj: float) -> float:
        point = theta.copy()
        point[i] += si * steps[i]
        point[j] += sj * steps[j]
        return -f(point)

    centre = -f(theta)
    for i in range(k):
        hess[i, i] = (at(i, 1, i, 1) - 2 * centre + at(i, -1, i, -1)) / (4 * steps[i] ** 2)
        for j in range(i):
            value = (at(i, 1, j, 1) - at(i, 1, j, -1) - at(i, -1, j, 1) + at(i, -1, j, -1)) / (
                4 * steps[i] * steps[j])
            hess[i, j] = hess[j, i] = value
    return hess


def _covariance(problem: Problem, theta: Array, at_bounds: tuple[str, ...]) -> tuple[Array, str]:
    """Inverse Hessian over the identified parameters (NaN rows and columns for the others).

    Parameters on a bound are left out first. If the Hessian of the rest is still not positive
    definite, the parameter with the flattest likelihood (smallest curvature in its log) is left
    out in turn, until what remains can be inverted: those parameters are not identified by the data.
    """
    k = len(theta)
    cov = np.full((k, k), np.nan)
    free = [i for i, name in enumerate(problem.names) if name not in at_bounds]
    notes = []
    if at_bounds:
        notes.append(f"{', '.join(at_bounds)} reached the bound of the search ({LOWER:g} .. {UPPER:g} "
                     "on the scaled data): the data barely identify it; no standard error.")
    if not free:
        return cov, " ".join(notes)
    with np.errstate(all="ignore"):
        full = _hessian(problem, theta)
    flat: list[str] = []
    while free:
        hess = full[np.ix_(free, free)]
        try:
            if not np.all(np.isfinite(hess)):
                raise np.linalg.LinAlgError("non-finite Hessian")
            np.linalg.cholesky(hess)
            cov[np.ix_(free, free)] = np.linalg.inv(hess)
            break
        except np.linalg.LinAlgError:
            curvature = np.nan_to_num(np.diag(hess) * theta[free] ** 2, nan=-np.inf)
            flat.append(problem.names[free.pop(int(np.argmin(curvature)))])
    if flat:
        notes.append(f"{', '.join(flat)}: not identified by the data (the likelihood is flat); "
                     "no standard error.")
    return cov, " ".join(notes)


def std_errors(names: tuple[str, ...], cov: Array, scales: Array) -> dict[str, float]:
    variances = np.diag(cov) * scales**2
    return {name: float(math.sqrt(v)) if math.isfinite(v) and v >= 0 else math.nan
            for name, v in zip(names, variances, strict=True)}
