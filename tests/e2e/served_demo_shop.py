"""A small demo shop served whole on 127.0.0.1 for the drill-down browser tests: 160 customers over
90 days (seed 7), an operator account and one active coupon batch."""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode


@dataclass
class Shop:
    url: str
    app: Any
    cfg: Any
    email: str
    password: str
    batch_id: str


@contextmanager
def served_demo_shop(data_dir: Path, *, batch_name: str, amount_off: int) -> Iterator[Shop]:
    """Build the shop in ``data_dir``, create the operator and a batch of ``amount_off`` minor units
    off an order, and serve the whole app (uvicorn in a thread) until the block ends."""
    import uvicorn

    from growthwheel.accounts import service as accounts
    from growthwheel.api.app import create_app
    from growthwheel.config import Settings
    from growthwheel.promotions import coupons
    from growthwheel.sim.demo import build_demo
    from growthwheel.store.db import migrate, session_scope

    cfg = Settings(data_dir=data_dir)
    build_demo(cfg, customers=160, days=90, seed=7, start=date(2025, 1, 1))
    migrate(cfg)
    email, password = "ops@example.com", secrets.token_urlsafe(12)
    now = datetime.now(UTC)
    with session_scope(cfg) as session:
        accounts.create_user(session, email, "operator", password)
        batch = coupons.create_batch(
            session, name=batch_name,
            definition={"reward": {"type": "order_amount_off", "amount": amount_off}},
            valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=30), actor_name="test")
        batch_id = batch.id
    app = create_app(cfg)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name=f"{data_dir.name}-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Shop(f"http://127.0.0.1:{port}", app, cfg, email, password, batch_id)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def log_in(page: Any, shop: Shop, then: str = "/customers") -> None:
    """Sign in (the page's locale picks the language) and land on ``then``, not on the Overview,
    which is computed on the request and takes seconds on a busy machine."""
    page.goto(shop.url + "/login?" + urlencode({"next": then}))
    page.fill("input[name=email]", shop.email)
    page.fill("input[name=password]", shop.password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(re.compile(re.escape(shop.url + then.split("?")[0])))
