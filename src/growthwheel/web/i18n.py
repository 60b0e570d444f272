"""The console's two languages: catalogues (``i18n/<lang>/<domain>.json``), choice of language,
formatting.

A language's catalogue is the union of its files, one per console domain (``core.json`` for the
shell, imports, customers and insight; others as domains add pages); a key may live in one file
only, and ``en/<domain>.json`` and ``zh/<domain>.json`` hold the same keys.

Every string the console shows comes from a catalogue: templates call ``t("key")`` (with optional
``{name}`` placeholders filled from keyword arguments) and Python code marks the keys it hands to
templates with :func:`k`, so that a test can check that both catalogues hold every key in use.

The language is the ``gw_lang`` cookie when it names a known language, else the best match in the
browser's ``Accept-Language`` header, else English.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from growthwheel.keys import k as k  # re-exported: pages mark their keys with it

CATALOGUES = Path(__file__).resolve().parent / "i18n"
#: Supported languages, in the order the switch shows them.
LANGS: tuple[str, ...] = ("zh", "en")
DEFAULT_LANG = "en"
COOKIE = "gw_lang"
#: ``<html lang>`` values.
HTML_LANG = {"zh": "zh-CN", "en": "en"}

Translator = Callable[..., str]


@lru_cache(maxsize=4)
def catalogue(lang: str) -> Mapping[str, str]:
    """The catalogue of ``lang`` (``zh`` or ``en``): key → text."""
    if lang not in LANGS:
        raise KeyError(f"unknown language {lang!r}")
    merged: dict[str, str] = {}
    for path in sorted((CATALOGUES / lang).glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError(f"{lang}/{path.name} must be an object of strings")
        twice = sorted(set(data) & set(merged))
        if twice:
            raise ValueError(f"{lang}/{path.name} repeats keys of another file: {', '.join(twice)}")
        merged.update(data)
    return merged


def translator(lang: str) -> Translator:
    """``t(key, **values)``: the text of ``key`` in ``lang`` with ``{name}`` placeholders filled.

    A key missing from the catalogue shows as the key itself (a test keeps that from happening).
    """
    texts = catalogue(lang)

    def t(key: str, /, **values: object) -> str:
        text = texts.get(key, key)
        return text.format(**values) if values else text

    return t


def parse_accept_language(header: str | None) -> str | None:
    """The supported language the browser prefers most (``Accept-Language`` with q-values)."""
    if not header:
        return None
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(header.split(",")):
        fields = part.strip().split(";")
        tag = fields[0].strip().lower()
        quality = 1.0
        for param in fields[1:]:
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.split("-")[0]
        if primary not in LANGS or quality <= 0:
            continue
        candidate = (-quality, position, primary)
        if best is None or candidate < best:
            best = candidate
    return best[2] if best else None


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """The language to show: a valid cookie wins, then ``Accept-Language``, then English."""
    if cookie in LANGS:
        return str(cookie)
    return parse_accept_language(accept_language) or DEFAULT_LANG


# ---------------------------------------------------------------------------------------------
# Number formatting (the same in both languages: digits grouped by thousands)
# ---------------------------------------------------------------------------------------------

_SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "HKD": "HK$"}


def format_money(value: Decimal | int | float | None, currency: str, places: int = 2) -> str:
    """``¥12,345.60``; ``–`` when unknown."""
    if value is None:
        return "–"
    amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    symbol = _SYMBOLS.get(currency, currency + " ")
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{abs(amount):,.{places}f}"


def format_count(value: int | None) -> str:
    """``12,345``; ``–`` when unknown."""
    return "–" if value is None else f"{int(value):,}"


def format_ratio(value: float | None, percent: bool) -> str:
    """A rate as ``12.3%`` (``percent``) or a plain ratio as ``1.85``; ``–`` when unknown."""
    if value is None:
        return "–"
    return f"{value:.1%}" if percent else f"{value:,.2f}"


Tone = Literal["good", "bad", "neutral", "none"]


def format_change(change: float | None, higher_is_better: bool | None) -> tuple[str, Tone]:
    """A period-over-period change as ``+12.3%`` and whether it is good or bad news."""
    if change is None:
        return "–", "none"
    text = f"{change:+.1%}"
    if abs(change) < 0.0005:  # shows as 0.0 %: no news, neither good nor bad (and no sign)
        return f"{0:.1%}", "neutral"
    if higher_is_better is None:
        return text, "neutral"
    return text, "good" if (change > 0) == higher_is_better else "bad"
