"""The guard checks a claimed batch at once (issue 12: messages per second): consent, suppression,
frequency caps and the daily cap in one transaction per batch. The rules must hold exactly as they
do one message at a time — within a batch (two messages to one customer) and across concurrent
batches that share customers (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from crowds import crowd
from growthwheel.config import Settings
from growthwheel.jobs.outbox import OutboxMessage
from growthwheel.journeys.channels import store
from growthwheel.journeys.channels.guard import GuardedChannel
from growthwheel.journeys.channels.models import ChannelDailyCount, ChannelSend
from growthwheel.journeys.channels.rules import FrequencyCap, Rules
from growthwheel.store.db import session_scope

NOW = datetime(2025, 3, 8, 20, 0, tzinfo=UTC)
RULES = Rules(timezone="Asia/Shanghai", caps=(FrequencyCap("*", 3, timedelta(days=7)),),
              daily_caps={"sms": 25})


def test_concurrent_batches_sharing_customers_hold_the_caps(store_cfg: Settings) -> None:
    # 8 senders, each a batch of 20 SMS in its own order: 40 customers, each sent to by 4 batches.
    messages = [(f"sms|j{j}|c{c}", f"c{c}") for c in range(40) for j in range(4)]
    batches: list[list[tuple[str, str]]] = [[] for _ in range(8)]
    for n, item in enumerate(messages):
        batches[n % 8].append(item)
    for n, batch in enumerate(batches):
        random.Random(n).shuffle(batch)

    def send_batch(index: int) -> list[str]:
        batch = batches[index]
        with session_scope(store_cfg) as session:
            store.lock_customers(session, [c for _k, c in batch], NOW)
            decided = store.reserve_many(session, [(k, c, RULES) for k, c in batch], channel="sms", now=NOW)
        return [decided[k].action for k, _c in batch]

    results = [a for actions in crowd(8, send_batch) for a in actions]
    assert results.count("send") == 25  # the daily cap, exactly
    assert set(results) <= {"send", "defer", "drop"}  # (drop: a customer's 7-day cap)
    with session_scope(store_cfg) as session:
        per_customer = Counter(session.scalars(select(ChannelSend.customer_id)))
        counted = session.scalar(select(ChannelDailyCount.sent).where(ChannelDailyCount.channel == "sms"))
        total = session.scalar(select(func.count()).select_from(ChannelSend))
    assert counted == total == 25
    assert max(per_customer.values()) <= 3

    # Without a daily cap the 7-day cap binds: exactly 3 of each customer's 4 messages go.
    weekly = Rules(timezone="Asia/Shanghai", caps=(FrequencyCap("*", 3, timedelta(days=7)),))

    def email_batch(index: int) -> list[str]:
        batch = [(k.replace("sms|", "email|"), c) for k, c in batches[index]]
        with session_scope(store_cfg) as session:
            store.lock_customers(session, [c for _k, c in batch], NOW)
            decided = store.reserve_many(session, [(k, c, weekly) for k, c in batch], channel="email",
                                         now=NOW)
        return [decided[k].action for k, _c in batch]

    crowd(8, email_batch)
    with session_scope(store_cfg) as session:
        per_customer = Counter(session.scalars(select(ChannelSend.customer_id)))
    assert set(per_customer.values()) == {3}  # across both channels, every customer: 3, never more
    assert len(per_customer) == 40


def test_a_batch_applies_caps_consent_and_suppression_like_single_sends(store_cfg: Settings) -> None:
    rules = Rules(timezone="Asia/Shanghai", caps=(FrequencyCap("email", 1, timedelta(hours=24)),))

    class Adapter:
        kind = "email"
        name = "email"

        def send(self, message: object, key: str) -> object:  # never reached in this test
            raise AssertionError("not sent here")

    guard = GuardedChannel(store_cfg, Adapter(), rules, clock=lambda: NOW)  # type: ignore[arg-type]
    with session_scope(store_cfg) as session:
        store.set_consent(session, "ann", "email", False, source="test", now=NOW)
        store.suppress(session, "email", "BO@example.com", "manual", now=NOW)
        store.reserve(session, key="earlier", customer_id="dan", channel="email",
                      now=NOW - timedelta(hours=2), rules=rules)
    batch = [OutboxMessage(key=f"k-{who}-{n}", channel="email", recipient=f"{who}@example.com", payload={},
                           customer_id=who) for who, n in
             (("ann", 1), ("bo", 1), ("cy", 1), ("cy", 2), ("dan", 1), ("ed", 1))]
    batch.append(OutboxMessage(key="k-staff", channel="email", recipient="ops@example.com", payload={}))
    guard.prepare(batch)
    decided = {key: (result.status, result.detail) if result else ("send", "")
               for key, (_at, result) in guard._prepared.items()}
    assert decided == {
        "k-ann-1": ("skipped", "unsubscribed"), "k-bo-1": ("skipped", "suppressed"),
        "k-cy-1": ("send", ""), "k-cy-2": ("skipped", "frequency_cap"),  # the batch's own send counts
        "k-dan-1": ("skipped", "frequency_cap"), "k-ed-1": ("send", ""), "k-staff": ("send", ""),
    }
    # preparing the same batch again (a retry after a crash) lets the reserved ones through, uncounted
    guard.prepare(batch)
    again = {key for key, (_at, result) in guard._prepared.items() if result is None}
    assert again == {"k-cy-1", "k-ed-1", "k-staff"}
    with session_scope(store_cfg) as session:
        assert set(session.scalars(select(ChannelSend.key))) == {"earlier", "k-cy-1", "k-ed-1"}


def test_a_batch_takes_the_day_count_at_once_and_one_by_one_when_others_took_slots_meanwhile(
    store_cfg: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    rules = Rules(timezone="Asia/Shanghai", daily_caps={"sms": 25})
    day = NOW.astimezone(rules.zone).date()
    batch = [(f"a{n}", f"c{n}", rules) for n in range(10)]
    with session_scope(store_cfg) as session:
        store.lock_customers(session, [c for _k, c, _r in batch], NOW)
        decided = store.reserve_many(session, batch, channel="sms", now=NOW)
    assert [d.action for d in decided.values()] == ["send"] * 10
    # Another sender takes 10 more slots after this batch read the count (on PostgreSQL a
    # concurrent transaction can; here the read is made stale on purpose): 20 of 25 are gone, the
    # batch's 10 no longer fit at once, so each send is taken alone: 5 go, 5 wait for tomorrow.
    with session_scope(store_cfg) as session:
        assert store._take_daily(session, "sms", day, 25, slots=10)
    stale = store.sent_on
    monkeypatch.setattr(store, "sent_on", lambda session, channel, day: stale(session, channel, day) - 10)
    second = [(f"b{n}", f"d{n}", rules) for n in range(10)]
    with session_scope(store_cfg) as session:
        store.lock_customers(session, [c for _k, c, _r in second], NOW)
        decided = store.reserve_many(session, second, channel="sms", now=NOW)
    assert [decided[k].action for k, _c, _r in second] == ["send"] * 5 + ["defer"] * 5
    assert {decided[k].reason for k, _c, _r in second[5:]} == {"daily_cap"}
    with session_scope(store_cfg) as session:
        assert stale(session, "sms", day) == 25
        assert session.scalar(select(func.count()).select_from(ChannelSend)) == 15
