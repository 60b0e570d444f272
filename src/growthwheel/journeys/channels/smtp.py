"""Email over SMTP: a ``multipart/alternative`` message (plain text first, then HTML).

One connection is kept open and reused (guarded by a lock, so one adapter may serve several
threads one message at a time); a dropped connection is re-opened once per send. The message's
``headers`` carry the RFC 8058 pair ``List-Unsubscribe`` / ``List-Unsubscribe-Post`` that
:func:`growthwheel.journeys.channels.links.unsubscribe_headers` makes. ``Message-ID`` is derived
from the idempotency key, so a message re-sent after a lost answer carries the same id and the
receiving side can tell.

Errors: SMTP 4xx replies and dropped connections are retryable, 5xx (unknown mailbox, refused
sender) are permanent.
"""

from __future__ import annotations

import base64
import io
import random
import re
import smtplib
import ssl
import sys
import threading
from email.generator import BytesGenerator
from email.header import Header
from email.headerregistry import Address
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import formataddr, formatdate, parseaddr
from functools import lru_cache
from typing import Any

from growthwheel.journeys.channels.base import (
    Message,
    PermanentChannelError,
    RetryableChannelError,
    SendResult,
    key_digest,
    require,
)

KEY_HEADER = "X-Growthwheel-Key"
_RESERVED = frozenset({"from", "to", "subject", "date", "message-id", "content-type",
                       "mime-version", "content-transfer-encoding"})


def _header(value: str) -> str:
    """A header value (RFC 2047-encoded when not ASCII); line breaks are refused (injection)."""
    if "\r" in value or "\n" in value:
        raise PermanentChannelError("invalid email header: a value contains a line break")
    try:
        value.encode("ascii")
    except UnicodeEncodeError:
        return Header(value, "utf-8").encode()
    return value


_SIMPLE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+")


def _parse(value: str) -> tuple[str, str]:
    """``parseaddr(value)``, without parsing a plain ``local@domain`` of the usual characters
    (what ``parseaddr`` gives for one: no name, the address itself)."""
    return ("", value) if _SIMPLE.fullmatch(value) else parseaddr(value)


def _address(value: str) -> str:
    """An address header (a non-ASCII display name RFC 2047-encoded)."""
    name, addr = _parse(value)
    return formataddr((name, addr), charset="utf-8") if name else addr


@lru_cache(maxsize=16)
def _sender_header(sender: str) -> str:
    """The ``From`` value of a channel's (constant) sender."""
    return _header(_address(sender))


class _QuickFolding(Compat32):
    """``compat32`` (what ``smtplib.send_message`` flattens with) that writes a header that needs no
    folding — ASCII, one line, short — as it is, without building an ``email.header.Header`` to
    find that out; every other header is folded exactly as ``compat32`` folds it. The bytes are
    the same; flattening takes about half the time (tested in ``test_smtp_bytes``)."""

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        limit = self.max_line_length
        if (isinstance(value, str) and value.isascii() and "\n" not in value and "\r" not in value
                and (not limit or len(name) + 2 + len(value) <= limit)):
            return f"{name}: {value}{self.linesep}"
        return str(super()._fold(name, value, sanitize))  # type: ignore[misc]  # (private in typeshed)


_QUICK = _QuickFolding()


def wire_bytes(email: MIMEBase) -> bytes:
    """``email`` as ``smtplib.SMTP.send_message`` would put it on the wire (CRLF line ends)."""
    with io.BytesIO() as out:
        BytesGenerator(out, policy=_QUICK).flatten(email, linesep="\r\n")
        return out.getvalue()


def build_email(message: Message, idempotency_key: str, *, sender: str, domain: str) -> MIMEBase:
    """The MIME message for ``message`` (raises :class:`PermanentChannelError` for bad input).

    Built with the ``compat32`` MIME classes: several times faster than ``EmailMessage`` with the
    default policy, which matters at thousands of messages a minute.
    """
    require(message, "email")
    _name, address = parseaddr(message.to)
    if "@" not in address or any(c.isspace() for c in address) or "\n" in message.to:
        raise PermanentChannelError(f"not an email address: {message.to!r}")
    plain = MIMEText(message.text or "", "plain", "utf-8")
    email: MIMEBase
    if message.html:
        email = MIMEMultipart("alternative")
        email.attach(plain)
        email.attach(MIMEText(message.html, "html", "utf-8"))
    else:
        email = plain
    email["From"] = _header(_address(sender))
    email["To"] = _header(_address(message.to))
    email["Subject"] = _header(message.subject)
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = f"<{key_digest(idempotency_key)}@{domain}>"
    email[KEY_HEADER] = _header(idempotency_key)
    for name, value in message.headers.items():
        if name.lower() in _RESERVED or any(c in name for c in ":\r\n "):
            raise PermanentChannelError(f"header {name} is set by the channel")
        email[name] = _header(value)
    return email


_QUICK_CRLF = _QUICK.clone(linesep="\r\n")
_BOUNDARY_WIDTH = len(repr(sys.maxsize - 1))


_PLACEHOLDER = ("=" * 15 + "0" * _BOUNDARY_WIDTH + "==").encode("ascii")


@lru_cache(maxsize=1)
def _multipart_head() -> bytes:
    """The first two headers of a ``multipart/alternative`` email, folded, with a placeholder
    boundary: every boundary drawn has the placeholder's length and characters (digits and ``=``,
    no folding point), so it folds the same way."""
    value = f'multipart/alternative; boundary="{_PLACEHOLDER.decode("ascii")}"'
    return _QUICK_CRLF.fold_binary("Content-Type", value) + _QUICK_CRLF.fold_binary("MIME-Version", "1.0")


def _part(subtype: str, text: str) -> bytes:
    """One ``MIMEText(text, subtype, "utf-8")`` as the generator writes it: its three headers, a
    blank line, the UTF-8 bytes in base64 lines of 76 characters."""
    body = base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")
    return (b'Content-Type: text/' + subtype.encode("ascii") + b'; charset="utf-8"\r\n'
            b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body)


def email_bytes(message: Message, idempotency_key: str, *, sender: str, domain: str,
                date: str | None = None, boundary: str | None = None) -> tuple[bytes, str]:
    """``wire_bytes(build_email(message, …))`` without building the MIME objects: the same bytes
    (the headers folded by the same policy, the parts written as the generator writes a UTF-8
    ``MIMEText``: base64 in 76-character lines), about ten times faster; returns them and the
    ``Message-ID``. ``date`` and ``boundary`` are for tests (by default the current time and a
    random boundary of the form the ``email`` package draws). Raises what :func:`build_email`
    raises for bad input (the same checks)."""
    require(message, "email")
    name, address = _parse(message.to)
    if "@" not in address or any(c.isspace() for c in address) or "\n" in message.to:
        raise PermanentChannelError(f"not an email address: {message.to!r}")
    to = formataddr((name, address), charset="utf-8") if name else address
    try:
        plain = _part("plain", message.text or "")
        html = _part("html", message.html) if message.html else None
    except UnicodeEncodeError:  # (a lone surrogate: let the email package say what it says)
        email = build_email(message, idempotency_key, sender=sender, domain=domain)
        return wire_bytes(email), str(email["Message-ID"])
    message_id = f"<{key_digest(idempotency_key)}@{domain}>"
    headers: list[tuple[str, str]] = []
    head = b""
    if html is not None:
        if boundary is None:
            boundary = "=" * 15 + f"{random.randrange(sys.maxsize):0{_BOUNDARY_WIDTH}d}" + "=="
        head = _multipart_head().replace(_PLACEHOLDER, boundary.encode("ascii"))
    headers += [("From", _sender_header(sender)), ("To", _header(to)),
                ("Subject", _header(message.subject)),
                ("Date", date or formatdate(localtime=False, usegmt=True)),
                ("Message-ID", message_id), (KEY_HEADER, _header(idempotency_key))]
    for name, value in message.headers.items():
        if name.lower() in _RESERVED or any(c in name for c in ":\r\n "):
            raise PermanentChannelError(f"header {name} is set by the channel")
        headers.append((name, _header(value)))
    head = head + b"".join(_QUICK_CRLF.fold_binary(name, value) for name, value in headers)
    if html is None:  # a single text part: its own headers first, then ours, then the body
        part_head, body = plain.split(b"\r\n\r\n", 1)
        return part_head + b"\r\n" + head + b"\r\n" + body, message_id
    dash = b"--" + (boundary or "").encode("ascii")
    return (head + b"\r\n" + dash + b"\r\n" + plain + b"\r\n" + dash + b"\r\n" + html
            + b"\r\n" + dash + b"--\r\n"), message_id


class SmtpChannel:
    """Send email through one SMTP server (plain, STARTTLS or implicit TLS; optional login)."""

    name = "smtp"
    kind = "email"

    def __init__(self, host: str, port: int, sender: str, *, security: str = "none",
                 username: str | None = None, password: str | None = None, timeout: float = 30.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        if security not in ("none", "starttls", "tls"):
            raise ValueError("security must be none, starttls or tls")
        address = Address(addr_spec=parseaddr(sender)[1])
        self.host = host
        self.port = port
        self.sender = sender
        self.domain = address.domain or "growthwheel.local"
        self._from_address = parseaddr(sender)[1]
        self._security = security
        self._username = username
        self._password = password
        self._timeout = timeout
        self._ssl = ssl_context
        self._conn: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    def _connect(self) -> smtplib.SMTP:
        context = self._ssl or ssl.create_default_context()
        conn: smtplib.SMTP
        if self._security == "tls":
            conn = smtplib.SMTP_SSL(self.host, self.port, timeout=self._timeout, context=context)
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self._timeout)
            if self._security == "starttls":
                conn.starttls(context=context)
        if self._username:
            conn.login(self._username, self._password or "")
        return conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def send(self, message: Message, idempotency_key: str) -> SendResult:
        """Deliver one email; see the module docstring for how failures are classified."""
        to_address = _parse(message.to)[1]
        envelope = ((self._from_address, to_address)
                    if self._from_address.isascii() and to_address.isascii() else None)
        email: MIMEBase | None = None
        if envelope is not None:  # ASCII addresses: the bytes made directly (the same bytes, faster)
            data, message_id = email_bytes(message, idempotency_key, sender=self.sender, domain=self.domain)
        else:  # (an international address: smtplib negotiates SMTPUTF8)
            email = build_email(message, idempotency_key, sender=self.sender, domain=self.domain)
            data, message_id = b"", str(email["Message-ID"])
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None:
                        self._conn = self._connect()
                    if email is None:
                        assert envelope is not None
                        refused = self._conn.sendmail(envelope[0], [envelope[1]], data)
                    else:
                        refused = self._conn.send_message(email)
                    if refused:  # some (here: the only) recipient refused without an exception
                        code, reply = next(iter(refused.values()))
                        raise smtplib.SMTPResponseException(code, reply)
                    return SendResult(provider_id=message_id, detail="250")
                except smtplib.SMTPServerDisconnected as exc:
                    self._drop()
                    if attempt == 2:
                        raise RetryableChannelError(f"SMTP server disconnected: {exc}") from exc
                except smtplib.SMTPRecipientsRefused as exc:
                    code, reply = next(iter(exc.recipients.values()))
                    raise _classify(code, reply) from exc
                except smtplib.SMTPResponseException as exc:
                    if exc.smtp_code in (421,):  # service closing: reconnect next time
                        self._drop()
                    raise _classify(exc.smtp_code, exc.smtp_error) from exc
                except smtplib.SMTPException as exc:
                    self._drop()
                    raise RetryableChannelError(f"SMTP error: {exc}") from exc
                except OSError as exc:
                    self._drop()
                    raise RetryableChannelError(f"SMTP server unreachable: {exc}") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Say QUIT and close the connection (idempotent)."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.quit()
                except (smtplib.SMTPException, OSError):
                    conn.close()


def _classify(code: int, reply: bytes | str) -> RetryableChannelError | PermanentChannelError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    note = f"SMTP {code}: {text}"
    if 400 <= code < 500:
        return RetryableChannelError(note, provider_code=str(code))
    return PermanentChannelError(note, provider_code=str(code))
