"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# ---------------------------------------------------------------------------------------------
# Spark (tests marked ``spark``): one local Spark per test session, because it takes 10-30 s
# to start. Tests ask for ``spark_session``; ``spark.connect(cfg)`` then reuses it.
# ---------------------------------------------------------------------------------------------


def java_missing_reason() -> str | None:
    """Why Spark cannot start here (no Java), or ``None`` if a ``java`` executable is found."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return None
    if shutil.which("java"):
        return None
    return "Spark needs Java 17+: no `java` on PATH and no JAVA_HOME (install a JDK to run these)"


@pytest.fixture(scope="session")
def spark_session() -> Iterator[Any]:
    """The process's local SparkSession (``growthwheel.warehouse.spark.session``), started once.

    Skips the test when Java is missing. Stopped at the end of the test session.
    """
    reason = java_missing_reason()
    if reason:
        pytest.skip(reason)
    from growthwheel.config import Settings
    from growthwheel.warehouse import spark

    started = time.perf_counter()
    session = spark.session(Settings(warehouse="spark"))
    print(f"\nSpark local session started in {time.perf_counter() - started:.1f} s")
    yield session
    spark.stop_session()
