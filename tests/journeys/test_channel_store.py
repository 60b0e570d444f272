"""Caps that hold under concurrent senders, consent and suppression on every send, the outbox
delivering through a guarded channel to a real SMTP server, and the public link routes — on
SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, time, timedelta

from channel_servers import Mailbox
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from growthwheel.accounts.service import server_secret
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.jobs import outbox
from growthwheel.jobs.models import OutboxRow
from growthwheel.journeys import api as journeys_api
from growthwheel.journeys.channels import store
from growthwheel.journeys.channels.guard import GuardedChannel, payload_of
from growthwheel.journeys.channels.links import LinkMaker, Utm
from growthwheel.journeys.channels.models import ChannelClick, ChannelDailyCount, ChannelSend
from growthwheel.journeys.channels.rules import FrequencyCap, QuietHours, Rules
from growthwheel.journeys.channels.smtp import KEY_HEADER, SmtpChannel
from growthwheel.journeys.channels.templates import MessageTemplate, Recipient, TemplateText, render
from growthwheel.store.db import session_scope

NOW = datetime(2025, 3, 8, 20, 0, tzinfo=UTC)  # 15:00 in New York


def crowd(count: int, work: list[tuple[str, str]], reserve_one: object) -> list[str]:
    """Run ``reserve_one(key, customer)`` for every item from ``count`` threads at once."""
    results: list[str] = []
    lock = threading.Lock()
    gate = threading.Barrier(count)
    chunks = [work[i::count] for i in range(count)]

    def run(chunk: list[tuple[str, str]]) -> None:
        gate.wait()
        for key, customer in chunk:
            action = reserve_one(key, customer)  # type: ignore[operator]
            with lock:
                results.append(action)

    threads = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_frequency_and_daily_caps_hold_for_a_crowd_of_concurrent_senders(store_cfg: Settings) -> None:
    rules = Rules(timezone="America/New_York", caps=(FrequencyCap("*", 3, timedelta(days=7)),),
                  daily_caps={"sms": 10})

    def reserve_one(key: str, customer: str) -> str:
        with session_scope(store_cfg) as session:
            channel = "sms" if key.startswith("sms") else "email"
            return store.reserve(session, key=key, customer_id=customer, channel=channel, now=NOW,
                                 rules=rules).decision.action

    # 24 messages from different journeys to one customer: exactly 3 pass the 7-day cap.
    same_customer = [(f"email|journey{i}|c1", "c1") for i in range(24)]
    assert Counter(crowd(8, same_customer, reserve_one)) == {"send": 3, "drop": 21}
    # 30 SMS to 30 customers against a daily cap of 10: exactly 10, the rest wait for tomorrow.
    many = [(f"sms|journey|c{n}", f"c{n}") for n in range(100, 130)]
    assert Counter(crowd(8, many, reserve_one)) == {"send": 10, "defer": 20}
    with session_scope(store_cfg) as session:
        assert session.scalar(select(func.count()).select_from(ChannelSend)) == 13
        assert session.scalar(select(ChannelDailyCount.sent).where(ChannelDailyCount.channel == "sms")) == 10
        # a retry of a counted message passes without counting twice; a release gives the slot back
        again = store.reserve(session, key="sms|journey|c100", customer_id="c100", channel="sms", now=NOW,
                              rules=rules)
        sent_keys = set(session.scalars(select(ChannelSend.key).where(ChannelSend.channel == "sms")))
    if "sms|journey|c100" in sent_keys:
        assert again.repeat
        assert again.decision.allowed
    with session_scope(store_cfg) as session:
        assert store.release(session, sorted(sent_keys)[0])
    with session_scope(store_cfg) as session:
        assert session.scalar(select(ChannelDailyCount.sent).where(ChannelDailyCount.channel == "sms")) == 9
        late = store.reserve(session, key="sms|journey|late", customer_id="c999", channel="sms", now=NOW,
                             rules=rules)
        assert late.decision.allowed


def _enqueue(cfg: Settings, key: str, customer: str, address: str, message_text: str) -> None:
    template = MessageTemplate("winback", "email", {"zh": TemplateText(
        subject="好久不见", text=message_text, html="<p>" + message_text + "</p>")})
    links = LinkMaker(server_secret(cfg.data_dir), "https://growth.example.com", customer, "email", key,
                      Utm("growthwheel", "email", "winback"))
    message = render(template, Recipient(customer, address, "zh"), links=links)
    with session_scope(cfg) as session:
        outbox.enqueue(session, key=key, channel="email", recipient=address, payload=payload_of(message),
                       customer_id=customer, now=NOW)


def test_outbox_delivers_through_the_guard_honouring_quiet_hours_consent_suppression_and_caps(
    store_cfg: Settings, smtp_server: tuple[int, Mailbox]
) -> None:
    port, mailbox = smtp_server
    rules = Rules(timezone="America/New_York", caps=(FrequencyCap("email", 1, timedelta(hours=24)),),
                  quiet_hours={"*": QuietHours(time(21, 0), time(9, 0))})
    clock = {"now": datetime(2025, 3, 9, 4, 0, tzinfo=UTC)}  # Saturday 23:00 EST: quiet
    smtp = SmtpChannel("127.0.0.1", port, "news@tea.example.com")
    guarded = GuardedChannel(store_cfg, smtp, rules, clock=lambda: clock["now"])
    with session_scope(store_cfg) as session:
        store.set_consent(session, "c2", "email", False, source="unsubscribe_link", now=NOW)
        store.suppress(session, "email", "Blocked@Example.com", "complained", now=NOW)
    _enqueue(store_cfg, "j|winback|s1|c1|1", "c1", "li@example.com", "回归券 WB-1")
    _enqueue(store_cfg, "j|birthday|s1|c1|1", "c1", "li@example.com", "生日券 BD-1")  # another journey
    _enqueue(store_cfg, "j|winback|s1|c2|1", "c2", "wang@example.com", "回归券 WB-2")
    _enqueue(store_cfg, "j|winback|s1|c3|1", "c3", "blocked@example.com", "回归券 WB-3")
    _enqueue(store_cfg, "j|winback|s1|c4|1", "c4", "bounce@example.com", "回归券 WB-4")
    channels = {"email": guarded}

    def run() -> outbox.DeliveryStats:
        return outbox.deliver_due(store_cfg, channels, worker="w1", clock=lambda: clock["now"])

    night = run()
    assert night.deferred == 3
    assert night.skipped == 2
    assert mailbox.messages == []
    with session_scope(store_cfg) as session:
        rows = {r.key: r for r in session.scalars(select(OutboxRow))}
    waiting = [r for r in rows.values() if r.status == "pending"]
    # deferred to 09:00 EDT on the morning the clocks changed = 13:00 UTC, not counted as an attempt
    assert {r.next_attempt_at for r in waiting} == {datetime(2025, 3, 9, 13, 0, tzinfo=UTC)}
    assert {r.attempts for r in waiting} == {0}
    assert {rows["j|winback|s1|c2|1"].last_error, rows["j|winback|s1|c3|1"].last_error} == {"unsubscribed",
                                                                                              "suppressed"}
    clock["now"] = datetime(2025, 3, 9, 13, 0, tzinfo=UTC)
    run()
    with session_scope(store_cfg) as session:
        rows = {r.key: r for r in session.scalars(select(OutboxRow))}
        bounced = store.blocked(session, "c4", "email", "BOUNCE@example.com", require_opt_in=False)
    c1 = [rows["j|winback|s1|c1|1"], rows["j|birthday|s1|c1|1"]]
    assert sorted(r.status for r in c1) == ["sent", "skipped"]  # 1 email per 24 h across journeys
    assert [r.last_error for r in c1 if r.status == "skipped"] == ["frequency_cap"]
    assert rows["j|winback|s1|c4|1"].status == "dead"
    assert bounced == "suppressed"
    smtp.close()
    assert [m["To"] for m in mailbox.messages] == ["li@example.com"]
    assert mailbox.messages[0][KEY_HEADER] in {r.key for r in c1 if r.status == "sent"}
    assert mailbox.messages[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_unsubscribe_and_click_links_work_without_login_and_cannot_be_forged(store_cfg: Settings) -> None:
    secret = server_secret(store_cfg.data_dir)
    links = LinkMaker(secret, "http://testserver", "c7", "email", "j|wb|s1|c7|1", Utm("gw", "email", "wb"))
    unsubscribe = links.unsubscribe().removeprefix("http://testserver")
    click = links.click("https://tea.example.com/p/T-1?x=1", "cta").removeprefix("http://testserver")
    app = create_app(store_cfg, routers=[journeys_api.router])
    with TestClient(app) as client:
        page = client.get(unsubscribe, headers={"Accept-Language": "zh-CN"})
        assert page.status_code == 200
        assert "不再接收" in page.text
        assert "邮件" in page.text
        assert 'method="post"' in page.text
        with session_scope(store_cfg) as session:
            assert store.blocked(session, "c7", "email", "c7@example.com", require_opt_in=False) is None
        done = client.post(unsubscribe, content=b"List-Unsubscribe=One-Click",
                           headers={"Content-Type": "application/x-www-form-urlencoded",
                                    "Accept-Language": "en"})
        assert done.status_code == 200
        assert "You are unsubscribed" in done.text
        assert client.post(unsubscribe).status_code == 200  # again: nothing changes
        with session_scope(store_cfg) as session:
            reason = store.blocked(session, "c7", "email", "c7@example.com", require_opt_in=False)
            assert reason == "unsubscribed"
            assert store.consent(session, "c7", "email").message_key == "j|wb|s1|c7|1"  # type: ignore[union-attr]
        hop = client.get(click, follow_redirects=False, headers={"User-Agent": "Mail/1.0"})
        assert hop.status_code == 302
        assert hop.headers["location"] == ("https://tea.example.com/p/T-1?x=1&utm_source=gw&utm_medium=email"
                                           "&utm_campaign=wb&utm_content=cta")
        with session_scope(store_cfg) as session:
            (row,) = session.scalars(select(ChannelClick))
            assert (row.customer_id, row.message_key, row.user_agent) == ("c7", "j|wb|s1|c7|1", "Mail/1.0")
        # forged or altered tokens: a 400 page, never a redirect or a 500
        body, mac = click.rsplit("/", 1)[1].split(".")
        for bad in (f"/m/c/{body}X.{mac}", "/m/c/nonsense", f"/m/u/{body}.{mac}"):
            answer = client.request("POST" if bad.startswith("/m/u/") else "GET", bad, follow_redirects=False)
            assert answer.status_code == 400, bad
        assert client.get("/m/c/" + "a" * 5000).status_code == 422
    with session_scope(store_cfg) as session:
        assert session.scalar(select(func.count()).select_from(ChannelClick)) == 1
