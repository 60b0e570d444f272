"""``growthwheel stats …``: the analyst's calculators over the pure statistics engine.

* ``stats compare`` reads a JSON list of variants (control first) as sufficient statistics and
  prints every comparison with the control: absolute and relative effects with intervals and
  p-values, the multiple-comparison correction, the always-valid sequential read-out, the Bayesian
  chance to win and expected loss, and the sample-ratio-mismatch check — as a table with plain
  sentences, or as JSON.
* ``stats sample-size`` sizes a test (units per variant for a minimum detectable effect), or with
  ``--traffic`` gives the MDE a given number of units per variant can detect.

Registered on the main app with ``app.add_typer(stats_app, name="stats")``. Bad input prints one
line naming the variant and field and exits 1. No data directory is needed.
"""

from __future__ import annotations

import json
import math
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from growthwheel.cli.common import cli_errors, out, print_json
from growthwheel.errors import InvalidArgumentError
from growthwheel.stats import ab, power
from growthwheel.stats.ab import Analysis, Comparison, Effect
from growthwheel.stats.sufficient import (
    KINDS,
    CupedMeanStats,
    CupedRatioStats,
    MeanStats,
    ProportionStats,
    RatioStats,
    VariantStats,
    validate,
)

stats_app = typer.Typer(
    help="A/B test calculators: compare variants, size a test.", no_args_is_help=True
)


class CorrectionChoice(StrEnum):
    """Multiple-comparison corrections."""

    holm = "holm"
    bh = "bh"
    none = "none"


class FormulaChoice(StrEnum):
    """Two-proportion sample-size formulas."""

    pooled = "pooled"
    unpooled = "unpooled"


# --------------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------------

#: Field sets that identify each kind of statistics in the input (extra "name" allowed).
_SHAPES: tuple[tuple[type[Any], tuple[str, ...]], ...] = (
    (CupedRatioStats, tuple(f for f in CupedRatioStats.__dataclass_fields__ if f != "name")),
    (RatioStats, tuple(f for f in RatioStats.__dataclass_fields__ if f != "name")),
    (CupedMeanStats, tuple(f for f in CupedMeanStats.__dataclass_fields__ if f != "name")),
    (ProportionStats, ("n", "conversions")),
    (MeanStats, ("n", "sum", "sum_squares")),
)


def _read_input(source: str) -> Any:
    if source == "-":
        text = sys.stdin.read()
        where = "stdin"
    else:
        path = Path(source)
        if not path.is_file():
            raise InvalidArgumentError(f"--input: no such file {source}")
        text = path.read_text(encoding="utf-8")
        where = source
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(
            f"--input: {where} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def _number(value: Any, label: str, field: str, whole: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"{label}: {field} must be a number (got {json.dumps(value)})")
    if whole:
        if isinstance(value, float) and not value.is_integer():
            raise InvalidArgumentError(f"{label}: {field} must be a whole number (got {value})")
        return int(value)
    return float(value)


def parse_variants(data: Any) -> list[VariantStats]:
    """Variants from the decoded ``--input`` JSON: a list of objects, control first.

    Each object is ``{"name", "n", "sum", "sum_squares"}`` (mean), ``{"name", "n", "conversions"}``
    (conversion), or carries the fields of :class:`~growthwheel.stats.sufficient.RatioStats`,
    :class:`~growthwheel.stats.sufficient.CupedMeanStats` or
    :class:`~growthwheel.stats.sufficient.CupedRatioStats`.
    Errors name the variant's position (1 = control) and the field.
    """
    if not isinstance(data, list):
        raise InvalidArgumentError("--input: expected a JSON list of variants, control first")
    if len(data) < 2:
        raise InvalidArgumentError("--input: give the control and at least one treatment (2+ variants)")
    variants: list[VariantStats] = []
    kind: type[Any] | None = None
    for i, item in enumerate(data, start=1):
        label = f"variant {i}"
        if not isinstance(item, dict):
            raise InvalidArgumentError(f"{label}: expected an object with name, n and sums")
        name = item.get("name", chr(ord("A") + i - 1) if i <= 26 else f"V{i}")
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgumentError(f"{label}: name must be a non-empty string")
        label = f"variant {i} ({name})"
        keys = set(item) - {"name"}
        shape = next((cls for cls, req in _SHAPES if set(req) <= keys), None)
        if shape is None:
            if "conversions" in keys:
                missing = ["n"]
            else:
                missing = [f for f in ("n", "sum", "sum_squares") if f not in keys]
            raise InvalidArgumentError(
                f"{label}: missing field {missing[0]!r} (a mean metric needs n, sum, sum_squares; "
                f"a conversion needs n, conversions)"
            )
        required = next(req for cls, req in _SHAPES if cls is shape)
        unknown = sorted(keys - set(required))
        if unknown:
            raise InvalidArgumentError(
                f"{label}: unknown field {unknown[0]!r} for a {KINDS[shape]} metric"
            )
        if kind is not None and shape is not kind:
            raise InvalidArgumentError(
                f"{label}: is a {KINDS[shape]} metric but the control is a {KINDS[kind]} metric"
            )
        kind = shape
        values = {f: _number(item[f], label, f, whole=f in ("n", "conversions")) for f in required}
        stats = shape(name=name, **values)
        try:
            validate(stats)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(exc.message.replace(f"variant {name!r}", label, 1)) from None
        variants.append(stats)
    return variants


def _parse_weights(text: str | None, count: int) -> list[float] | None:
    if text is None:
        return None
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        raise InvalidArgumentError(f"--weights: {text!r} is not a comma-separated list of numbers") from None
    if len(weights) != count:
        raise InvalidArgumentError(
            f"--weights: {len(weights)} weight(s) for {count} variants; give one per variant"
        )
    for i, w in enumerate(weights, start=1):
        if not (math.isfinite(w) and w > 0):
            raise InvalidArgumentError(f"--weights: weight {i} ({w:g}) must be positive")
    return weights


# --------------------------------------------------------------------------------------------------
# Plain language
# --------------------------------------------------------------------------------------------------


_KIND_NOTE = {
    "ratio": " (ratio)", "cuped_mean": " (CUPED-adjusted)", "cuped_ratio": " (CUPED-adjusted ratio)",
}


def _decimals(se: float) -> int:
    if not (math.isfinite(se) and se > 0):
        return 2
    return max(0, min(8, 1 - math.floor(math.log10(se))))


def _fmt(value: float, digits: int) -> str:
    if not math.isfinite(value):
        return "–"
    return f"{value:,.{digits}f}".replace("-", "−")


def _pct(value: float, digits: int = 1, sign: bool = False) -> str:
    if not math.isfinite(value):
        return "–"
    text = f"{value * 100:+.{digits}f}%" if sign else f"{value * 100:.{digits}f}%"
    return text.replace("-", "−")


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "p = –"
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def _level(alpha: float) -> str:
    return f"{(1 - alpha) * 100:.4g}%"


def _p_and_adjusted(effect: Effect, correction: str) -> str:
    text = _p(effect.p_value)
    if correction != "none" and math.isfinite(effect.p_adjusted) and effect.p_adjusted != effect.p_value:
        text += f"; {correction}-adjusted {_p(effect.p_adjusted)}"
    return text


def describe(comparison: Comparison, correction: str) -> list[str]:
    """Plain-English sentences for one comparison: the effect, whether it is significant, the odds."""
    c = comparison
    conf = ("always-valid " if c.method == "sequential" else "") + f"{_level(c.alpha)} CI"
    a_eff, r_eff = c.primary_absolute, c.primary_relative
    direction = "higher" if a_eff.estimate >= 0 else "lower"
    lines: list[str] = []
    if c.kind == "proportion":
        d = _decimals(a_eff.se * 100)
        lines.append(
            f"{c.treatment} converts {_fmt(abs(a_eff.estimate) * 100, d)} percentage points {direction} than "
            f"{c.control} ({_pct(c.treatment_mean, 2)} vs {_pct(c.control_mean, 2)}; {conf} "
            f"{_fmt(a_eff.ci_lower * 100, d)} to {_fmt(a_eff.ci_upper * 100, d)} pp, "
            f"{_p_and_adjusted(a_eff, correction)})."
        )
    else:
        d = _decimals(a_eff.se)
        lines.append(
            f"{c.treatment} is {_fmt(abs(a_eff.estimate), d)} {direction} than {c.control}"
            f"{_KIND_NOTE.get(c.kind, '')} ({_fmt(c.treatment_mean, d)} vs {_fmt(c.control_mean, d)}; {conf} "
            f"{_fmt(a_eff.ci_lower, d)} to {_fmt(a_eff.ci_upper, d)}, {_p_and_adjusted(a_eff, correction)})."
        )
    if math.isfinite(r_eff.estimate):
        lines.append(
            f"Relative change {_pct(r_eff.estimate, sign=True)} ({conf} {_pct(r_eff.ci_lower, sign=True)} "
            f"to {_pct(r_eff.ci_upper, sign=True)}, {_p(r_eff.p_value)})."
        )
    if c.significant():
        verdict = "beats" if a_eff.estimate > 0 else "is worse than"
        lines.append(f"Significant at alpha {c.alpha:g}: {c.treatment} {verdict} {c.control}.")
    else:
        so_far = " so far (keep it running, or stop for futility)" if c.method == "sequential" else ""
        lines.append(
            f"Not significant at alpha {c.alpha:g}: the data are consistent with no difference{so_far}; "
            f"this is not proof that there is none (the interval shows which effects are still possible)."
        )
    if c.bayes is not None and math.isfinite(c.bayes.chance_to_win):
        lines.append(
            f"Chance {c.treatment} beats {c.control}: {_pct(c.bayes.chance_to_win)}; expected loss if you "
            f"ship {c.treatment}: {_pct(c.bayes.expected_loss, 2)} (relative, flat prior)."
        )
    return lines


def _general_warnings(analysis: Analysis) -> list[str]:
    notes: list[str] = []
    if analysis.srm is not None and analysis.srm.mismatch:
        notes.append(
            f"Sample ratio mismatch ({_p(analysis.srm.p_value)} < 0.001): the units per variant differ from "
            f"the planned weights. Fix the assignment or exposure logging before trusting any result."
        )
    if analysis.method == "fixed":
        notes.append(
            "Fixed-horizon test: valid when read once, at the sample size planned in advance. If you have "
            "been checking it as data arrive and would stop at the first significant result, use "
            "--sequential."
        )
    for c in analysis.comparisons:
        notes.extend(f"{c.treatment}: {w}" for w in c.warnings)
    return notes


def _effect_row(label: str, effect: Effect, unit: str, digits: int) -> list[str]:
    def show(value: float) -> str:
        if unit == "%":
            return _pct(value, 2, sign=True)
        if unit == "pp":
            return "–" if not math.isfinite(value) else f"{value * 100:+.{digits}f}".replace("-", "−")
        return _fmt(value, digits)

    suffix = " pp" if unit == "pp" else ""
    interval = f"{show(effect.ci_lower)} to {show(effect.ci_upper)}{suffix}"
    return [label, show(effect.estimate) + suffix, interval,
            _p(effect.p_value).removeprefix("p = "), _p(effect.p_adjusted).removeprefix("p = ")]


def _print_analysis(analysis: Analysis) -> None:
    conf = _level(analysis.alpha)
    first = analysis.comparisons[0]
    proportion = first.kind == "proportion"
    digits = _decimals(first.absolute.se)
    summary = Table(title="variants")
    summary.add_column("variant")
    summary.add_column("units", justify="right")
    summary.add_column("conversion rate" if proportion else "mean", justify="right")
    for v in analysis.variants:
        summary.add_row(v.name, f"{v.n:,}", _pct(v.mean, 2) if proportion else _fmt(v.mean, digits))
    out.print(summary)
    for c in analysis.comparisons:
        table = Table(title=f"{c.treatment} vs {c.control} ({c.kind}; {analysis.correction} correction)",
                      caption="seq. = always-valid (sequential)" if c.sequential_absolute else None)
        unit, d = ("pp", _decimals(c.absolute.se * 100)) if proportion else ("", _decimals(c.absolute.se))
        for name in ("effect", "estimate", f"{conf} interval", "p", "adj. p"):
            table.add_column(name, justify="left" if name == "effect" else "right")
        table.add_row(*_effect_row("absolute", c.absolute, unit, d))
        table.add_row(*_effect_row("relative", c.relative, "%", 2))
        if c.sequential_absolute is not None and c.sequential_relative is not None:
            table.add_row(*_effect_row("absolute, seq.", c.sequential_absolute, unit, d))
            table.add_row(*_effect_row("relative, seq.", c.sequential_relative, "%", 2))
        if c.bayes is not None:
            b = c.bayes
            table.add_row("relative, Bayesian", _pct(b.mean, 2, sign=True),
                          f"{_pct(b.ci_lower, 2, sign=True)} to {_pct(b.ci_upper, 2, sign=True)}",
                          f"win {_pct(b.chance_to_win)}", f"loss {_pct(b.expected_loss, 2)}")
        out.print(table)
    if analysis.srm is not None:
        s = analysis.srm
        state = "[red]MISMATCH[/red]" if s.mismatch else "ok"
        out.print(f"SRM check: χ² = {s.chi_square:.2f}, df {s.df}, {_p(s.p_value)} → {state}",
                  highlight=False)
    for c in analysis.comparisons:
        for line in describe(c, analysis.correction):
            out.print(line, highlight=False)
    for note in _general_warnings(analysis):
        out.print(f"[yellow]warning:[/yellow] {note}", highlight=False)


# --------------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------------


@stats_app.command("compare")
def compare_command(
    input_file: Annotated[str, typer.Option(
        "--input", help="JSON file with a list of variants, control first (- for stdin)")],
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level (two-sided)")] = 0.05,
    correction: Annotated[CorrectionChoice, typer.Option(
        "--correction", help="Multiple-comparison correction across treatments")] = CorrectionChoice.holm,
    sequential: Annotated[bool, typer.Option(
        "--sequential", help="Add always-valid intervals and p-values (safe to peek)")] = False,
    tuning: Annotated[float, typer.Option(
        "--tuning", help="Sequential tuning: the expected total units of the test")] = ab.DEFAULT_TUNING,
    weights: Annotated[str | None, typer.Option(
        "--weights", help="Planned weights, e.g. 0.5,0.5: adds the sample-ratio-mismatch check")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Compare each variant with the control from sufficient statistics (sums or conversions)."""
    with cli_errors():
        variants = parse_variants(_read_input(input_file))
        planned = _parse_weights(weights, len(variants))
        analysis = ab.analyse(variants, weights=planned, alpha=alpha, correction=correction.value,
                              method="sequential" if sequential else "fixed", tuning=tuning)
    if as_json:
        result = analysis.as_dict()
        result["summary"] = [line for c in analysis.comparisons for line in describe(c, analysis.correction)]
        result["warnings"] = _general_warnings(analysis)
        print_json(result)
        return
    _print_analysis(analysis)


@stats_app.command("sample-size")
def sample_size_command(
    baseline: Annotated[float | None, typer.Option(
        "--baseline", help="Control conversion rate (0–1), or the control mean with --sd")] = None,
    mde: Annotated[float | None, typer.Option(
        "--mde", help="Minimum detectable effect (absolute; share of the baseline with --relative)")] = None,
    relative: Annotated[bool, typer.Option("--relative", help="--mde is relative to the baseline")] = False,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level (two-sided)")] = 0.05,
    power_: Annotated[float, typer.Option("--power", help="Power (1 − β)")] = 0.8,
    variants: Annotated[int, typer.Option("--variants", help="Variants including the control")] = 2,
    sd: Annotated[float | None, typer.Option(
        "--sd", help="Per-unit standard deviation: size a mean metric instead of a conversion")] = None,
    traffic: Annotated[int | None, typer.Option(
        "--traffic", help="Units per variant you have: print the MDE they can detect instead")] = None,
    formula: Annotated[FormulaChoice, typer.Option(
        "--formula", help="Two-proportion formula")] = FormulaChoice.pooled,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Units per variant to detect an effect (or, with --traffic, the effect a given traffic can detect)."""
    with cli_errors():
        result = _size(baseline, mde, relative, alpha, power_, variants, sd, traffic, formula.value)
    if as_json:
        print_json(result.as_dict())
        return
    out.print(_size_sentence(result, traffic is not None), highlight=False)


def _size(baseline: float | None, mde: float | None, relative: bool, alpha: float, power_: float,
          variants: int, sd: float | None, traffic: int | None, formula: Any) -> power.SampleSize:
    if traffic is None and mde is None:
        raise InvalidArgumentError("--mde: give the minimum detectable effect (or --traffic for the MDE)")
    if sd is not None:
        if relative and baseline is None:
            raise InvalidArgumentError("--baseline: a relative --mde on a mean metric needs the mean")
        if traffic is not None:
            return power.mde_mean(sd, traffic, baseline_mean=baseline, alpha=alpha, power=power_,
                                  variants=variants)
        assert mde is not None
        return power.sample_size_mean(sd, mde, baseline_mean=baseline, relative=relative, alpha=alpha,
                                      power=power_, variants=variants)
    if baseline is None:
        raise InvalidArgumentError("--baseline: give the control's conversion rate (or --sd for a mean)")
    if traffic is not None:
        return power.mde_proportion(baseline, traffic, alpha=alpha, power=power_, variants=variants,
                                    formula=formula)
    assert mde is not None
    return power.sample_size_proportion(baseline, mde, relative=relative, alpha=alpha, power=power_,
                                        variants=variants, formula=formula)


def _size_sentence(r: power.SampleSize, mde_mode: bool) -> str:
    if r.metric == "proportion":
        assert r.baseline is not None
        effect = (f"{_pct(r.baseline, 2)} → {_pct(r.baseline + r.mde_absolute, 2)} "
                  f"(+{r.mde_absolute * 100:.2f} pp, {_pct(r.mde_relative, 1, sign=True)} relative)")
    else:
        rel = f", {_pct(r.mde_relative, 1, sign=True)} relative" if math.isfinite(r.mde_relative) else ""
        effect = f"a change of {r.mde_absolute:,.4g} (sd {r.sd:,.4g}{rel})"
    level = f"alpha {r.alpha:g}" + (f" ({r.alpha_per_comparison:.4g} per comparison, Bonferroni)"
                                    if r.variants > 2 else "")
    tail = f"with {r.power:.0%} power at {level}, two-sided; {r.formula}."
    units = f"{r.per_variant:,} units per variant ({r.total:,} in total over {r.variants} variants)"
    return f"{units} {'can detect' if mde_mode else 'to detect'} {effect} {tail}"
