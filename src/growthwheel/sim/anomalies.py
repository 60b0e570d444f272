"""Dated anomalies the demo shop suffers, with their truth, for the alerts to find.

Three incidents the plans worry about, each on ordinary days (never inside a shopping festival,
where the alerts do not judge) and late enough that the detector has its two weeks of history:

* **CAC jump** — a paid channel's reported spend is tripled for five days while the customers it
  brings stay what the original budget bought (a bidding mistake): that channel's daily CAC
  triples. Applied to the ``ad_spend`` table only; acquisition was simulated from the real budget.
* **Conversion drop** — three days of non-buying traffic (one-page ``view`` sessions from devices
  never seen before, e.g. a bot or a mis-targeted campaign) adding 1.5× the day's usual sessions:
  session conversion falls to about 40 % of normal.
* **Bad batch** — eight extra 1-star reviews a day for four days on the best-selling SKU, with
  texts about a quality problem.

:func:`describe` lists them for ``ground_truth.json`` (``anomalies``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from growthwheel.sim import sessions, text

DAY = 86_400
CAC_FACTOR = 3.0
CAC_DAYS = 5
EXTRA_SESSIONS_SHARE = 1.5
DROP_DAYS = 3
BAD_REVIEWS_PER_DAY = 8
BAD_DAYS = 4
#: (month, day) windows to stay out of: the festivals as the alerts see them, with a margin.
_AVOID = (((5, 20), (6, 25)), ((10, 15), (11, 18)), ((12, 5), (12, 15)), ((1, 1), (1, 3)))
BAD_TEXTS = ("这批质量明显不如以前，收到就有瑕疵", "包装破损，东西也有异味，和上次买的不一样",
             "Quality dropped with this batch: it arrived damaged.", "做工粗糙，用了两天就坏了，差评")
BAD_TITLES = ("质量问题", "Quality problem")


@dataclass(frozen=True)
class Incident:
    """One injected anomaly."""

    kind: str
    metric: str
    dimension: str | None
    value: str | None
    first: date
    days: int
    detail: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        """For ``ground_truth.json``."""
        return {"kind": self.kind, "metric": self.metric, "dimension": self.dimension, "value": self.value,
                "first_day": self.first.isoformat(),
                "last_day": (self.first + timedelta(days=self.days - 1)).isoformat(), **self.detail}


def _ordinary(day: date) -> bool:
    for (m0, d0), (m1, d1) in _AVOID:
        if date(day.year, m0, d0) <= day <= date(day.year, m1, d1):
            return False
    return True


def window(start: date, days: int, fraction: float, length: int) -> int | None:
    """The first day index at or after ``fraction`` of the history whose ``length`` days are all
    ordinary (``None`` when the history is too short: less than eight weeks before it)."""
    first = max(int(days * fraction), 56)
    for i in range(first, days - length):
        if all(_ordinary(start + timedelta(days=i + j)) for j in range(length)):
            return i
    return None


def cac_jump(spend_fen: np.ndarray, start: date, days: int, channel_names: list[str]
             ) -> tuple[np.ndarray, Incident | None]:
    """``spend_fen`` (days × paid channels) with the biggest channel's spend tripled on five days."""
    at = window(start, days, 0.55, CAC_DAYS)
    if at is None:
        return spend_fen, None
    j = int(np.argmax(spend_fen.sum(axis=0)))
    out = spend_fen.copy()
    out[at:at + CAC_DAYS, j] = np.rint(out[at:at + CAC_DAYS, j] * CAC_FACTOR).astype(np.int64)
    return out, Incident("cac_jump", "cac", "channel", channel_names[j], start + timedelta(days=at), CAC_DAYS,
                         {"spend_factor": CAC_FACTOR})


def extra_sessions(rng: np.random.Generator, start: date, days: int, sessions_total: int,
                   skus: pa.Array, schema: pa.Schema, launched_day: np.ndarray
                   ) -> tuple[pa.Table | None, Incident | None]:
    """Rows of ``events`` (``schema``) for three days of one-page sessions that never buy, viewing
    products launched before those days."""
    at = window(start, days, 0.7, DROP_DAYS)
    if at is None or sessions_total == 0:
        return None, None
    skus = skus.take(pa.array(np.flatnonzero(launched_day <= at)))
    per_day = round(sessions_total / days * EXTRA_SESSIONS_SHARE)
    n = per_day * DROP_DAYS
    day = at + np.repeat(np.arange(DROP_DAYS), per_day)
    seconds = day * DAY + rng.integers(8 * 3600, 23 * 3600, n)
    number = np.arange(1, n + 1)
    sku = skus.take(pa.array(rng.integers(0, len(skus), n)))
    columns: dict[str, Any] = {
        "event_id": text.ids("EX", number, 8), "type": text.pick(["view"], np.zeros(n, dtype=np.int64)),
        "occurred_at": text.timestamps(start, seconds), "customer_id": pa.nulls(n, pa.string()),
        "anonymous_id": text.ids("bot-", number, 8), "session_id": text.ids("SX", number, 8), "sku": sku,
        "order_id": pa.nulls(n, pa.string()), "url": pa.nulls(n, pa.string()),
        "referrer": pa.nulls(n, pa.string()), "utm_source": pa.nulls(n, pa.string()),
        "utm_medium": pa.nulls(n, pa.string()), "utm_campaign": pa.nulls(n, pa.string()),
        "device": text.pick(list(sessions.DEVICES), np.full(n, 2, dtype=np.int64)),
    }
    table = pa.table({f.name: columns[f.name].cast(f.type) for f in schema}, schema=schema)
    first = start + timedelta(days=at)
    return table, Incident("conversion_drop", "session_conversion_rate", None, None, first, DROP_DAYS,
                           {"extra_sessions_per_day": per_day})


def bad_batch(rng: np.random.Generator, start: date, days: int, sku: str, schema: pa.Schema,
              order_ids: pa.Array, customer_ids: pa.Array, ordered_at: np.ndarray
              ) -> tuple[pa.Table | None, Incident | None]:
    """Rows of ``reviews`` (``schema``): eight 1-star reviews a day for four days on ``sku``, each
    by the buyer of an earlier order of it (``order_ids`` / ``customer_ids`` / ``ordered_at`` in
    seconds since ``start``: that SKU's order lines), one review per order."""
    at = window(start, days, 0.8, BAD_DAYS)
    if at is None:
        return None, None
    earlier = np.flatnonzero(np.asarray(ordered_at) < at * DAY)
    n = min(BAD_REVIEWS_PER_DAY * BAD_DAYS, len(earlier))
    if n == 0:
        return None, None
    chosen = rng.choice(earlier, n, replace=False)
    day = at + np.arange(n) // BAD_REVIEWS_PER_DAY
    seconds = day * DAY + rng.integers(9 * 3600, 22 * 3600, n)
    which = rng.integers(0, len(BAD_TEXTS), n)
    english = (which == 2).astype(np.int64)
    columns: dict[str, Any] = {
        "review_id": text.ids("RX", np.arange(1, n + 1), 6), "sku": pa.array([sku] * n, type=pa.string()),
        "rating": text.integers(np.ones(n, dtype=np.int64)), "created_at": text.timestamps(start, seconds),
        "order_id": order_ids.take(pa.array(chosen)), "customer_id": customer_ids.take(pa.array(chosen)),
        "title": text.pick(list(BAD_TITLES), english), "body": text.pick(list(BAD_TEXTS), which),
        "language": text.pick(["zh", "en"], english),
    }
    table = pa.table({f.name: columns[f.name].cast(f.type) for f in schema}, schema=schema)
    first = start + timedelta(days=at)
    return table, Incident("negative_review_spike", "negative_reviews", "sku", sku, first, BAD_DAYS,
                           {"extra_one_star_reviews_per_day": BAD_REVIEWS_PER_DAY})


def describe(incidents: list[Incident | None]) -> list[dict[str, Any]]:
    """The incidents that happened, for ``ground_truth.json``."""
    return [i.describe() for i in incidents if i is not None]
