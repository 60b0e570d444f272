"""Experiment set-up errors a person reads come from the catalogues with a code and a field: the
console's form shows them in the page's language next to the field, the API in the request's."""

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
from growthwheel.errors import InvalidArgumentError
from growthwheel.experiments import service
from growthwheel.experiments.pages import router as experiment_pages
from growthwheel.experiments.schemas import ExperimentCreate
from growthwheel.store.db import session_scope
from growthwheel.web.i18n import translator
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


def post(client: TestClient, data: dict[str, Any]) -> Any:
    cfg: Settings = client.app.state.cfg  # type: ignore[attr-defined]
    token = accounts.session_csrf_token(accounts.server_secret(cfg.data_dir), client.cookies["gw_session"])
    return client.post("/experiments", data={**data, "csrf_token": token}, follow_redirects=False,
                       headers={"Accept-Language": "zh-CN"})


def shown(page: str, field: str) -> str:
    found = re.search(rf'data-field="{field}">([^<]*)<', page)
    assert found is not None, page[:500]
    return found.group(1)


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_the_form_refuses_in_chinese_next_to_the_field(client: TestClient, make_user: Callable[..., Any],
                                                       log_in: Callable[..., None]) -> None:
    user = make_user("operator")
    log_in(client, user.email, user.password)
    client.headers["Accept-Language"] = "zh-CN"
    assert post(client, FORM).status_code == 303
    again = post(client, FORM)
    assert again.status_code == 422
    assert shown(again.text, "key") == "未通过：已有标识为“ship-banner”的实验"
    no_segment = post(client, {**FORM, "key": "other", "segment": "nobody"})
    assert shown(no_segment.text, "segment") == "未通过：没有已保存的分组“nobody”"


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_service_errors_carry_code_field_and_both_languages(store_cfg: Settings) -> None:
    body = ExperimentCreate.model_validate({
        "key": "twice", "name": "Twice", "planned_units": 100,
        "variants": [{"name": "control", "weight": 0.5}, {"name": "b", "weight": 0.5}]})
    with session_scope(store_cfg) as session:
        service.create_experiment(session, body, principal=None)
    with session_scope(store_cfg) as session, pytest.raises(service.ExperimentExistsError) as caught:
        service.create_experiment(session, body, principal=None)
    error = caught.value
    assert (error.field, error.key) == ("key", "experiments.error.exists")
    assert error.message == "key: an experiment 'twice' exists already"
    assert error.text(translator("zh")) == "key: 已有标识为“twice”的实验"
    with session_scope(store_cfg) as session, pytest.raises(InvalidArgumentError) as missing:
        service.create_experiment(session, ExperimentCreate.model_validate(
            {**body.model_dump(), "key": "seg", "segment": "nobody"}), principal=None)
    assert missing.value.field == "segment"
    assert missing.value.text(translator("zh")) == "segment: 没有已保存的分组“nobody”"
