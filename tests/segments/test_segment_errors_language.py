"""Segment errors a person reads come from the catalogues with a code and a field: the API answers
in the request's language (problem+json), and the console's save form shows the reason in the
page's language next to its field."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts.schemas import ROLE_SCOPES, Principal
from growthwheel.api import warehouse as warehouse_api
from growthwheel.api.app import create_app
from growthwheel.api.deps import current_principal, current_user_page
from growthwheel.config import Settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.segments import service
from growthwheel.segments.api import router as segments_router
from growthwheel.segments.pages import router as segment_pages
from growthwheel.web.i18n import translator

ADMIN = Principal(kind="user", id="u1", name="admin@example.com", role="admin", scopes=ROLE_SCOPES["admin"])


@pytest.fixture
def client(tea_shop: Settings) -> Iterator[TestClient]:
    app = warehouse_api.install(create_app(tea_shop, routers=[segments_router, segment_pages]))
    app.dependency_overrides[current_principal] = lambda: ADMIN
    app.dependency_overrides[current_user_page] = lambda: ADMIN
    with TestClient(app) as test_client:
        yield test_client


def test_the_api_answers_in_the_requests_language(client: TestClient) -> None:
    body = {"name": "Everyone", "definition": {"all": []}}
    assert client.post("/api/v1/segments", json=body).status_code == 201
    zh = client.post("/api/v1/segments", json=body, headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 409
    assert zh.headers["content-type"].startswith("application/problem+json")
    assert zh.json()["code"] == "segment_exists"
    assert zh.json()["detail"] == "name: 已有名为“Everyone”的分组"
    en = client.post("/api/v1/segments", json=body)
    assert en.json()["detail"] == "name: a segment called 'Everyone' exists already"
    missing = client.get("/api/v1/segments/nobody", headers={"Accept-Language": "zh-CN"})
    assert missing.status_code == 404
    assert missing.json()["detail"] == "没有已保存的分组“nobody”"
    bad = client.post("/api/v1/segments", json={"name": " ", "definition": {"all": []}},
                      headers={"Accept-Language": "zh-CN"})
    assert bad.status_code in (400, 422)
    assert "分组名称为 1–200 个字符" in bad.json()["detail"]


def test_the_save_form_shows_the_reason_in_chinese_next_to_the_field(client: TestClient) -> None:
    client.post("/api/v1/segments", json={"name": "常客", "definition": {"all": []}})
    page = client.get("/segments/new", headers={"Accept-Language": "zh-CN"})
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    form = {"name": "常客", "definition": '{"all": []}', "tag": "", "description": "",
            "csrf_token": token.group(1) if token else ""}
    answer = client.post("/segments", data=form, headers={"Accept-Language": "zh-CN"})
    assert answer.status_code == 422, answer.text[:300]
    assert 'data-field="name"' in answer.text
    assert "无法使用此名称保存：已有名为“常客”的分组" in answer.text
    form.update(name="有效名称", tag="a;b")
    answer = client.post("/segments", data=form, headers={"Accept-Language": "zh-CN"})
    assert 'data-field="tag"' in answer.text
    assert "“a;b”不能用作标签" in answer.text


def test_coded_errors_carry_their_field_and_both_languages() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        service.check_tag("x;y")
    error = caught.value
    assert (error.code, error.field, error.key) == ("invalid_argument", "tag", "segments.error.tag_rule")
    assert error.message == "tag: 'x;y' is not a tag: 1 to 64 characters, no ';' or control characters"
    assert error.text(translator("zh")) == "tag: “x;y”不能用作标签：标签为 1–64 个字符，不含“;”和控制字符"
