"""The definition language: what is accepted, what is refused (with where), and the JSON Schema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest
from tea_shop import doc_examples

from growthwheel.segments.definition import (
    AllGroup,
    NotGroup,
    OrdersCondition,
    SegmentDefinitionError,
    definition_json_schema,
    definition_to_json,
    parse_definition,
)


def test_the_docs_have_the_examples_the_tests_use() -> None:
    assert set(doc_examples()) == {
        "bought-tea-30d", "viewed-not-bought", "tea-spend-90d", "never-bought", "nested",
        "recent-signups", "vip-tea", "champions-loyal", "valuable-not-at-risk", "last-month-buyers",
    }


@pytest.mark.parametrize("name", sorted(doc_examples()))
def test_every_doc_example_is_valid_and_round_trips(name: str) -> None:
    data = doc_examples()[name]
    node = parse_definition(data)
    again = definition_to_json(node)
    assert parse_definition(again) == node
    assert parse_definition(json.dumps(data)) == node  # JSON text is read too
    assert jsonschema_rs.validator_for(definition_json_schema()).is_valid(data)


def test_nested_groups_parse_into_their_models() -> None:
    node = parse_definition(doc_examples()["nested"])
    assert isinstance(node, AllGroup)
    assert isinstance(node.all[2], NotGroup)
    assert definition_to_json(node)["all"][1]["any"][0] == {
        "type": "orders", "op": ">=", "value": "2", "measure": "count"}


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"all": [{"type": "attribute", "field": "email", "op": "contains", "value": "@qq.com"}]},
         "all[0]: 'email' supports is_set, not 'contains'"),
        ({"all": [{"type": "attribute", "field": "password", "op": "is_set"}]},
         "all[0]: unknown attribute 'password'"),
        ({"any": [{"type": "orders", "op": ">=", "value": 1.5}]},
         "any[0]: count is compared with whole numbers, not 1.5"),
        ({"not": {"type": "events", "event": "view", "op": ">", "value": 0, "window": {"last": 0}}},
         "not.window.last: Input should be greater than or equal to 1"),
        ({"type": "orders", "value": 1, "window": {"last": 3, "from": "2025-01-01"}},
         'window: a window is either {"last": N'),
        ({"type": "attribute", "field": "birthday", "op": "between", "value": ["2025-02-01", "2025-01-01"]},
         "between: 2025-02-01 is after 2025-01-01"),
        ({"all": [{"type": "wat"}]}, 'all[0]: a node is {"all": [...]}'),
        ({"all": [{"field": "city", "op": "is_set"}]}, 'all[0]: a node is'),  # "type" is required
        ({"all": [], "any": []}, "Extra inputs are not permitted"),
        ({"any": []}, "any: List should have at least 1 item"),
        ({"type": "orders", "op": "between", "value": 3}, "between takes [low, high]"),
        ({"type": "orders", "category": [], "value": 1}, "an empty list matches nothing"),
        ({"type": "score", "field": "lifecycle_stage", "op": ">=", "value": "new"},
         "is text: use equals or in"),
        ({"type": "score", "field": "clv", "op": ">=", "value": "lots"}, "clv is compared with numbers"),
        ({"type": "tag", "tags": []}, "tags: List should have at least 1 item"),
        ("{not json", "the definition is not valid JSON"),
        ({"type": "orders", "op": ">=", "value": "1e30"}, "value: 1E+30 is out of range"),
        ({"type": "orders", "op": ">=", "value": "1E+1000000"}, "is out of range"),
        ({"type": "score", "field": "clv", "op": ">=", "value": -1e20}, "is out of range"),
    ],
)
def test_bad_definitions_are_refused_saying_where(definition: Any, message: str) -> None:
    with pytest.raises(SegmentDefinitionError) as caught:
        parse_definition(definition)
    assert message in caught.value.message
    assert (caught.value.code, caught.value.status) == ("invalid_segment", 422)


def test_size_limits() -> None:
    deep: dict[str, Any] = {"type": "tag", "tags": ["x"]}
    for _ in range(12):
        deep = {"not": deep}
    with pytest.raises(SegmentDefinitionError, match="nests 13 levels"):
        parse_definition(deep)
    wide = {"any": [{"type": "tag", "tags": [f"t{i}"]} for i in range(150)] * 2}
    with pytest.raises(SegmentDefinitionError):
        parse_definition(wide)


def test_amounts_keep_their_exact_decimal_text() -> None:
    node = parse_definition({"type": "orders", "measure": "amount", "op": "between", "value": ["0.10", 99.9]})
    assert isinstance(node, OrdersCondition)
    assert [str(v) for v in node.bounds()] == ["0.10", "99.9"]


def test_schema_describes_groups_and_conditions() -> None:
    schema = definition_json_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    assert {"AllGroup", "AnyGroup", "NotGroup", "AttributeCondition", "OrdersCondition", "EventsCondition",
            "TagCondition", "ScoreCondition", "Window"} <= set(schema["$defs"])
    validator = jsonschema_rs.validator_for(schema)
    assert not validator.is_valid({"all": [{"type": "orders"}]})  # value is required
    assert not validator.is_valid({"all": [{"type": "tag", "tags": ["a"], "extra": 1}]})
