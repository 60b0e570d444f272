"""The outbox on SQLite and PostgreSQL: written with the decision (or not at all), delivered once,
retried with backoff, deferred, dead-lettered, replayed; an in-doubt message of a channel that
cannot de-duplicate is held for a person instead of being sent twice; two workers delivering at
once never deliver a message twice."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from growthwheel.config import Settings
from growthwheel.jobs import outbox
from growthwheel.jobs.models import OutboxRow
from growthwheel.jobs.outbox import DeliveryResult, OutboxMessage
from growthwheel.store.db import session_scope

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


class Recorder:
    """A channel that records what it was given and answers from a script (default: sent)."""

    def __init__(self, name: str = "email", *, idempotent: bool = False,
                 script: list[DeliveryResult | Exception] | None = None,
                 by_key: dict[str, DeliveryResult] | None = None) -> None:
        self.name = name
        self.idempotent = idempotent
        self.script = list(script or [])
        self.by_key = dict(by_key or {})
        self.got: list[OutboxMessage] = []
        self._lock = threading.Lock()

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        with self._lock:
            self.got.append(message)
            step = (self.by_key.pop(message.key) if message.key in self.by_key
                    else self.script.pop(0) if self.script
                    else DeliveryResult("sent", provider_id=f"p-{message.key}"))
        if isinstance(step, Exception):
            raise step
        return step


def _row(cfg: Settings, key: str) -> OutboxRow:
    with session_scope(cfg) as session:
        row = session.scalar(select(OutboxRow).where(OutboxRow.key == key))
        assert row is not None
        return row


def _enqueue(cfg: Settings, key: str, **extra: object) -> None:
    with session_scope(cfg) as session:
        outbox.enqueue(session, key=key, channel="email", recipient=f"{key}@example.com",
                       payload={"subject": "hi"}, now=T0, **extra)  # type: ignore[arg-type]


def test_a_message_exists_only_if_the_decision_committed_and_only_once(store_cfg: Settings) -> None:
    key = outbox.outbox_key("winback", "send-coupon", "c1", "2026-05")
    def decide_then_fail() -> None:
        with session_scope(store_cfg) as session:
            outbox.enqueue(session, key=key, channel="email", recipient="c1@example.com", payload={}, now=T0)
            raise RuntimeError("the decision failed after queueing")

    with pytest.raises(RuntimeError):
        decide_then_fail()
    with session_scope(store_cfg) as session:
        assert outbox.counts(session)["pending"] == 0
        assert outbox.enqueue(session, key=key, channel="email", recipient="c1@example.com", payload={},
                              now=T0)
    with session_scope(store_cfg) as session:  # the decider runs again after a crash: no second row
        assert not outbox.enqueue(session, key=key, channel="email", recipient="c1@example.com", payload={},
                                  now=T0)
    channel = Recorder()
    stats = outbox.deliver_due(store_cfg, {"email": channel}, worker="w", clock=lambda: T0)
    assert (stats.claimed, stats.sent) == (1, 1)
    assert [m.key for m in channel.got] == [key]
    row = _row(store_cfg, key)
    assert (row.status, row.attempts, row.provider_id, row.sent_at) == ("sent", 1, f"p-{key}", T0)
    assert outbox.deliver_due(store_cfg, {"email": channel}, worker="w", clock=lambda: T0).claimed == 0
    with pytest.raises(Exception, match="journey"):
        outbox.outbox_key("", "s", "c", "o")


def test_retries_back_off_then_dead_letter_and_replay(store_cfg: Settings) -> None:
    _enqueue(store_cfg, "m1", max_attempts=3)
    channel = Recorder(script=[DeliveryResult("retry", detail="421 try later"), ConnectionError("reset"),
                               DeliveryResult("retry", detail="421 again")])
    now = T0
    errors: list[str] = []
    for attempt in (1, 2, 3):
        stats = outbox.deliver_due(store_cfg, {"email": channel}, worker="w", clock=lambda at=now: at,
                                   backoff_base=60)
        assert stats.claimed == 1
        errors += stats.errors
        row = _row(store_cfg, "m1")
        assert row.attempts == attempt
        if attempt < 3:
            assert row.status == "pending"
            wait = (row.next_attempt_at - now).total_seconds()
            assert 0.9 * 60 * 2 ** (attempt - 1) <= wait <= 1.1 * 60 * 2 ** (attempt - 1)
            # not due before its time
            assert outbox.deliver_due(store_cfg, {"email": channel}, worker="w",
                                      clock=lambda at=now - timedelta(seconds=1) + timedelta(seconds=wait): at
                                      ).claimed == 0
            now = row.next_attempt_at
    assert (row.status, row.dead_reason, row.last_error) == ("dead", "max_attempts", "421 again")
    assert [m.attempt for m in channel.got] == [1, 2, 3]
    assert errors == ["ConnectionError: reset"]  # an exception from the channel counts as a retry
    with session_scope(store_cfg) as session:
        assert [r.key for r in outbox.dead_letters(session)] == ["m1"]
        assert outbox.replay(session, [row.id], now=now, actor_name="tests") == 1
        assert outbox.replay(session, [row.id], now=now, actor_name="tests") == 0  # not dead any more
    stats = outbox.deliver_due(store_cfg, {"email": channel}, worker="w", clock=lambda: now)
    row = _row(store_cfg, "m1")
    assert (stats.sent, row.status, row.replays, row.attempts) == (1, "sent", 1, 1)


def test_refused_skipped_deferred_and_unknown_channels(store_cfg: Settings) -> None:
    for key in ("bad", "optout", "quiet"):
        _enqueue(store_cfg, key)
    with session_scope(store_cfg) as session:
        outbox.enqueue(session, key="pigeon", channel="pigeon", recipient="x", payload={}, now=T0)
    later = T0 + timedelta(hours=9)
    channel = Recorder(by_key={"bad": DeliveryResult("failed", detail="550 no such user"),
                               "optout": DeliveryResult("skipped", detail="no consent"),
                               "quiet": DeliveryResult("deferred", detail="quiet hours", retry_at=later)})
    stats = outbox.deliver_due(store_cfg, {"email": channel}, worker="w", clock=lambda: T0)
    assert (stats.dead, stats.skipped, stats.deferred) == (2, 1, 1)
    assert (_row(store_cfg, "bad").status, _row(store_cfg, "bad").dead_reason) == ("dead", "refused")
    assert _row(store_cfg, "optout").status == "skipped"
    assert _row(store_cfg, "pigeon").dead_reason == "no_channel"
    quiet = _row(store_cfg, "quiet")
    assert (quiet.status, quiet.attempts, quiet.next_attempt_at) == ("pending", 0, later)  # not an attempt
    stats = outbox.deliver_due(store_cfg, {"email": channel}, worker="w", clock=lambda: later)
    assert stats.sent == 1
    assert _row(store_cfg, "quiet").status == "sent"


@pytest.mark.parametrize("idempotent", [False, True])
def test_an_in_doubt_message_is_never_sent_twice_by_a_channel_that_cannot_deduplicate(
    store_cfg: Settings, idempotent: bool,
) -> None:
    _enqueue(store_cfg, "m1")
    _enqueue(store_cfg, "m2", not_before=T0 + timedelta(seconds=1))
    # Worker "a" claims both, hands m1 to its channel and dies before recording the outcome (the
    # channel may have sent it); m2 was claimed but never handed over.
    with session_scope(store_cfg) as session:
        claimed = outbox.claim(session, worker="a", now=T0 + timedelta(seconds=1), lease_seconds=30)
    assert [c.message.key for c in claimed] == ["m1", "m2"]
    assert outbox._advance(store_cfg, "a", None, claimed[0], now=T0 + timedelta(seconds=1), lease_seconds=30)
    assert (_row(store_cfg, "m1").status, _row(store_cfg, "m2").status) == ("sending", "claimed")
    channel = Recorder(idempotent=idempotent)
    assert outbox.deliver_due(store_cfg, {"email": channel}, worker="b",
                              clock=lambda: T0 + timedelta(seconds=30)).claimed == 0  # lease held
    stats = outbox.deliver_due(store_cfg, {"email": channel}, worker="b",
                               clock=lambda: T0 + timedelta(seconds=32))
    m1, m2 = _row(store_cfg, "m1"), _row(store_cfg, "m2")
    assert (m2.status, m2.attempts) == ("sent", 1)  # never handed over: simply delivered
    if idempotent:  # the provider de-duplicates on the key: safe to send again, with the same key
        assert (stats.sent, m1.status, sorted(m.key for m in channel.got)) == (2, "sent", ["m1", "m2"])
    else:
        assert (stats.dead, m1.status, m1.dead_reason) == (1, "dead", "in_doubt")
        assert [m.key for m in channel.got] == ["m2"]


def test_a_stopping_worker_hands_back_what_it_did_not_start(store_cfg: Settings) -> None:
    for n in range(5):
        _enqueue(store_cfg, f"m{n}")
    channel = Recorder()
    stats = outbox.deliver_due(store_cfg, {"email": channel}, worker="w", clock=lambda: T0,
                               should_stop=lambda: len(channel.got) >= 2)
    assert stats.sent == 2
    with session_scope(store_cfg) as session:
        assert outbox.counts(session) == {"pending": 3, "claimed": 0, "sending": 0, "sent": 2, "skipped": 0,
                                          "dead": 0}
        pending = session.scalars(select(OutboxRow).where(OutboxRow.status == "pending"))
        assert {r.attempts for r in pending} == {0}


def test_two_workers_at_once_deliver_every_message_exactly_once(store_cfg: Settings) -> None:
    total = 300
    with session_scope(store_cfg) as session:
        for n in range(total):
            outbox.enqueue(session, key=f"k{n:04d}", channel="email", recipient=f"c{n}@example.com",
                           payload={}, now=T0)
    channel = Recorder()
    by_worker: Counter[str] = Counter()
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            while True:
                stats = outbox.deliver_due(store_cfg, {"email": channel}, worker=name,
                                           clock=lambda: datetime.now(UTC), limit=10)
                by_worker[name] += stats.sent
                if stats.claimed == 0:
                    return
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    sent = Counter(m.key for m in channel.got)
    assert len(sent) == total
    assert max(sent.values()) == 1
    assert sum(by_worker.values()) == total
    with session_scope(store_cfg) as session:
        assert outbox.counts(session)["sent"] == total
