"""The experiment console pages through the real app (signed-in users, CSRF-checked forms): the
set-up form shows a refused field next to it, saves a draft, starts it; analysts may look but not
change; the results page of an experiment nobody has seen yet says there is nothing to conclude."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts import service as accounts
from growthwheel.accounts.api import router as accounts_router
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.experiments import service
from growthwheel.experiments.pages import router as experiment_pages
from growthwheel.experiments.schemas import ExperimentCreate
from growthwheel.store.db import session_scope
from growthwheel.web.pages import router as pages_router

FORM = {"name": "Free shipping banner", "key": "ship-banner", "hypothesis": "", "kind": "experiment",
        "unit": "customer", "variants": "control, banner", "weights": "50, 50", "holdout_share": "",
        "traffic": "100", "layer": "", "segment": "", "primary": "conversion", "secondary": ["revenue"],
        "guardrails": ["refund_rate"], "method": "fixed", "alpha": "0.05", "planned_units": "2000",
        "cuped_days": "14"}


@pytest.fixture
def client(store_cfg: Settings) -> Iterator[TestClient]:
    app = create_app(store_cfg, routers=[accounts_router, pages_router, experiment_pages])
    with TestClient(app) as test_client:
        yield test_client


def csrf(client: TestClient) -> str:
    cfg: Settings = client.app.state.cfg  # type: ignore[attr-defined]
    return accounts.session_csrf_token(accounts.server_secret(cfg.data_dir), client.cookies["gw_session"])


def post(client: TestClient, path: str, data: dict[str, Any]) -> Any:
    return client.post(path, data={**data, "csrf_token": csrf(client)}, follow_redirects=False)


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_set_up_start_and_read(client: TestClient, make_user: Callable[..., Any],
                               log_in: Callable[..., None]) -> None:
    admin = make_user("operator")
    log_in(client, admin.email, admin.password)
    assert 'name="csrf_token"' in client.get("/experiments/new").text

    refused = post(client, "/experiments", {**FORM, "weights": "50, 60"})
    assert refused.status_code == 422
    error = re.search(r'data-field="variants">([^<]*)<', refused.text)
    assert error is not None
    assert "sum to 1" in error.group(1)
    assert 'value="Free shipping banner"' in refused.text  # what was typed stays

    no_token = client.post("/experiments", data=FORM, follow_redirects=False)
    assert no_token.status_code == 403

    saved = post(client, "/experiments", FORM)
    assert (saved.status_code, saved.headers["location"]) == (303, "/experiments/ship-banner")
    listed = client.get("/experiments").text
    assert 'data-experiment="ship-banner"' in listed
    assert "Draft" in listed
    assert "Not started yet" in client.get("/experiments/ship-banner").text

    started = post(client, "/experiments/ship-banner/start", {})
    assert started.status_code == 303
    page = client.get("/experiments/ship-banner").text
    assert 'data-testid="experiment-status">Running<' in page
    assert "0 units exposed so far" in page
    results = client.get("/experiments/ship-banner/results").text
    # nobody exposed yet: no numbers, and the peek warning of a fixed test below its planned size
    assert results.count('data-testid="metric-error"') == 3
    assert 'data-warning="peeking"' in results
    assert "0 of its planned 2,000 units" in results


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_analysts_look_but_do_not_change(client: TestClient, make_user: Callable[..., Any],
                                         log_in: Callable[..., None]) -> None:
    analyst = make_user("analyst")
    log_in(client, analyst.email, analyst.password)
    assert 'data-testid="not-allowed"' in client.get("/experiments/new").text
    refused = post(client, "/experiments", FORM)
    assert refused.status_code == 403
    assert 'data-experiment="ship-banner"' not in client.get("/experiments").text
    anonymous = TestClient(client.app).get("/experiments", follow_redirects=False)
    assert anonymous.status_code == 303


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_a_fixed_horizon_test_asks_for_its_planned_size(client: TestClient, make_user: Callable[..., Any],
                                                        log_in: Callable[..., None]) -> None:
    admin = make_user("operator")
    log_in(client, admin.email, admin.password)
    refused = post(client, "/experiments", {**FORM, "planned_units": ""})
    assert refused.status_code == 422
    error = re.search(r'data-field="planned_units">([^<]*)<', refused.text)
    assert error is not None
    assert "planned sample size" in error.group(1)
    # a draft made without it elsewhere (the API) shows why it cannot start, and no start button
    cfg: Settings = client.app.state.cfg  # type: ignore[attr-defined]
    with session_scope(cfg) as session:
        service.create_experiment(session, ExperimentCreate.model_validate({
            "key": "unplanned", "name": "Unplanned",
            "variants": [{"name": "control", "weight": 0.5}, {"name": "b", "weight": 0.5}]}), principal=None)
    page = client.get("/experiments/unplanned").text
    assert 'data-testid="planned-units-required"' in page
    assert 'data-testid="change-status"' not in page


def test_a_comparison_without_an_interval_reads_as_no_data_yet() -> None:
    from growthwheel.experiments.pages import _Formatter, _interval, _verdict
    from growthwheel.web.i18n import translator

    for lang, expected in (("en", "No comparison of"), ("zh", "暂时无法比较")):
        t = translator(lang)
        nothing = {"estimate": None, "ci_lower": None, "ci_upper": None}
        comp = {"variant": "b", "relative": None, "absolute": nothing, "p_adjusted": None,
                "significant": False}
        text = str(_verdict(t, comp, "revenue", _Formatter("revenue", "CNY", t), "95"))
        assert expected in text
        assert "–" not in text
    assert _interval(str, {"ci_lower": None, "ci_upper": 2}) == "–"
