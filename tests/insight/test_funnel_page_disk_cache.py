"""The funnel page keeps the events' facts (identity links, event types, last day) in the data
directory's cache folder: the first visit after a restart reads them instead of scanning every
event, the same answer; a change of the events, a corrupt, foreign or unwritable cache all give the
answer of the events as they are (computed again), never a stale one or a 500."""

from __future__ import annotations

import os
import re
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts import service as accounts
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.insight.funnels import identity_links
from growthwheel.insight.pages import analyses, funnel_cache
from growthwheel.store import db
from growthwheel.warehouse.ingest import import_files
from served_app import log_client_in

ADMIN = ("funnel-disk@example.com", "pw-funnel-0123456789")
HEADER = "event_id,type,occurred_at,customer_id,anonymous_id\n"
# a9 browsed anonymously, then added to the cart signed in as c2: one person (the link a9 -> c2).
EVENTS = HEADER + """e1,view,2024-03-01T10:00:00Z,c1,
e2,add_to_cart,2024-03-01T10:05:00Z,c1,
e3,view,2024-03-02T09:00:00Z,,a9
e4,add_to_cart,2024-03-02T09:10:00Z,c2,a9
e5,view,2024-03-03T09:00:00Z,,a7
"""
# c1, c2 (through a9) and a7 viewed; c1 and c2 added to the cart.
ENTRANTS = [3, 2]


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A small shop's data directory (events imported, an admin), the page's memory empty."""
    monkeypatch.setattr(funnel_cache, "_funnels", OrderedDict())
    settings = Settings(data_dir=tmp_path / "data", database_url=None)
    events = tmp_path / "events.csv"
    events.write_text(EVENTS, encoding="utf-8")
    import_files("events", [events], cfg=settings)
    db.migrate(settings)
    with db.session_scope(settings) as session:
        accounts.create_user(session, ADMIN[0], "admin", ADMIN[1])
    try:
        yield settings
    finally:
        db.engine(settings).dispose()


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the events' facts computed from the events (each call logged)."""
    calls: list[str] = []
    for name in ("identity_links", "event_types"):
        real = getattr(analyses, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(analyses, name, counted)
    return calls


def _visit(cfg: Settings, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Start a server on ``cfg`` (nothing in memory, as after a restart), open the funnel page
    once and stop it: the entrants of the first two steps the page's chart shows."""
    monkeypatch.setattr(funnel_cache, "_funnels", OrderedDict())
    with TestClient(create_app(cfg)) as client:
        log_client_in(client, *ADMIN)
        page = client.get("/insight/funnel", params={"days": "30"})
    assert page.status_code == 200, page.text[-2000:]
    found = re.search(r'"entrants": \[([^\]]*)\]', page.text)
    assert found is not None, page.text[-3000:]
    return [int(n) for n in re.findall(r"\d+", found.group(1))][:2]


def _stamp(cfg: Settings) -> str:
    con = ibis.duckdb.connect(str(cfg.warehouse_path), read_only=True)
    try:
        return funnel_cache.events_stamp(con)
    finally:
        con.disconnect()


def _cache_folder(cfg: Settings) -> list[str]:
    return sorted(p.name for p in (cfg.data_dir / funnel_cache.CACHE_FOLDER).iterdir())


def test_a_restart_reads_the_events_facts_from_the_cache_with_the_same_answer(
    cfg: Settings, computed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _visit(cfg, monkeypatch) == ENTRANTS
    assert sorted(computed) == ["event_types", "identity_links"]  # the first visit ever: from the events
    assert _cache_folder(cfg) == [funnel_cache.FACTS_FILE]  # no temporary file left behind
    kept = funnel_cache.load_facts(funnel_cache.facts_file(cfg.data_dir), _stamp(cfg))
    assert kept is not None
    assert kept.links is not None
    assert sorted(kept.links.to_pylist(), key=str) == [{"anonymous_id": "a9", "customer_id": "c2"}]
    assert kept.types == ["view", "add_to_cart"]
    computed.clear()
    assert _visit(cfg, monkeypatch) == ENTRANTS  # after a restart: the same answer …
    assert sorted(computed) == []  # … without scanning the events for the links or the types


def _all_links(cfg: Settings) -> list[tuple[str, str]]:
    """The identity links of every event in the warehouse now, as pairs."""
    con = ibis.duckdb.connect(str(cfg.warehouse_path), read_only=True)
    try:
        links = identity_links(con.table("events"))
    finally:
        con.disconnect()
    return sorted((r["anonymous_id"], r["customer_id"]) for r in links.to_pylist())


def _kept_links(cfg: Settings) -> list[tuple[str, str]]:
    kept = funnel_cache.load_facts(funnel_cache.facts_file(cfg.data_dir), _stamp(cfg))
    assert kept is not None
    assert kept.links is not None
    return sorted((r["anonymous_id"], r["customer_id"]) for r in kept.links.to_pylist())


def test_an_import_that_only_adds_events_grows_the_kept_links(
    cfg: Settings, computed: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert _visit(cfg, monkeypatch) == ENTRANTS
    # New events only: a7 signs in as c3 (a new link) and a9 is seen with c0, smaller than c2 (its
    # link moves to c0: a9's view is c0's now, and c2's cart has no view before it).
    more = tmp_path / "more.csv"
    more.write_text(HEADER + "e6,add_to_cart,2024-03-03T09:20:00Z,c3,a7\n"
                    "e7,view,2024-03-03T09:25:00Z,c0,a9\n", encoding="utf-8")
    import_files("events", [more], cfg=cfg)
    computed.clear()
    assert _visit(cfg, monkeypatch) == [3, 2]  # c1, c0 (a9) and c3 (a7) viewed; c1 and c3 carted
    assert sorted(computed) == ["event_types"]  # the links grown from the kept ones, not a scan
    assert _kept_links(cfg) == _all_links(cfg) == [("a7", "c3"), ("a9", "c0")]


def test_an_import_that_replaces_events_or_an_unlogged_change_reads_every_event(
    cfg: Settings, computed: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert _visit(cfg, monkeypatch) == ENTRANTS
    # e4 again with another customer: a replaced event (its old link may be gone), not an added one.
    again = tmp_path / "again.csv"
    again.write_text(HEADER + "e4,add_to_cart,2024-03-02T09:10:00Z,c9,a9\n", encoding="utf-8")
    import_files("events", [again], cfg=cfg)
    computed.clear()
    assert _visit(cfg, monkeypatch) == [3, 2]  # c1, c9 (a9) and a7 viewed; c1 and c9 carted
    assert sorted(computed) == ["event_types", "identity_links"]
    assert _kept_links(cfg) == _all_links(cfg) == [("a9", "c9")]
    # An import that adds an event, and a change the imports log does not know of (a row gone):
    # the row count disagrees with the log, so every event is read again.
    more = tmp_path / "more.csv"
    more.write_text(HEADER + "e8,add_to_cart,2024-03-03T09:20:00Z,c3,a7\n", encoding="utf-8")
    import_files("events", [more], cfg=cfg)
    con = duckdb.connect(str(cfg.warehouse_path))
    try:
        con.execute("DELETE FROM events WHERE event_id = 'e4'")
    finally:
        con.close()
    computed.clear()
    assert _visit(cfg, monkeypatch) == [3, 2]  # c1, a9 and c3 (a7) viewed; c1 and c3 carted
    assert sorted(computed) == ["event_types", "identity_links"]
    assert _kept_links(cfg) == _all_links(cfg) == [("a7", "c3")]


def test_events_of_other_content_with_the_same_counts_are_not_served_the_kept_links(
    cfg: Settings, computed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _visit(cfg, monkeypatch) == ENTRANTS
    # Another warehouse put in its place with as many events and imports, differing in one row
    # (as the imports write it: its content hash differs).
    con = duckdb.connect(str(cfg.warehouse_path))
    try:
        con.execute("UPDATE events SET customer_id = 'c5', _row_hash = _row_hash + 1 "
                    "WHERE event_id = 'e4'")
    finally:
        con.close()
    computed.clear()
    assert _visit(cfg, monkeypatch) == ENTRANTS
    assert sorted(computed) == ["event_types", "identity_links"]
    assert _kept_links(cfg) == _all_links(cfg) == [("a9", "c5")]


def _garbage(path: Path, stamp: str) -> None:
    path.write_bytes(b"not an arrow file at all")


def _truncated(path: Path, stamp: str) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _other_state(path: Path, stamp: str) -> None:
    # A well-formed file of another state (another shop's, or before an import): wrong links.
    wrong = pa.table({"anonymous_id": ["a9", "a7"], "customer_id": ["c1", "c1"]})
    funnel_cache.save_facts(path, '["duckdb", 9, "2001-01-01 00:00:00", 5]',
                            funnel_cache.EventFacts(["view", "add_to_cart"], None, wrong))


def _wrong_columns(path: Path, stamp: str) -> None:
    # The right state but columns this version does not know: ignored, not trusted.
    table = pa.table({"anon": ["a9"], "customer": [1]}).replace_schema_metadata({
        "format": funnel_cache.FACTS_FORMAT, "stamp": stamp, "event_types": '["view"]',
        "last_day": "2024-03-03", "links": "1", "imports": "[]"})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _wrong_format(path: Path, stamp: str) -> None:
    table = pa.table({"anonymous_id": ["a9"], "customer_id": ["c1"]}).replace_schema_metadata({
        "format": "growthwheel.funnel-events/999", "stamp": stamp, "event_types": '["view"]',
        "last_day": "2024-03-03", "links": "1"})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


@pytest.mark.parametrize("spoil", [_garbage, _truncated, _other_state, _wrong_columns, _wrong_format])
def test_a_corrupt_or_foreign_file_is_not_read(tmp_path: Path, spoil: Any) -> None:
    path = tmp_path / funnel_cache.FACTS_FILE
    links = pa.table({"anonymous_id": ["a9"], "customer_id": ["c2"]})
    funnel_cache.save_facts(path, "stamp", funnel_cache.EventFacts(["view"], None, links))
    assert funnel_cache.load_facts(path, "stamp") is not None
    spoil(path, "stamp")
    assert funnel_cache.load_facts(path, "stamp") is None


@pytest.mark.parametrize("spoil", [_garbage, _other_state])
def test_the_page_ignores_a_corrupt_or_foreign_cache_and_replaces_it(
    cfg: Settings, computed: list[str], monkeypatch: pytest.MonkeyPatch, spoil: Any
) -> None:
    path = funnel_cache.facts_file(cfg.data_dir)
    path.parent.mkdir(parents=True)
    spoil(path, _stamp(cfg))
    assert _visit(cfg, monkeypatch) == ENTRANTS  # from the events, not from the spoilt file
    assert sorted(computed) == ["event_types", "identity_links"]
    kept = funnel_cache.load_facts(path, _stamp(cfg))  # written again, whole
    assert kept is not None
    assert kept.links is not None
    assert kept.links.to_pylist() == [{"anonymous_id": "a9", "customer_id": "c2"}]


def test_a_cache_that_cannot_be_written_costs_a_scan_not_an_error(
    cfg: Settings, computed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (cfg.data_dir / funnel_cache.CACHE_FOLDER).write_text("a file where the folder would be")
    assert _visit(cfg, monkeypatch) == ENTRANTS
    assert sorted(computed) == ["event_types", "identity_links"]


def test_a_write_that_fails_half_way_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / funnel_cache.CACHE_FOLDER / funnel_cache.FACTS_FILE
    old = funnel_cache.EventFacts(["view"], None, pa.table({"anonymous_id": ["a1"], "customer_id": ["c1"]}))
    funnel_cache.save_facts(path, "old", old)

    def fails(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(funnel_cache.os, "replace", fails)
    new = funnel_cache.EventFacts(["view", "purchase"], None, None)
    with pytest.raises(OSError, match="disk full"):
        funnel_cache.save_facts(path, "new", new)
    assert sorted(p.name for p in path.parent.iterdir()) == [funnel_cache.FACTS_FILE]
    kept = funnel_cache.load_facts(path, "old")
    assert kept is not None
    assert kept.types == ["view"]
    assert kept.links is not None
    assert kept.links.to_pylist() == [{"anonymous_id": "a1", "customer_id": "c1"}]
    assert funnel_cache.load_facts(path, "new") is None


def test_a_dead_writers_temporary_file_is_removed_by_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / funnel_cache.FACTS_FILE
    dead = tmp_path / f".{funnel_cache.FACTS_FILE}.dead.tmp"
    live = tmp_path / f".{funnel_cache.FACTS_FILE}.live.tmp"  # another writer, still writing
    for left in (dead, live):
        left.write_bytes(b"half")
    long_ago = time.time() - 2 * funnel_cache._LEFT_BEHIND_SECONDS
    os.utime(dead, (long_ago, long_ago))
    funnel_cache.save_facts(path, "stamp", funnel_cache.EventFacts(["view"], None, None))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, live.name])
