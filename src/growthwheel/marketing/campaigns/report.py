"""The campaign review (活动复盘) as one self-contained HTML page, like the periodic review.

It shows the targets and their attainment, the three axes (customers, products, operations),
each phase's figures and pacing, the budget against spend, and a chart of cumulative GMV against
the target pace; ECharts is inlined, so the file opens without a network. Labels are English and
简体中文 side by side, as in :mod:`growthwheel.reports.review`.
"""

from __future__ import annotations

from typing import Any

from growthwheel.reports.review import _echarts_source, _environment

PHASE_NAMES = {"warm_up": ("Warm-up", "蓄水/预热"), "peak": ("Peak", "爆发/正式"),
               "after_glow": ("After-glow", "余热/返场")}
STATUS_NAMES = {"not_started": ("not started", "未开始"), "no_target": ("no target", "无目标"),
                "behind": ("behind", "落后"), "on_track": ("on track", "正常"), "ahead": ("ahead", "领先"),
                "met": ("met", "达成"), "missed": ("missed", "未达成")}


def cumulative(pace: dict[str, Any]) -> tuple[list[str], list[int], list[int | None]]:
    """Days of the campaign so far, cumulative GMV and the cumulative target pace (minor units;
    the pace is linear inside each phase here, the tables carry the profile's figures)."""
    days = [d["day"] for d in pace["daily"]]
    cum: list[int] = []
    total = 0.0
    for d in pace["daily"]:
        total += d["gmv"]
        cum.append(round(total))
    expected: list[int | None] = []
    for day in days:
        if not pace["gmv"]["target"]:
            expected.append(None)
            continue
        value = 0.0
        for p in pace["phases"]:
            if day > p["ends_on"]:
                value += p["gmv"]["target"] or 0.0
            elif day >= p["starts_on"] and p["days"]:
                value += (p["gmv"]["target"] or 0.0) * (_days_between(p["starts_on"], day) + 1) / p["days"]
        expected.append(round(value))
    return days, cum, expected


def _chart(pace: dict[str, Any]) -> dict[str, Any]:
    days, cum, expected = cumulative(pace)
    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"data": ["GMV 成交额", "Target pace 目标进度"]},
        "xAxis": {"type": "category", "data": days},
        "yAxis": {"type": "value"},
        "series": [{"name": "GMV 成交额", "type": "line", "data": cum, "areaStyle": {"opacity": 0.15}},
                   {"name": "Target pace 目标进度", "type": "line", "data": expected,
                    "lineStyle": {"type": "dashed"}}],
    }


def _days_between(a: str, b: str) -> int:
    from datetime import date

    return (date.fromisoformat(b) - date.fromisoformat(a)).days


def render(review: dict[str, Any], pace: dict[str, Any], *, currency: str, shop_name: str = "") -> str:
    """The review page: ``review`` and ``pace`` are what :mod:`.review` answers."""
    template = _environment().get_template("campaign.html.j2")
    return template.render(r=review, p=pace, currency=currency, shop_name=shop_name,
                           phase_names=PHASE_NAMES, status_names=STATUS_NAMES,
                           charts={"chart-pace": _chart(pace)}, echarts_js=_echarts_source())
