"""The warehouse of facts: schema, connections (DuckDB or Spark) and imports.

``connect`` is imported from ``warehouse.db`` on first use, so importing a light module of this
package (``warehouse.schema``, ``warehouse.server``) does not load DuckDB and Ibis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from growthwheel.warehouse.db import connect

__all__ = ["connect"]


def __getattr__(name: str) -> Any:
    if name == "connect":
        from growthwheel.warehouse.db import connect

        return connect
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
