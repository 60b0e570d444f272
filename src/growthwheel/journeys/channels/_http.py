"""A small HTTP client for the adapters (standard library only) that classifies failures.

Connection errors and timeouts, 408, 425, 429 and 5xx are retryable (``Retry-After`` in seconds
is passed on); other 4xx answers are permanent.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from growthwheel.journeys.channels.base import PermanentChannelError, RetryableChannelError

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class HttpAnswer:
    """A provider's HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self, provider: str) -> Any:
        """The body as JSON; a provider answering something else is a retryable fault of theirs."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RetryableChannelError(f"{provider} answered HTTP {self.status} with a body that is not JSON"
                                        ) from exc


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def call(method: str, url: str, *, provider: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 10.0) -> HttpAnswer:
    """Send one request; raise the right channel error for a transport failure or an error status."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HttpAnswer(response.status, {k.lower(): v for k, v in response.headers.items()},
                              response.read())
    except urllib.error.HTTPError as exc:
        text = exc.read()[:300].decode("utf-8", "replace")
        answer_headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        message = f"{provider} answered HTTP {exc.code}: {text}".strip()
        if exc.code in RETRYABLE_STATUS:
            raise RetryableChannelError(message, provider_code=str(exc.code),
                                        retry_after=_retry_after(answer_headers.get("retry-after"))) from exc
        raise PermanentChannelError(message, provider_code=str(exc.code)) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException,
            OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RetryableChannelError(f"{provider} unreachable: {reason}") from exc
