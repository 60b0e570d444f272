"""A journey's report: entered, per step, converted, revenue, and the uplift against the hold-out.

The hold-out (enrolments recorded ``held_out``, who got nothing) is the control; everyone else who
entered is the treatment — intention to treat, so a message that was never delivered (no consent,
capped) still counts in the treatment and the uplift is what the journey really adds. Conversion
(a goal order in the window) is compared as a proportion, revenue in the goal window per entrant
as a mean, both with :func:`growthwheel.stats.ab.compare` (Welch / pooled z, 95 % intervals), and
said in plain zh and en words.

``messages`` says, per send step, what became of its messages: ``queued`` (outbox rows), ``sent``
(handed to the provider and accepted), ``delivered`` (accepted by the provider — SMTP 250, a
webhook's 2xx — or reported delivered by its callback), ``opened`` (the email's open pixel loaded),
``clicked`` (a tracked link followed), ``bounced`` (SMTP 5xx at send time, or a bounce callback),
``unsubscribed`` (the message's one-click link), ``skipped`` (no consent, suppressed, capped) and
``failed`` (dead letters) — each message counted once per status.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from growthwheel.jobs.models import OutboxRow
from growthwheel.journeys import repository
from growthwheel.journeys.channels.models import ChannelClick, ChannelMessageEvent
from growthwheel.journeys.models import Journey
from growthwheel.kit.money import currency_exponent, major_text
from growthwheel.stats import ab
from growthwheel.stats.sufficient import MIN_UNITS, MeanStats, ProportionStats


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _pts(x: float) -> str:
    return f"{x * 100:+.1f}"


def _conversion_words(c: ab.Comparison) -> dict[str, str]:
    a = c.absolute
    if a.ci_lower != a.ci_lower:  # NaN: not enough data
        return {
            "zh": "样本太少，还无法判断旅程的效果。",
            "en": "Too few customers yet to tell what the journey adds.",
        }
    sig = c.significant()
    zh = (
        f"收到旅程的 {c.treatment_n} 人中 {_pct(c.treatment_mean)} 下单，对照组 {c.control_n} 人中 "
        f"{_pct(c.control_mean)}：转化率提升 {_pts(a.estimate)} 个百分点"
        f"（95% 置信区间 {_pts(a.ci_lower)} 至 {_pts(a.ci_upper)}）。"
    )
    en = (
        f"Of {c.treatment_n} customers who got the journey, {_pct(c.treatment_mean)} ordered; of "
        f"{c.control_n} held out, {_pct(c.control_mean)}: {_pts(a.estimate)} percentage points "
        f"(95% CI {_pts(a.ci_lower)} to {_pts(a.ci_upper)})."
    )
    if sig:
        zh += (
            " 这一差异在统计上显著，旅程确实带来了额外转化。"
            if a.estimate > 0
            else " 这一差异显著：旅程降低了转化。"
        )
        en += (
            " The difference is significant: the journey adds conversions."
            if a.estimate > 0
            else " The difference is significant: the journey lowers conversion."
        )
    else:
        zh += " 区间包含 0，尚不能确定旅程有效果。"
        en += " The interval includes zero: no effect is established yet."
    return {"zh": zh, "en": en}


def _revenue_words(c: ab.Comparison, currency: str) -> dict[str, str]:
    a = c.absolute
    if a.ci_lower != a.ci_lower:
        return {
            "zh": "样本太少，还无法估计增量收入。",
            "en": "Too few customers yet to estimate incremental revenue.",
        }
    exp = currency_exponent(currency)

    def money(x: float) -> str:
        value = round(x)
        return ("-" if value < 0 else "+") + f"{major_text(abs(value), exp)} {currency}"

    zh = (
        f"每位进入者在目标窗口内的收入比对照组多 {money(a.estimate)}"
        f"（95% 置信区间 {money(a.ci_lower)} 至 {money(a.ci_upper)}）。"
    )
    en = (
        f"Revenue per entrant in the goal window: {money(a.estimate)} against the hold-out "
        f"(95% CI {money(a.ci_lower)} to {money(a.ci_upper)})."
    )
    return {"zh": zh, "en": en}


MESSAGE_COUNTS = ("queued", "sent", "delivered", "opened", "clicked", "bounced", "unsubscribed", "skipped",
                  "failed")


def message_counts(session: Session, journey_id: str) -> list[dict[str, Any]]:
    """Per step of the journey that sent messages: the counts of :data:`MESSAGE_COUNTS` (see the
    module docstring), steps in id order."""
    steps: dict[str, dict[str, Any]] = {}

    def at(step: str | None) -> dict[str, Any]:
        name = step or ""
        if name not in steps:
            steps[name] = {"step": name, **dict.fromkeys(MESSAGE_COUNTS, 0)}
        return steps[name]

    mine = OutboxRow.journey_id == journey_id
    for step, status, n in session.execute(select(OutboxRow.step_id, OutboxRow.status, func.count())
                                           .where(mine).group_by(OutboxRow.step_id, OutboxRow.status)):
        counts = at(step)
        counts["queued"] += int(n)
        if status == "sent":
            counts["sent"] += int(n)
        elif status == "skipped":
            counts["skipped"] += int(n)
        elif status == "dead":
            counts["failed"] += int(n)
    reported = exists().where(ChannelMessageEvent.message_key == OutboxRow.key,
                              ChannelMessageEvent.kind == "delivered")
    for step, n in session.execute(select(OutboxRow.step_id, func.count())
                                   .where(mine, or_(OutboxRow.status == "sent", reported))
                                   .group_by(OutboxRow.step_id)):
        at(step)["delivered"] = int(n)
    for step, kind, n in session.execute(
            select(OutboxRow.step_id, ChannelMessageEvent.kind, func.count())
            .join(ChannelMessageEvent, and_(ChannelMessageEvent.message_key == OutboxRow.key,
                                            ChannelMessageEvent.kind != "delivered"))
            .where(mine).group_by(OutboxRow.step_id, ChannelMessageEvent.kind)):
        at(step)[str(kind)] = int(n)
    clicked = func.count(func.distinct(ChannelClick.message_key))
    for step, n in session.execute(select(OutboxRow.step_id, clicked)
                                   .join(ChannelClick, ChannelClick.message_key == OutboxRow.key)
                                   .where(mine).group_by(OutboxRow.step_id)):
        at(step)["clicked"] = int(n)
    return [steps[name] for name in sorted(steps)]


def journey_report(session: Session, row: Journey, *, currency: str = "CNY") -> dict[str, Any]:
    """The report of ``row`` (JSON-ready)."""
    outcomes = repository.enrolment_outcomes(session, row.id)
    groups: dict[bool, list[tuple[bool, int]]] = {True: [], False: []}
    statuses: dict[str, int] = {}
    for held, status, converted, revenue in outcomes:
        groups[held].append((converted, revenue))
        statuses[status] = statuses.get(status, 0) + 1

    def summary(items: list[tuple[bool, int]]) -> dict[str, Any]:
        n = len(items)
        conv = sum(1 for c, _r in items if c)
        revenue = sum(r for _c, r in items)
        return {
            "entered": n,
            "converted": conv,
            "conversion_rate": conv / n if n else None,
            "revenue": revenue,
            "revenue_per_entrant": revenue / n if n else None,
        }

    treated, control = groups[False], groups[True]
    out: dict[str, Any] = {
        "journey": {"id": row.id, "name": row.name, "status": row.status, "version": row.version},
        "entered": len(outcomes),
        "statuses": statuses,
        "treatment": summary(treated),
        "holdout": summary(control),
        "steps": [
            {"step": s, "outcome": o, "enrolments": n} for s, o, n in repository.step_counts(session, row.id)
        ],
        "messages": message_counts(session, row.id),
        "uplift": None,
    }
    if len(treated) >= MIN_UNITS and len(control) >= MIN_UNITS:
        conv = ab.compare(
            ProportionStats("holdout", len(control), sum(1 for c, _ in control if c)),
            ProportionStats("journey", len(treated), sum(1 for c, _ in treated if c)),
            bayesian=False,
        )
        rev = ab.compare(
            MeanStats(
                "holdout",
                len(control),
                float(sum(r for _, r in control)),
                float(sum(r * r for _, r in control)),
            ),
            MeanStats(
                "journey",
                len(treated),
                float(sum(r for _, r in treated)),
                float(sum(r * r for _, r in treated)),
            ),
            bayesian=False,
        )
        out["uplift"] = {
            "conversion": {
                **conv.absolute.as_dict(),
                "relative": conv.relative.as_dict(),
                "significant": conv.significant(),
                "words": _conversion_words(conv),
                "warnings": list(conv.warnings),
            },
            "revenue_per_entrant": {
                **rev.absolute.as_dict(),
                "significant": rev.significant(),
                "words": _revenue_words(rev, currency),
                "warnings": list(rev.warnings),
            },
        }
    else:
        words = {
            "zh": f"旅程组和对照组各需至少 {MIN_UNITS} 位进入者才能计算提升。",
            "en": f"The journey and the hold-out need at least {MIN_UNITS} entrants each before an "
                  "uplift can be computed.",
        }
        out["uplift_words"] = words
    return out
