"""Touchpoints and conversion paths, as Ibis expressions (the same code on DuckDB and Spark).

A **touchpoint** is a moment a customer met a marketing channel. They come from the warehouse's
``events`` (only events with a ``customer_id``: an anonymous visit joins a path once the visitor
is known, which the event import does by writing the customer on the events):

* **UTM tags**: an event with ``utm_source`` → channel = ``utm_source`` (lower case), campaign =
  ``utm_campaign``. When ``utm_medium`` is ``influencer``, ``kol`` or ``koc`` the campaign is the
  influencer's code and the touch also carries ``influencer`` = ``utm_campaign``.
* **Referrers**: an event with no UTM tag whose ``referrer`` host is not the shop's own (the
  host of its ``url``) → ``organic_search`` (baidu, google, bing, sogou, so.com, yandex,
  duckduckgo), ``social`` (weibo, douyin, xiaohongshu, zhihu, facebook, instagram, t.co, x.com,
  tiktok, pinterest, reddit) or ``referral``; campaign = the referring host.
* **Journey messages**: a ``message_clicked`` event (recorded when a customer clicks a tracked
  link of a journey message) → channel = the message channel (``email``, ``sms``, ``wecom``…),
  campaign = the message key.
* **Influencer codes**: a paid order whose ``coupon_code`` is one of the influencer codes given
  (code → influencer) → channel ``influencer``, campaign and influencer = the code's influencer,
  at the order's time (the code was seen before paying).

Several events of one session with the same channel and campaign are one touch (the first).
Events without ``session_id`` are each their own touch.

A **conversion** is a paid order (``orders.status`` in the paid statuses) of a known customer;
its value is ``total_amount − refunded_amount`` (minor units) and it is a **new-customer**
conversion when it is the customer's first paid order ever. The **path** of a conversion is the
customer's touches in the look-back window before the order (``order time − lookback <
touch time ≤ order time``) and after the customer's previous paid order, so that a touch is
credited to one conversion at most. The **null paths** are, per customer, the touches after the
last paid order up to the end of the analysis period (also within the look-back of that end):
journeys that have not converted (yet). Conversions are those ordered within ``[start, end]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import ibis
import numpy as np
import pandas as pd
from ibis import _
from ibis.expr.types import Table

from growthwheel.stats.attribution import Paths
from growthwheel.warehouse.schema import PAID_STATUSES

SEARCH_ENGINES = ("baidu", "google", "bing", "sogou", "so.com", "yandex", "duckduckgo", "sm.cn")
SOCIAL_SITES = ("weibo", "douyin", "xiaohongshu", "xhslink", "zhihu", "facebook", "instagram",
                "t.co", "x.com", "twitter", "tiktok", "pinterest", "reddit", "bilibili")
INFLUENCER_MEDIA = ("influencer", "kol", "koc")
LEVELS = ("channel", "campaign", "influencer")

TOUCH_COLUMNS = ("customer_id", "touched_at", "channel", "campaign", "influencer", "source")


def _host(url: ibis.Value) -> Any:
    """Host of a URL, lower case and without ``www.`` (NULL when none)."""
    host = url.lower().re_extract(r"^[a-z][a-z0-9+.-]*://([^/:?#]+)", 1)
    host = ibis.ifelse(host.startswith("www."), host.substr(4), host)
    return ibis.ifelse(host == "", ibis.null("string"), host)


def _any_contains(value: Any, needles: tuple[str, ...]) -> Any:
    cond = ibis.literal(False)
    for needle in needles:
        cond = cond | value.contains(needle)
    return cond


def touchpoints(con: Any, *, influencer_codes: dict[str, str] | None = None,
                end: date | None = None) -> Table:
    """Every touchpoint (see the module docstring) up to the end of ``end`` (UTC day), one row
    each: ``customer_id, touched_at, channel, campaign, influencer, source``."""
    events = con.table("events").filter(_.customer_id.notnull())
    if end is not None:
        events = events.filter(_.occurred_at < _day_end(end))
    medium = events.utm_medium.lower()
    source = events.utm_source.lower().strip()
    ref_host = _host(events.referrer)
    own_host = _host(events.url)
    is_utm = source.notnull() & (source != "")
    is_influencer = is_utm & medium.isin(INFLUENCER_MEDIA)
    external_ref = ref_host.notnull() & (own_host.isnull() | (ref_host != own_host))
    ref_channel = ibis.ifelse(_any_contains(ref_host, SEARCH_ENGINES), "organic_search",
                              ibis.ifelse(_any_contains(ref_host, SOCIAL_SITES), "social", "referral"))
    clicked = events.type == "message_clicked"
    msg_channel = events.properties.re_extract(r'"channel"\s*:\s*"([^"]*)"', 1)
    msg_key = events.properties.re_extract(r'"message_key"\s*:\s*"([^"]*)"', 1)
    rows = events.mutate(
        channel=ibis.cases(
            (clicked, msg_channel),
            (is_utm, source),
            (external_ref, ref_channel),
            else_=ibis.null("string"),
        ),
        campaign=ibis.cases(
            (clicked, msg_key),
            (is_utm, events.utm_campaign),
            (external_ref, ref_host),
            else_=ibis.null("string"),
        ),
        influencer=ibis.ifelse(is_influencer & ~clicked, events.utm_campaign, ibis.null("string")),
        source=ibis.cases((clicked, "message"), (is_utm, "utm"), else_="referrer"),
        touched_at=events.occurred_at,
    ).filter(_.channel.notnull() & (_.channel != ""))
    # One touch per session × channel × campaign (the first); no session: every event counts.
    session_key = ibis.coalesce(rows.session_id, rows.event_id)
    rows = rows.mutate(session_key=session_key)
    grouped = rows.group_by(["customer_id", "session_key", "channel", "campaign", "influencer", "source"]) \
        .aggregate(touched_at=_.touched_at.min())
    touches = grouped.select(*TOUCH_COLUMNS)
    if influencer_codes:
        codes = ibis.memtable(pd.DataFrame({"code": list(influencer_codes),
                                            "who": list(influencer_codes.values())}))
        orders = _paid_orders(con, end)
        coded = orders.join(codes, orders.coupon_code == codes.code).select(
            customer_id=orders.customer_id, touched_at=orders.ordered_at,
            channel=ibis.literal("influencer"), campaign=codes.who, influencer=codes.who,
            source=ibis.literal("code"))
        touches = touches.union(coded.select(*TOUCH_COLUMNS))
    return touches


def _day_end(day: date) -> Any:
    return ibis.timestamp(datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC).replace(tzinfo=None))


def _paid_orders(con: Any, end: date | None) -> Table:
    orders = con.table("orders").filter(_.status.isin(PAID_STATUSES) & _.customer_id.notnull())
    if end is not None:
        orders = orders.filter(_.ordered_at < _day_end(end))
    return orders


def conversion_touches(con: Any, *, start: date, end: date, lookback_days: int = 30,
                       influencer_codes: dict[str, str] | None = None) -> Table:
    """One row per (conversion or null journey) × touch, as an Ibis table:
    ``path_id, customer_id, touched_at, channel, campaign, influencer, age_days, conversion,
    value, new_customer`` — plus a row with NULL touch for a conversion that has no touch in its
    window (an empty path). ``path_id`` is the order id, or ``null:<customer>`` for a null path."""
    if lookback_days < 1:
        raise ValueError("lookback_days: at least 1")
    if end < start:
        raise ValueError("end: on or after start")
    window = ibis.interval(days=lookback_days)
    orders = _paid_orders(con, end)
    w = ibis.window(group_by=orders.customer_id, order_by=[orders.ordered_at, orders.order_id])
    orders = orders.mutate(
        prev_at=orders.ordered_at.lag().over(w),
        nth=ibis.row_number().over(w),
        value=orders.total_amount - ibis.coalesce(orders.refunded_amount, 0),
    )
    last_order = orders.group_by("customer_id").aggregate(last_at=_.ordered_at.max())
    conv = orders.filter((_.ordered_at >= ibis.timestamp(datetime.combine(start, time())))
                         & (_.ordered_at < _day_end(end)))
    touches = touchpoints(con, influencer_codes=influencer_codes, end=end)
    # Orders have columns of the same names (channel, campaign…): the touch's get a t_ prefix.
    t = touches.select(**{f"t_{c}": touches[c] for c in TOUCH_COLUMNS})
    conv = conv.select("order_id", "customer_id", "ordered_at", "prev_at", "nth", "value")
    j = conv.left_join(
        t,
        (conv.customer_id == t.t_customer_id) & (t.t_touched_at <= conv.ordered_at)
        & (t.t_touched_at > conv.ordered_at - window)
        & (conv.prev_at.isnull() | (t.t_touched_at > conv.prev_at)),
    )
    age_seconds = (j.ordered_at.epoch_seconds() - j.t_touched_at.epoch_seconds())
    converted = j.select(
        path_id=j.order_id, customer_id=j.customer_id, touched_at=j.t_touched_at, channel=j.t_channel,
        campaign=j.t_campaign, influencer=j.t_influencer,
        age_days=(age_seconds / 86400.0).cast("float64"),
        conversion=ibis.literal(1), value=j.value.cast("int64"),
        new_customer=(j.nth == 0).cast("int64"),  # row_number() counts from 0
    )
    end_at = _day_end(end)
    last_order = last_order.select(l_customer_id=last_order.customer_id, last_at=last_order.last_at)
    n = touches.left_join(last_order, touches.customer_id == last_order.l_customer_id)
    n = n.filter((n.last_at.isnull() | (n.touched_at > n.last_at)) & (n.touched_at > end_at - window))
    nulls = n.select(
        path_id=ibis.literal("null:") + n.customer_id, customer_id=n.customer_id,
        touched_at=n.touched_at, channel=n.channel, campaign=n.campaign, influencer=n.influencer,
        age_days=((end_at.epoch_seconds() - n.touched_at.epoch_seconds()) / 86400.0).cast("float64"),
        conversion=ibis.literal(0), value=ibis.literal(0).cast("int64"),
        new_customer=ibis.literal(0).cast("int64"),
    )
    return converted.union(nulls)


@dataclass(frozen=True)
class PathSet:
    """Paths ready for the attribution models, with what they came from."""

    paths: Paths
    level: str
    conversions: int
    null_journeys: int
    touches: int


def build_paths(frame: pd.DataFrame, level: str = "channel") -> PathSet:
    """Turn the rows of :func:`conversion_touches` (as a DataFrame) into :class:`Paths` at
    ``level`` (``channel``, ``campaign`` as ``channel / campaign``, or ``influencer``: touches
    without an influencer are left out at that level). Touches are ordered by time, then channel
    and campaign, so the result does not depend on the engine's row order. Journeys are one path
    each (a customer's conversion, or a customer's null journey)."""
    if level not in LEVELS:
        raise ValueError(f"level: one of {', '.join(LEVELS)}")
    df = frame.copy()
    if level == "campaign":
        df["label"] = df["channel"].where(df["channel"].isna(),
                                          df["channel"].astype("string") + " / "
                                          + df["campaign"].fillna("(none)").astype("string"))
    elif level == "influencer":
        df["label"] = df["influencer"]
    else:
        df["label"] = df["channel"]
    head = df.groupby("path_id", sort=True).agg(conversion=("conversion", "max"), value=("value", "max"),
                                                 new_customer=("new_customer", "max"))
    touched = df[df["label"].notna()].sort_values(["path_id", "touched_at", "label"], kind="stable")
    head = head[(head["conversion"] > 0) | head.index.isin(touched["path_id"])]
    order = {pid: i for i, pid in enumerate(head.index)}
    touched = touched[touched["path_id"].isin(order)]
    labels = sorted(touched["label"].astype(str).unique())
    code = {lab: i for i, lab in enumerate(labels)}
    path_idx = touched["path_id"].map(order).to_numpy(dtype=np.int64)
    counts = np.bincount(path_idx, minlength=len(head))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    conv = head["conversion"].to_numpy(dtype=np.float64)
    paths = Paths(
        channels=tuple(labels),
        touches=touched["label"].astype(str).map(code).to_numpy(dtype=np.int64),
        offsets=offsets,
        conversions=conv,
        values=head["value"].fillna(0).to_numpy(dtype=np.float64) * conv,
        nulls=1.0 - conv,
        ages=touched["age_days"].clip(lower=0).fillna(0).to_numpy(dtype=np.float64),
        new_conversions=head["new_customer"].to_numpy(dtype=np.float64) * conv,
    )
    return PathSet(paths=paths, level=level, conversions=int(conv.sum()),
                   null_journeys=int((conv == 0).sum()), touches=len(touched))


def spend_by_channel(con: Any, *, start: date, end: date, level: str = "channel") -> dict[str, int]:
    """Ad spend (minor units) per channel (or ``channel / campaign``) over ``[start, end]``."""
    spend = con.table("ad_spend").filter((_.date >= start) & (_.date <= end))
    if level == "campaign":
        spend = spend.mutate(label=_.channel + " / " + ibis.coalesce(_.utm_campaign, "(none)"))
    elif level == "channel":
        spend = spend.mutate(label=_.channel)
    else:
        return {}
    frame = spend.group_by("label").aggregate(spend=_.spend.sum()).to_pandas()
    return {str(r.label): int(r.spend) for r in frame.itertuples() if r.spend is not None}
