"""Promotion hold-outs on SQLite and PostgreSQL: a promotion (or coupon batch) that names a hold-out
experiment is withheld from the customers it holds out — the experiments' own assignment, checked
against the hash worked out apart — with a ``held_out`` explanation, an exposure per customer, full
price on a held-out customer's order, and the report from the statistics engine (numbers by hand)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from scipy import stats as scipy_stats
from typer.testing import CliRunner

from growthwheel.api.app import create_app
from growthwheel.config import Settings, set_settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.experiments import service as experiments_service
from growthwheel.experiments.assignment import unit_hash
from growthwheel.experiments.schemas import ExperimentCreate
from growthwheel.promotions import service
from growthwheel.promotions.cli import promotions_app
from growthwheel.promotions.schemas import CartIn
from growthwheel.store.db import migrate, session_scope
from growthwheel.warehouse.db import open_duckdb

SALT = "promo-holdout-test"
TEN_OFF = {"reward": {"type": "percent_off", "rate_bp": 1000}}  # 10 % off each line
FIVE_OFF = {"reward": {"type": "order_amount_off", "amount": 500}}  # a coupon: 5.00 off the order
VALIDITY = {"valid_from": "2020-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z"}
ONE_LINE = [{"line_id": "L1", "sku": "TEA", "unit_price": 10000, "quantity": 1}]  # 100.00


def holdout_setup(key: str, share: float = 0.3) -> dict[str, Any]:
    return {"key": key, "name": f"Hold-out {key}", "kind": "holdout", "holdout_share": share, "salt": SALT,
            "primary_metric": {"kind": "revenue"}, "secondary_metrics": [{"kind": "conversion"}],
            "cuped_days": 0}


def held_by_hash(customer_id: str, share: float = 0.3) -> bool:
    """Worked out apart from the code: an untargeted hold-out with full traffic holds a customer out
    when the first 8 bytes of SHA-256(salt:variant:id) / 2^64 fall below the share (holdout first)."""
    return unit_hash(f"{SALT}:variant", customer_id) < share


def make_holdout(session: Any, key: str, share: float = 0.3, start: bool = True) -> None:
    exp = experiments_service.create_experiment(session, ExperimentCreate.model_validate(
        holdout_setup(key, share)), principal=None, actor_name="test")
    if start:
        experiments_service.start_experiment(session, exp, principal=None, actor_name="test")


# ---------------------------------------------------------------------------------------------
# Pricing (service level, 2,000 customers)
# ---------------------------------------------------------------------------------------------


def test_a_30_percent_holdout_withholds_the_promotion_from_exactly_the_held_out_customers(
    store_cfg: Settings, tmp_path: Path,
) -> None:
    customers = [f"cust-{i:05d}" for i in range(2000)]
    recorded: list[dict[str, Any]] = []
    hooks = service.HoldoutHooks(record=recorded.extend, scope=f"test:{tmp_path}")
    with session_scope(store_cfg) as session:
        make_holdout(session, "spring-holdout")
        promo = service.create_promotion(session, name="Spring 10% off", status="active",
                                         definition={**TEN_OFF, "holdout": "spring-holdout"})
        held: dict[str, bool] = {}
        for customer in customers:
            cart = CartIn.model_validate({"customer_id": customer, "lines": ONE_LINE})
            quote = service.quote(session, cart, currency="CNY", holdouts=hooks)
            priced = quote.priced
            not_applied = {n.promotion_id: n for n in priced.not_applied}
            held[customer] = promo.id in not_applied
            if held[customer]:
                assert not_applied[promo.id].code == "held_out"
                assert "spring-holdout" in not_applied[promo.id].reason
                assert priced.totals.total == 10000
                assert not priced.applied
            else:
                assert [a.promotion_id for a in priced.applied] == [promo.id]
                assert priced.totals.total == 9000  # 10 % off 100.00
        # The same answer as the experiments' own hold-out check, and as the hash worked out apart.
        for customer in customers:
            assert held[customer] is experiments_service.in_holdout(session, "spring-holdout", customer)
            assert held[customer] is held_by_hash(customer)
        # Pricing again records no second exposure (first exposure is what the analysis keeps).
        service.quote(session, CartIn.model_validate({"customer_id": customers[0], "lines": ONE_LINE}),
                      currency="CNY", holdouts=hooks)
    n_held = sum(held.values())
    tolerance = 4 * math.sqrt(2000 * 0.3 * 0.7)  # 4 binomial standard deviations: ±82 customers
    assert abs(n_held - 600) <= tolerance, n_held
    # One exposure per customer, in the variant they were placed in, for this hold-out.
    assert len(recorded) == 2000
    assert {e["customer_id"]: e["properties"]["variant"] for e in recorded} == {
        c: "holdout" if held[c] else "treated" for c in customers}
    assert {(e["type"], e["properties"]["experiment"]) for e in recorded} == {
        ("experiment_exposure", "spring-holdout")}


def test_a_holdout_not_running_holds_nobody_out_and_bad_keys_name_the_field(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        make_holdout(session, "later", start=False)
        experiments_service.create_experiment(session, ExperimentCreate.model_validate({
            "key": "ab-test", "name": "A/B", "variants": [{"name": "a", "weight": 0.5},
                                                           {"name": "b", "weight": 0.5}]}),
            principal=None)
        for key, message in (("nope", "definition.holdout: no experiment 'nope'"),
                             ("ab-test", "definition.holdout: experiment 'ab-test' is an A/B test")):
            with pytest.raises(InvalidArgumentError, match=message):
                service.create_promotion(session, name="x", definition={**TEN_OFF, "holdout": key})
        promo = service.create_promotion(session, name="Draft hold-out", status="active",
                                         definition={**TEN_OFF, "holdout": "later"})
        recorded: list[dict[str, Any]] = []
        customers = [f"d{i}" for i in range(50)]
        for customer in customers:
            cart = CartIn.model_validate({"customer_id": customer, "lines": ONE_LINE})
            quote = service.quote(session, cart, currency="CNY",
                                  holdouts=service.HoldoutHooks(record=recorded.extend))
            assert [a.promotion_id for a in quote.priced.applied] == [promo.id]
        assert recorded == []  # nobody is in a draft hold-out: no exposure


# ---------------------------------------------------------------------------------------------
# Over HTTP: validation, commit at full price, coupons, exposures, the report
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def client(store_cfg: Settings, make_api_key: Callable[..., str]) -> Iterator[TestClient]:
    key = make_api_key("read", "write")
    app = create_app(store_cfg)
    app.state.warehouse_options = {"flush_seconds": 0.1}
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as test_client:
        yield test_client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def problem(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    return str(response.json()["detail"])


def customers_in(client: TestClient, key: str, count: int) -> tuple[list[str], list[str]]:
    """``count`` held-out and ``count`` treated customers, as the assignment endpoint places them."""
    held: list[str] = []
    treated: list[str] = []
    i = 0
    while len(held) < count or len(treated) < count:
        customer = f"web-{i}"
        answer = ok(client.get(f"/api/v1/experiments/{key}/assignment",
                               params={"customer_id": customer, "expose": False}))
        assert answer["variant"] == ("holdout" if held_by_hash(customer) else "treated")
        (held if answer["variant"] == "holdout" else treated).append(customer)
        i += 1
    return held[:count], treated[:count]


def test_checkout_over_http_held_out_customers_pay_full_price_and_are_exposed(client: TestClient) -> None:
    ok(client.post("/api/v1/experiments", json=holdout_setup("summer")), 201)
    ok(client.post("/api/v1/experiments/summer/start"))
    ok(client.post("/api/v1/experiments", json={
        "key": "plain-ab", "name": "A/B",
        "variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}]}), 201)
    for key, expected in (("nope", "definition.holdout: no experiment 'nope'"),
                          ("plain-ab", "definition.holdout: experiment 'plain-ab' is an A/B test"),
                          ("Bad Key!", "definition.holdout")):
        detail = problem(client.post("/api/v1/promotions", json={
            "name": "x", "definition": {**TEN_OFF, "holdout": key}}), 422,
            "invalid_argument" if key != "Bad Key!" else "validation_error")
        assert expected in detail, detail
        detail = problem(client.post("/api/v1/coupon-batches", json={
            "name": "c", "definition": {**FIVE_OFF, "holdout": key}, **VALIDITY, "code_mode": "shared",
            "shared_code": "BADHOLD"}), 422, "invalid_argument" if key != "Bad Key!" else "validation_error")
        assert expected in detail, detail

    promo = ok(client.post("/api/v1/promotions", json={
        "name": "Summer 10% off", "status": "active", "definition": {**TEN_OFF, "holdout": "summer"}}), 201)
    assert promo["definition"]["holdout"] == "summer"
    ok(client.post("/api/v1/coupon-batches", json={
        "name": "5 off", "definition": {**FIVE_OFF, "holdout": "summer"}, **VALIDITY, "code_mode": "shared",
        "shared_code": "SUMMER5", "per_customer_limit": 5}), 201)
    held, treated = customers_in(client, "summer", 2)

    cart = {"customer_id": held[0], "lines": ONE_LINE, "coupon_codes": ["SUMMER5"]}
    priced = ok(client.post("/api/v1/carts/price", json=cart))
    assert priced["totals"]["total"] == 10000
    assert priced["applied"] == []
    codes = {(n["promotion_id"], n["code"], n["coupon_code"]) for n in priced["not_applied"]}
    assert (promo["id"], "held_out", None) in codes
    assert any(code == "held_out" and coupon == "SUMMER5" for _p, code, coupon in codes)
    order = ok(client.post("/api/v1/orders", json={**cart, "order_id": "held-1"}), 201)
    assert order["total"] == 10000
    assert order["coupons"] == []
    assert "held_out" in {n["code"] for n in ok(client.get("/api/v1/orders/held-1"))["priced"]["not_applied"]}

    cart = {"customer_id": treated[0], "lines": ONE_LINE, "coupon_codes": ["SUMMER5"]}
    order = ok(client.post("/api/v1/orders", json={**cart, "order_id": "treated-1"}), 201)
    # By hand: 100.00 − 10 % = 90.00, then the coupon 5.00 off → 85.00.
    assert order["total"] == 8500
    assert order["coupons"] == ["SUMMER5"]
    assert "held_out" not in {n["code"] for n in order["priced"]["not_applied"]}

    client.app.state.warehouse.flush_events()  # type: ignore[attr-defined]
    with client.app.state.warehouse.read() as backend:  # type: ignore[attr-defined]
        events = backend.table("events").to_pyarrow().to_pylist()
    exposures = {(e["customer_id"], json.loads(e["properties"])["variant"]) for e in events
                 if e["type"] == "experiment_exposure"}
    assert exposures == {(held[0], "holdout"), (treated[0], "treated")}
    assert len([e for e in events if e["type"] == "experiment_exposure"]) == 2  # once per customer


# Hand-made warehouse facts for the report: 3 held-out and 4 treated customers exposed a millisecond
# after the start, paid orders a millisecond later.
REPORT_HELD = ["h1", "h2", "h3"]
REPORT_TREATED = ["t1", "t2", "t3", "t4"]
REPORT_ORDERS = [("o1", "h1", 5000), ("o2", "t1", 8000), ("o3", "t2", 6000)]


def insert_facts(con: Any, key: str, started_at: datetime) -> None:
    at = started_at.replace(tzinfo=None)  # naive UTC, as stored
    units = [(c, "holdout") for c in REPORT_HELD] + [(c, "treated") for c in REPORT_TREATED]
    for i, (customer, variant) in enumerate(units):
        con.execute("INSERT INTO events (event_id, type, occurred_at, customer_id, properties) "
                    "VALUES (?, 'experiment_exposure', ?, ?, ?)",
                    [f"x{i}", at + timedelta(milliseconds=1), customer,
                     json.dumps({"experiment": key, "variant": variant})])
    for order_id, customer, total in REPORT_ORDERS:
        con.execute("INSERT INTO orders (order_id, customer_id, ordered_at, status, total_amount) "
                    "VALUES (?, ?, ?, 'paid', ?)",
                    [order_id, customer, at + timedelta(milliseconds=2), total])


def check_report(found: dict[str, Any], promotion_id: str, key: str) -> None:
    """Revenue per customer: held out [5000, 0, 0] (mean 1666.67, s² 8,333,333.3), treated
    [8000, 6000, 0, 0] (mean 3500, s² 17,000,000); Welch: effect 1833.33, se √(s²₁/3 + s²₂/4) =
    √7,027,777.8 = 2650.99, t 0.6916 on Welch's 4.62 degrees of freedom, two-sided p 0.520.
    Conversion: 1/3 against 2/4."""
    assert found["promotion"]["id"] == promotion_id
    assert found["promotion"]["holdout"] == key
    assert found["experiment"]["kind"] == "holdout"
    assert found["status"]["units"] == 7
    assert {v["name"]: v["units"] for v in found["status"]["variants"]} == {"holdout": 3, "treated": 4}
    metrics = {m["label"]: m for m in found["metrics"]}
    revenue = metrics["revenue"]
    assert [(v["name"], v["n"]) for v in revenue["variants"]] == [("holdout", 3), ("treated", 4)]
    assert revenue["variants"][0]["mean"] == pytest.approx(5000 / 3)
    assert revenue["variants"][1]["mean"] == pytest.approx(3500)
    comparison = revenue["comparisons"][0]
    assert comparison["variant"] == "treated"
    held_var = ((5000 - 5000 / 3) ** 2 + 2 * (5000 / 3) ** 2) / 2
    treated_var = (4500**2 + 2500**2 + 2 * 3500**2) / 3
    se = math.sqrt(held_var / 3 + treated_var / 4)
    assert se == pytest.approx(2650.99, abs=0.01)
    assert comparison["absolute"]["estimate"] == pytest.approx(3500 - 5000 / 3)
    assert comparison["absolute"]["se"] == pytest.approx(se)
    a, b = held_var / 3, treated_var / 4
    df = (a + b) ** 2 / (a**2 / 2 + b**2 / 3)  # Welch–Satterthwaite: 4.62
    t = (3500 - 5000 / 3) / se
    assert comparison["absolute"]["p_value"] == pytest.approx(2 * scipy_stats.t.sf(t, df), rel=1e-6)
    assert comparison["significant"] is False
    conversion = metrics["conversion"]
    assert [v["mean"] for v in conversion["variants"]] == [pytest.approx(1 / 3), pytest.approx(0.5)]
    assert conversion["comparisons"][0]["absolute"]["estimate"] == pytest.approx(0.5 - 1 / 3)


def test_the_holdout_report_over_http_is_the_engines_analysis(client: TestClient) -> None:
    ok(client.post("/api/v1/experiments", json=holdout_setup("autumn")), 201)
    started = ok(client.post("/api/v1/experiments/autumn/start"))
    promo = ok(client.post("/api/v1/promotions", json={
        "name": "Autumn 10% off", "status": "active", "definition": {**TEN_OFF, "holdout": "autumn"}}), 201)
    plain = ok(client.post("/api/v1/promotions", json={"name": "No hold-out", "definition": TEN_OFF}), 201)
    client.app.state.warehouse.run_write(  # type: ignore[attr-defined]
        lambda con: insert_facts(con, "autumn", datetime.fromisoformat(started["started_at"])))
    found = ok(client.get(f"/api/v1/promotions/{promo['id']}/holdout-results"))
    check_report(found, promo["id"], "autumn")
    # The same numbers as the experiment's own results.
    assert found["metrics"] == ok(client.get("/api/v1/experiments/autumn/results"))["metrics"]
    assert "holdout" in problem(client.get(f"/api/v1/promotions/{plain['id']}/holdout-results"), 422,
                                "invalid_argument")
    problem(client.get("/api/v1/promotions/nope/holdout-results"), 404, "promotion_not_found")


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_the_holdout_report_in_the_cli(store_cfg: Settings) -> None:
    migrate(store_cfg)
    with session_scope(store_cfg) as session:
        make_holdout(session, "winter")
        promo = service.create_promotion(session, name="Winter 10% off", status="active",
                                         definition={**TEN_OFF, "holdout": "winter"})
        promotion_id = promo.id
        started_at = experiments_service.get_experiment(session, "winter").started_at
    assert started_at is not None
    con = open_duckdb(store_cfg)
    try:
        insert_facts(con, "winter", started_at)
    finally:
        con.close()
    app = typer.Typer()
    app.add_typer(promotions_app, name="promotions")
    set_settings(store_cfg)
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["promotions", "holdout-results", promotion_id, "--json"],
                               catch_exceptions=False)
        assert result.exit_code == 0, result.output
        check_report(json.loads(result.stdout), promotion_id, "winter")
        text = runner.invoke(app, ["promotions", "holdout-results", promotion_id], catch_exceptions=False)
        assert text.exit_code == 0, text.output
        assert "7 customers exposed" in text.stdout
        assert "holdout 3" in text.stdout
    finally:
        set_settings(None)
