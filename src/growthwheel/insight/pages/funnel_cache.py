"""What the funnel page (``/insight/funnel``) remembers, and for how long.

* **In memory**, per data directory, question and version of the events (``warehouse_version``):
  every answer, until the events change (:func:`remembered`). An import of other tables keeps them.
* **On disk**, in the data directory's ``cache`` folder (:data:`FACTS_FILE`): the facts of the
  events that every funnel question needs and that only an events import changes — the identity
  links (:func:`growthwheel.insight.funnels.identity_links`, a scan of every event), the event
  types present and the last day with events (:class:`EventFacts`). The first visit after a server
  restart then reads a small file instead of scanning every event again.

The file is trusted only for the exact state it was computed from: it carries a *stamp* (the
engine, the events' version, their row count and a hash of their content, :func:`events_stamp`)
and is used only when the warehouse's stamp now is the same; anything else (another version,
another data directory's file, a truncated or corrupt file, an unknown format) is ignored and the
facts are computed again. It is written only when the stamp did not change while the facts were
computed, to a temporary file that is renamed over the old one (a reader sees the old file or the
new one, never half of one). A cache that cannot be written (read-only or full disk) costs the
next restart a scan, nothing more. Only the local DuckDB path keeps the file: the identity links
are used there only.

After an events import (or flush) that only *added* events (the imports log says none replaced a
stored event, the file knew every earlier events import, and the row count grew by exactly what
the new ones inserted, all found under their import ids), the links are *grown* from the kept
ones with the links of the new rows only (an anonymous id's customer is the smallest seen with
it, so the smaller of the kept one and the new rows' one is the new one) instead of scanning
every event again; any other change computes them from all the events.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
from fastapi import Request
from ibis.backends import BaseBackend

from growthwheel.insight import funnels
from growthwheel.warehouse import db as warehouse_db

log = logging.getLogger(__name__)

#: Funnel results kept in memory (keyed by data directory, question and warehouse version).
FUNNEL_CACHE_SIZE = 32
#: The data directory's folder of files that can always be computed again.
CACHE_FOLDER = "cache"
#: The file of the events' facts, in :data:`CACHE_FOLDER`.
FACTS_FILE = "funnel-events.arrow"
#: Written in the file; a file of another format is ignored.
FACTS_FORMAT = "growthwheel.funnel-events/1"
_LINK_COLUMNS = ("anonymous_id", "customer_id")
#: A temporary file older than this is a dead writer's and is removed by the next write.
_LEFT_BEHIND_SECONDS = 600

_funnels: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_funnels_lock = threading.Lock()


@dataclass(frozen=True)
class _Import:
    """One events import in the imports log."""

    import_id: str
    inserted: int
    updated: int


@dataclass(frozen=True)
class EventFacts:
    """What every funnel question needs from the events: the event types present (standard ones
    in funnel order, then the others), the last shop-local day with events (``None`` without
    events) and the identity links (``anonymous_id``, ``customer_id``; ``None`` off DuckDB)."""

    types: list[str]
    last_day: date | None
    links: pa.Table | None


@dataclass(frozen=True)
class _Kept:
    """A cache file's content: the state it was computed from and the events imports it knew."""

    stamp: str
    imports: list[str]
    facts: EventFacts



def remembered(request: Request, version: tuple[int, str], question: tuple[Any, ...],
               compute: Callable[[], Any]) -> Any:
    """``compute()``, remembered in memory until the warehouse changes (``version``, from
    ``warehouse_version``): coming back to the page or switching language is then instant."""
    key = (str(request.app.state.cfg.data_dir), *question, version)
    with _funnels_lock:
        if key in _funnels:
            _funnels.move_to_end(key)
            return _funnels[key]
    value = compute()
    with _funnels_lock:
        _funnels[key] = value
        while len(_funnels) > FUNNEL_CACHE_SIZE:
            _funnels.popitem(last=False)
    return value


def facts_file(data_dir: Path) -> Path:
    """Where the events' facts of the data directory ``data_dir`` are kept."""
    return Path(data_dir) / CACHE_FOLDER / FACTS_FILE


def events_stamp(con: BaseBackend) -> str:
    """The state of the events the facts were computed from, as text: the engine, the events'
    version (``warehouse_version``), their row count and the exclusive or of their rows' hashes
    (``_row_hash``, a hash of each row's content the imports store: another warehouse with the
    same counts still differs)."""
    version = warehouse_db.warehouse_version(con, "events")
    events = con.table("events")
    measures: dict[str, Any] = {"rows": events.count()}
    if "_row_hash" in events.columns:
        measures["content"] = events._row_hash.bit_xor()
    found = events.aggregate(**measures).to_pyarrow().to_pylist()[0]
    content = found.get("content")
    return json.dumps([str(con.name), version[0], version[1], int(found["rows"]),
                       None if content is None else str(content)])


def _read(path: Path) -> _Kept | None:
    """The content of the cache file ``path``; ``None`` when there is none or it is unreadable,
    of another format or of unexpected columns."""
    try:
        with pa.OSFile(str(path), "rb") as source:
            table = pa.ipc.open_file(source).read_all()
    except FileNotFoundError:
        return None
    except Exception as exc:  # a truncated or foreign file: computed again
        log.warning("ignoring the funnel cache %s: %r", path, exc)
        return None
    try:
        meta = table.schema.metadata or {}
        if meta.get(b"format") != FACTS_FORMAT.encode():
            return None
        types = json.loads(meta[b"event_types"])
        imports = json.loads(meta[b"imports"])
        for names in (types, imports):
            if not isinstance(names, list) or not all(isinstance(t, str) for t in names):
                raise ValueError("event types or imports are not a list of names")
        day = meta[b"last_day"].decode()
        has_links = meta[b"links"] == b"1"
        if tuple(table.column_names) != _LINK_COLUMNS or not all(
            pa.types.is_string(f.type) or pa.types.is_large_string(f.type) for f in table.schema
        ):
            raise ValueError(f"unexpected columns {table.schema}")
        facts = EventFacts(
            types=types,
            last_day=date.fromisoformat(day) if day else None,
            links=table.replace_schema_metadata(None) if has_links else None,
        )
        return _Kept(meta[b"stamp"].decode(), imports, facts)
    except Exception as exc:
        log.warning("ignoring the funnel cache %s: %r", path, exc)
        return None


def load_facts(path: Path, stamp: str) -> EventFacts | None:
    """The facts kept in ``path`` when they were computed from the state ``stamp``; ``None``
    when there is no such file or it is of another state, another format, or unreadable."""
    kept = _read(path)
    return kept.facts if kept is not None and kept.stamp == stamp else None


def save_facts(path: Path, stamp: str, facts: EventFacts, imports: Sequence[str] = ()) -> None:
    """Keep ``facts`` (of the state ``stamp``, after the events imports ``imports``) in ``path``:
    written to a temporary file in the same folder, flushed to disk, then renamed over ``path``
    (temporary files a writer that died left there long ago are removed)."""
    empty = pa.array([], type=pa.string())
    links = facts.links if facts.links is not None else pa.table(dict.fromkeys(_LINK_COLUMNS, empty))
    table = links.select(list(_LINK_COLUMNS)).replace_schema_metadata({
        "format": FACTS_FORMAT,
        "stamp": stamp,
        "event_types": json.dumps(list(facts.types)),
        "last_day": facts.last_day.isoformat() if facts.last_day else "",
        "links": "1" if facts.links is not None else "0",
        "imports": json.dumps(list(imports)),
    })
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    data = sink.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    for left in path.parent.glob(f".{path.name}.*.tmp"):  # of a writer that died half-way
        with contextlib.suppress(OSError):
            if time.time() - left.stat().st_mtime > _LEFT_BEHIND_SECONDS:
                left.unlink()
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(memoryview(data))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _events_imports(con: BaseBackend) -> list[_Import]:
    """The events imports in the imports log."""
    imports = con.table(warehouse_db.IMPORTS_TABLE)
    imports = imports.filter(imports.table_name == "events")
    rows = imports.select("import_id", "inserted", "updated").to_pyarrow().to_pylist()
    return [_Import(str(r["import_id"]), int(r["inserted"] or 0), int(r["updated"] or 0)) for r in rows]


def _grown_links(con: BaseBackend, kept: _Kept, stamp: str, imports: list[_Import]) -> pa.Table | None:
    """The identity links now, from the ``kept`` ones and the events the imports since added
    (see the module docstring); ``None`` when the events changed otherwise (or cannot be told)."""
    before, now = json.loads(kept.stamp), json.loads(stamp)
    known = set(kept.imports)
    if (kept.facts.links is None or before[0] != now[0] or len(imports) != now[1]
            or len(known) != before[1] or not known <= {i.import_id for i in imports}):
        return None
    new = [i for i in imports if i.import_id not in known]
    added = sum(i.inserted for i in new)
    if not new or any(i.updated for i in new) or int(before[3]) + added != int(now[3]):
        return None
    events = con.table("events")
    rows = events.filter(events._import_id.isin([i.import_id for i in new]))
    if int(rows.count().to_pyarrow().as_py()) != added:
        return None
    schema = pa.schema([(c, pa.string()) for c in _LINK_COLUMNS])
    fresh = funnels.identity_links(rows).select(list(_LINK_COLUMNS)).cast(schema)
    both = pa.concat_tables([kept.facts.links.select(list(_LINK_COLUMNS)).cast(schema), fresh])
    smallest = both.group_by("anonymous_id").aggregate([("customer_id", "min")])
    return smallest.rename_columns(list(_LINK_COLUMNS))


def event_facts(data_dir: Path, con: BaseBackend,
                compute: Callable[[pa.Table | None], EventFacts]) -> EventFacts:
    """The events' facts: on DuckDB read from the data directory's cache when they were kept for
    the warehouse's present state, else ``compute(links)`` (``links`` grown from the kept ones
    when the events were only added to since, else ``None``: ``compute`` finds them), kept when
    the events did not change meanwhile; on other engines ``compute(None)``."""
    if con.name != "duckdb":
        return compute(None)
    path = facts_file(data_dir)
    stamp = events_stamp(con)
    kept = _read(path)
    if kept is not None and kept.stamp == stamp:
        return kept.facts
    imports = _events_imports(con)
    links = None
    if kept is not None:
        try:
            links = _grown_links(con, kept, stamp, imports)
        except Exception as exc:  # an unexpected warehouse: all the events are read instead
            log.warning("could not grow the funnel's identity links: %s", exc)
    facts = compute(links)
    if events_stamp(con) == stamp:  # the events did not change while the facts were computed
        try:
            save_facts(path, stamp, facts, [i.import_id for i in imports])
        except OSError as exc:
            log.warning("could not keep the funnel cache in %s: %s", path, exc)
    return facts
