"""Multi-touch attribution: heuristic models, exact Markov-chain removal effects and Shapley values.

Pure numerics, no I/O. The input is a set of conversion paths (:class:`Paths`): each path is an
ordered sequence of touchpoints (channel codes) with three weights — the conversions that ended
the path, the value of those conversions and the *null* journeys (same sequence, no conversion).
This is the layout of ChannelAttribution's ``PathData`` (one row per distinct path with
``total_conversions``, ``total_conversion_value`` and ``total_null``) and also of one customer
journey per row (weights 1/0). Paths are stored flat (CSR): ``touches`` holds every touch of every
path one after the other, ``offsets[i]:offsets[i + 1]`` is path ``i``.

Conventions shared by every model (``docs/attribution.md`` says the same for operators):

* **Empty paths** (a conversion with no recorded touchpoint) are credited to no channel: their
  conversions and value are reported as ``unattributed`` by every model, so the models' totals are
  comparable with each other.
* **Null paths** (``nulls``) matter to the Markov model and to the Shapley ``rate`` game only; the
  heuristic models and the Shapley ``conversions`` game credit conversions and ignore them.
* **Loops** (a channel touched several times in a path) count once per touch in the linear,
  time-decay and position-based models (a path ``a > a > b`` gives ``a`` two thirds under linear).
  In the first-order Markov chain a repeat is a self-transition, which changes no absorption
  probability and therefore no removal effect; in a higher-order chain the repeat is part of the
  state (``a,a``). ``collapse_repeats=True`` folds consecutive repeats into one touch first, for
  every model. Shapley values look at the *set* of channels of a path.
* **Look-back** is applied when paths are built (``marketing.touchpoints``), not here: a path holds
  the touches that fell in the window.
* Credits are fractional (floats); money enters as minor units and leaves as float minor units,
  the caller rounds for display.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

HEURISTIC_MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position_based")
MODELS = (*HEURISTIC_MODELS, "markov", "shapley")
#: Up to this many channels the Shapley values are computed over every coalition.
SHAPLEY_EXACT_MAX = 15
#: Up to this many possible state (or transition) codes, a counting table replaces a sort.
_DENSE_CODES = 20_000_000


@dataclass(frozen=True)
class Paths:
    """Conversion paths in flat (CSR) form; build with :meth:`from_sequences` or :meth:`from_strings`.

    ``ages`` (optional, one per touch) is how long before the end of its path the touch happened,
    in days; the time-decay model uses it.
    ``new_conversions`` (optional, per path) is the part of ``conversions`` made by new customers,
    so that every model can also report the new-customer share of its credit.
    """

    channels: tuple[str, ...]
    touches: IntArray
    offsets: IntArray
    conversions: FloatArray
    values: FloatArray
    nulls: FloatArray
    ages: FloatArray | None = None
    new_conversions: FloatArray | None = None

    def __post_init__(self) -> None:
        n = len(self.offsets) - 1
        if n < 0 or self.offsets[0] != 0 or self.offsets[-1] != len(self.touches):
            raise ValueError("offsets: must start at 0 and end at the number of touches")
        if np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets: must not decrease")
        for name in ("conversions", "values", "nulls", "new_conversions"):
            arr = getattr(self, name)
            if arr is None:
                continue
            if len(arr) != n:
                raise ValueError(f"{name}: one value per path ({n}), got {len(arr)}")
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"{name}: must be finite and not negative")
        if self.new_conversions is not None and np.any(self.new_conversions > self.conversions + 1e-9):
            raise ValueError("new_conversions: must not exceed conversions")
        if self.ages is not None and len(self.ages) != len(self.touches):
            raise ValueError("ages: one value per touch")
        if self.ages is not None and (not np.all(np.isfinite(self.ages)) or np.any(self.ages < 0)):
            raise ValueError("ages: must be finite and not negative")
        if len(self.touches) and (self.touches.min() < 0 or self.touches.max() >= len(self.channels)):
            raise ValueError("touches: channel code out of range")

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_sequences(
        cls,
        paths: Sequence[Sequence[str]],
        conversions: Sequence[float] | FloatArray,
        values: Sequence[float] | FloatArray | None = None,
        nulls: Sequence[float] | FloatArray | None = None,
        *,
        ages: Sequence[Sequence[float]] | None = None,
        new_conversions: Sequence[float] | FloatArray | None = None,
    ) -> Paths:
        """Paths from lists of channel names (channels coded in order of first appearance)."""
        codes: dict[str, int] = {}
        flat: list[int] = []
        offsets = [0]
        for path in paths:
            for ch in path:
                flat.append(codes.setdefault(ch, len(codes)))
            offsets.append(len(flat))
        n = len(paths)
        flat_ages = None
        if ages is not None:
            if len(ages) != n or any(len(a) != len(p) for a, p in zip(ages, paths, strict=True)):
                raise ValueError("ages: one list per path, one value per touch")
            flat_ages = np.array([x for a in ages for x in a], dtype=np.float64)
        return cls(
            channels=tuple(codes),
            touches=np.array(flat, dtype=np.int64),
            offsets=np.array(offsets, dtype=np.int64),
            conversions=np.asarray(conversions, dtype=np.float64),
            values=np.zeros(n) if values is None else np.asarray(values, dtype=np.float64),
            nulls=np.zeros(n) if nulls is None else np.asarray(nulls, dtype=np.float64),
            ages=flat_ages,
            new_conversions=None if new_conversions is None else np.asarray(new_conversions, np.float64),
        )

    @classmethod
    def from_strings(
        cls,
        paths: Iterable[str],
        conversions: Sequence[float] | FloatArray,
        values: Sequence[float] | FloatArray | None = None,
        nulls: Sequence[float] | FloatArray | None = None,
        *,
        sep: str = ">",
    ) -> Paths:
        """Paths written as ``"alpha > beta > alpha"`` (ChannelAttribution's format)."""
        seqs = [[part.strip() for part in p.split(sep) if part.strip()] for p in paths]
        return cls.from_sequences(seqs, conversions, values, nulls)

    # -- derived -----------------------------------------------------------------------------

    @property
    def n_paths(self) -> int:
        """Number of paths."""
        return len(self.offsets) - 1

    @property
    def lengths(self) -> IntArray:
        """Touches per path."""
        return np.diff(self.offsets)

    def path_of_touch(self) -> IntArray:
        """For every touch, the index of its path (computed once, read-only)."""
        return self._path_index

    @cached_property
    def _path_index(self) -> IntArray:
        index = np.repeat(np.arange(self.n_paths, dtype=np.int64), self.lengths)
        index.flags.writeable = False
        return index

    @cached_property
    def positions(self) -> tuple[IntArray, IntArray]:
        """Each touch's 0-based position in its path and its path's length (computed once)."""
        path = self.path_of_touch()
        pos = np.arange(len(self.touches), dtype=np.int64) - self.offsets[:-1][path]
        length = self.lengths[path]
        pos.flags.writeable = False
        length.flags.writeable = False
        return pos, length

    def collapsed(self) -> Paths:
        """The same paths with consecutive repeats of a channel folded into one touch (the kept
        touch is the latest of the run, so its age is the run's last)."""
        if len(self.touches) == 0:
            return self
        path = self.path_of_touch()
        keep = np.ones(len(self.touches), dtype=bool)
        same_next = (self.touches[:-1] == self.touches[1:]) & (path[:-1] == path[1:])
        keep[:-1] = ~same_next
        new_lengths = np.bincount(path[keep], minlength=self.n_paths)
        offsets = np.concatenate([[0], np.cumsum(new_lengths)]).astype(np.int64)
        return Paths(self.channels, self.touches[keep], offsets, self.conversions, self.values,
                     self.nulls, None if self.ages is None else self.ages[keep], self.new_conversions)


@dataclass(frozen=True)
class Credit:
    """What one model credits to each channel (arrays aligned with ``channels``).

    ``new_conversions`` is ``None`` when the paths carried no new-customer weights.
    ``removal_effects`` (Markov) and ``unattributed`` (empty paths) are kept for reporting.
    """

    model: str
    channels: tuple[str, ...]
    conversions: FloatArray
    values: FloatArray
    new_conversions: FloatArray | None = None
    unattributed_conversions: float = 0.0
    unattributed_value: float = 0.0
    removal_effects: FloatArray | None = None
    value_removal_effects: FloatArray | None = None
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, dict[str, float]]:
        """``{channel: {"conversions": …, "value": …}}``."""
        return {ch: {"conversions": float(self.conversions[i]), "value": float(self.values[i])}
                for i, ch in enumerate(self.channels)}


# ---------------------------------------------------------------------------------------------
# Heuristic models: a weight per touch, normalised within its path, times the path's weights.
# ---------------------------------------------------------------------------------------------


def _credit_from_touch_shares(paths: Paths, model: str, share: FloatArray) -> Credit:
    """Credit from per-touch shares that sum to 1 within every non-empty path."""
    path = paths.path_of_touch()
    k = len(paths.channels)

    def spread(weights: FloatArray) -> FloatArray:
        return np.bincount(paths.touches, weights=share * weights[path], minlength=k).astype(np.float64)

    empty = paths.lengths == 0
    return Credit(
        model=model,
        channels=paths.channels,
        conversions=spread(paths.conversions),
        values=spread(paths.values),
        new_conversions=None if paths.new_conversions is None else spread(paths.new_conversions),
        unattributed_conversions=float(paths.conversions[empty].sum()),
        unattributed_value=float(paths.values[empty].sum()),
    )


def _position(paths: Paths) -> tuple[IntArray, IntArray]:
    """Each touch's 0-based position in its path and its path's length."""
    return paths.positions


def first_touch(paths: Paths) -> Credit:
    """All credit to the first touch of each path."""
    pos, _ = _position(paths)
    return _credit_from_touch_shares(paths, "first_touch", (pos == 0).astype(np.float64))


def last_touch(paths: Paths) -> Credit:
    """All credit to the last touch of each path."""
    pos, length = _position(paths)
    return _credit_from_touch_shares(paths, "last_touch", (pos == length - 1).astype(np.float64))


def linear(paths: Paths) -> Credit:
    """Equal credit to every touch of a path (a channel touched twice gets two shares)."""
    _, length = _position(paths)
    return _credit_from_touch_shares(paths, "linear", 1.0 / length.astype(np.float64))


def time_decay(paths: Paths, half_life: float = 7.0) -> Credit:
    """Credit proportional to ``2 ** (-age / half_life)``: a touch ``half_life`` days older than
    another gets half its credit. Without ages (``Paths.ages`` is ``None``) a touch's age is the
    number of touches after it in its path (one touch per day)."""
    if not half_life > 0 or not math.isfinite(half_life):
        raise ValueError("half_life: must be a positive number of days")
    pos, length = _position(paths)
    ages = paths.ages if paths.ages is not None else (length - 1 - pos).astype(np.float64)
    # Relative to the youngest touch of the path, so long paths do not underflow.
    path = paths.path_of_touch()
    youngest = np.full(paths.n_paths, np.inf)
    np.minimum.at(youngest, path, ages)
    weight = np.exp2(-(ages - youngest[path]) / half_life)
    total = np.bincount(path, weights=weight, minlength=paths.n_paths)
    return _credit_from_touch_shares(paths, "time_decay", weight / total[path])


def position_based(paths: Paths, first: float = 0.4, last: float = 0.4) -> Credit:
    """U-shaped: ``first`` to the first touch, ``last`` to the last, the rest split evenly over
    the touches between. A one-touch path gives that touch everything; a two-touch path splits
    ``first : last`` (renormalised, 50/50 by default)."""
    if first < 0 or last < 0 or first + last > 1:
        raise ValueError("first, last: shares between 0 and 1 whose sum is at most 1")
    pos, length = _position(paths)
    share = np.zeros(len(paths.touches))
    one = length == 1
    two = length == 2
    many = length >= 3
    share[one] = 1.0
    ends = first + last
    share[two & (pos == 0)] = first / ends if ends > 0 else 0.5
    share[two & (pos == 1)] = last / ends if ends > 0 else 0.5
    share[many & (pos == 0)] = first
    share[many & (pos == length - 1)] = last
    middle = many & (pos > 0) & (pos < length - 1)
    share[middle] = (1.0 - first - last) / (length[middle] - 2)
    return _credit_from_touch_shares(paths, "position_based", share)


# ---------------------------------------------------------------------------------------------
# Markov chain: removal effects from the absorbing chain, solved exactly.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarkovChain:
    """The chain estimated from paths: transient states (0 = start, then the observed states),
    their transition matrix ``q`` among transient states and, per state, the probability of
    converting next (``to_conversion``) and the expected value of that step (``to_value``:
    probability × mean value of the conversions that followed the state)."""

    states: tuple[tuple[int, ...], ...]
    q: sp.csr_matrix
    to_conversion: FloatArray
    to_value: FloatArray
    to_null: FloatArray


def markov_chain(paths: Paths, order: int = 1) -> MarkovChain:
    """Estimate the order-``order`` chain: a state is the tuple of the last ``order`` channels
    (shorter at the start of a path). Every path contributes ``conversions + nulls`` journeys over
    its transitions ``start → s1 → … → sn``, then ``conversions`` to *conversion* and ``nulls`` to
    *null*. Paths with no touch or no weight are left out."""
    if order < 1:
        raise ValueError("order: at least 1")
    weight = paths.conversions + paths.nulls
    use = (paths.lengths > 0) & (weight > 0)
    k = len(paths.channels)
    base = k + 1  # codes 1..k, 0 = "no channel" padding for the first states of a path
    path = paths.path_of_touch()
    pos, length = _position(paths)
    # State code of every touch: the last ``order`` channels, as a number in base k+1.
    code = np.zeros(len(paths.touches), dtype=object if base**order >= 2**62 else np.int64)
    for lag in range(order):
        shifted = np.zeros(len(paths.touches), dtype=np.int64)
        ok = pos >= lag
        shifted[ok] = paths.touches[np.nonzero(ok)[0] - lag] + 1
        code = code + shifted * (base**lag)
    keep = use[path]
    kept = code[keep]
    if base**order <= _DENSE_CODES:  # few possible states: a table instead of a sort
        present = np.zeros(base**order, dtype=bool)
        present[kept] = True
        uniq = np.nonzero(present)[0]
        state_of_touch = (np.cumsum(present) - 1)[kept]
    else:
        uniq, state_of_touch = np.unique(kept, return_inverse=True)
    n_states = len(uniq) + 1  # + start
    sidx = np.zeros(len(paths.touches), dtype=np.int64)
    sidx[keep] = np.asarray(state_of_touch).ravel() + 1
    w_touch = weight[path]
    # start → first state
    first = paths.offsets[:-1][use]
    rows = [np.zeros(len(first), dtype=np.int64)]
    cols = [sidx[first]]
    vals = [weight[use]]
    # state → next state within a path
    nxt = np.nonzero(keep[:-1] & (pos[:-1] < length[:-1] - 1))[0] if len(pos) else np.array([], np.int64)
    rows.append(sidx[nxt])
    cols.append(sidx[nxt + 1])
    vals.append(w_touch[nxt])
    src, dst = np.concatenate(rows), np.concatenate(cols)
    wgt: FloatArray = np.concatenate(vals).astype(np.float64)
    if n_states * n_states <= _DENSE_CODES:  # add up equal transitions before building the matrix
        summed = np.bincount(src * n_states + dst, weights=wgt,
                             minlength=n_states * n_states).astype(np.float64)
        nz = np.nonzero(summed)[0].astype(np.int64)
        src, dst, wgt = nz // n_states, nz % n_states, summed[nz]
    counts = sp.coo_matrix((wgt, (src, dst)), shape=(n_states, n_states)).tocsr()
    last_state = sidx[paths.offsets[1:][use] - 1]
    conv = np.bincount(last_state, weights=paths.conversions[use], minlength=n_states)
    value = np.bincount(last_state, weights=paths.values[use], minlength=n_states)
    null = np.bincount(last_state, weights=paths.nulls[use], minlength=n_states)
    out = np.asarray(counts.sum(axis=1)).ravel() + conv + null
    out[out == 0] = 1.0  # only the start state of an empty chain
    q = sp.diags(1.0 / out) @ counts
    states: list[tuple[int, ...]] = [()]
    for number in uniq:
        digits: list[int] = []
        rest = int(number)
        for _ in range(order):
            rest, d = divmod(rest, base)
            if d:
                digits.append(d - 1)
        states.append(tuple(reversed(digits)))
    return MarkovChain(tuple(states), sp.csr_matrix(q), conv / out, value / out, null / out)


def absorption(chain: MarkovChain, removed: NDArray[np.bool_] | None = None) -> tuple[float, float]:
    """Probability of reaching *conversion* from the start, and the expected conversion value,
    with the states in ``removed`` turned into *null* (solves ``(I − Q) x = b`` exactly)."""
    n = chain.q.shape[0]
    q = chain.q
    b = np.column_stack([chain.to_conversion, chain.to_value])
    if removed is not None and removed.any():
        keep = (~removed).astype(np.float64)
        q = sp.diags(keep) @ q  # a removed state leads nowhere but null
        b = b * keep[:, None]
    a = (sp.identity(n, format="csc") - q).tocsc()
    x = spla.splu(a).solve(b)
    return float(x[0, 0]), float(x[0, 1])


def markov(paths: Paths, order: int = 1, *, collapse_repeats: bool = False) -> Credit:
    """Markov-chain attribution by removal effects, solved exactly (no simulation).

    ``p`` is the probability that a journey from *start* reaches *conversion*; removing channel
    ``c`` sends every transition into a state that contains ``c`` to *null*, giving ``p₋c``. The
    removal effect is ``1 − p₋c / p``; the conversions are split in proportion to the removal
    effects. The value is split the same way by value removal effects, computed on the expected
    conversion value (each conversion step carries the mean value of the conversions that followed
    that state). Null paths are the journeys that did not convert and lower ``p``; empty paths are
    unattributed. Higher orders use states of the last ``order`` channels.
    """
    if collapse_repeats:
        paths = paths.collapsed()
    chain = markov_chain(paths, order)
    k = len(paths.channels)
    contains = np.zeros((k, len(chain.states)), dtype=bool)
    for s, state in enumerate(chain.states):
        for ch in set(state):
            contains[ch, s] = True
    p, v = absorption(chain)
    re = np.zeros(k)
    rev = np.zeros(k)
    if p > 0:
        for ch in range(k):
            if contains[ch].any():
                p_c, v_c = absorption(chain, contains[ch])
                re[ch] = max(0.0, 1.0 - p_c / p)
                rev[ch] = max(0.0, 1.0 - v_c / v) if v > 0 else 0.0
    empty = paths.lengths == 0
    total_conv = float(paths.conversions[~empty].sum())
    total_value = float(paths.values[~empty].sum())
    total_new = None if paths.new_conversions is None else float(paths.new_conversions[~empty].sum())

    def split(effects: FloatArray, total: float) -> FloatArray:
        s = effects.sum()
        return effects * (total / s) if s > 0 else np.zeros(k)

    return Credit(
        model="markov" if order == 1 else f"markov_{order}",
        channels=paths.channels,
        conversions=split(re, total_conv),
        values=split(rev, total_value),
        new_conversions=None if total_new is None else split(re, total_new),
        unattributed_conversions=float(paths.conversions[empty].sum()),
        unattributed_value=float(paths.values[empty].sum()),
        removal_effects=re,
        value_removal_effects=rev,
    )


# ---------------------------------------------------------------------------------------------
# Shapley values over channel coalitions.
# ---------------------------------------------------------------------------------------------


def _channel_sets(paths: Paths) -> IntArray:
    """Each path's set of channels as a bit mask (channel ``i`` = bit ``i``)."""
    if len(paths.channels) > 62:
        raise ValueError("channels: Shapley values take at most 62 channels")
    path = paths.path_of_touch()
    masks = np.zeros(paths.n_paths, dtype=np.int64)
    np.bitwise_or.at(masks, path, np.left_shift(np.int64(1), paths.touches))
    return masks


def _subset_sums(by_set: FloatArray, n: int) -> FloatArray:
    """Zeta transform: ``out[S] = Σ_{T ⊆ S} by_set[T]`` over all ``2**n`` subsets."""
    out = by_set.copy()
    for i in range(n):
        bit = 1 << i
        idx = np.arange(1 << n)
        has = (idx & bit) != 0
        out[has] += out[idx[has] ^ bit]
    return out


def _exact_shapley(game: FloatArray, n: int) -> FloatArray:
    """Shapley values of the game ``game[S]`` (indexed by bit mask) over ``n`` players."""
    idx = np.arange(1 << n)
    size = np.array([bin(i).count("1") for i in range(1 << n)], dtype=np.int64)
    fact = [math.factorial(i) for i in range(n + 1)]
    weight = np.array([fact[s] * fact[n - s - 1] / fact[n] if s < n else 0.0 for s in range(n + 1)])
    phi = np.zeros(n)
    for i in range(n):
        bit = 1 << i
        without = idx[(idx & bit) == 0]
        phi[i] = float(np.sum(weight[size[without]] * (game[without | bit] - game[without])))
    return phi


def shapley(
    paths: Paths,
    *,
    game: Literal["conversions", "rate"] = "conversions",
    exact_max: int = SHAPLEY_EXACT_MAX,
) -> Credit:
    """Shapley values of the channels.

    ``game="conversions"``: the worth of a coalition ``S`` of channels is the conversions (value)
    of the paths whose channel set lies within ``S``. Up to ``exact_max`` channels (15) the values
    are computed over every coalition; beyond, the simplified formulation (Zhao et al., 2018)
    gives each path's conversions in equal parts to its distinct channels — which is the same
    number for this game, obtained in one pass (tests check the two agree).

    ``game="rate"``: the worth of ``S`` is the conversion rate of the journeys (converting and
    null) whose channel set lies within ``S``; this game has no shortcut, so it is exact only and
    refuses more than ``exact_max`` channels. Its values are scaled so that they add up to the
    conversions (and the value) of the non-empty paths.

    Null paths count in the ``rate`` game only; repeats and order within a path never count.
    """
    n = len(paths.channels)
    empty = paths.lengths == 0
    masks = _channel_sets(paths)
    weights = {"conversions": paths.conversions, "values": paths.values}
    if paths.new_conversions is not None:
        weights["new"] = paths.new_conversions
    result: dict[str, FloatArray] = {}
    notes: list[str] = []
    if game == "rate":
        if n > exact_max:
            raise ValueError(f"game: the rate game is exact only, up to {exact_max} channels ({n} given)")
        journeys = paths.conversions + paths.nulls
        reach = _subset_sums(np.bincount(masks[~empty], weights=journeys[~empty],
                                         minlength=1 << n).astype(np.float64), n)
        for key, w in weights.items():
            worth = _subset_sums(np.bincount(masks[~empty], weights=w[~empty],
                                             minlength=1 << n).astype(np.float64), n)
            rate = np.divide(worth, reach, out=np.zeros_like(worth), where=reach > 0)
            phi = _exact_shapley(rate, n) if n else np.zeros(0)
            total = float(w[~empty].sum())
            s = phi.sum()
            result[key] = phi * (total / s) if s != 0 else np.zeros(n)
        notes.append("exact (rate game)")
    elif game == "conversions":
        if n <= exact_max:
            for key, w in weights.items():
                by_set = np.bincount(masks[~empty], weights=w[~empty], minlength=1 << n).astype(np.float64)
                result[key] = _exact_shapley(_subset_sums(by_set, n), n) if n else np.zeros(0)
            notes.append("exact")
        else:
            distinct = np.array([bin(int(m)).count("1") for m in masks], dtype=np.float64)
            collapsed = _distinct_touches(paths)
            path = np.repeat(np.arange(paths.n_paths), collapsed[1])
            for key, w in weights.items():
                share = w[path] / distinct[path]
                result[key] = np.bincount(collapsed[0], weights=share, minlength=n).astype(np.float64)
            notes.append("simplified")
    else:
        raise ValueError("game: one of conversions, rate")
    return Credit(
        model="shapley",
        channels=paths.channels,
        conversions=result["conversions"],
        values=result["values"],
        new_conversions=result.get("new"),
        unattributed_conversions=float(paths.conversions[empty].sum()),
        unattributed_value=float(paths.values[empty].sum()),
        notes=tuple(notes),
    )


def _distinct_touches(paths: Paths) -> tuple[IntArray, IntArray]:
    """Each path's distinct channels (flat) and how many each path has."""
    path = paths.path_of_touch()
    pairs = np.unique(path * len(paths.channels) + paths.touches) if len(path) else np.zeros(0, np.int64)
    which_path = pairs // max(len(paths.channels), 1)
    return (pairs % max(len(paths.channels), 1)).astype(np.int64), np.bincount(
        which_path, minlength=paths.n_paths).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# All models at once, and the per-channel report.
# ---------------------------------------------------------------------------------------------


def attribute(
    paths: Paths,
    models: Sequence[str] = MODELS,
    *,
    half_life: float = 7.0,
    first_share: float = 0.4,
    last_share: float = 0.4,
    markov_order: int = 1,
    shapley_game: Literal["conversions", "rate"] = "conversions",
    collapse_repeats: bool = False,
) -> dict[str, Credit]:
    """Run ``models`` (names of :data:`MODELS`) on the same paths; results keyed by model name."""
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"models: unknown {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    if collapse_repeats:
        paths = paths.collapsed()
    out: dict[str, Credit] = {}
    for model in models:
        if model == "first_touch":
            out[model] = first_touch(paths)
        elif model == "last_touch":
            out[model] = last_touch(paths)
        elif model == "linear":
            out[model] = linear(paths)
        elif model == "time_decay":
            out[model] = time_decay(paths, half_life)
        elif model == "position_based":
            out[model] = position_based(paths, first_share, last_share)
        elif model == "markov":
            out[model] = markov(paths, markov_order)
        else:
            out[model] = shapley(paths, game=shapley_game)
    return out


@dataclass(frozen=True)
class ChannelRow:
    """One channel under one model, with spend-based ratios (``None`` where undefined)."""

    model: str
    channel: str
    conversions: float
    value: float
    new_customers: float | None
    spend: int
    cac: float | None
    roas: float | None
    new_share: float | None


def channel_report(credits: Mapping[str, Credit], spend: Mapping[str, int]) -> list[ChannelRow]:
    """Per model and channel: attributed conversions and value, new customers, the channel's spend
    (minor units), CAC = spend / attributed new customers, ROAS = attributed value / spend and the
    new-customer share of its conversions. Channels with spend but no touchpoint are listed with
    zero credit, so their spend is not hidden."""
    rows: list[ChannelRow] = []
    for model, credit in credits.items():
        names = list(credit.channels) + sorted(set(spend) - set(credit.channels))
        for i, ch in enumerate(names):
            inside = i < len(credit.channels)
            conv = float(credit.conversions[i]) if inside else 0.0
            value = float(credit.values[i]) if inside else 0.0
            new = None
            if credit.new_conversions is not None:
                new = float(credit.new_conversions[i]) if inside else 0.0
            cost = int(spend.get(ch, 0))
            rows.append(ChannelRow(
                model=model, channel=ch, conversions=conv, value=value, new_customers=new,
                spend=cost,
                cac=(cost / new) if new is not None and new > 1e-12 and cost > 0 else None,
                roas=(value / cost) if cost > 0 else None,
                new_share=(new / conv) if new is not None and conv > 1e-12 else None,
            ))
    return rows
