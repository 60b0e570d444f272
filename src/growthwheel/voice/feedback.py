"""Product feedback per SKU: which aspects are getting worse, with quotes (pure core + one read).

For the period ``[start, end]`` and the one of the same length just before it, each review's
aspects are found (:func:`growthwheel.voice.aspects.analyse`); per SKU and aspect the *negative
share* is the negative mentions over all mentions of that aspect. An aspect is **getting worse**
when this period has at least ``min_negative`` negative mentions and its negative share rose by at
least ``min_rise`` (percentage points, an aspect not mentioned before counts from 0). Each comes
with up to three quotes: the negative clauses of this period, newest first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from growthwheel.voice.aspects import analyse


def as_date(value: Any) -> date | None:
    """A warehouse date value (``date``, ``datetime`` or a pandas ``Timestamp``) as a ``date``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raise TypeError(f"not a date: {value!r}")


def newest_day(con: Any) -> date | None:
    """The day of the newest review in the warehouse (``None`` when there is none)."""
    if "reviews" not in con.list_tables():
        return None
    return as_date(con.table("reviews").review_date.max().execute())


@dataclass
class AspectTrend:
    """One SKU's aspect over the two periods."""

    sku: str
    aspect: str
    mentions: int = 0
    negative: int = 0
    previous_mentions: int = 0
    previous_negative: int = 0
    quotes: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        """Negative share this period."""
        return self.negative / self.mentions if self.mentions else 0.0

    @property
    def previous_share(self) -> float:
        """Negative share the period before."""
        return self.previous_negative / self.previous_mentions if self.previous_mentions else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the API, pages and CLI."""
        return {"sku": self.sku, "aspect": self.aspect, "mentions": self.mentions,
                "negative": self.negative, "negative_share": round(self.share, 4),
                "previous_mentions": self.previous_mentions, "previous_negative": self.previous_negative,
                "previous_negative_share": round(self.previous_share, 4),
                "change": round(self.share - self.previous_share, 4), "quotes": self.quotes}


def trends(reviews: Sequence[Mapping[str, Any]], start: date, end: date, *,
           min_negative: int = 2, min_rise: float = 0.1) -> list[AspectTrend]:
    """The aspects getting worse, worst rise first (``reviews``: ``sku``, ``review_date``, ``body``,
    optional ``title`` and ``language``; those outside the two periods are ignored)."""
    days = (end - start).days + 1
    prev_start = start - timedelta(days=days)
    dated = [(as_date(r["review_date"]), r) for r in reviews]
    kept = [(d, r) for d, r in dated if d is not None and prev_start <= d <= end]
    kept.sort(key=lambda dr: (dr[0], str(dr[1].get("review_id", ""))), reverse=True)
    texts = [" ".join(filter(None, [str(r.get("title") or ""), str(r.get("body") or "")])) for _, r in kept]
    table: dict[tuple[str, str], AspectTrend] = {}
    for (day, review), analysis in zip(kept, analyse(texts), strict=True):
        current = day >= start
        for m in analysis.aspects:
            row = table.setdefault((str(review["sku"]), m.aspect), AspectTrend(str(review["sku"]), m.aspect))
            bad = m.polarity == "negative"
            if current:
                row.mentions += 1
                row.negative += bad
                if bad and len(row.quotes) < 3 and m.clause not in row.quotes:
                    row.quotes.append(m.clause)
            else:
                row.previous_mentions += 1
                row.previous_negative += bad
    worse = [r for r in table.values()
             if r.negative >= min_negative and r.share - r.previous_share >= min_rise]
    return sorted(worse, key=lambda r: (-(r.share - r.previous_share), -r.negative, r.sku, r.aspect))


def load(con: Any, start: date, end: date, sku: str | None = None) -> list[dict[str, Any]]:
    """The warehouse's reviews of the two periods (optionally one SKU) as rows for :func:`trends`."""
    if "reviews" not in con.list_tables():
        return []
    days = (end - start).days + 1
    t = con.table("reviews")
    expr = t.filter(t.review_date >= start - timedelta(days=days), t.review_date <= end)
    if sku is not None:
        expr = expr.filter(expr.sku == sku)
    cols = ["review_id", "sku", "review_date", "title", "body", "language"]
    return list(expr.select(*cols).to_pyarrow().to_pylist())


def sku_summary(con: Any, start: date, end: date, sku: str | None = None,
                limit: int = 50) -> list[dict[str, Any]]:
    """Per SKU over ``[start, end]``: reviews, mean rating and how many rated 1–2, most reviews first."""
    if "reviews" not in con.list_tables():
        return []
    t = con.table("reviews")
    expr = t.filter(t.review_date >= start, t.review_date <= end)
    if sku is not None:
        expr = expr.filter(expr.sku == sku)
    agg = expr.group_by("sku").aggregate(
        reviews=expr.count(), mean_rating=expr.rating.mean(),
        negative=(expr.rating <= 2).cast("int64").sum(),
    )
    rows = agg.to_pyarrow().to_pylist()
    rows.sort(key=lambda r: (-int(r["reviews"]), str(r["sku"])))
    return [{"sku": r["sku"], "reviews": int(r["reviews"]),
             "mean_rating": round(float(r["mean_rating"]), 2), "negative": int(r["negative"] or 0)}
            for r in rows[:limit]]


def period_section(con: Any, start: date, end: date, *, top: int = 5) -> dict[str, Any] | None:
    """The voice of the customer for the periodic review over ``[start, end]``: reviews, mean
    rating and negative (1–2 stars) share against the period before, the SKUs with the most
    negative reviews, and the aspects getting worse with a quote each. ``None`` without reviews."""
    if "reviews" not in con.list_tables():
        return None
    days = (end - start).days + 1
    before = (start - timedelta(days=days), start - timedelta(days=1))
    t = con.table("reviews")

    def totals(lo: date, hi: date) -> dict[str, Any]:
        expr = t.filter(t.review_date >= lo, t.review_date <= hi)
        row = expr.aggregate(reviews=expr.count(), mean_rating=expr.rating.mean(),
                             negative=(expr.rating <= 2).cast("int64").sum()).to_pyarrow().to_pylist()[0]
        n = int(row["reviews"] or 0)
        negative = int(row["negative"] or 0)
        return {"reviews": n, "mean_rating": None if not n else round(float(row["mean_rating"]), 2),
                "negative": negative, "negative_share": None if not n else negative / n}

    now, previous = totals(start, end), totals(*before)
    if now["reviews"] == 0 and previous["reviews"] == 0:
        return None
    worst = sorted((r for r in sku_summary(con, start, end, limit=10_000) if r["negative"]),
                   key=lambda r: (-r["negative"], str(r["sku"])))[:top]
    from growthwheel.web import i18n  # the aspects' names, as the console shows them

    en, zh = i18n.catalogue("en"), i18n.catalogue("zh")
    worse = [{**w.as_dict(), "label_en": en.get(f"voice.aspect.{w.aspect}", w.aspect),
              "label_zh": zh.get(f"voice.aspect.{w.aspect}", w.aspect)}
             for w in trends(load(con, start, end), start, end)[:top]]
    return {"now": now, "previous": previous, "worst_skus": worst, "worse_aspects": worse}
