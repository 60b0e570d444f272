"""The demo's mail sink: a real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it
receives as an ``.eml`` file in ``<data dir>/demo-mailbox/``.

The demo's ``channels.json`` points the email channel at it, so the journeys' messages go through
the real email channel (``journeys.channels.smtp``) and the worker's outbox, and nothing leaves the
machine. ``growthwheel demo`` starts it beside the server and the worker; open the ``.eml`` files
with any mail program to read what a customer got.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAILBOX_DIR = "demo-mailbox"
DEFAULT_PORT = 8025


@dataclass
class _Handler:
    directory: Path
    received: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message as ``<n>.eml`` (numbered in arrival order)."""
        self.received += 1
        name = f"{len(list(self.directory.glob('*.eml'))) + 1:07d}.eml"
        content = envelope.original_content or envelope.content
        data = content if isinstance(content, bytes) else str(content).encode("utf-8")
        (self.directory / name).write_bytes(data)
        return "250 Message accepted for delivery"


@dataclass
class MailSink:
    """A running sink: its port and mailbox directory; :meth:`stop` ends it."""

    port: int
    directory: Path
    _controller: Any = field(repr=False)
    _handler: _Handler = field(repr=False)

    @property
    def received(self) -> int:
        """Messages received since this sink started."""
        return self._handler.received

    def stop(self) -> None:
        """Stop the SMTP server."""
        self._controller.stop()


def port_free(port: int) -> bool:
    """Whether ``port`` on 127.0.0.1 can be listened on now."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port on 127.0.0.1 free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(data_dir: Path, port: int) -> MailSink:
    """Start the sink on ``127.0.0.1:port`` writing into ``<data_dir>/demo-mailbox``."""
    from aiosmtpd.controller import Controller

    directory = data_dir / MAILBOX_DIR
    directory.mkdir(parents=True, exist_ok=True)
    handler = _Handler(directory)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return MailSink(port, directory, controller, handler)


def write_channels(data_dir: Path, port: int, *, daily_email_cap: int) -> Path:
    """Point the shop's email channel at the sink (``<data_dir>/channels.json``): plain SMTP on
    127.0.0.1, at most ``daily_email_cap`` emails a day (the rest wait for the next day)."""
    path = data_dir / "channels.json"
    config: dict[str, Any] = json.loads(path.read_text("utf-8")) if path.exists() else {}
    config["email"] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "sender": "生长轮演示店 <shop@demo.growthwheel.local>",
        "timeout": 10.0,
    }
    config.setdefault("rules", {}).setdefault("daily_caps", {})["email"] = daily_email_cap
    path.write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n", "utf-8")
    return path


def configured_port(data_dir: Path) -> int | None:
    """The port the shop's email channel uses if it points at 127.0.0.1 (the demo's sink)."""
    path = data_dir / "channels.json"
    if not path.exists():
        return None
    email = json.loads(path.read_text("utf-8")).get("email") or {}
    return int(email["port"]) if email.get("host") == "127.0.0.1" and "port" in email else None
