"""A small shop for the marketing-mix routes: 84 days of the demo simulator's paid acquisition
(its flighted budgets and true response curves) written as import files and imported."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np

from growthwheel.config import Settings
from growthwheel.sim import customers, seasons
from growthwheel.warehouse import ingest

START = date(2025, 3, 3)
DAYS = 84
END = START + timedelta(days=DAYS - 1)


def build(folder: Path, cfg: Settings, *, seed: int = 3) -> dict[str, int]:
    """Import ad spend, customers and their first orders; the spend per channel (minor units)."""
    calendar = seasons.make_calendar(START, DAYS)
    rng = np.random.default_rng(seed)
    acq = customers.acquire(rng, calendar, 2_400)
    paid = customers.paid_channels()
    spend_lines = ["date,channel,spend,utm_campaign"]
    for d in range(DAYS):
        for j, c in enumerate(paid):
            fen = int(acq.spend_fen[d, j])
            spend_lines.append(f"{START + timedelta(days=d)},{c.name},{fen // 100}.{fen % 100:02d},always_on")
    cust_lines = ["customer_id,channel"]
    order_lines = ["order_id,customer_id,ordered_at,total,status"]
    for i, (ch, at) in enumerate(zip(acq.channel.tolist(), acq.acquired_at.tolist(), strict=True)):
        name = customers.CHANNELS[ch].name
        day = START + timedelta(days=at // 86_400)
        secs = at % 86_400
        stamp = f"{day}T{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}+08:00"
        cust_lines.append(f"c{i},{name}")
        order_lines.append(f"o{i},c{i},{stamp},{100 + i % 300}.00,paid")
    for table, lines in (("ad_spend", spend_lines), ("customers", cust_lines), ("orders", order_lines)):
        path = folder / f"{table}.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        ingest.import_files(table, [path], cfg=cfg)
    return {c.name: int(acq.spend_fen[:, j].sum()) for j, c in enumerate(paid)}
