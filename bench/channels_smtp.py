"""Email channel throughput: ``SmtpChannel.send`` against a bare ``smtplib`` loop, same server, same run.

Starts an aiosmtpd server on 127.0.0.1 that accepts and counts messages, then sends N messages
(a) with a bare ``smtplib.SMTP.send_message`` loop over one connection (the baseline: a prebuilt
multipart message with only the recipient changed) and (b) through the email channel adapter
(builds each MIME message with text + HTML, RFC 8058 headers and a Message-ID from the key).
Prints messages per second of each and the ratio (aim: 0.5 or better).

    .venv/bin/python bench/channels_smtp.py [N]
"""

from __future__ import annotations

import smtplib
import socket
import sys
import time
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from growthwheel.journeys.channels.base import Message
from growthwheel.journeys.channels.links import unsubscribe_headers
from growthwheel.journeys.channels.smtp import SmtpChannel


class Counter:
    """Accepts every message and counts it."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    handler = Counter()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    text = "您好，送您一张回归券：WB-1234\n" * 5
    html = "<p>您好，送您一张<b>回归券</b>：WB-1234</p>" * 5
    try:
        base = EmailMessage()
        base["From"] = "news@tea.example.com"
        base["Subject"] = "好久不见"
        base.set_content(text)
        base.add_alternative(html, subtype="html")
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port) as conn:
            for i in range(n):
                del base["To"]
                base["To"] = f"c{i}@example.com"
                conn.send_message(base)
        bare = n / (time.perf_counter() - started)

        channel = SmtpChannel("127.0.0.1", port, "news@tea.example.com")
        headers = unsubscribe_headers("https://growth.example.com/m/u/token")
        started = time.perf_counter()
        for i in range(n):
            message = Message(channel="email", customer_id=f"c{i}", to=f"c{i}@example.com",
                              subject="好久不见", text=text, html=html, headers=headers)
            channel.send(message, f"j|wb|s1|c{i}|1")
        channel.close()
        adapter = n / (time.perf_counter() - started)
    finally:
        controller.stop()
    assert handler.count == 2 * n, handler.count
    print(f"bare smtplib loop:   {bare:8.0f} msg/s")
    print(f"SmtpChannel.send:    {adapter:8.0f} msg/s")
    print(f"ratio (channel/bare): {adapter / bare:.2f}  (aim >= 0.5)")


if __name__ == "__main__":
    main()
