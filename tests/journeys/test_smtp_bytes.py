"""The email channel flattens messages itself (a quicker header fold): the bytes must be exactly
those ``smtplib.SMTP.send_message`` would send, for every kind of header it writes."""

from __future__ import annotations

import io
import random
import re
from email.generator import BytesGenerator

import pytest
from channel_servers import Mailbox

from growthwheel.journeys.channels.base import Message, PermanentChannelError
from growthwheel.journeys.channels.links import unsubscribe_headers
from growthwheel.journeys.channels.smtp import SmtpChannel, build_email, email_bytes, wire_bytes

CASES = [
    ("c1@example.com", "好久不见", "news@tea.example.com", "x" * 20),
    ("李娜 <li.na@example.com>", "A long subject " * 8, "茶小铺 <news@tea.example.com>", "y" * 200),
    ("Ann Smith <ann@example.com>", "Short", "News <news@tea.example.com>", "z" * 60),
    ("bob@example.com", "Mixed 中文 and a fairly long English tail that needs folding " * 2,
     "news@tea.example.com", "a" * 1),
]


def standard(email: object) -> bytes:
    """What smtplib.send_message puts on the wire (its own BytesGenerator with the default policy)."""
    with io.BytesIO() as out:
        BytesGenerator(out).flatten(email, linesep="\r\n")  # type: ignore[arg-type]
        return out.getvalue()


@pytest.mark.parametrize(("to", "subject", "sender", "token"), CASES)
def test_quick_flatten_is_byte_identical(to: str, subject: str, sender: str, token: str) -> None:
    headers = {**unsubscribe_headers(f"https://growth.example.com/m/u/{token}"), "X-Campaign": "winback 2025"}
    message = Message(channel="email", customer_id="c1", to=to, subject=subject, text="您好 From here\n" * 30,
                      html="<p>您好</p>" * 30, headers=headers)
    email = build_email(message, "j|winback|s1|c1|1", sender=sender, domain="tea.example.com")
    assert wire_bytes(email) == standard(email)


BODIES = [
    ("您好 From here\n" * 30, "<p>您好</p>" * 30),  # several base64 lines
    ("only text, no HTML\r\nsecond line\n", None),
    ("", "<p>HTML only</p>"),
    ("", None),
    ("x" * 57, "y" * 58),  # exactly one base64 line, and one character over
]


@pytest.mark.parametrize(("to", "subject", "sender", "token"), CASES)
@pytest.mark.parametrize(("text", "html"), BODIES)
def test_bytes_made_directly_are_those_of_the_mime_objects(
    to: str, subject: str, sender: str, token: str, text: str, html: str | None,
) -> None:
    headers = {**unsubscribe_headers(f"https://growth.example.com/m/u/{token}"), "X-Campaign": "winback 2025"}
    message = Message(channel="email", customer_id="c1", to=to, subject=subject, text=text, html=html,
                      headers=headers)
    email = build_email(message, "j|winback|s1|c1|1", sender=sender, domain="tea.example.com")
    expected = wire_bytes(email)  # (draws the boundary, which the direct bytes then reuse)
    got, message_id = email_bytes(message, "j|winback|s1|c1|1", sender=sender, domain="tea.example.com",
                                  date=str(email["Date"]), boundary=email.get_boundary())
    assert got == expected
    assert message_id == email["Message-ID"]


def test_direct_bytes_draw_a_boundary_and_refuse_what_the_mime_path_refuses() -> None:
    message = Message(channel="email", customer_id="c1", to="c1@example.com", subject="Hi", text="a",
                      html="<p>a</p>")
    first, _id = email_bytes(message, "k1", sender="news@tea.example.com", domain="tea.example.com")
    second, _id = email_bytes(message, "k1", sender="news@tea.example.com", domain="tea.example.com")
    boundaries = {m.group(1) for m in re.finditer(rb'boundary="(=+\d{19}==)"', first + second)}
    assert len(boundaries) == 2  # a fresh one each time, of the email package's form
    to = "c1@example.com"
    for bad in (Message(channel="email", customer_id="c1", to="not an address", text="a"),
                Message(channel="email", customer_id="c1", to=to, subject="a\nBcc: x@y", text="a"),
                Message(channel="email", customer_id="c1", to=to, text="a", headers={"From": "x@y"}),
                Message(channel="sms", customer_id="c1", to=to, text="a")):
        with pytest.raises(PermanentChannelError):
            email_bytes(bad, "k1", sender="news@tea.example.com", domain="tea.example.com")
        with pytest.raises(PermanentChannelError):
            build_email(bad, "k1", sender="news@tea.example.com", domain="tea.example.com")


def test_the_server_receives_the_same_message(smtp_server: tuple[int, Mailbox]) -> None:
    port, mailbox = smtp_server
    channel = SmtpChannel("127.0.0.1", port, "茶小铺 <news@tea.example.com>")
    message = Message(channel="email", customer_id="c1", to="李娜 <li.na@example.com>", subject="好久不见",
                      text="券码 WB-1", html="<p>券码 <b>WB-1</b></p>")
    channel.send(message, "j|winback|s1|c1|1")
    channel.close()
    (got,) = mailbox.messages
    assert got["Subject"] == "好久不见"
    assert str(got["To"]) == "李娜 <li.na@example.com>"
    html = got.get_body(preferencelist=("html",))
    assert html is not None
    assert "<b>WB-1</b>" in html.get_content()


def test_plain_addresses_skip_the_parser_with_the_parsers_answer() -> None:
    from email.utils import parseaddr

    from growthwheel.journeys.channels.smtp import _SIMPLE, _parse

    draw = random.Random(12)  # (a fixed seed: the same strings every run)
    checked = 0
    for _ in range(20_000):
        text = "".join(draw.choice("aZ09._%+-@") for _n in range(draw.randint(1, 9)))
        if _SIMPLE.fullmatch(text):
            checked += 1
            assert _parse(text) == parseaddr(text), text
    assert checked > 500
    for text in ("李娜 <li.na@example.com>", "Ann <a@example.com>", "a@b@c", "<a@example.com>"):
        assert _parse(text) == parseaddr(text)
