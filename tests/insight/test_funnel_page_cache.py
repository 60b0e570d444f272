"""The funnel page remembers its answers per version of the events: an import of other tables
(orders …) keeps them, an import of events replaces them (and the page shows the new counts)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts import service as accounts
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.insight.pages import analyses
from growthwheel.store import db
from growthwheel.warehouse.ingest import import_files
from served_app import log_client_in

ADMIN = ("funnel@example.com", "pw-funnel-0123456789")
EVENTS = """event_id,type,occurred_at,customer_id,anonymous_id
e1,view,2024-03-01T10:00:00Z,c1,
e2,add_to_cart,2024-03-01T10:05:00Z,c1,
e3,view,2024-03-02T09:00:00Z,c2,
e4,view,2024-03-03T09:00:00Z,,a9
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    folder = tmp_path_factory.mktemp("funnel_cache")
    cfg = Settings(data_dir=folder / "data", database_url=None)
    import_files("events", [_write(folder, "events.csv", EVENTS)], cfg=cfg)
    db.migrate(cfg)
    with db.session_scope(cfg) as session:
        accounts.create_user(session, ADMIN[0], "admin", ADMIN[1])
    try:
        with TestClient(create_app(cfg)) as client:
            log_client_in(client, *ADMIN)
            yield client, folder
    finally:
        db.engine(cfg).dispose()


def _import(client: TestClient, table: str, path: Path) -> None:
    owner: Any = client.app.state.warehouse  # type: ignore[attr-defined]
    job = owner.job(owner.submit_import(table, [path]))
    assert job.wait(120)
    assert job.status == "done", job.error


def _entrants(page: str) -> list[int]:
    """The entrants per step the page's chart is drawn from."""
    found = re.search(r'"entrants": \[([^\]]*)\]', page)
    assert found is not None, page[-3000:]
    return [int(n) for n in re.findall(r"\d+", found.group(1))]


def test_answers_are_kept_across_other_imports_and_replaced_by_an_events_import(
    served: tuple[TestClient, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, folder = served
    calls: list[int] = []
    real = analyses.funnel_with_stops

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(analyses, "funnel_with_stops", counted)
    first = client.get("/insight/funnel", params={"days": "30"})
    assert first.status_code == 200
    assert _entrants(first.text)[:2] == [3, 1]  # c1, c2 and a9 viewed; c1 added to the cart
    assert len(calls) == 1
    _import(client, "orders", _write(folder, "orders.csv",
                                     "order_id,customer_id,ordered_at,total\no1,c1,2024-03-01T11:00:00Z,9.90\n"))
    again = client.get("/insight/funnel", params={"days": "30"})
    assert _entrants(again.text) == _entrants(first.text)
    assert len(calls) == 1  # remembered: the events did not change
    _import(client, "events", _write(folder, "more.csv",
                                     "event_id,type,occurred_at,customer_id,anonymous_id\n"
                                     "e5,add_to_cart,2024-03-02T09:30:00Z,c2,\n"))
    after = client.get("/insight/funnel", params={"days": "30"})
    assert len(calls) == 2  # the events changed: computed again
    assert _entrants(after.text)[:2] == [3, 2]
