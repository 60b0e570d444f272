"""Attribution models: a hand-worked example, PathData.csv against independent computations."""

from __future__ import annotations

import csv
import itertools
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from growthwheel.stats.attribution import (
    Paths,
    attribute,
    channel_report,
    markov,
    position_based,
    shapley,
    time_decay,
)

PATH_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "attribution" / "PathData.csv"
if not PATH_DATA.exists():  # the checkout may sit elsewhere than beside shared/
    PATH_DATA = Path("/work/shared/data/attribution/PathData.csv")


def _credits(credit: object) -> dict[str, float]:
    return {ch: float(x) for ch, x in zip(credit.channels, credit.conversions, strict=True)}  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# The three-path example worked by hand (docs/attribution.md shows the working).
#   A > B  converts (value 30);  B  converts (value 10);  A  does not convert (one null).
# ---------------------------------------------------------------------------------------------

THREE = Paths.from_strings(["A > B", "B", "A"], [1, 1, 0], [30, 10, 0], [0, 0, 1])


def test_three_paths_heuristics_by_hand() -> None:
    res = attribute(THREE, ["first_touch", "last_touch", "linear", "position_based"])
    assert _credits(res["first_touch"]) == {"A": 1.0, "B": 1.0}
    assert _credits(res["last_touch"]) == {"A": 0.0, "B": 2.0}
    assert _credits(res["linear"]) == {"A": 0.5, "B": 1.5}
    assert _credits(res["position_based"]) == {"A": 0.5, "B": 1.5}
    assert res["last_touch"].values.tolist() == [0.0, 40.0]


def test_three_paths_markov_by_hand() -> None:
    # start→A 2/3, start→B 1/3; A→B 1/2, A→null 1/2; B→conv 1.  p = 2/3·1/2 + 1/3 = 2/3.
    # Without A: p = 1/3, effect 1/2.  Without B: p = 0, effect 1.  2 conversions split 1 : 2.
    credit = markov(THREE)
    assert credit.removal_effects is not None
    assert credit.removal_effects.tolist() == pytest.approx([0.5, 1.0], abs=1e-12)
    assert _credits(credit) == pytest.approx({"A": 2 / 3, "B": 4 / 3}, abs=1e-12)
    assert credit.values.tolist() == pytest.approx([40 / 3, 80 / 3], abs=1e-9)


def test_three_paths_shapley_by_hand() -> None:
    # v({A}) = 0, v({B}) = 1, v({A,B}) = 2 → φA = ½·0 + ½·(2 − 1) = ½, φB = ½·1 + ½·2 = 3/2.
    assert _credits(shapley(THREE)) == pytest.approx({"A": 0.5, "B": 1.5}, abs=1e-12)
    # Rate game: r({A}) = 0, r({B}) = 1, r({A,B}) = 2/3 → φA = −1/6, φB = 5/6, scaled to 2 conversions.
    assert _credits(shapley(THREE, game="rate")) == pytest.approx({"A": -0.5, "B": 2.5}, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# PathData.csv (ChannelAttribution) against computations written independently here.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def path_data() -> list[tuple[list[str], float, float, float]]:
    with PATH_DATA.open(encoding="utf-8") as f:
        return [([c.strip() for c in r["path"].split(">")], float(r["total_conversions"]),
                 float(r["total_conversion_value"]), float(r["total_null"])) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def paths(path_data: list[tuple[list[str], float, float, float]]) -> Paths:
    return Paths.from_sequences([r[0] for r in path_data], [r[1] for r in path_data],
                                [r[2] for r in path_data], [r[3] for r in path_data])


def test_path_data_totals(paths: Paths) -> None:
    assert paths.n_paths == 10_000
    assert paths.conversions.sum() == 19_785
    assert paths.values.sum() == pytest.approx(74_802.97, abs=0.01)
    assert paths.nulls.sum() == 68_602


def test_heuristics_match_a_plain_loop(path_data: list[tuple[list[str], float, float, float]],
                                       paths: Paths) -> None:
    expect: dict[str, defaultdict[str, float]] = {m: defaultdict(float) for m in
                                                  ("first_touch", "last_touch", "linear", "position_based")}
    for seq, conv, _value, _null in path_data:
        expect["first_touch"][seq[0]] += conv
        expect["last_touch"][seq[-1]] += conv
        for ch in seq:
            expect["linear"][ch] += conv / len(seq)
        if len(seq) == 1:
            expect["position_based"][seq[0]] += conv
        elif len(seq) == 2:
            expect["position_based"][seq[0]] += conv / 2
            expect["position_based"][seq[1]] += conv / 2
        else:
            expect["position_based"][seq[0]] += 0.4 * conv
            expect["position_based"][seq[-1]] += 0.4 * conv
            for ch in seq[1:-1]:
                expect["position_based"][ch] += 0.2 * conv / (len(seq) - 2)
    res = attribute(paths, list(expect))
    for model, want in expect.items():
        assert _credits(res[model]) == pytest.approx(dict(want), rel=1e-12, abs=1e-9), model
        assert res[model].conversions.sum() == pytest.approx(19_785)
    # The last-touch credit of PathData, exact counts.
    assert _credits(res["last_touch"])["alpha"] == 8447
    assert _credits(res["first_touch"])["alpha"] == 6308


def _value_iteration(path_data: list[tuple[list[str], float, float, float]], order: int,
                     removed: str | None) -> float:
    """P(conversion) from start by iterating x ← Qx + b on a dictionary-built chain."""
    out: defaultdict[tuple[str, ...], defaultdict[object, float]] = defaultdict(lambda: defaultdict(float))
    for seq, conv, _value, null in path_data:
        w = conv + null
        if w == 0:
            continue
        states = [tuple(seq[max(0, i - order + 1): i + 1]) for i in range(len(seq))]
        prev: tuple[str, ...] = ()
        for s in states:
            out[prev][s] += w
            prev = s
        out[prev]["CONV"] += conv
        out[prev]["NULL"] += null
    prob = {s: {t: c / sum(d.values()) for t, c in d.items()} for s, d in out.items()}
    x: dict[tuple[str, ...], float] = defaultdict(float)
    for _ in range(5000):
        delta = 0.0
        for s, d in prob.items():
            if removed is not None and removed in s:
                continue
            new = sum(p * (1.0 if t == "CONV" else 0.0 if t == "NULL" else x[t]) for t, p in d.items())  # type: ignore[index]
            delta = max(delta, abs(new - x[s]))
            x[s] = new
        if delta < 1e-13:
            break
    return x[()]


@pytest.mark.parametrize("order", [1, 2])
def test_markov_removal_effects_equal_value_iteration(
        path_data: list[tuple[list[str], float, float, float]], paths: Paths, order: int) -> None:
    credit = markov(paths, order)
    p = _value_iteration(path_data, order, None)
    assert credit.removal_effects is not None
    for i, ch in enumerate(credit.channels):
        expect = 1.0 - _value_iteration(path_data, order, ch) / p
        assert credit.removal_effects[i] == pytest.approx(expect, abs=1e-9), ch
    assert credit.conversions.sum() == pytest.approx(19_785)
    assert credit.values.sum() == pytest.approx(74_802.97)
    # Deterministic: a second run gives the very same numbers (ChannelAttribution's simulation does not).
    assert np.array_equal(markov(paths, order).conversions, credit.conversions)


def test_markov_self_loops_change_nothing_in_first_order(paths: Paths) -> None:
    plain = markov(paths)
    folded = markov(paths, collapse_repeats=True)
    assert folded.conversions == pytest.approx(plain.conversions, rel=1e-9)


def test_markov_on_a_cycle_equals_the_enumerated_series() -> None:
    # A chain with a cycle; P(conv) = Σ_k (1/3)^k · 1/3 = 1/2, and removing A or B leaves 0.
    paths = Paths.from_strings(["A > B > A > B", "A > B"], [1, 0], [1, 0], [0, 1])
    # Transitions: start→A 2; A→B 3; B→A 1, B→conv 1, B→null 1 → from B one third each.
    # Enumerate the journeys by how many times they go round B→A before leaving B.
    chain_p = sum((1 / 3) ** k * (1 / 3) for k in range(200))
    credit = markov(paths)
    assert credit.removal_effects is not None
    assert chain_p == pytest.approx(0.5)
    assert credit.removal_effects.tolist() == pytest.approx([1.0, 1.0])
    assert credit.conversions.tolist() == pytest.approx([0.5, 0.5])


def test_shapley_exact_equals_simplified_and_permutations(paths: Paths) -> None:
    exact = shapley(paths)
    simple = shapley(paths, exact_max=0)
    assert exact.notes == ("exact",)
    assert simple.notes == ("simplified",)
    assert exact.conversions == pytest.approx(simple.conversions, rel=1e-9)
    assert exact.values == pytest.approx(simple.values, rel=1e-9)


def test_shapley_rate_game_equals_permutation_average() -> None:
    seqs = [["a", "b"], ["b", "c"], ["a"], ["c", "a", "b"], ["c"], ["b"]]
    conv = [3, 1, 0, 2, 1, 0]
    null = [1, 4, 2, 1, 5, 3]
    p = Paths.from_sequences(seqs, conv, conv, null)

    def rate(coalition: set[str]) -> float:
        inside = [i for i, s in enumerate(seqs) if set(s) <= coalition]
        n = sum(conv[i] + null[i] for i in inside)
        return sum(conv[i] for i in inside) / n if n else 0.0

    players = ["a", "b", "c"]
    phi = dict.fromkeys(players, 0.0)
    orders = list(itertools.permutations(players))
    for order in orders:
        have: set[str] = set()
        for pl in order:
            phi[pl] += (rate(have | {pl}) - rate(have)) / len(orders)
            have.add(pl)
    scale = sum(conv) / sum(phi.values())
    got = _credits(shapley(p, game="rate"))
    assert got == pytest.approx({k: v * scale for k, v in phi.items()}, abs=1e-12)


def test_time_decay_halves_per_half_life() -> None:
    p = Paths.from_sequences([["a", "b", "c"]], [1], [100], [0], ages=[[14.0, 7.0, 0.0]])
    got = _credits(time_decay(p, half_life=7))
    assert got == pytest.approx({"a": 1 / 7, "b": 2 / 7, "c": 4 / 7})
    # Without ages a touch's age is its distance from the end in touches.
    q = Paths.from_sequences([["a", "b"]], [3], [0], [0])
    assert _credits(time_decay(q, half_life=1)) == pytest.approx({"a": 1.0, "b": 2.0})


def test_position_based_middle_share() -> None:
    p = Paths.from_sequences([["a", "b", "c", "d"]], [10], [0], [0])
    assert _credits(position_based(p)) == pytest.approx({"a": 4, "b": 1, "c": 1, "d": 4})


def test_empty_paths_are_unattributed_in_every_model() -> None:
    p = Paths.from_sequences([["a"], []], [2, 5], [20, 50], [1, 0])
    for model, credit in attribute(p).items():
        assert credit.unattributed_conversions == 5, model
        assert credit.conversions.sum() == pytest.approx(2), model


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ValueError, match="conversions"):
        Paths.from_sequences([["a"]], [-1])
    with pytest.raises(ValueError, match="half_life"):
        time_decay(THREE, half_life=0)
    with pytest.raises(ValueError, match="models"):
        attribute(THREE, ["nonsense"])


def test_channel_report_cac_roas_new_share() -> None:
    p = Paths.from_sequences([["a", "b"], ["b"]], [2, 1], [300, 100], [0, 0], new_conversions=[1, 1])
    rows = {(r.model, r.channel): r for r in channel_report(attribute(p, ["last_touch"]),
                                                             {"b": 200, "z": 50})}
    b = rows[("last_touch", "b")]
    assert (b.conversions, b.value, b.new_customers, b.spend) == (3, 400, 2, 200)
    assert b.cac == 100
    assert b.roas == 2
    assert b.new_share == pytest.approx(2 / 3)
    z = rows[("last_touch", "z")]
    assert z.conversions == 0
    assert z.roas == 0
    assert z.cac is None
    assert math.isclose(rows[("last_touch", "a")].conversions, 0)
