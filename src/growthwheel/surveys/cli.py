"""``growthwheel surveys …``: NPS surveys, answers, NPS with its interval, segments, repurchase.

* ``surveys list [--json]`` — every survey and its number of answers.
* ``surveys create NAME [--channel C] [--campaign X] [--journey J] [--question-zh Q] [--question-en Q]``
* ``surveys answer SURVEY --customer ID --score 0..10 [--comment T] [--key K]`` — once per key.
* ``surveys score [SURVEY]`` — sentiment and aspects for comments recorded without them.
* ``surveys nps SURVEY [--period week|month] [--confidence 0.95] [--method adjusted_wald|wald] [--json]``
* ``surveys segments SURVEY [--json]`` — NPS per saved segment (reads the warehouse, through the
  running server when one owns it: the named reads ``surveys_segments`` / ``surveys_repurchase``).
* ``surveys repurchase SURVEY [--days 90] [--json]`` — repurchase within N days by NPS group.

Registered lazily in ``cli/lazy.py``. Bad input prints one line naming the option and exits 1.
"""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from growthwheel.cli.common import (
    Column,
    cli_actor,
    cli_errors,
    out,
    print_json,
    print_table,
    settings,
    store_session,
)

surveys_app = typer.Typer(help="NPS surveys: answers, NPS with its interval, segments and repurchase.",
                          no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _interval(row: dict[str, Any]) -> str:
    return "–" if row["low"] is None else f"{row['low']:+.1f} ~ {row['high']:+.1f}"


def _nps_table(title: str, rows: list[dict[str, Any]]) -> None:
    print_table(title, [Column("group", right=False), Column("n"), Column("promoters"), Column("passives"),
                        Column("detractors"), Column("NPS"), Column("interval"), Column("Wald", keep=2)],
                [[str(r["group"]), str(r["n"]), str(r["promoters"]), str(r["passives"]), str(r["detractors"]),
                  "–" if r["nps"] is None else f"{r['nps']:+.1f}", _interval(r),
                  "–" if r["wald_low"] is None else f"{r['wald_low']:+.1f} ~ {r['wald_high']:+.1f}"]
                 for r in rows])


@surveys_app.command("list")
def list_surveys(as_json: JsonOpt = False) -> None:
    """Every survey with its number of answers."""
    from growthwheel.surveys import service

    with cli_errors(), store_session() as session:
        counts = service.answer_counts(session)
        rows = [service.survey_out(s, counts.get(s.id, 0)) for s in service.list_surveys(session)]
    if as_json:
        print_json(rows)
        return
    print_table("Surveys", [Column("id", right=False), Column("name", right=False),
                            Column("channel", right=False), Column("answers"), Column("open", right=False)],
                [[r["id"], r["name"], r["channel"] or "–", str(r["answers"]), "yes" if r["active"] else "no"]
                 for r in rows])


@surveys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The survey's name (unique).")],
    channel: Annotated[str | None, typer.Option(help="Channel tag, e.g. email or sms.")] = None,
    campaign: Annotated[str | None, typer.Option(help="Campaign tag.")] = None,
    journey: Annotated[str | None, typer.Option(help="Journey tag.")] = None,
    question_zh: Annotated[str | None, typer.Option(help="The question in Chinese.")] = None,
    question_en: Annotated[str | None, typer.Option(help="The question in English.")] = None,
) -> None:
    """Create an NPS survey (the standard recommend question unless given)."""
    from growthwheel.surveys import service

    with cli_errors(), store_session() as session:
        survey = service.create_survey(session, service.SurveySpec(
            name=name, question_zh=question_zh or service.DEFAULT_QUESTION["zh"],
            question_en=question_en or service.DEFAULT_QUESTION["en"], channel=channel, campaign=campaign,
            journey=journey), actor=cli_actor())
        out.print(f"{survey.id}: {survey.name}  (journey messages: {{{{ survey_url('{survey.id}') }}}})",
                  highlight=False, markup=False)


@surveys_app.command("answer")
def answer(
    survey: Annotated[str, typer.Argument(help="The survey's id or name.")],
    customer: Annotated[str, typer.Option(help="The customer's id.")],
    score: Annotated[int, typer.Option(help="0 to 10.")],
    comment: Annotated[str | None, typer.Option(help="An optional comment.")] = None,
    key: Annotated[str, typer.Option(help="Response key (several answers of one customer).")] = "",
) -> None:
    """Record one answer (a repeat changes nothing; another score under the same key is refused)."""
    from growthwheel.surveys import service

    with cli_errors(), store_session() as session:
        found = service.get_survey(session, survey)
        row, created = service.record_answer(session, found, service.AnswerIn(
            customer_id=customer, score=score, comment=comment, response_key=key))
        out.print(f"{'recorded' if created else 'already recorded'}: {row.customer_id} → {row.score}")


@surveys_app.command("score")
def score(
    survey: Annotated[str | None, typer.Argument(help="The survey's id or name (default: all).")] = None,
) -> None:
    """Run sentiment and aspects over comments recorded without them."""
    from growthwheel.surveys import service

    with cli_errors(), store_session() as session:
        survey_id = service.get_survey(session, survey).id if survey else None
        out.print(f"scored {service.score_unscored(session, survey_id)} comments")


@surveys_app.command("nps")
def nps_command(
    survey: Annotated[str, typer.Argument(help="The survey's id or name.")],
    period: Annotated[str, typer.Option(help="week or month.")] = "week",
    confidence: Annotated[float, typer.Option(help="Confidence level, e.g. 0.95.")] = 0.95,
    method: Annotated[str, typer.Option(help="adjusted_wald or wald.")] = "adjusted_wald",
    as_json: JsonOpt = False,
) -> None:
    """NPS overall, by period and by channel, with its interval."""
    from growthwheel.surveys import service

    cfg = settings()
    with cli_errors(), store_session() as session:
        report = service.report(session, service.get_survey(session, survey),
                                zone=ZoneInfo(cfg.shop().timezone), period=period, confidence=confidence,
                                method=method)
    if as_json:
        print_json(report)
        return
    _nps_table(f"NPS of {report['survey']['name']} ({report['method']}, {confidence:.0%})",
               [{"group": "all", **report["overall"]}])
    _nps_table(f"By {report['period']}", report["by_period"])
    _nps_table("By channel", report["by_channel"])


@surveys_app.command("segments")
def segments(
    survey: Annotated[str, typer.Argument(help="The survey's id or name.")],
    confidence: Annotated[float, typer.Option(help="Confidence level, e.g. 0.95.")] = 0.95,
    as_json: JsonOpt = False,
) -> None:
    """NPS of each saved segment's current members who answered."""
    from growthwheel import analyst

    with cli_errors():
        rows = analyst.run("surveys_segments", {"survey": survey, "confidence": confidence}, settings())
    if as_json:
        print_json(rows)
        return
    _nps_table("NPS by saved segment", rows)


@surveys_app.command("repurchase")
def repurchase(
    survey: Annotated[str, typer.Argument(help="The survey's id or name.")],
    days: Annotated[int, typer.Option(help="Days after answering.")] = 90,
    as_json: JsonOpt = False,
) -> None:
    """For promoters, passives and detractors: the share who bought again within --days days."""
    from growthwheel import analyst

    with cli_errors():
        data = analyst.run("surveys_repurchase", {"survey": survey, "days": days}, settings())
    if as_json:
        print_json(data)
        return
    print_table(f"Repurchase within {days} days (orders up to {data['as_of'] or '–'})",
                [Column("group", right=False), Column("answers"), Column("window closed"),
                 Column("bought again"), Column("share")],
                [[g["group"], str(g["answers"]), str(g["eligible"]), str(g["repurchased"]),
                  "–" if g["share"] is None else f"{g['share']:.1%}"] for g in data["groups"]])
