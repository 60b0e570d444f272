"""Saved segments on the tea shop: refreshes with entered / left history, tag rules, manual tags,
CSV export (masked for analysts), deletion and the CLI. Answers worked out by hand (tea_shop.py)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest
import typer
from tea_shop import AS_OF, doc_examples
from typer.testing import CliRunner

from growthwheel.config import Settings, set_settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.segments import repository, scores, service
from growthwheel.segments.cli import segments_app, tags_app
from growthwheel.segments.definition import SegmentDefinitionError
from growthwheel.segments.models import Segment
from growthwheel.store.db import migrate, session_scope
from growthwheel.warehouse import connect
from growthwheel.warehouse.db import open_duckdb

# Naive UTC, as the warehouse stores times.
T1 = datetime(2025, 4, 1, 2, 0, tzinfo=UTC).replace(tzinfo=None)
T2 = datetime(2025, 4, 26, 2, 0, tzinfo=UTC).replace(tzinfo=None)
T3 = datetime(2025, 4, 27, tzinfo=UTC).replace(tzinfo=None)


@pytest.fixture
def cfg(tea_shop: Settings) -> Iterator[Settings]:
    migrate(tea_shop)
    scores.set_score_resolver(scores.warehouse_scores)
    yield tea_shop
    scores.set_score_resolver(None)


def rows(cfg: Settings, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(cfg.warehouse_path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def refresh(cfg: Settings, name: str, as_of: date, at: datetime) -> Any:
    con = open_duckdb(cfg)
    try:
        with session_scope(cfg) as session:
            seg = service.get_segment(session, name)
            ctx = service.context(cfg, connect_to(con), as_of)
            return service.refresh_segment(session, seg, ctx, service.direct_writer(con), principal=None,
                                           actor_name="tests", at=at)
    finally:
        con.close()


def connect_to(con: duckdb.DuckDBPyConnection) -> Any:
    import ibis

    return ibis.duckdb.from_connection(con)


def create(cfg: Settings, name: str, definition: Any, tag: str | None = None) -> str:
    with session_scope(cfg) as session:
        seg = service.create_segment(session, name, definition, principal=None, actor_name="tests", tag=tag)
        return seg.id


def tag(cfg: Settings, name: str, add: list[str] = (), remove: list[str] = ()) -> Any:  # type: ignore[assignment]
    con = open_duckdb(cfg)
    try:
        with session_scope(cfg) as session:
            return service.change_tag(session, name, service.direct_writer(con), add=add, remove=remove,
                                      principal=None, actor_name="tests")
    finally:
        con.close()


def test_two_refreshes_record_who_entered_and_who_left(cfg: Settings) -> None:
    seg_id = create(cfg, "Tea buyers (30 days)", doc_examples()["bought-tea-30d"])
    first = refresh(cfg, "Tea buyers (30 days)", AS_OF, T1)
    assert (first.members, first.entered, first.left) == (2, 2, 0)  # c1 and c3
    # As of 04-25 the window is 03-27 .. 04-25: c3 (03-30) stays, c4 (04-02) enters, c1 (03-25) leaves.
    second = refresh(cfg, "Tea buyers (30 days)", date(2025, 4, 25), T2)
    assert (second.members, second.entered, second.left) == (2, 1, 1)
    members = rows(cfg, "SELECT customer_id, entered_at FROM segment_members WHERE segment_id = ? "
                        "ORDER BY customer_id", [seg_id])
    assert members == [("c3", T1), ("c4", T2)]  # c3 keeps the time it entered
    history = rows(cfg, "SELECT customer_id, event, \"at\" FROM segment_membership_events "
                        "WHERE segment_id = ? "
                        "ORDER BY \"at\", customer_id", [seg_id])
    assert history == [
        ("c1", "entered", T1), ("c3", "entered", T1), ("c1", "left", T2), ("c4", "entered", T2)]
    # A third refresh with nothing new changes nothing.
    third = refresh(cfg, "Tea buyers (30 days)", date(2025, 4, 25), T3)
    assert (third.members, third.entered, third.left) == (2, 0, 0)
    assert len(rows(cfg, "SELECT * FROM segment_membership_events")) == 4
    with session_scope(cfg) as session:
        seg = service.get_segment(session, seg_id)
        assert (seg.members, seg.as_of) == (2, date(2025, 4, 25))
        backend = connect(cfg)
        try:
            assert service.history(backend, seg) == [{"at": T2, "entered": 1, "left": 1},
                                                    {"at": T1, "entered": 2, "left": 0}]
        finally:
            backend.disconnect()


def test_segments_are_kept_apart(cfg: Settings) -> None:
    create(cfg, "A", doc_examples()["never-bought"])
    create(cfg, "B", doc_examples()["vip-tea"])
    refresh(cfg, "A", AS_OF, T1)
    refresh(cfg, "B", AS_OF, T1)
    names = {_id(cfg, "A"): "A", _id(cfg, "B"): "B"}
    found = sorted((names[s], c) for s, c in rows(cfg, "SELECT segment_id, customer_id FROM segment_members"))
    assert found == [("A", "c4"), ("A", "c5"), ("B", "c1")]


def _id(cfg: Settings, name: str) -> str:
    with session_scope(cfg) as session:
        return service.get_segment(session, name).id


def test_a_failed_refresh_leaves_the_membership_as_it_was(
    cfg: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(cfg, "Tea", doc_examples()["bought-tea-30d"], tag="tea-recent")
    refresh(cfg, "Tea", AS_OF, T1)
    before = rows(cfg, "SELECT * FROM segment_members ORDER BY ALL"), rows(cfg, "SELECT * FROM customer_tags")

    def boom(*_args: Any) -> Any:
        raise RuntimeError("crash after every statement of the refresh ran")

    monkeypatch.setattr(repository, "MembershipChange", boom)  # built last, inside the transaction
    with pytest.raises(RuntimeError):
        refresh(cfg, "Tea", date(2025, 4, 25), T2)
    after = rows(cfg, "SELECT * FROM segment_members ORDER BY ALL"), rows(cfg, "SELECT * FROM customer_tags")
    assert after == before
    assert len(rows(cfg, "SELECT * FROM segment_membership_events")) == 2


def test_tag_rules_tag_members_and_untag_leavers(cfg: Settings) -> None:
    rule_id = create(cfg, "Recent tea buyers", doc_examples()["bought-tea-30d"], tag="tea-recent")
    tag(cfg, "tea-recent", add=["c1"])  # also given by hand to c1
    first = refresh(cfg, "Recent tea buyers", AS_OF, T1)
    assert (first.tagged, first.untagged) == (2, 0)
    second = refresh(cfg, "Recent tea buyers", date(2025, 4, 25), T2)
    assert (second.tagged, second.untagged) == (1, 1)  # c4 gets it, c1 loses the rule's tag
    tags = rows(cfg, "SELECT customer_id, source, rule_id FROM customer_tags WHERE tag = 'tea-recent' "
                     "ORDER BY 1, 2")
    assert tags == [("c1", "manual", None), ("c3", "rule", rule_id), ("c4", "rule", rule_id)]
    # The tag is visible to segment conditions (c1 still carries it by hand).
    backend = connect(cfg)
    try:
        ctx = service.context(cfg, backend, AS_OF)
        out = service.preview(backend, {"type": "tag", "tags": ["tea-recent"]}, ctx)
        assert {s.customer_id for s in out.sample} == {"c1", "c3", "c4"}
        listed = {r["tag"]: r for r in service.list_tags(backend)}
        assert listed["tea-recent"] == {
            "tag": "tea-recent", "customers": 3, "manual": 1, "rule": 2, "imported": 0}
        assert listed["tea"] == {"tag": "tea", "customers": 2, "manual": 0, "rule": 0, "imported": 2}
    finally:
        backend.disconnect()


def test_a_tag_rule_cannot_test_its_own_tag(cfg: Settings) -> None:
    with pytest.raises(SegmentDefinitionError, match="cannot test the tag 'vip' itself"):
        create(cfg, "VIPs", {"any": [{"type": "tag", "tags": ["vip"]}]}, tag="vip")


def test_manual_tags(cfg: Settings) -> None:
    assert tag(cfg, "wholesale", add=["c2", "c6", "c2"]).added == 2
    assert tag(cfg, "wholesale", add=["c2"]).added == 0  # already there
    with pytest.raises(InvalidArgumentError, match=r"unknown customer.*'nobody'"):
        tag(cfg, "wholesale", add=["c1", "nobody"])
    assert tag(cfg, "wholesale", remove=["c6", "c5"]).removed == 1
    assert rows(cfg, "SELECT customer_id FROM customer_tags WHERE tag = 'wholesale'") == [("c2",)]
    tag(cfg, "vip", remove=["c1"])  # an imported tag: only manual ones are removed
    backend = connect(cfg)
    try:
        assert service.customer_tag_list(backend, "c1") == ["tea", "vip"]
    finally:
        backend.disconnect()
    for bad in ("", "a;b", "x" * 65, "tab\there"):
        with pytest.raises(InvalidArgumentError):
            tag(cfg, bad, add=["c1"])


def test_export_masks_contact_details_for_analysts(cfg: Settings) -> None:
    create(cfg, "Everyone", {"all": []})
    refresh(cfg, "Everyone", AS_OF, T1)
    backend = connect(cfg)
    try:
        with session_scope(cfg) as session:
            member_rows = service.member_rows(backend, service.get_segment(session, "Everyone"))
    finally:
        backend.disconnect()

    def parse(can_see_pii: bool) -> list[dict[str, str]]:
        text = "".join(service.csv_chunks(member_rows, can_see_pii=can_see_pii, chunk=2))
        return list(csv.DictReader(io.StringIO(text)))

    full, masked = parse(True), parse(False)
    assert [r["customer_id"] for r in full] == ["c1", "c2", "c3", "c4", "c5", "c6"]
    assert (full[0]["email"], full[0]["phone"]) == ("alice@example.com", "13800138000")
    assert (masked[0]["email"], masked[0]["phone"]) == ("a***@example.com", "138****8000")
    assert masked[2]["phone"] == "+86 139-****-1111"  # a phone starting with + is not a formula
    assert masked[4]["name"] == "'=HYPERLINK(\"http://evil.example\")"  # a formula is neutralised
    assert full[0]["entered_at"] == "2025-04-01 02:00:00+00:00"  # without a zone: UTC, said so
    assert full[0]["signed_up_at"] == "2025-03-20 02:00:00+00:00"
    # in the shop's zone, as the console shows times, with the offset
    shop_time = list(csv.DictReader(io.StringIO("".join(
        service.csv_chunks(member_rows, can_see_pii=True, zone=ZoneInfo("Asia/Shanghai"))))))
    assert shop_time[0]["entered_at"] == "2025-04-01 10:00:00+08:00"
    assert shop_time[0]["signed_up_at"] == "2025-03-20 10:00:00+08:00"
    assert full[5]["name"] == ""  # c6 is known only from orders


def test_export_before_any_refresh_says_so(cfg: Settings) -> None:
    create(cfg, "Never refreshed", {"all": []})
    backend = connect(cfg)
    try:
        with session_scope(cfg) as session:
            seg = service.get_segment(session, "Never refreshed")
            with pytest.raises(service.NotRefreshedError, match="refresh it first"):
                service.member_rows(backend, seg)
    finally:
        backend.disconnect()


def test_delete_removes_members_and_rule_tags_and_keeps_history(cfg: Settings) -> None:
    seg_id = create(cfg, "Tea", doc_examples()["bought-tea-30d"], tag="tea-recent")
    refresh(cfg, "Tea", AS_OF, T1)
    con = open_duckdb(cfg)
    try:
        with session_scope(cfg) as session:
            removed = service.delete_segment(session, service.get_segment(session, seg_id),
                                             service.direct_writer(con), principal=None, actor_name="tests")
    finally:
        con.close()
    assert removed == 2
    assert rows(cfg, "SELECT count(*) FROM segment_members") == [(0,)]
    assert rows(cfg, "SELECT count(*) FROM customer_tags") == [(0,)]
    assert rows(cfg, "SELECT count(*) FROM segment_membership_events") == [(2,)]
    with session_scope(cfg) as session:
        assert session.get(Segment, seg_id) is None


def test_names_are_unique(cfg: Settings) -> None:
    create(cfg, "Twice", {"all": []})
    with pytest.raises(service.SegmentExistsError):
        create(cfg, " Twice ", {"all": []})
    with pytest.raises(service.SegmentNotFoundError):
        with session_scope(cfg) as session:
            service.get_segment(session, "Thrice")


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def cli(cfg: Settings) -> Iterator[Any]:
    app = typer.Typer()
    app.add_typer(segments_app, name="segments")
    app.add_typer(tags_app, name="tags")
    runner = CliRunner()
    set_settings(cfg)

    def run(*args: str) -> Any:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    yield run
    set_settings(None)


def test_cli_round_trip(cli: Any, cfg: Settings, tmp_path: Path) -> None:
    definition = tmp_path / "viewed.json"
    definition.write_text(json.dumps(doc_examples()["viewed-not-bought"]), encoding="utf-8")
    preview = json.loads(cli("segments", "preview", "--file", str(definition), "--as-of", "2025-03-31",
                             "--json").stdout)
    assert preview["count"] == 2
    assert {s["customer_id"] for s in preview["sample"]} == {"c2", "c4"}
    assert "saved segment Viewed" in cli("segments", "create", "Viewed", "--file", str(definition)).stdout
    refreshed = json.loads(cli("segments", "refresh", "Viewed", "--as-of", "2025-03-31", "--json").stdout)
    assert (refreshed["members"], refreshed["entered"], refreshed["left"]) == (2, 2, 0)
    listed = json.loads(cli("segments", "list", "--json").stdout)
    assert [(s["name"], s["members"], s["as_of"]) for s in listed] == [("Viewed", 2, "2025-03-31")]
    out_file = tmp_path / "viewed.csv"
    cli("segments", "export", "Viewed", "--out", str(out_file), "--mask")
    exported = list(csv.DictReader(out_file.open(encoding="utf-8")))
    assert [(r["customer_id"], r["email"]) for r in exported] == [
        ("c2", "b***@shop.cn"), ("c4", "d***@mail.com")]
    assert "added to 2" in cli("tags", "add", "follow-up", "c2", "c4").stdout
    tags = {t["tag"]: t["customers"] for t in json.loads(cli("tags", "list", "--json").stdout)}
    assert tags == {"follow-up": 2, "tea": 2, "vip": 1}
    shown = json.loads(cli("segments", "show", "Viewed", "--json").stdout)
    assert shown["history"][0]["entered"] == 2
    assert json.loads(cli("segments", "schema").stdout)["title"] == "Growthwheel segment definition"
    assert "1 member" not in cli("segments", "refresh", "--all", "--as-of", "2025-03-31").stdout
    assert "deleted segment Viewed (2 member(s) removed)" in cli("segments", "delete", "Viewed").stdout


def test_cli_refuses_a_bad_file_in_one_line(cli: Any, tmp_path: Path) -> None:
    from growthwheel.errors import GrowthwheelError

    bad = tmp_path / "bad.json"
    bad.write_text('{"all": [{"type": "orders", "value": -1.5}]}', encoding="utf-8")
    with pytest.raises(GrowthwheelError, match=r"all\[0\]: count is compared with whole numbers"):
        cli("segments", "preview", "--file", str(bad))
