"""The console warns before issuing codes that cannot all be redeemed (a first-order-only batch to
customers who ordered before; more codes than the batch's redemptions left) and issues only once
the operator confirms (real SQLite store, real DuckDB warehouse, the whole app)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts import service as accounts
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.promotions import coupons
from growthwheel.store.db import session_scope
from growthwheel.warehouse.ingest import import_files


@pytest.fixture
def client(store_cfg: Settings, tmp_path: Path) -> Iterator[TestClient]:
    (tmp_path / "lines.csv").write_text(
        "order_id,customer_id,ordered_at,sku,quantity,line_total\n"
        "R1,c1,2024-01-01,S,1,9.90\nR2,c2,2024-02-01,S,1,19.90\n", encoding="utf-8")
    import_files("order_lines", [tmp_path / "lines.csv"], cfg=store_cfg)
    with TestClient(create_app(store_cfg)) as test_client:
        yield test_client


def post(client: TestClient, path: str, data: dict[str, Any]) -> Any:
    cfg: Settings = client.app.state.cfg  # type: ignore[attr-defined]
    token = accounts.session_csrf_token(accounts.server_secret(cfg.data_dir), client.cookies["gw_session"])
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_a_first_order_batch_to_repeat_buyers_asks_first(
    client: TestClient, store_cfg: Settings, make_user: Callable[..., Any], log_in: Callable[..., None],
    lang: str,
) -> None:
    operator = make_user("operator")
    log_in(client, operator.email, operator.password)
    client.cookies.set("gw_lang", lang)
    with session_scope(store_cfg) as session:
        batch_id = coupons.create_batch(
            session, name="新人券", budget_count=2,
            definition={"reward": {"type": "order_amount_off", "amount": 500},
                        "conditions": {"first_order_only": True}},
            valid_from=datetime(2020, 1, 1, tzinfo=UTC), valid_until=datetime(2099, 1, 1, tzinfo=UTC)).id
    asked = post(client, f"/coupons/{batch_id}/issue", {"customers": "c1 c2 c3 c4"})
    assert asked.status_code == 200
    warnings = re.search(r'data-testid="issue-warnings">(.*?)</div>', asked.text, re.S)
    assert warnings is not None
    text = re.sub(r"<[^>]+>", " ", warnings.group(1))
    if lang == "zh":
        assert "4 位客户中有 2 位已经下过单" in text
        assert "共有 4 张券在外，但本批次只剩 2 次可核销" in text
    else:
        assert "2 of the 4 customers have ordered before" in text
        assert "4 codes are out for 2 redemptions left" in text
    assert 'data-testid="issue-confirm"' in asked.text
    with session_scope(store_cfg) as session:
        assert coupons.get_batch(session, batch_id).issued_count == 0  # nothing issued yet
    confirmed = post(client, f"/coupons/{batch_id}/issue", {"customers": "c1 c2 c3 c4", "confirm": "1"})
    assert (confirmed.status_code, confirmed.headers["location"]) == (
        303, f"/coupons/{batch_id}?issued=4&already=0")
    with session_scope(store_cfg) as session:
        assert coupons.get_batch(session, batch_id).issued_count == 4


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_an_audience_that_can_redeem_is_issued_at_once(
    client: TestClient, store_cfg: Settings, make_user: Callable[..., Any], log_in: Callable[..., None],
) -> None:
    operator = make_user("operator")
    log_in(client, operator.email, operator.password)
    with session_scope(store_cfg) as session:
        batch_id = coupons.create_batch(
            session, name="新人券", budget_count=10,
            definition={"reward": {"type": "order_amount_off", "amount": 500},
                        "conditions": {"first_order_only": True}},
            valid_from=datetime(2020, 1, 1, tzinfo=UTC), valid_until=datetime(2099, 1, 1, tzinfo=UTC)).id
    done = post(client, f"/coupons/{batch_id}/issue", {"customers": "c3 c4"})  # never ordered, within the cap
    assert (done.status_code, done.headers["location"]) == (303, f"/coupons/{batch_id}?issued=2&already=0")
