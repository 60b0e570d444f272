"""The built-in "campaign behind its target pace" rule (issue 16 item 4) on the tiny campaign shop
of ``tests/marketing/campaign_data`` (figures worked out by hand there): on 4 Nov the peak phase
has made 2/3 of its expected GMV and the campaign 3/5, so both are alerts; after the campaign
nothing runs and nothing fires."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.marketing import campaign_data as data

from growthwheel.alerts import inbox, rules, service
from growthwheel.alerts.models import Alert, AlertRule
from growthwheel.config import Settings
from growthwheel.marketing.campaigns import service as campaigns
from growthwheel.marketing.campaigns.schemas import CampaignIn
from growthwheel.store.db import migrate, session_scope
from growthwheel.warehouse import connect


def test_a_campaign_behind_its_pace_is_an_alert(tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path / "shop", database_url=None)
    migrate(cfg)
    data.load(cfg, tmp_path)
    con = connect(cfg)
    try:
        with session_scope(cfg) as session:
            campaigns.create(session, CampaignIn.model_validate(data.campaign_body([])), actor="test")
            service.ensure_builtin_rules(session)
            rule = session.scalar(select(AlertRule).where(AlertRule.builtin == "campaign_behind"))
            assert rule is not None
            result = service.evaluate(session, con, today=date(2024, 11, 5), since=date(2024, 11, 4),
                                      rule_ids=[rule.id])
            assert result.errors == {}
            alerts = session.scalars(select(Alert).where(Alert.rule_id == rule.id))
            found = {a.dimension_value: a for a in alerts}
            assert found["Double 11 2024 · gmv · 爆发"].value == pytest.approx(2 / 3)
            assert found["Double 11 2024 · gmv"].value == pytest.approx(0.6)
            assert all(a.period_start == date(2024, 11, 4) and a.value < 0.9 for a in found.values())
            assert {inbox.drill_down(a) for a in found.values()} == {"/marketing/campaigns"}
            later = service.evaluate(session, con, today=date(2024, 11, 21), since=date(2024, 11, 20),
                                     rule_ids=[rule.id])
            assert later.new_alerts == 0
    finally:
        con.disconnect()


def test_campaign_pace_rules_are_thresholds_below_a_limit() -> None:
    spec = rules.RuleSpec("pace", rules.CAMPAIGN_PACE, "threshold", "campaign",
                          params={"op": ">", "limit": 1.2})
    with pytest.raises(Exception, match="op < or <="):
        rules.validate(spec)
