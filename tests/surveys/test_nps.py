"""NPS and its intervals: groups, the variance against numpy, coverage against simulated truth."""

from __future__ import annotations

import numpy as np
import pytest

from growthwheel.surveys import nps


def test_groups_follow_the_published_cut_points() -> None:
    assert [nps.group_of(s) for s in range(11)] == ["detractor"] * 7 + ["passive"] * 2 + ["promoter"] * 2
    with pytest.raises(ValueError, match=r"0\.\.10"):
        nps.group_of(11)


def test_nps_of_a_small_sample_by_hand() -> None:
    # 5 promoters, 3 passives, 2 detractors: NPS = 50% - 20% = +30
    counts = nps.Counts.of([10, 9, 9, 10, 9, 8, 7, 7, 3, 6])
    assert (counts.promoters, counts.passives, counts.detractors) == (5, 3, 2)
    est = nps.estimate(counts)
    assert est.nps == 30.0
    # Wald: var = .5 + .2 - .3^2 = .61; half width = 1.959964 * sqrt(.061) = 0.484075
    assert est.wald_low == pytest.approx(-18.41, abs=0.01)
    assert est.wald_high == pytest.approx(78.41, abs=0.01)
    # adjusted: n' = 13, p' = 5.75/13, d' = 2.75/13 -> centre 3/13 = .230769
    p, d = 5.75 / 13, 2.75 / 13
    half = 1.959963985 * np.sqrt((p + d - (p - d) ** 2) / 13)
    assert est.low == pytest.approx(round((3 / 13 - half) * 100, 2))
    assert est.high == pytest.approx(round((3 / 13 + half) * 100, 2))


def test_wald_variance_is_the_variance_of_the_trinomial_scores() -> None:
    """The reference: numpy's (population) variance of +1/0/-1 scores, divided by n."""
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 11, size=257)
    counts = nps.Counts.of(scores.tolist())
    trinomial = np.where(scores >= 9, 1, np.where(scores >= 7, 0, -1))
    low, high = nps.wald(counts, 0.9)
    se = np.sqrt(np.var(trinomial) / len(scores))
    assert (high - low) / 2 == pytest.approx(1.6448536 * se, rel=1e-6)
    assert (high + low) / 2 == pytest.approx(trinomial.mean())


def test_no_answers_and_one_sided_answers() -> None:
    empty = nps.estimate(nps.Counts(0, 0, 0))
    assert empty.nps is None
    assert empty.low is None
    all_promoters = nps.estimate(nps.Counts(12, 0, 0))
    assert all_promoters.nps == 100.0
    assert all_promoters.wald_low == all_promoters.wald_high == 100.0  # Wald collapses
    assert all_promoters.low is not None
    assert all_promoters.low < 100.0
    assert all_promoters.high == 100.0
    with pytest.raises(ValueError, match="confidence"):
        nps.estimate(nps.Counts(1, 1, 1), confidence=1.0)


def _coverage(truth: tuple[float, float, float], n: int, reps: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, truth, size=reps)
    true_nps = truth[0] - truth[2]
    hits = {"wald": 0, "adjusted_wald": 0}
    for p, pa, d in draws:
        counts = nps.Counts(int(p), int(pa), int(d))
        for name, interval in (("wald", nps.wald), ("adjusted_wald", nps.adjusted_wald)):
            low, high = interval(counts, 0.95)
            hits[name] += low <= true_nps <= high
    return {name: hit / reps for name, hit in hits.items()}


@pytest.mark.parametrize(("truth", "n"), [((0.45, 0.35, 0.20), 400), ((0.30, 0.30, 0.40), 60)])
def test_both_intervals_cover_a_central_truth(truth: tuple[float, float, float], n: int) -> None:
    cover = _coverage(truth, n, reps=3000, seed=11)
    # 3,000 replications: the standard error of a 95% coverage is 0.4 points
    assert 0.935 <= cover["wald"] <= 0.965
    assert 0.935 <= cover["adjusted_wald"] <= 0.97


def test_adjusted_wald_covers_where_wald_fails() -> None:
    """Small samples of an enthusiastic crowd (true NPS +80): Wald misses often, adjusted does not."""
    cover = _coverage((0.85, 0.10, 0.05), n=20, reps=3000, seed=5)
    assert cover["wald"] < 0.90
    assert cover["adjusted_wald"] >= 0.93
