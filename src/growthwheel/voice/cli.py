"""``growthwheel voice …``: reviews, their sentiment and aspects, the service queue.

* ``voice analyse TEXT… [--lang zh|en|auto] [--json]`` — sentiment and aspects of texts.
* ``voice import FILE [--format generic|taobao] [--json]`` — review file into the warehouse and its
  negative, unanswered reviews into the queue (the warehouse must not be held by a server).
* ``voice sync`` — open the cases of reviews imported since the last sync (the worker's
  ``voice.sync`` job does it every five minutes; through the server when one owns the warehouse).
* ``voice queue [--status open|claimed|replied|closed|all] [--json]`` — the queue with time left.
* ``voice claim --as EMAIL`` / ``voice reply ID --as EMAIL (--text T | --template K)`` /
  ``voice release ID --as EMAIL`` / ``voice close ID --as EMAIL`` — the moves.
* ``voice feedback [--start D] [--end D] [--days N] [--sku S] [--json]`` — aspects getting worse.

Registered lazily in ``cli/lazy.py``. Bad input prints one line naming the option and exits 1.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from growthwheel.cli.common import Column, cli_errors, out, parse_date, print_json, print_table
from growthwheel.cli.common import settings as current_settings
from growthwheel.errors import InvalidArgumentError

voice_app = typer.Typer(help="Reviews: sentiment, aspects and the service queue.", no_args_is_help=True)
As = Annotated[str, typer.Option("--as", help="Who works the case (e-mail or name).")]


def _case_row(c: dict[str, Any]) -> list[str]:
    left = c["time_left_seconds"]
    shown = "—" if left is None else f"{left / 3600:.1f} h"
    return [c["id"], c["sku"], str(c["rating"]), c["status"], c["owner"] or "", shown,
            "yes" if c["breached"] else "", (c["body"] or "")[:40]]


@voice_app.command("analyse")
def analyse_cmd(
    texts: Annotated[list[str], typer.Argument(help="Texts to read.")],
    lang: Annotated[str, typer.Option(help="zh, en or auto.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Sentiment (probability positive) and aspects with their polarity."""
    from growthwheel.voice.aspects import analyse

    with cli_errors():
        if lang not in ("zh", "en", "auto"):
            raise InvalidArgumentError("--lang: zh, en or auto")
        found = analyse(texts, lang)  # type: ignore[arg-type]
    rows: list[dict[str, Any]] = [{"text": t, "lang": a.lang, "score": round(a.score, 4), "label": a.label,
             "aspects": [{"aspect": m.aspect, "polarity": m.polarity, "clause": m.clause} for m in a.aspects]}
            for t, a in zip(texts, found, strict=True)]
    if as_json:
        print_json(rows)
        return
    print_table("Sentiment", [Column("text", right=False), Column("lang"), Column("p(positive)"),
                              Column("label"), Column("aspects", right=False)],
                [[r["text"][:40], r["lang"], f"{r['score']:.2f}", r["label"],
                  ", ".join(f"{m['aspect']} {m['polarity']}" for m in r["aspects"])] for r in rows])


@voice_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="A review file.")],
    fmt: Annotated[str, typer.Option("--format", help="generic or taobao.")] = "generic",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Import reviews and queue the negative, unanswered ones."""
    from growthwheel.voice.imports import import_file

    with cli_errors():
        result = import_file(current_settings(), file, fmt)
    if as_json:
        print_json(result)
        return
    imp = result["import"]
    out.print(f"{imp['rows_read']} reviews read, {imp['rows_quarantined']} quarantined; "
              f"{result['sync']['opened']} new cases in the queue")


@voice_app.command("sync")
def sync_cmd() -> None:
    """Open the cases of reviews imported since the last sync (beside a running server too)."""
    from growthwheel import analyst
    from growthwheel.store.db import migrate

    with cli_errors():
        cfg = current_settings()
        migrate(cfg)
        done = analyst.run("voice_sync", {}, cfg)
    out.print(f"{done['read']} reviews read, {done['opened']} new cases")


@voice_app.command("queue")
def queue_cmd(
    status: Annotated[str, typer.Option(help="open, claimed, replied, closed or all.")] = "open",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every column, however wide.")] = False,
) -> None:
    """The service queue, due first, with the time left of the 48 hours."""
    from growthwheel.store.db import migrate, session_scope
    from growthwheel.voice import service

    with cli_errors():
        if status not in ("open", "claimed", "replied", "closed", "all"):
            raise InvalidArgumentError("--status: open, claimed, replied, closed or all")
        cfg = current_settings()
        migrate(cfg)
        with session_scope(cfg) as session:
            cases = [service.case_out(c) for c in
                     service.list_cases(session, status=None if status == "all" else status)]
            counts = service.summary(session)
    if as_json:
        print_json({"summary": counts, "cases": cases})
        return
    print_table(f"Review cases ({status})",
                [Column("id", right=False), Column("sku", right=False), Column("stars"), Column("status"),
                 Column("owner", right=False, keep=2), Column("time left"), Column("breached"),
                 Column("review", right=False, keep=1)],
                [_case_row(c) for c in cases], wide=wide,
                caption=", ".join(f"{k} {v}" for k, v in counts.items()))


def _move(action: str, case_id: str | None, who: str, **extra: Any) -> None:
    from growthwheel.store.db import migrate, session_scope
    from growthwheel.voice import service

    with cli_errors():
        if not who.strip():
            raise InvalidArgumentError("--as: who works the case")
        cfg = current_settings()
        migrate(cfg)
        with session_scope(cfg) as session:
            if action == "claim":
                case = (service.claim_next(session, who) if case_id is None
                        else service.claim(session, case_id, who))
            elif action == "reply":
                case = service.reply(session, str(case_id), who, **extra)
            elif action == "release":
                case = service.release(session, str(case_id), who)
            else:
                case = service.close(session, str(case_id), who)
            shown = None if case is None else service.case_out(case)
    if shown is None:
        out.print("the queue is empty")
        return
    out.print(f"{shown['id']} {shown['status']} ({shown['sku']}, {shown['rating']}★): {shown['body'][:60]}")
    if shown["reply"]:
        out.print(f"reply: {shown['reply']}")


@voice_app.command("claim")
def claim_cmd(who: As, case_id: Annotated[str | None, typer.Argument(help="A case id (default: the "
                                                                          "one due first).")] = None) -> None:
    """Take a case (the one due first unless an id is given)."""
    _move("claim", case_id, who)


@voice_app.command("reply")
def reply_cmd(
    case_id: Annotated[str, typer.Argument(help="The case id.")],
    who: As,
    text: Annotated[str | None, typer.Option(help="The reply as written.")] = None,
    template: Annotated[str | None, typer.Option(help="A template key (see `voice templates`).")] = None,
) -> None:
    """Answer a case you hold."""
    _move("reply", case_id, who, text=text, template=template)


@voice_app.command("release")
def release_cmd(case_id: Annotated[str, typer.Argument(help="The case id.")], who: As) -> None:
    """Give a case you hold back to the queue."""
    _move("release", case_id, who)


@voice_app.command("close")
def close_cmd(case_id: Annotated[str, typer.Argument(help="The case id.")], who: As) -> None:
    """Close a case without a reply."""
    _move("close", case_id, who)


@voice_app.command("templates")
def templates_cmd() -> None:
    """The reply templates, zh and en."""
    from growthwheel.voice.templates import TEMPLATES

    print_json(TEMPLATES)


@voice_app.command("feedback")
def feedback_cmd(
    start: Annotated[str | None, typer.Option(help="First day (default: --days before --end).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day (default: the newest review's day).")] = None,
    days: Annotated[int, typer.Option(help="Length of the period.", min=1, max=366)] = 28,
    sku: Annotated[str | None, typer.Option(help="One SKU.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per SKU, the aspects whose share of negative mentions rose against the previous period."""
    from growthwheel.voice import feedback
    from growthwheel.warehouse import connect

    with cli_errors():
        first, last = parse_date(start, "--start"), parse_date(end, "--end")
        con = connect(current_settings())
        try:
            if last is None:
                newest = feedback.newest_day(con)
                if newest is None:
                    raise InvalidArgumentError("--end: no reviews in the warehouse")
                last = newest
            assert last is not None
            first = first or last - timedelta(days=days - 1)
            if first > last:
                raise InvalidArgumentError("--start: after --end")
            worse = [t.as_dict() for t in feedback.trends(feedback.load(con, first, last, sku), first, last)]
        finally:
            con.disconnect()
    if as_json:
        print_json({"start": first.isoformat(), "end": last.isoformat(), "worse": worse})
        return
    print_table(f"Aspects getting worse, {first} – {last} vs the {(last - first).days + 1} days before",
                [Column("sku", right=False), Column("aspect", right=False), Column("negative"),
                 Column("share"), Column("before"), Column("quote", right=False, keep=1)],
                [[w["sku"], w["aspect"], str(w["negative"]), f"{w['negative_share']:.0%}",
                  f"{w['previous_negative_share']:.0%}", (w["quotes"] or [""])[0]] for w in worse])
