"""企业微信 (WeCom): group robot (群机器人) and app messages (应用消息).

Group robot
    ``POST {base}/cgi-bin/webhook/send?key=<robot key>`` with ``{"msgtype": "text", "text":
    {"content": ...}}`` (or ``markdown`` / ``news``); answer ``{"errcode": 0, "errmsg": "ok"}``.
    A robot takes at most 20 messages a minute: ``errcode`` 45009 is retryable. Used for the
    shop's own community groups (社群) and staff groups; ``to`` is ignored (the key names the group).
App message
    ``GET {base}/cgi-bin/gettoken?corpid=…&corpsecret=…`` gives an ``access_token`` valid for
    ``expires_in`` seconds (cached, refreshed 5 minutes early or when the API says 40014 / 42001 /
    42009), then ``POST {base}/cgi-bin/message/send?access_token=…`` with ``{"touser": <user id>,
    "msgtype": "text"|"markdown"|"textcard", "agentid": …, "enable_duplicate_check": 1,
    "duplicate_check_interval": 1800, …}``. WeCom drops a repeat of the same content to the same
    user inside the interval, which is what makes a retry after a lost answer harmless.
    ``to`` is the member's WeCom user id (e.g. the shop assistant who owns the customer).

``base`` defaults to ``https://qyapi.weixin.qq.com`` and is configurable (tests use a local
receiver; a proxy can sit in between).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from growthwheel.journeys.channels import _http
from growthwheel.journeys.channels.base import (
    Message,
    PermanentChannelError,
    RetryableChannelError,
    SendResult,
    require,
)

DEFAULT_BASE = "https://qyapi.weixin.qq.com"
#: errcodes worth retrying: system busy, rate limits (45009 api freq, 45033 concurrency).
RETRYABLE_ERRCODES = frozenset({-1, 45009, 45033, 45047})
#: errcodes meaning the access token must be fetched again.
TOKEN_ERRCODES = frozenset({40014, 42001, 42009})
TEXT_LIMIT = 2048
MARKDOWN_LIMIT = 4096


def _body(message: Message) -> dict[str, Any]:
    """The ``msgtype`` and its section, from ``message.data["msgtype"]`` (default ``text``)."""
    msgtype = str(message.data.get("msgtype", "text"))
    if msgtype == "text":
        content = message.text
        if len(content.encode("utf-8")) > TEXT_LIMIT:
            raise PermanentChannelError(f"WeCom text is longer than {TEXT_LIMIT} bytes")
        return {"msgtype": "text", "text": {"content": content}}
    if msgtype == "markdown":
        content = str(message.data.get("markdown", message.text))
        if len(content.encode("utf-8")) > MARKDOWN_LIMIT:
            raise PermanentChannelError(f"WeCom markdown is longer than {MARKDOWN_LIMIT} bytes")
        return {"msgtype": "markdown", "markdown": {"content": content}}
    if msgtype == "news":
        articles = message.data.get("articles")
        if not isinstance(articles, list) or not 1 <= len(articles) <= 8:
            raise PermanentChannelError("WeCom news needs 1 to 8 articles")
        return {"msgtype": "news", "news": {"articles": articles}}
    if msgtype == "textcard":
        url = message.data.get("url")
        if not isinstance(url, str):
            raise PermanentChannelError("WeCom textcard needs a url")
        card = {"title": message.subject, "description": message.text, "url": url,
                "btntxt": str(message.data.get("button", ""))}
        return {"msgtype": "textcard", "textcard": card}
    raise PermanentChannelError(f"unsupported WeCom msgtype {msgtype!r}")


def _check(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict) or "errcode" not in data:
        raise RetryableChannelError(f"WeCom {what}: unexpected answer {str(data)[:200]}")
    code = int(data["errcode"])
    if code == 0:
        return data
    note = f"WeCom {what}: errcode {code} {data.get('errmsg', '')}".strip()
    if code in RETRYABLE_ERRCODES:
        raise RetryableChannelError(note, provider_code=str(code),
                                    retry_after=60.0 if code == 45009 else None)
    raise PermanentChannelError(note, provider_code=str(code))


class WeComRobotChannel:
    """A WeCom group robot (群机器人): every message goes to the robot's group."""

    name = "wecom_robot"
    kind = "wecom"

    def __init__(self, key: str, *, base_url: str = DEFAULT_BASE, timeout: float = 10.0) -> None:
        if not key:
            raise ValueError("a WeCom robot needs its webhook key")
        self._url = f"{base_url.rstrip('/')}/cgi-bin/webhook/send?{urlencode({'key': key})}"
        self._timeout = timeout

    def send(self, message: Message, idempotency_key: str) -> SendResult:
        """POST the message to the robot."""
        if message.channel != self.kind:  # ``to`` may be empty: the key names the group
            raise PermanentChannelError(f"a {message.channel} message cannot go through a WeCom robot")
        body = json.dumps(_body(message), ensure_ascii=False).encode("utf-8")
        answer = _http.call("POST", self._url, provider="WeCom robot", body=body,
                            headers={"Content-Type": "application/json; charset=utf-8"},
                            timeout=self._timeout)
        _check(answer.json("WeCom robot"), "robot")
        return SendResult(provider_id=None, detail="ok")

    def close(self) -> None:
        """Nothing to release."""


class WeComAppChannel:
    """WeCom app messages (应用消息) to one member (``to`` = WeCom user id) of the corp."""

    name = "wecom_app"
    kind = "wecom"

    def __init__(self, corp_id: str, corp_secret: str, agent_id: int, *, base_url: str = DEFAULT_BASE,
                 timeout: float = 10.0, duplicate_check_interval: int = 1800,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._base = base_url.rstrip("/")
        self._corp_id = corp_id
        self._corp_secret = corp_secret
        self.agent_id = agent_id
        self._timeout = timeout
        self._interval = duplicate_check_interval
        self._clock = clock
        self._token: str | None = None
        self._token_until = 0.0
        self._lock = threading.Lock()

    def _access_token(self, refresh: bool = False) -> str:
        with self._lock:
            if not refresh and self._token and self._clock() < self._token_until:
                return self._token
            query = urlencode({"corpid": self._corp_id, "corpsecret": self._corp_secret})
            answer = _http.call("GET", f"{self._base}/cgi-bin/gettoken?{query}", provider="WeCom gettoken",
                                timeout=self._timeout)
            data = _check(answer.json("WeCom gettoken"), "gettoken")
            token = data.get("access_token")
            if not isinstance(token, str) or not token:
                raise RetryableChannelError("WeCom gettoken: no access_token in the answer")
            lifetime = float(data.get("expires_in", 7200))
            self._token = token
            self._token_until = self._clock() + max(60.0, lifetime - 300.0)
            return token

    def send(self, message: Message, idempotency_key: str) -> SendResult:
        """Send to ``message.to``; a rejected token is fetched again once."""
        require(message, self.kind)
        body: dict[str, Any] = {"touser": message.to, "agentid": self.agent_id, "safe": 0,
                                "enable_duplicate_check": 1, "duplicate_check_interval": self._interval,
                                **_body(message)}
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        for attempt in (1, 2):
            token = self._access_token(refresh=attempt == 2)
            url = f"{self._base}/cgi-bin/message/send?{urlencode({'access_token': token})}"
            answer = _http.call("POST", url, provider="WeCom message/send", body=raw,
                                headers={"Content-Type": "application/json; charset=utf-8"},
                                timeout=self._timeout)
            data = answer.json("WeCom message/send")
            if isinstance(data, dict) and data.get("errcode") in TOKEN_ERRCODES and attempt == 1:
                continue
            data = _check(data, "message/send")
            if data.get("invaliduser"):
                raise PermanentChannelError(f"WeCom: unknown user {data['invaliduser']}")
            return SendResult(provider_id=str(data.get("msgid")) if data.get("msgid") else None, detail="ok")
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Forget the access token."""
        with self._lock:
            self._token = None
