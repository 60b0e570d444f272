"""Event capture, the pure part: batch validation, UTM attribution, identity stitching rules.

No I/O here; the API (``events/api.py``) and the tests call these with plain values.

**Validation.** A batch is checked whole: every problem is reported with the event's index and the
field at fault, and one bad event rejects the batch (nothing is half-accepted). Accepted events come
out as rows of the generic ``events`` import format (``warehouse/schema.py``), with the time in UTC,
so that the warehouse ingest types them exactly as it types an imported file.

**UTM attribution** (first rule that gives a source wins; see :func:`attribute`):

1. ``utm_source`` / ``utm_medium`` / ``utm_campaign`` given on the event itself;
2. else the ``utm_*`` parameters of the page URL (query string, or the query part of a ``#/...?``
   fragment for single-page apps), parameter names case-insensitive;
3. else the ``utm_*`` parameters of the referrer URL;
4. else the referrer's host: a known search engine gives its name with medium ``organic``
   (``www.baidu.com`` → ``baidu / organic``), a known social or content platform its name with
   medium ``referral`` (``mp.weixin.qq.com`` → ``wechat / referral``), any other outside site its
   host without ``www.`` with medium ``referral``;
5. else (no referrer, or a referrer on the page's own site: internal navigation) nothing — the
   visit is direct.

The three values always come from one source: when the event names only ``utm_source``, medium and
campaign stay empty rather than being taken from the URL.

**Identity stitching.** An event carrying both ``anonymous_id`` and ``customer_id`` links the
anonymous id to the customer. An anonymous id belongs to the *first* customer it was linked with
(earliest ``occurred_at``, ties broken by ``event_id``); later links of the same device to other
customers are kept as events but do not move its history, so one shopper's browsing never leaks
into another's profile on a shared device.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from growthwheel.errors import InvalidArgumentError
from growthwheel.warehouse.schema import EVENTS, STANDARD_EVENT_TYPES

MAX_EVENTS = 1000
"""Most events accepted in one batch."""

TYPE_PATTERN = re.compile(r"[a-z0-9_.:-]{1,64}")
"""Event type names: standard ones and custom names alike."""

ID_MAX = 128
URL_MAX = 4096
TEXT_MAX = 256
PROPERTIES_MAX = 16_384
"""Longest ``properties`` object accepted, in bytes of compact JSON."""

_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC)

FIELDS = (
    "event_id", "type", "timestamp", "customer_id", "anonymous_id", "session_id", "sku",
    "order_id", "url", "referrer", "utm_source", "utm_medium", "utm_campaign", "device",
    "properties",
)
"""Fields an event may carry (anything else is refused, so that a misspelt field is noticed)."""

_ID_FIELDS = ("event_id", "customer_id", "anonymous_id", "session_id", "sku", "order_id")
_LIMITS = {
    **dict.fromkeys(_ID_FIELDS, ID_MAX), "url": URL_MAX, "referrer": URL_MAX,
    "utm_source": TEXT_MAX, "utm_medium": TEXT_MAX, "utm_campaign": TEXT_MAX, "device": 64,
}
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign")
ROW_COLUMNS = tuple(c.name for c in EVENTS.inputs)
"""Columns of an accepted row: the generic ``events`` import columns."""


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one event of a batch."""

    index: int
    field: str
    message: str

    @property
    def location(self) -> str:
        """Where it is in the request body, as the API reports it (``body.events.3.timestamp``)."""
        return f"body.events.{self.index}.{self.field}" if self.index >= 0 else "body.events"


class InvalidEventsError(InvalidArgumentError):
    """A batch was refused as a whole; ``problems`` names each event index and field at fault."""

    code = "validation_error"

    def __init__(self, problems: Sequence[Problem]) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{first.location}: {first.message}{more}")
        self.problems = list(problems)


@dataclass(frozen=True)
class Batch:
    """An accepted batch: rows for the warehouse, and how many events repeated an earlier one."""

    rows: list[dict[str, str | None]]
    duplicates: int

    @property
    def accepted(self) -> int:
        """Events accepted (duplicates within the batch excluded)."""
        return len(self.rows)


def parse_timestamp(value: Any, shop_tz: tzinfo) -> datetime:
    """An ISO 8601 date-time (``Z`` or an offset; none means shop time) as an aware UTC datetime.

    Raises ``ValueError`` with a message fit for the user.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and 10 <= len(value.strip()) <= 40:
        text = value.strip()
        if text[-1] in "zZ":
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                "not an ISO 8601 date-time (e.g. 2024-03-05T14:07:11+08:00)"
            ) from None
    else:
        raise ValueError("not an ISO 8601 date-time (e.g. 2024-03-05T14:07:11+08:00)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=shop_tz)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 shifted past the calendar's ends
        raise ValueError("year out of range 1970–2100") from None
    if not _EARLIEST <= moment <= _LATEST:
        raise ValueError("year out of range 1970–2100")
    return moment


_ID_SET = frozenset(_ID_FIELDS)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ORDER = {name: position for position, name in enumerate(FIELDS)}
_STANDARD = frozenset(STANDARD_EVENT_TYPES)
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _properties(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError("must be a JSON object")
    try:
        text = _ENCODE(value)
    except (TypeError, ValueError):
        raise ValueError("must be a JSON object of plain values (no NaN or infinity)") from None
    if not _unicode(text):
        raise ValueError("contains text that is not valid Unicode (a lone surrogate)")
    if len(text) > PROPERTIES_MAX // 4 and len(text.encode("utf-8")) > PROPERTIES_MAX:
        raise ValueError(f"larger than {PROPERTIES_MAX} bytes as JSON")
    return text


def _unicode(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (JSON lets a client send lone surrogates)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_event(index: int, event: Any, shop_tz: tzinfo,
                 problems: list[Problem]) -> dict[str, str | None] | None:
    """One event as a row, or ``None`` after appending its problems (in the order of ``FIELDS``)."""
    if not isinstance(event, Mapping):
        problems.append(Problem(index, "(event)", "must be a JSON object"))
        return None
    mine: list[Problem] = []
    row: dict[str, str | None] = dict.fromkeys(ROW_COLUMNS)
    kind: Any = None
    stamp: Any = None
    properties: Any = None
    for name, value in event.items():
        limit = _LIMITS.get(name)
        if limit is None:
            if name == "type":
                kind = value
            elif name == "timestamp":
                stamp = value
            elif name == "properties":
                properties = value
            else:
                mine.append(Problem(index, str(name), "unknown field (put extra data in `properties`)"))
            continue
        if value is None:
            continue
        if not isinstance(value, str):
            mine.append(Problem(index, name, "must be a string"))
            continue
        text = value.strip()
        if not text:
            continue
        if len(text) > limit:
            mine.append(Problem(index, name, f"longer than {limit} characters"))
        elif name in _ID_SET and _CONTROL.search(text):
            mine.append(Problem(index, name, "contains control characters"))
        elif not _unicode(text):
            mine.append(Problem(index, name, "not valid Unicode text (a lone surrogate)"))
        else:
            row[name] = text
    if row["event_id"] is None and not any(p.field == "event_id" for p in mine):
        mine.append(Problem(index, "event_id", "required value is missing"))
    if kind is None or kind == "":
        mine.append(Problem(index, "type", "required value is missing"))
    elif not isinstance(kind, str) or (kind not in _STANDARD and not TYPE_PATTERN.fullmatch(kind)):
        mine.append(Problem(
            index, "type", "must be 1–64 characters of a-z, 0-9, _ . : - (e.g. view, add_to_cart)"
        ))
    occurred: datetime | None = None
    if stamp is None:
        mine.append(Problem(index, "timestamp", "required value is missing"))
    else:
        try:
            occurred = parse_timestamp(stamp, shop_tz)
        except ValueError as exc:
            mine.append(Problem(index, "timestamp", str(exc)))
    if row["customer_id"] is None and row["anonymous_id"] is None and not any(
        p.field in ("customer_id", "anonymous_id") for p in mine
    ):
        mine.append(Problem(index, "customer_id", "either customer_id or anonymous_id is required"))
    try:
        row["properties"] = _properties(properties)
    except ValueError as exc:
        mine.append(Problem(index, "properties", str(exc)))
    if mine or occurred is None:
        mine.sort(key=lambda p: _ORDER.get(p.field, len(_ORDER)))
        problems.extend(mine)
        return None
    row["type"] = kind
    row["occurred_at"] = occurred.isoformat(sep=" ")
    row["utm_source"], row["utm_medium"], row["utm_campaign"] = attribute(
        row["url"], row["referrer"], row["utm_source"], row["utm_medium"], row["utm_campaign"],
    )
    return row


def validate_batch(events: Any, shop_tz: tzinfo, *, max_events: int = MAX_EVENTS) -> Batch:
    """Check a whole batch and turn it into warehouse rows.

    Events repeating an ``event_id`` seen earlier in the same batch are dropped and counted as
    duplicates (the first one is kept). Raises :class:`InvalidEventsError` listing every problem
    (at most 100) when any event is bad: then nothing of the batch is accepted.
    """
    if not isinstance(events, Sequence) or isinstance(events, str | bytes):
        raise InvalidEventsError([Problem(-1, "events", "must be a list of events")])
    if not 1 <= len(events) <= max_events:
        raise InvalidEventsError([Problem(
            -1, "events", f"a batch holds 1 to {max_events} events; got {len(events)}"
        )])
    problems: list[Problem] = []
    rows: list[dict[str, str | None]] = []
    seen: set[str] = set()
    duplicates = 0
    for index, event in enumerate(events):
        row = _check_event(index, event, shop_tz, problems)
        if len(problems) >= 100:
            break
        if row is None:
            continue
        event_id = str(row["event_id"])
        if event_id in seen:
            duplicates += 1
            continue
        seen.add(event_id)
        rows.append(row)
    if problems:
        raise InvalidEventsError(problems[:100])
    return Batch(rows, duplicates)


# ---------------------------------------------------------------------------------------------
# UTM attribution
# ---------------------------------------------------------------------------------------------

_SEARCH = {
    "baidu": ("baidu.com",), "google": (), "bing": ("bing.com",), "sogou": ("sogou.com",),
    "360": ("so.com", "360.cn"), "shenma": ("sm.cn",), "yahoo": ("yahoo.com", "yahoo.co.jp"),
    "duckduckgo": ("duckduckgo.com",), "yandex": ("yandex.ru", "yandex.com"), "naver": ("naver.com",),
}
_SOCIAL = {
    "wechat": ("weixin.qq.com", "wechat.com", "weixin.com"),
    "douyin": ("douyin.com", "iesdouyin.com"),
    "xiaohongshu": ("xiaohongshu.com", "xhslink.com"),
    "weibo": ("weibo.com", "weibo.cn", "t.cn"),
    "zhihu": ("zhihu.com",),
    "bilibili": ("bilibili.com", "b23.tv"),
    "kuaishou": ("kuaishou.com",),
    "facebook": ("facebook.com", "fb.com", "fb.me"),
    "instagram": ("instagram.com",),
    "twitter": ("twitter.com", "x.com", "t.co"),
    "tiktok": ("tiktok.com",),
    "youtube": ("youtube.com", "youtu.be"),
    "linkedin": ("linkedin.com", "lnkd.in"),
    "pinterest": ("pinterest.com", "pin.it"),
    "reddit": ("reddit.com",),
}
_GOOGLE = re.compile(r"(^|\.)google(\.[a-z]{2,3}){1,2}$")


def _suffix(host: str, domains: Iterable[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


@lru_cache(maxsize=4096)
def referrer_source(host: str) -> tuple[str, str]:
    """``(utm_source, utm_medium)`` credited to a referring host (lower case, no port)."""
    host = host.lower().rstrip(".")
    if _GOOGLE.search(host):
        return "google", "organic"
    for name, domains in _SEARCH.items():
        if _suffix(host, domains):
            return name, "organic"
    for name, domains in _SOCIAL.items():
        if _suffix(host, domains):
            return name, "referral"
    return host.removeprefix("www."), "referral"


@lru_cache(maxsize=4096)
def _utm_params(query: str) -> tuple[tuple[str, str], ...]:
    """The UTM parameters of a query string, first occurrence of each (cached: campaign links repeat)."""
    if "utm_" not in query.lower():
        return ()
    found: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=False):
        key = key.strip().lower()
        if key in UTM_FIELDS and key not in found and value.strip():
            found[key] = value.strip()[:TEXT_MAX]
    return tuple(found.items())


def url_utm(url: str | None) -> tuple[str | None, str | None, str | None]:
    """The ``utm_source``, ``utm_medium``, ``utm_campaign`` parameters of a URL (decoded, blank = None).

    Read from the query string, then from the query part of the fragment (``#/page?utm_source=…``).
    """
    if not url or "utm_" not in url.lower():
        return None, None, None
    base, _, fragment = url.partition("#")
    found = dict(_utm_params(fragment.partition("?")[2]))
    found.update(_utm_params(base.partition("?")[2]))
    return found.get("utm_source"), found.get("utm_medium"), found.get("utm_campaign")


_HOST = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*:)?//(?:[^@/?#]*@)?(\[[^\]/?#]*\]|[^:/?#]*)")


def _host(url: str | None) -> str | None:
    """The host of a URL (lower case, no port; ``None`` if it has none)."""
    if not url:
        return None
    found = _HOST.match(url if "//" in url else "//" + url)
    host = found.group(1).lower().rstrip(".") if found else ""
    return host or None


def attribute(
    url: str | None,
    referrer: str | None,
    utm_source: str | None = None,
    utm_medium: str | None = None,
    utm_campaign: str | None = None,
) -> tuple[str | None, str | None, str | None]:
    """``(utm_source, utm_medium, utm_campaign)`` of an event by the rules in the module docstring."""
    given = (utm_source, utm_medium, utm_campaign)
    if any(given):
        return given
    from_url = url_utm(url)
    if any(from_url):
        return from_url
    from_referrer = url_utm(referrer)
    if any(from_referrer):
        return from_referrer
    ref_host = _host(referrer)
    if ref_host is None:
        return None, None, None
    page_host = _host(url)
    if page_host is not None and page_host.removeprefix("www.") == ref_host.removeprefix("www."):
        return None, None, None  # internal navigation
    source, medium = referrer_source(ref_host)
    return source, medium, None


# ---------------------------------------------------------------------------------------------
# Identity stitching
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """An event that carried both ids."""

    anonymous_id: str
    customer_id: str
    occurred_at: datetime
    event_id: str


def stitch(links: Iterable[Link]) -> dict[str, str]:
    """``anonymous_id → customer_id``: each anonymous id belongs to the first customer it was seen
    with (earliest ``occurred_at``, then smallest ``event_id``)."""
    first: dict[str, Link] = {}
    for link in links:
        best = first.get(link.anonymous_id)
        if best is None or (link.occurred_at, link.event_id) < (best.occurred_at, best.event_id):
            first[link.anonymous_id] = link
    return {anon: link.customer_id for anon, link in first.items()}


def is_standard(kind: str) -> bool:
    """Whether an event type is one the product knows (others are custom events)."""
    return kind in STANDARD_EVENT_TYPES
