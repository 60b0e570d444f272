"""The warehouse of facts: schema, connections (DuckDB or Spark) and imports."""

from growthwheel.warehouse.db import connect

__all__ = ["connect"]
