"""The service queue on both stores: which reviews open a case, the 48-hour SLA, the moves, and a
crowd of operators claiming at once (nobody gets a case twice, none is skipped)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crowds import crowd
from growthwheel.config import Settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.store.db import session_scope
from growthwheel.voice import service, templates

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _review(i: int, rating: int, body: str, **extra: Any) -> dict[str, Any]:
    return {"review_id": f"R{i:04d}", "sku": f"SKU-{i % 3}", "rating": rating,
            "created_at": T0 + timedelta(minutes=i), "body": body, **extra}


def test_negative_unanswered_reviews_open_one_case_each(store_cfg: Settings) -> None:
    reviews = [
        _review(1, 1, "做工粗糙，用了两次就坏了，很失望。"),
        _review(2, 5, "质量很好，物流很快，推荐！"),
        _review(3, 3, "和描述不符，很失望，客服也不理人。"),   # 3 stars, reads negative
        _review(4, 3, "还可以，对得起这个价格。"),               # 3 stars, reads fine
        _review(5, 2, "Delivery took more than a week, very disappointed.", language="en"),
        _review(6, 1, "差评", replied=True),                     # answered already elsewhere
    ]
    with session_scope(store_cfg) as session:
        assert service.open_cases(session, reviews, now=T0) == 3
        # the same reviews again (a re-import, a second worker): nothing new
        assert service.open_cases(session, reviews, now=T0) == 0
    with session_scope(store_cfg) as session:
        cases = service.list_cases(session)
        assert [c.review_id for c in cases] == ["R0001", "R0003", "R0005"]  # due first
        first = service.case_out(cases[0], now=T0 + timedelta(hours=1))
        assert first["due_at"] == (T0 + timedelta(minutes=1, hours=48)).isoformat()
        assert first["time_left_seconds"] == 47 * 3600 + 60
        assert first["breached"] is False
        assert first["suggested_template"] == "quality"
        en = service.case_out(cases[2], now=T0)
        assert en["language"] == "en"
        assert en["suggested_template"] == "logistics"


def test_moves_sla_and_replies_from_templates(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        service.open_cases(session, [_review(i, 1, "质量太差了，很失望") for i in range(3)], now=T0)
        ids = [c.id for c in service.list_cases(session)]
    late = T0 + timedelta(hours=50)
    with session_scope(store_cfg) as session:
        a = service.claim(session, ids[0], "amy@example.com", now=T0 + timedelta(hours=1))
        assert (a.status, a.owner) == ("claimed", "amy@example.com")
        with pytest.raises(service.ConflictError, match="claimed by amy"):
            service.claim(session, ids[0], "bob@example.com")
        with pytest.raises(service.ConflictError):  # only the owner replies
            service.reply(session, ids[0], "bob@example.com", text="hi")
        with pytest.raises(InvalidArgumentError, match=r"^text: "):
            service.reply(session, ids[0], "amy@example.com")
        with pytest.raises(InvalidArgumentError, match=r"^template: "):
            service.reply(session, ids[0], "amy@example.com", template="nope")
        done = service.reply(session, ids[0], "amy@example.com", template="quality",
                             now=T0 + timedelta(hours=2))
        assert done.status == "replied"
        assert done.reply == templates.render("quality", "zh")
        # the second case is answered after its 48 hours: a breach; the third is still open past it
        service.claim(session, ids[1], "bob@example.com")
        service.reply(session, ids[1], "bob@example.com", text="Sorry!", now=late)
        assert service.release(session, service.claim(session, ids[2], "bob@example.com").id,
                               "bob@example.com").status == "open"
    with session_scope(store_cfg) as session:
        outs = {c.id: service.case_out(c, now=late) for c in service.list_cases(session)}
        assert [outs[i]["breached"] for i in ids] == [False, True, True]
        assert outs[ids[2]]["time_left_seconds"] < 0
        assert outs[ids[0]]["time_left_seconds"] is None
        counts = service.summary(session, now=late)
        assert counts == {"open": 1, "claimed": 0, "replied": 2, "closed": 0, "overdue": 1,
                          "replied_late": 1}
        closed = service.close(session, ids[2], "lead@example.com", now=late)
        assert closed.status == "closed"
        with pytest.raises(service.NotFoundError):
            service.claim(session, "missing", "amy@example.com")


def test_operators_claiming_at_once_never_share_a_case(store_cfg: Settings) -> None:
    """Six operators take the next case until the queue is empty: every case is taken exactly
    once, by exactly one operator, and nothing is left open."""
    n = 30
    with session_scope(store_cfg) as session:
        service.open_cases(session, [_review(i, 1, "很差，很失望") for i in range(n)], now=T0)

    def work(i: int) -> list[str]:
        got: list[str] = []
        while True:
            with session_scope(store_cfg) as session:
                case = service.claim_next(session, f"op{i}@example.com")
                if case is None:
                    return got
                assert case.owner == f"op{i}@example.com"
                got.append(case.id)

    results = crowd(6, work)
    taken = [cid for r in results for cid in r]
    assert all(isinstance(r, list) for r in results), results
    assert len(taken) == n
    assert len(set(taken)) == n
    with session_scope(store_cfg) as session:
        assert service.summary(session)["claimed"] == n
        owners = {c.id: c.owner for c in service.list_cases(session, status="claimed")}
        for i, r in enumerate(results):
            assert all(owners[cid] == f"op{i}@example.com" for cid in r)
