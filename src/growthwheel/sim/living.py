"""The living demo: after the demo shop's history is imported, its operations team acts on it.

Everything here goes through the services the API, console and worker use (no SQL written for
the occasion), with the warehouse held by a :class:`~growthwheel.warehouse.owner.WarehouseOwner`
in this process exactly as the server holds it, so every page of the console has content on its
first open:

* **members** — members, growth and tiers from the imported history (``loyalty.history``), a
  four-tier ladder whose thresholds are the 0 / 60th / 85th / 97th percentiles of the members'
  growth (so every tier has members), and opening points balances carried over from the shop's
  old system (``loyalty.service.adjust_points``, 1 point per yuan of lifetime spend);
* **CLV scores** — BG/NBD + Gamma-Gamma fitted and stored (``insight.clv``);
* **saved segments** — three segments refreshed into the warehouse, one refreshed daily by the
  worker (``jobs.tasks.segment_schedule``);
* **promotions** — an ended Double 11 spend-X-save-Y, an ended flash sale and a running
  every-X-save-Y, each used by orders committed through the checkout (``promotions.orders``)
  during its window, so their budgets, stock and the orders show results;
* **coupon batches** — a members' coupon issued to the high-value segment and redeemed at the
  checkout by part of it, a shared new-year code, and the win-back journey's coupon;
* **an experiment** — two product-page layouts with a planned sample size, every sampled customer
  exposed through the event path, the treatment's extra orders (``sim.experiment``, a known lift)
  imported, stopped: its results page has numbers to read;
* **group buys and bargains** — a 2-person group deal with completed groups and open ones, a
  bargain offer with bargains cut by friends (``social.deals``);
* **a win-back journey** — dormant customers enrolled 35 days before the history ends, a
  hold-out, a coupon and an email each through the real email channel to the demo's mail sink
  (:mod:`growthwheel.sim.mailsink`), the world's reaction (``sim.journeys``, a known effect)
  imported, and the goal checked 31 days later;
* **an NPS survey** — about a third of the customers answer through survey links, with a known true
  NPS per latent class (``sim.surveys``; truth under ``surveys`` in ``ground_truth.json``).
* **the review service queue** — the history's negative reviews become cases (``voice.service.sync``);
  the service team answered those written before the last three days with the suggested template,
  1–60 hours after the review (so about one in five breached the 48-hour deadline); the last
  three days' cases are still open.

The acts live by concern in ``sim.acting_members`` (members, CLV, segments), ``sim.acting_selling``
(promotions, coupons, social selling) and ``sim.acting_measures`` (experiment, journey).
Checkout orders and the other acting facts reach the warehouse through the fact outbox
(``facts.service.drain_all``). The known effects go to ``ground_truth.json`` (``experiments`` and
``journeys.winback``) beside the shop's; ``acting`` there counts what was done. The demo's "now"
for acting is the end of its history; the running promotion and coupon batches stay valid for
30-60 days after the real today, so they show as running. Acting happens once per data
directory (the marker is the ``demo.acting`` audit entry's promotion); running the demo again
changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, select

from growthwheel.config import Settings
from growthwheel.errors import GrowthwheelError
from growthwheel.store.db import migrate, session_scope
from growthwheel.warehouse.owner import WarehouseOwner

ACTOR = "演示店运营"  # the demo shop's operations team (shown as who made things)
#: The ended promotion's name, also the marker that this data directory was brought to life.
MARKER_PROMOTION = "双11 满减（已结束）"
SEGMENT_HIGH_VALUE = "高价值客户"
EXPERIMENT_KEY = "pdp-gallery"
WINBACK_JOURNEY = "沉睡客户唤醒"
Say = Callable[[str], None]
#: Members per tier given an opening points balance.
POINTS_PER_TIER = 60


@dataclass
class Acted:
    """What :func:`bring_to_life` did (counts per domain; empty when it had acted before)."""

    counts: dict[str, int] = field(default_factory=dict)
    mails: int = 0
    seconds: float = 0.0

    def add(self, name: str, value: int) -> None:
        """Count ``value`` more of ``name``."""
        self.counts[name] = self.counts.get(name, 0) + value


@dataclass(frozen=True)
class Shop:
    """What the acting reads once from the imported history."""

    end: datetime
    customers: list[str]
    products: list[tuple[str, int, str | None]]  # sku, price, category
    currency: str


def already_acted(cfg: Settings) -> bool:
    """Whether the demo's operations were done in this data directory's store."""
    from growthwheel.promotions.models import Promotion

    migrate(cfg)
    with session_scope(cfg) as session:
        found = session.scalar(
            select(func.count()).select_from(Promotion).where(Promotion.name == MARKER_PROMOTION)
        )
    return bool(found)


def bring_to_life(
    cfg: Settings, *, end: date, seed: int, mail_port: int, checkout_orders: int = 300, say: Say | None = None
) -> Acted:
    """Act on the imported demo shop (see the module docstring). ``end`` is the day after the
    history's last day; ``mail_port`` the port of the demo's mail sink on 127.0.0.1 (started here
    for the length of the run and written into ``channels.json``); ``checkout_orders`` about how
    many orders the promotions and coupons see at the checkout (a small demo for tests takes few)."""
    import time as clock

    from growthwheel.sim import acting_measures, acting_members, acting_selling, mailsink

    acted = Acted()
    if already_acted(cfg):
        return acted
    started = clock.perf_counter()
    tell = say or (lambda _m: None)
    rng = np.random.default_rng(seed + 1000)
    mailsink.write_channels(cfg.data_dir, mail_port, daily_email_cap=400)
    sink = mailsink.start(cfg.data_dir, mail_port)
    owner = WarehouseOwner(cfg, flush_seconds=0.2)
    owner.start()
    try:
        shop = read_shop(cfg, owner, end)
        tell("members, tiers and points")
        acting_members.members(cfg, owner, shop, acted)
        tell("CLV scores")
        acting_members.clv(owner, acted)
        tell("saved segments")
        high_value = acting_members.segments(cfg, owner, shop, acted)
        tell("promotions and coupons through the checkout")
        acting_selling.promotions(cfg, shop, rng, acted, checkout_orders)
        acting_selling.coupons(cfg, owner, shop, rng, high_value, acted, checkout_orders)
        tell("an experiment")
        acting_measures.experiment(cfg, owner, shop, rng, acted)
        tell("group buys and bargains")
        acting_selling.social(cfg, shop, rng, acted)
        tell("the win-back journey and its emails")
        acting_measures.journey(cfg, owner, shop, seed, acted)
        tell("NPS survey answers")
        from growthwheel.sim import surveys as survey_sim

        survey_sim.answer(cfg, owner, shop, seed, acted)
        tell("alerts over the history")
        _alerts(cfg, owner, end, acted)
        tell("the review service queue")
        _voice(cfg, owner, end, seed, acted)
        from growthwheel.facts import service as facts

        drained = owner.run_serial(
            lambda: facts.drain_all(lambda: session_scope(cfg), facts.direct_importer(cfg))
        )
        acted.add("facts", drained.facts)
        tell("a Double 11 campaign and its influencers")
        from growthwheel.sim import campaigns as campaign_sim

        campaign_sim.act(cfg, owner, shop, seed, acted)
        _writetruth(cfg, acted)
    finally:
        owner.stop()
        acted.mails = sink.received
        sink.stop()
    acted.seconds = clock.perf_counter() - started
    return acted


def _alerts(cfg: Settings, owner: WarehouseOwner, end: date, acted: Acted) -> None:
    """The built-in alert rules judge the history's last 300 days (so the inbox shows the injected
    incidents of ``ground_truth.json``'s ``anomalies`` on first open); the worker goes on daily."""
    from datetime import timedelta

    from growthwheel.alerts import service as alerts

    with owner.read() as con, session_scope(cfg) as session:
        alerts.ensure_builtin_rules(session, actor="demo")
        done = alerts.evaluate(session, con, today=end, since=end - timedelta(days=300))
    acted.add("alerts", done.new_alerts)


def _voice(cfg: Settings, owner: WarehouseOwner, end: date, seed: int, acted: Acted) -> None:
    """Negative reviews into the queue; the team's past answers (see the module docstring)."""
    from datetime import UTC, datetime, time, timedelta

    from sqlalchemy import select, update

    from growthwheel.voice import service as voice
    from growthwheel.voice import templates
    from growthwheel.voice.models import ReviewCase

    with owner.read() as con, session_scope(cfg) as session:
        opened = voice.sync(session, con)["opened"]
    cutoff = datetime.combine(end - timedelta(days=3), time(), UTC)
    rng = np.random.default_rng(seed + 1616)
    with session_scope(cfg) as session:
        rows = session.execute(select(ReviewCase.id, ReviewCase.review_created_at, ReviewCase.language,
                                      ReviewCase.aspects)
                               .where(ReviewCase.status == "open", ReviewCase.review_created_at < cutoff)
                               .order_by(ReviewCase.id)).all()
        hours = rng.uniform(1.0, 60.0, len(rows))
        moves = []
        for (case_id, written, lang, aspects), h in zip(rows, hours.tolist(), strict=True):
            key = templates.suggest([a.get("aspect", "") for a in aspects if a.get("polarity") == "negative"])
            at = written + timedelta(hours=h)
            moves.append({"id": case_id, "status": "replied", "owner": "service@demo.example",
                          "claimed_at": at - timedelta(minutes=20), "reply": templates.render(key, lang),
                          "template": key, "replied_at": at, "updated_at": at})
        if moves:
            session.execute(update(ReviewCase), moves)
    acted.add("review_cases", opened)
    acted.add("review_replies", len(moves))


# ---------------------------------------------------------------------------------------------
# What the acting reads
# ---------------------------------------------------------------------------------------------


def read_shop(cfg: Settings, owner: WarehouseOwner, end: date) -> Shop:
    with owner.read() as backend:
        customers = sorted(str(c) for c in backend.table("customers").customer_id.to_pyarrow().to_pylist())
        products = backend.table("products").select("sku", "price", "category").to_pyarrow().to_pylist()
    catalogue = sorted(
        (str(p["sku"]), int(p["price"]), p["category"])
        for p in products
        if p["price"] is not None and 1_000 <= int(p["price"]) <= 100_000
    )
    return Shop(
        datetime.combine(end, time(0), ZoneInfo(cfg.shop().timezone)).astimezone(UTC),
        customers,
        catalogue,
        cfg.shop().currency,
    )


def cart(shop: Shop, rng: np.random.Generator, *, lines: int, order_id: str) -> list[dict[str, Any]]:
    picks = rng.choice(len(shop.products), size=lines, replace=False)
    out = []
    for n, index in enumerate(picks):
        sku, price, category = shop.products[int(index)]
        out.append(
            {
                "line_id": f"{order_id}-{n + 1}",
                "sku": sku,
                "unit_price": price,
                "quantity": int(rng.integers(1, 3)),
                **({"category": category} if category else {}),
            }
        )
    return out


def checkout(
    cfg: Settings,
    shop: Shop,
    *,
    order_id: str,
    customer: str,
    at: datetime,
    lines: list[dict[str, Any]],
    codes: list[str] | None = None,
) -> bool:
    """Commit one order through the checkout; ``False`` when the checkout refused it (a limit)."""
    from growthwheel.promotions import orders
    from growthwheel.promotions.schemas import OrderIn

    request = OrderIn.model_validate(
        {
            "order_id": order_id,
            "customer_id": customer,
            "lines": lines,
            "coupon_codes": codes or [],
            "channel": "小程序",
        }
    )
    try:
        with session_scope(cfg) as session:
            orders.commit(session, request, currency=shop.currency, now=at)
    except GrowthwheelError:
        return False  # e.g. the promotion's budget or the flash sale's stock ran out: the shop says no
    return True


def moment(rng: np.random.Generator, start: datetime, end: datetime) -> datetime:
    return start + timedelta(seconds=float(rng.random() * (end - start).total_seconds()))


# ---------------------------------------------------------------------------------------------
# Ground truth
# ---------------------------------------------------------------------------------------------


def truth(cfg: Settings, path: list[str], value: dict[str, Any]) -> None:
    target = cfg.data_dir / "ground_truth.json"
    data: dict[str, Any] = json.loads(target.read_text("utf-8")) if target.exists() else {}
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    target.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", "utf-8")


def _writetruth(cfg: Settings, acted: Acted) -> None:
    truth(
        cfg,
        ["acting"],
        {
            **acted.counts,
            "meaning": "what the demo's operations team did through the services after the history was "
            "imported (growthwheel.sim.living); the checkout orders, the experiment's lift orders "
            "and the win-back reaction orders are in the warehouse besides the simulated history",
        },
    )


def history_end(start: date, days: int) -> date:
    """The day after the demo history's last day (its "now" for acting)."""
    return start + timedelta(days=days)
