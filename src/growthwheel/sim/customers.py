"""Acquisition: channels, daily ad spend with diminishing returns, and the customers it brings.

Expected new customers on day ``d`` from channel ``c``:

* paid channels: ``k_c * demand(d) * spend_c(d) ** beta_c`` with ``spend_c(d)`` in CNY per day;
* unpaid channels: ``share_c * customers * demand(d) / sum(demand)``.

``demand(d)`` is the calendar's weekly pattern times the festival multiplier. The daily budgets are
scaled by one factor (solved numerically) so that the expectations add up to the requested number
of customers; the realised counts are a multinomial draw over (day, channel), i.e. independent
Poisson counts conditioned on their total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from growthwheel.sim import catalogue as cat
from growthwheel.sim.seasons import DAY, Calendar, seconds_of_day

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class Channel:
    """An acquisition / traffic channel with its UTM tags."""

    name: str  # the `channel` value as the shop names it (its utm_source, or 直接访问)
    utm_source: str | None
    utm_medium: str | None
    paid: bool
    k: float = 0.0  # paid: scale of the response curve
    beta: float = 0.0  # paid: elasticity of new customers to spend (0 < beta < 1)
    base_spend: float = 0.0  # paid: CNY per day at demand 1 before scaling
    share: float = 0.0  # unpaid: share of all new customers
    ctr: float = 0.0  # paid: clicks / impressions
    referrer: str | None = None
    key: str = ""  # the simulator's own name for it (CHANNEL_INDEX, REPEAT_CHANNEL_MIX)


CHANNELS = (
    Channel("抖音", "抖音", "社交", True, k=0.36, beta=0.55, base_spend=5200.0, ctr=0.018,
            referrer="https://www.douyin.com/", key="douyin"),
    Channel("百度", "百度", "竞价", True, k=0.096, beta=0.70, base_spend=1800.0, ctr=0.035,
            referrer="https://www.baidu.com/s?wd=%E5%A5%BD%E7%89%A9", key="baidu"),
    Channel("小红书", "小红书", "社交", True, k=0.42, beta=0.50, base_spend=2000.0,
            ctr=0.024, referrer="https://www.xiaohongshu.com/explore", key="xiaohongshu"),
    Channel("微信", "微信", "社交", False, share=0.08, referrer="https://weixin.qq.com/", key="wechat"),
    Channel("邮件订阅", "邮件订阅", "邮件", False, share=0.03, key="newsletter"),
    Channel("直接访问", None, None, False, share=0.22, key="direct"),
)
#: Channel by its key in the simulator's code (the names are the shop's own, in Chinese).
CHANNEL_INDEX = {c.key: i for i, c in enumerate(CHANNELS)}
PAID = np.array([c.paid for c in CHANNELS])
#: Day-to-day noise on budgets (log-normal sigma).
SPEND_NOISE = 0.15
#: Budget flighting per paid channel (in CHANNELS order): a repeating cycle of weekly levels (mean
#: 1), cycles of different lengths so that the channels' budgets move independently of each other
#: and of the season — the variation a marketing-mix model needs to tell the channels apart.
FLIGHTS = (
    (1.0, 1.6, 0.55, 1.25, 0.5, 1.45, 0.75, 0.9),
    (0.7, 1.35, 1.0, 0.5, 1.45),
    (1.4, 0.6, 1.05, 1.7, 0.5, 0.75),
)

#: Channel credited with a repeat order (last touch); newsletter only for customers who accept
#: marketing (otherwise the order is direct), "acquisition" = the customer's own acquisition channel.
REPEAT_CHANNEL_MIX = {"direct": 0.40, "newsletter": 0.20, "wechat": 0.15, "acquisition": 0.25}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲芬燕彬鑫宇浩晨欣怡梓涵子轩雨佳琪"
CITIES = (
    ("上海", "上海", 9), ("北京", "北京", 8), ("广州", "广东", 6), ("深圳", "广东", 7),
    ("杭州", "浙江", 6), ("成都", "四川", 5), ("武汉", "湖北", 4), ("南京", "江苏", 4),
    ("西安", "陕西", 3), ("重庆", "重庆", 4), ("苏州", "江苏", 4), ("天津", "天津", 3),
    ("长沙", "湖南", 3), ("郑州", "河南", 3), ("青岛", "山东", 2), ("厦门", "福建", 2),
    ("合肥", "安徽", 2), ("昆明", "云南", 2), ("沈阳", "辽宁", 2), ("哈尔滨", "黑龙江", 1),
)
EMAIL_DOMAINS = (("qq.com", 0.5), ("163.com", 0.25), ("126.com", 0.1), ("gmail.com", 0.1),
                 ("outlook.com", 0.05))


@dataclass(frozen=True)
class Acquisition:
    """Daily spend and the acquired customers, sorted by acquisition time."""

    spend_fen: Array  # (days, paid channels) int64
    expected: Array  # (days, channels) expected new customers
    budget_scale: float
    channel: Array  # per customer: index into CHANNELS
    acquired_at: Array  # per customer: seconds since the start (time of the first order)


def flights(days: int) -> Array:
    """The budget multiplier of :data:`FLIGHTS` per day (rows) and paid channel (columns)."""
    week = np.arange(days) // 7
    levels = [np.asarray(cycle) / np.mean(cycle) for cycle in FLIGHTS]
    return np.column_stack([lv[week % len(lv)] for lv in levels])


def _paid_expectation(spend_cny: Array, demand: Array) -> Array:
    ks = np.array([c.k for c in CHANNELS if c.paid])
    betas = np.array([c.beta for c in CHANNELS if c.paid])
    return np.asarray(ks * demand[:, None] * spend_cny**betas)


def acquire(rng: np.random.Generator, calendar: Calendar, customers: int) -> Acquisition:
    """Draw daily budgets and the (day, channel, time) of every customer's acquisition."""
    paid = [c for c in CHANNELS if c.paid]
    unpaid_share = sum(c.share for c in CHANNELS if not c.paid)
    paid_target = customers * (1.0 - unpaid_share)
    base = np.array([c.base_spend for c in paid])
    noise = np.exp(rng.normal(0.0, SPEND_NOISE, size=(calendar.days, len(paid))))
    shape = base[None, :] * calendar.spend_multiplier()[:, None] * noise * flights(calendar.days)
    # Solve for the budget scale so that the expected paid customers hit the target.
    lo, hi = -30.0, 30.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if _paid_expectation(np.exp(mid) * shape, calendar.demand).sum() < paid_target:
            lo = mid
        else:
            hi = mid
    scale = float(np.exp((lo + hi) / 2))
    spend_fen = np.maximum(1, np.rint(scale * shape * 100.0)).astype(np.int64)
    expected = np.zeros((calendar.days, len(CHANNELS)))
    expected[:, PAID] = _paid_expectation(spend_fen / 100.0, calendar.demand)
    for i, c in enumerate(CHANNELS):
        if not c.paid:
            expected[:, i] = customers * c.share * calendar.demand / calendar.demand.sum()
    counts = rng.multinomial(customers, (expected / expected.sum()).ravel()).reshape(expected.shape)
    cell_day = np.repeat(np.arange(calendar.days), len(CHANNELS))
    cell_channel = np.tile(np.arange(len(CHANNELS)), calendar.days)
    flat = counts.ravel()
    day = np.repeat(cell_day, flat)
    channel = np.repeat(cell_channel, flat)
    at = day * DAY + seconds_of_day(rng, len(day), calendar.peak_day[day])
    order = np.lexsort((channel, at))
    return Acquisition(
        spend_fen=spend_fen,
        expected=expected,
        budget_scale=scale,
        channel=channel[order],
        acquired_at=at[order],
    )


@dataclass(frozen=True)
class Profiles:
    """Per-customer attributes beyond acquisition."""

    accepts_marketing: Array  # bool
    preferred_category: Array  # index into catalogue.CATEGORIES
    table: pa.Table  # the non-derived customer columns (strings)


def profiles(rng: np.random.Generator, n: int, start_year: int) -> Profiles:
    """Names, contact details, demographics, consent and category preference."""
    s_idx = rng.integers(0, len(SURNAMES), n)
    g1 = rng.integers(0, len(GIVEN), n)
    g2 = rng.integers(0, len(GIVEN), n)
    two = rng.random(n) < 0.6
    names = [
        SURNAMES[s] + GIVEN[a] + (GIVEN[b] if t else "")
        for s, a, b, t in zip(s_idx.tolist(), g1.tolist(), g2.tolist(), two.tolist(), strict=True)
    ]
    domains = [d for d, _ in EMAIL_DOMAINS]
    dom = rng.choice(len(domains), size=n, p=[w for _, w in EMAIL_DOMAINS])
    local = rng.integers(10_000_000, 3_000_000_000, size=n)
    has_email = rng.random(n) < 0.7
    emails = [
        f"{lo}@{domains[d]}" if e else None
        for lo, d, e in zip(local.tolist(), dom.tolist(), has_email.tolist(), strict=True)
    ]
    prefixes = np.array([130, 131, 132, 135, 136, 137, 138, 139, 150, 151, 152, 158, 159, 177,
                         180, 181, 186, 187, 188, 189, 199])
    phone = prefixes[rng.integers(0, len(prefixes), n)] * 100_000_000 + rng.integers(0, 100_000_000, n)
    gender = rng.choice(np.array(["F", "M", ""]), size=n, p=[0.62, 0.35, 0.03])
    age_days = (rng.gamma(4.0, 3.0, n) + 18.0) * 365.25
    has_bday = rng.random(n) < 0.8
    bday = np.datetime64(f"{start_year}-01-01") - age_days.astype(np.int64).astype("timedelta64[D]")
    bday_str = np.datetime_as_string(bday, unit="D")
    weights = np.array([w for _, _, w in CITIES], dtype=float)
    city_idx = rng.choice(len(CITIES), size=n, p=weights / weights.sum())
    accepts = rng.random(n) < 0.6
    shares = np.array([c.share for c in cat.CATEGORIES])
    preferred = rng.choice(len(shares), size=n, p=shares / shares.sum())
    table = pa.table(
        {
            "email": pa.array(emails, type=pa.string()),
            "phone": pa.array(phone.astype(str).tolist(), type=pa.string()),
            "name": pa.array(names, type=pa.string()),
            "gender": pa.array([g or None for g in gender.tolist()], type=pa.string()),
            "birthday": pa.array(
                [b if h else None for b, h in zip(bday_str.tolist(), has_bday.tolist(), strict=True)],
                type=pa.string(),
            ),
            "city": pa.array([CITIES[i][0] for i in city_idx.tolist()], type=pa.string()),
            "province": pa.array([CITIES[i][1] for i in city_idx.tolist()], type=pa.string()),
            "country": pa.array(["CN"] * n, type=pa.string()),
            "accepts_marketing": pa.array(["true" if a else "false" for a in accepts.tolist()],
                                          type=pa.string()),
        }
    )
    return Profiles(accepts_marketing=accepts, preferred_category=preferred, table=table)


def paid_channels() -> list[Channel]:
    """The paid channels, in the order of ``Acquisition.spend_fen``'s columns."""
    return [c for c in CHANNELS if c.paid]


def response_truth(acq: Acquisition, j: int, paid_fen: Array | None = None,
                   keep: Array | None = None) -> dict[str, float]:
    """The true response of paid channel ``j`` at the spend the shop paid: spend elasticity, ROAS
    and marginal ROAS in new customers per yuan (and per 1,000 yuan, rounded, for reading).

    ``paid_fen`` (days × paid channels) is what the shop paid and its ``ad_spend`` table says,
    when it differs from the budget the customers responded to (``acq.spend_fen``): on the days
    of the demo's bidding mistake (``sim/anomalies.py``) it paid three times the budget for the
    budget's customers. ROAS is expected customers per yuan *paid*. The elasticity stays ``beta``:
    multiplying every day's paid spend by ``λ`` multiplies every day's budget by ``λ`` (a mistake
    day's budget is its paid spend / 3), so the year's expected customers become ``λ^beta`` times
    as many. ``keep`` (booleans per day) limits the figures to those days."""
    c = paid_channels()[j]
    rows = np.ones(acq.spend_fen.shape[0], dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    paid = acq.spend_fen if paid_fen is None else paid_fen
    expected = float(acq.expected[rows][:, PAID][:, j].sum())
    spend_cny = float(paid[rows, j].sum()) / 100.0
    roas = expected / spend_cny
    return {
        "spend_elasticity": c.beta,
        "roas_customers_per_cny": roas,
        "marginal_roas_customers_per_cny": c.beta * roas,
        "customers_per_1000_cny": round(1000 * roas, 4),
        "marginal_customers_per_1000_cny": round(1000 * c.beta * roas, 4),
    }


def describe(acq: Acquisition, calendar: Calendar, paid_fen: Array | None = None) -> dict[str, Any]:
    """Channel response parameters and realised acquisition for ``ground_truth.json``
    (``paid_fen``: the spend the shop paid, see :func:`response_truth`)."""
    counts = np.bincount(acq.channel, minlength=len(CHANNELS))
    paid_idx = np.flatnonzero(PAID)
    paid = acq.spend_fen if paid_fen is None else paid_fen
    spend_by_channel = paid.sum(axis=0)
    channels: dict[str, Any] = {}
    for i, c in enumerate(CHANNELS):
        entry: dict[str, Any] = {
            "utm_source": c.utm_source,
            "utm_medium": c.utm_medium,
            "paid": c.paid,
            "new_customers": int(counts[i]),
            "expected_new_customers": round(float(acq.expected[:, i].sum()), 3),
        }
        if c.paid:
            j = int(np.flatnonzero(paid_idx == i)[0])
            spend = int(spend_by_channel[j])
            entry.update(
                k=c.k,
                beta=c.beta,
                ctr=c.ctr,
                spend_cny=round(spend / 100.0, 2),
                cac_cny=round(spend / 100.0 / max(1, int(counts[i])), 2),
                budget_cny=round(float(acq.spend_fen[:, j].sum()) / 100.0, 2),
                **response_truth(acq, j, paid),
            )
        else:
            entry["share_of_customers"] = c.share
        channels[c.name] = entry
    return {
        "response": "E[new customers on day d from paid channel c] = k_c * demand(d) * "
        "spend_c(d)^beta_c, spend in CNY per day (the budget; on the days of a bidding mistake, "
        "anomalies → cac_jump, the shop paid spend_factor times it); unpaid channels: share_c * customers * "
        "demand(d) / sum(demand); counts are Poisson conditioned on the total (multinomial)",
        "demand": "seasonality.weekly_monday_to_sunday[weekday] * festival multiplier",
        "budget_scale": round(acq.budget_scale, 6),
        "spend_noise_lognormal_sigma": SPEND_NOISE,
        "spend_flights_weekly_levels": {c.name: list(f)
                                        for c, f in zip(paid_channels(), FLIGHTS, strict=True)},
        "response_curves": "a paid channel's expected new customers over the period when every day's "
        "spend is multiplied by λ: expected_new_customers · λ^beta; so its spend elasticity is beta at "
        "any spend, ROAS (new customers per yuan) at the observed spend is expected_new_customers / "
        "spend_cny (what the shop paid, the ad_spend table; budget_cny is what bought customers) and "
        "the marginal ROAS beta times that; no carry-over (adstock 0)",
        "channels": channels,
        "repeat_order_channel_mix": REPEAT_CHANNEL_MIX,
        "days": calendar.days,
    }
