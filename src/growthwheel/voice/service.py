"""Reviews into the service queue, and the queue's moves. Services never commit.

**Which reviews land in the queue.** A review is *negative* when it is rated 1–2 stars, or rated 3
and its text reads negative (:func:`is_negative`). A negative review that the shop has not answered
yet opens one case (``review_cases``: unique ``review_id``, ``INSERT … ON CONFLICT DO NOTHING``),
due :data:`~growthwheel.voice.models.SLA_HOURS` hours after the review was written.
Reviews arrive through :func:`capture` (the API: the review is imported into the warehouse through
the one ingest path, then its case opened) or through an import of review files followed by
:func:`sync` (reads the warehouse's reviews after the last one synced).

**Moves.** ``open`` → ``claimed`` (:func:`claim_next` takes the case due first; :func:`claim` a named
one) → ``replied`` (:func:`reply`, by its owner) ; ``claimed`` → ``open`` (:func:`release`);
``open`` / ``claimed`` → ``closed`` (:func:`close`, no reply needed). Every move is a conditional
``UPDATE … WHERE status = …`` and, on PostgreSQL, the next case is picked ``FOR UPDATE SKIP
LOCKED``: two operators never get the same case, and none is skipped.

**SLA.** ``time_left`` = ``due_at`` − now while unanswered; a case is *breached* when it was answered
after ``due_at`` or is still unanswered past it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from growthwheel.accounts.models import new_id, utcnow
from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.store.db import insert_for
from growthwheel.voice import templates
from growthwheel.voice.aspects import Analysis, analyse
from growthwheel.voice.models import SLA_HOURS, ReviewCase, VoiceState

MAX_REPLY = 2000
SYNC_KEY = "sync.last"


class NotFoundError(GrowthwheelError):
    """No case with that id."""

    code = "review_case_not_found"
    status = 404


class ConflictError(GrowthwheelError):
    """The case moved already (someone else claimed, replied or closed it first)."""

    code = "review_case_conflict"
    status = 409


def is_negative(rating: int, analysis: Analysis) -> bool:
    """1–2 stars, or 3 stars with a text that reads negative."""
    return rating <= 2 or (rating == 3 and analysis.label == "negative")


def aware(value: Any) -> datetime:
    """``value`` as an aware datetime (a naive one is taken as UTC); 422 when it is not one."""
    return _aware(value)


def _aware(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidArgumentError("created_at: a date and time is required")
    return value if value.tzinfo is not None else value.replace(tzinfo=utcnow().tzinfo)


def open_cases(session: Session, reviews: Sequence[Mapping[str, Any]], *,
               now: datetime | None = None) -> int:
    """Open a case for each negative, unanswered review of ``reviews`` (warehouse columns:
    ``review_id``, ``sku``, ``rating``, ``created_at``, ``body``, optional ``title``, ``language``,
    ``customer_id``, ``order_id``; ``replied`` true: answered elsewhere, no case; ``reply``: the
    answer a marketplace export carries, recorded as a replied case with no reply time); return
    how many cases are new."""
    if not reviews:
        return 0
    now = now or utcnow()
    # 4–5 stars never open a case, and neither does a review answered elsewhere: not analysed
    reviews = [r for r in reviews if int(r["rating"]) <= 3 and not r.get("replied")]
    texts = [" ".join(filter(None, [str(r.get("title") or ""), str(r.get("body") or "")])) for r in reviews]
    langs = [r.get("language") if r.get("language") in ("zh", "en") else None for r in reviews]
    analyses = analyse(texts)
    opened = 0
    for review, analysis, lang in zip(reviews, analyses, langs, strict=True):
        rating = int(review["rating"])
        if not is_negative(rating, analysis):
            continue
        answer = str(review.get("reply") or "").strip()[:MAX_REPLY] or None
        written = _aware(review["created_at"])
        values = {
            "id": new_id(), "review_id": str(review["review_id"]), "sku": str(review["sku"]),
            "rating": rating, "language": lang or analysis.lang,
            "title": (str(review["title"])[:500] if review.get("title") else None),
            "body": str(review.get("body") or ""), "customer_id": review.get("customer_id"),
            "order_id": review.get("order_id"), "sentiment": round(analysis.score, 4),
            "aspects": [{"aspect": m.aspect, "polarity": m.polarity, "clause": m.clause}
                        for m in analysis.aspects],
            "review_created_at": written, "due_at": written + timedelta(hours=SLA_HOURS),
            "status": "replied" if answer else "open", "reply": answer,
            "created_at": now, "updated_at": now,
        }
        done = session.execute(insert_for(session)(ReviewCase).values(**values)
                               .on_conflict_do_nothing(index_elements=["review_id"])
                               .returning(ReviewCase.id))
        opened += done.scalar() is not None
    return opened


def sync(session: Session, con: Any, *, now: datetime | None = None) -> dict[str, int]:
    """Open cases for the warehouse's reviews that arrived since the last sync; return how many
    reviews were read and cases opened.

    "Arrived" is told by the import that wrote each row (``_import_id``, committed in the order of
    ``_imports.finished_at``), so a late import of old reviews is seen too; a warehouse without that
    bookkeeping falls back to ``created_at`` order."""
    if "reviews" not in con.list_tables():
        return {"read": 0, "opened": 0}
    state = session.get(VoiceState, SYNC_KEY)
    t = con.table("reviews")
    cols = ["review_id", "sku", "rating", "created_at", "title", "body", "language", "customer_id",
            "order_id"]
    by_import = "_imports" in con.list_tables() and "_import_id" in t.columns
    value: str | None = None
    if by_import:
        imports = con.table("_imports")
        imports = imports.filter(imports.table_name == "reviews")
        if state is not None and state.value.startswith("imp|"):
            _, at, iid = state.value.split("|", 2)
            since = datetime.fromisoformat(at).replace(tzinfo=None)
            imports = imports.filter((imports.finished_at > since)
                                     | ((imports.finished_at == since) & (imports.import_id > iid)))
        done = (imports.select("import_id", "finished_at").order_by(["finished_at", "import_id"])
                .to_pyarrow().to_pylist())
        ids = [d["import_id"] for d in done]
        rows = (t.filter(t._import_id.isin(ids)).select(*cols).order_by(["created_at", "review_id"])
                .to_pyarrow().to_pylist()) if ids else []
        if done:
            value = f"imp|{_aware(done[-1]['finished_at']).isoformat()}|{done[-1]['import_id']}"
    else:
        expr = t
        if state is not None and not state.value.startswith("imp|"):
            at, _, rid = state.value.partition("|")
            since = datetime.fromisoformat(at).replace(tzinfo=None)
            expr = t.filter((t.created_at > since) | ((t.created_at == since) & (t.review_id > rid)))
        rows = expr.select(*cols).order_by(["created_at", "review_id"]).to_pyarrow().to_pylist()
        if rows:
            value = f"{_aware(rows[-1]['created_at']).isoformat()}|{rows[-1]['review_id']}"
    opened = 0
    for start in range(0, len(rows), 2000):
        opened += open_cases(session, rows[start:start + 2000], now=now)
    if value is not None:
        if state is None:
            session.add(VoiceState(key=SYNC_KEY, value=value[:400], updated_at=now or utcnow()))
        else:
            state.value, state.updated_at = value[:400], now or utcnow()
        session.flush()
    return {"read": len(rows), "opened": opened}


def get_case(session: Session, case_id: str) -> ReviewCase:
    """One case, or :class:`NotFoundError`."""
    case = session.get(ReviewCase, case_id)
    if case is None:
        raise NotFoundError(f"review case {case_id!r} not found")
    return case


def case_for_review(session: Session, review_id: str) -> ReviewCase | None:
    """The case of a review, if it has one."""
    return session.scalars(select(ReviewCase).where(ReviewCase.review_id == review_id)).one_or_none()


def _move(session: Session, case_id: str, where: Any, values: dict[str, Any], doing: str) -> ReviewCase:
    done = session.execute(update(ReviewCase).where(and_(ReviewCase.id == case_id, where))
                           .values(**values).execution_options(synchronize_session=False))
    case = get_case(session, case_id)
    session.refresh(case)
    if done.rowcount != 1:  # type: ignore[attr-defined]
        owner = f" by {case.owner}" if case.owner and case.status == "claimed" else ""
        raise ConflictError(f"cannot {doing}: review case {case_id!r} is {case.status}{owner}")
    return case


def claim_next(session: Session, operator: str, *, now: datetime | None = None) -> ReviewCase | None:
    """Give ``operator`` the open case due first (``None`` when the queue is empty)."""
    now = now or utcnow()
    pick = (select(ReviewCase.id).where(ReviewCase.status == "open")
            .order_by(ReviewCase.due_at, ReviewCase.id).limit(1))
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    while True:
        case_id = session.scalar(pick)
        if case_id is None:
            return None
        done = session.execute(
            update(ReviewCase).where(ReviewCase.id == case_id, ReviewCase.status == "open")
            .values(status="claimed", owner=operator, claimed_at=now, updated_at=now)
            .execution_options(synchronize_session=False))
        if done.rowcount == 1:  # type: ignore[attr-defined]
            case = get_case(session, case_id)
            session.refresh(case)
            return case
        # someone claimed it between our read and our update: take the next one


def claim(session: Session, case_id: str, operator: str, *, now: datetime | None = None) -> ReviewCase:
    """``open`` → ``claimed`` by ``operator`` (409 when someone was first)."""
    now = now or utcnow()
    return _move(session, case_id, ReviewCase.status == "open",
                 {"status": "claimed", "owner": operator, "claimed_at": now, "updated_at": now}, "claim")


def release(session: Session, case_id: str, operator: str, *, admin: bool = False,
            now: datetime | None = None) -> ReviewCase:
    """``claimed`` → ``open`` again (its owner, or an admin)."""
    where = ReviewCase.status == "claimed"
    if not admin:
        where = and_(where, ReviewCase.owner == operator)
    return _move(session, case_id, where, {"status": "open", "owner": None, "claimed_at": None,
                                           "updated_at": now or utcnow()}, "release")


def reply(session: Session, case_id: str, operator: str, *, text: str | None = None,
          template: str | None = None, lang: str | None = None, now: datetime | None = None) -> ReviewCase:
    """Answer a case its ``operator`` holds: ``text`` as written, or a template
    (:mod:`growthwheel.voice.templates`) in the review's language unless ``lang`` says otherwise."""
    now = now or utcnow()
    case = get_case(session, case_id)
    if template is not None and template not in templates.TEMPLATES:
        raise InvalidArgumentError.coded("voice.error.template", field="template",
                                         choices=", ".join(templates.TEMPLATES))
    if text is None or not text.strip():
        if template is None:
            raise InvalidArgumentError.coded("voice.error.reply_empty", field="text")
        text = templates.render(template, lang or case.language)
    if len(text) > MAX_REPLY:
        raise InvalidArgumentError.coded("voice.error.reply_long", field="text", max=MAX_REPLY)
    return _move(session, case_id, and_(ReviewCase.status == "claimed", ReviewCase.owner == operator),
                 {"status": "replied", "reply": text.strip(), "template": template, "replied_at": now,
                  "updated_at": now}, "reply")


def close(session: Session, case_id: str, operator: str, *, now: datetime | None = None) -> ReviewCase:
    """``open``, or ``claimed`` by ``operator``, → ``closed`` without a reply."""
    now = now or utcnow()
    where = (ReviewCase.status == "open") | and_(ReviewCase.status == "claimed",
                                                  ReviewCase.owner == operator)
    return _move(session, case_id, where, {"status": "closed", "owner": operator, "closed_at": now,
                                           "updated_at": now}, "close")


def list_cases(session: Session, *, status: str | None = None, owner: str | None = None,
               sku: str | None = None, limit: int = 200, offset: int = 0) -> list[ReviewCase]:
    """Cases, those due first first (answered ones: latest answer first)."""
    q = select(ReviewCase)
    if status is not None:
        q = q.where(ReviewCase.status == status)
    if owner is not None:
        q = q.where(ReviewCase.owner == owner)
    if sku is not None:
        q = q.where(ReviewCase.sku == sku)
    order = ((ReviewCase.due_at, ReviewCase.id) if status in (None, "open", "claimed")
             else (ReviewCase.updated_at.desc(), ReviewCase.id))
    return list(session.scalars(q.order_by(*order).limit(limit).offset(offset)))


def _aware_db(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value)


def breached(case: ReviewCase, now: datetime) -> bool:
    """Answered after its due time, or unanswered past it (a closed case counts by its close)."""
    if case.status == "replied" and case.replied_at is None:
        return False  # answered in the marketplace before it reached us: its time is unknown
    due = _aware(case.due_at)
    done = _aware_db(case.replied_at) or _aware_db(case.closed_at)
    return (done or now) > due


def summary(session: Session, *, now: datetime | None = None) -> dict[str, int]:
    """How many cases per status, how many unanswered past due, how many answered late."""
    now = now or utcnow()
    out = dict.fromkeys(("open", "claimed", "replied", "closed"), 0)
    for status, n in session.execute(select(ReviewCase.status, func.count()).group_by(ReviewCase.status)):
        out[str(status)] = int(n)
    out["overdue"] = int(session.scalar(select(func.count()).where(
        ReviewCase.status.in_(("open", "claimed")), ReviewCase.due_at < now)) or 0)
    out["replied_late"] = int(session.scalar(select(func.count()).where(
        ReviewCase.status == "replied", ReviewCase.replied_at > ReviewCase.due_at)) or 0)
    return out


def case_out(case: ReviewCase, now: datetime | None = None) -> dict[str, Any]:
    """A case as the API and pages show it (``time_left_seconds`` negative once overdue)."""
    now = now or utcnow()
    due = _aware(case.due_at)
    unanswered = case.status in ("open", "claimed")
    return {
        "id": case.id, "review_id": case.review_id, "sku": case.sku, "rating": case.rating,
        "language": case.language, "title": case.title, "body": case.body,
        "customer_id": case.customer_id, "order_id": case.order_id,
        "sentiment": case.sentiment, "aspects": case.aspects,
        "review_created_at": _aware(case.review_created_at).isoformat(), "due_at": due.isoformat(),
        "status": case.status, "owner": case.owner,
        "claimed_at": None if case.claimed_at is None else _aware(case.claimed_at).isoformat(),
        "reply": case.reply, "template": case.template,
        "replied_at": None if case.replied_at is None else _aware(case.replied_at).isoformat(),
        "time_left_seconds": int((due - now).total_seconds()) if unanswered else None,
        "breached": breached(case, now),
        "suggested_template": templates.suggest([a.get("aspect", "") for a in case.aspects
                                                 if a.get("polarity") == "negative"]),
    }
