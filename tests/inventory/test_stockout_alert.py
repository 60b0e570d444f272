"""The built-in ``stockout_risk`` alert rule: the SKUs whose stock is likely to run out within the
plan's horizon fire, judged for the latest day only; other kinds are refused naming the field."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.inventory.test_plan import AS_OF, shop
from tests.tiny_warehouse import make_warehouse

from growthwheel.alerts import evaluation as alerts_evaluation
from growthwheel.alerts import rules as alerts_rules
from growthwheel.alerts.models import AlertRule
from growthwheel.errors import InvalidArgumentError


def test_the_rule_fires_for_the_sku_running_out() -> None:
    spec = alerts_rules.validate(alerts_rules.BUILTIN_RULES["stockout_risk"])
    rule = AlertRule(id="r1", name=spec.name, metric=spec.metric, kind=spec.kind, dimension=spec.dimension,
                     period=spec.period, params={**spec.params, "limit": 0.5})
    found = alerts_evaluation.find(shop(), rule, since=AS_OF - timedelta(days=30), yesterday=AS_OF)
    assert [(f.dimension_value, f.period_start) for f in found] == [("FAST", AS_OF)]
    assert found[0].value > 0.5
    assert alerts_rules.label("stockout_risk", "zh") == "缺货风险"
    assert alerts_rules.dimensions_for("stockout_risk") == ["sku"]
    assert alerts_evaluation.find(make_warehouse({}), rule, since=AS_OF, yesterday=AS_OF) == []


def test_only_threshold_rules_on_days() -> None:
    with pytest.raises(InvalidArgumentError, match="kind"):
        alerts_rules.validate(alerts_rules.RuleSpec("risk", "stockout_risk", "anomaly", "sku"))
    with pytest.raises(InvalidArgumentError, match="dimension"):
        alerts_rules.validate(alerts_rules.RuleSpec("risk", "stockout_risk", "threshold", None,
                                                    params={"op": ">=", "limit": 0.5}))
