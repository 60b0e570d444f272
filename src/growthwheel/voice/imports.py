"""Review files into the warehouse and the queue: ``generic`` CSV (the warehouse's ``reviews``
columns) or a ``taobao`` review export (:mod:`growthwheel.voice.marketplace`), through the one
import path (validation, quarantine, keyed merge), then :func:`growthwheel.voice.service.sync`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from growthwheel.config import Settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.voice import marketplace, service


def import_file(cfg: Settings, path: Path, fmt: str = "generic", *, name: str | None = None
                ) -> dict[str, Any]:
    """Import one review file and open the cases of its negative, unanswered reviews; return the
    import's result and the sync's counts. The warehouse must not be held by a running server."""
    from growthwheel.store.db import migrate, session_scope
    from growthwheel.warehouse import connect, ingest

    if fmt not in marketplace.FORMATS:
        raise InvalidArgumentError(f"--format: {fmt!r} is not one of {', '.join(marketplace.FORMATS)}")
    answered: list[dict[str, Any]] = []
    if fmt == "generic":
        result = ingest.import_files("reviews", [path], cfg=cfg, names=[name] if name else None)
    else:
        if not path.is_file():
            raise InvalidArgumentError(f"{name or path}: no such file")
        rows, answered = marketplace.read_taobao(path, name)
        result = ingest.import_rows("reviews", rows, name or str(path), cfg=cfg)
    migrate(cfg)
    con = connect(cfg)
    try:
        with session_scope(cfg) as session:
            if answered:  # answered in the seller centre: recorded as replied, never queued
                replies = {a["review_id"]: a["reply"] for a in answered}
                t = con.table("reviews")
                stored = t.filter(t.review_id.isin(list(replies))).to_pyarrow().to_pylist()
                service.open_cases(session, [{**r, "reply": replies[r["review_id"]]} for r in stored])
            synced = service.sync(session, con)
    finally:
        con.disconnect()
    return {"import": result.to_dict(), "sync": synced}
