"""Fixtures of the warehouse tests: a local Spark Connect server (``spark_connect``).

The server is the one that ships in the pyspark wheel (``jars/spark-connect_*.jar``), started with
``spark-submit --class org.apache.spark.sql.connect.service.SparkConnectServer`` in local mode, on
127.0.0.1 and a free port, once per test session, and stopped at the end. Its log is kept in a
temporary file and shown if it does not come up.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CONNECT_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
START_TIMEOUT = 240.0  # seconds; it starts in ~20 s alone, more on a busy 2-core machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def connect_server_command(port: int, scratch: Path) -> list[str]:
    """The ``spark-submit`` command line of a local Spark Connect server on 127.0.0.1:``port``.

    The server gets the settings Growthwheel gives its own local Spark (UTC, 4 shuffle partitions,
    a 1 GB driver, no UI); sessions also set the SQL ones themselves when they open.
    """
    import pyspark

    from growthwheel.warehouse.spark import SESSION_CONF

    home = Path(pyspark.__file__).parent
    jars = sorted((home / "jars").glob("spark-connect_*.jar"))
    if not jars:
        pytest.fail(f"no Spark Connect server jar under {home / 'jars'} (pyspark {pyspark.__version__})")
    conf = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.memory": "1g",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.warehouse.dir": str(scratch / "spark-sql-warehouse"),
        **SESSION_CONF,
    }
    command = [str(home / "bin" / "spark-submit"), "--class", CONNECT_CLASS, "--master", "local[2]",
               "--name", "growthwheel-test-connect"]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    return [*command, str(jars[-1])]


@pytest.fixture(scope="session")
def spark_connect() -> Iterator[str]:
    """``sc://127.0.0.1:<port>`` of a Spark Connect server running for the whole test session."""
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        pytest.skip("Spark Connect needs Java 17+: no `java` on PATH and no JAVA_HOME")
    pytest.importorskip("grpc", reason="the Spark Connect client needs grpcio (pip install -e .[spark])")
    import pyspark

    scratch = Path(tempfile.mkdtemp(prefix="gw-connect-"))
    port = _free_port()
    log_path = scratch / "server.log"
    env = {**os.environ, "SPARK_HOME": str(Path(pyspark.__file__).parent),
           "PYSPARK_PYTHON": sys.executable, "SPARK_LOG_DIR": str(scratch)}
    env.pop("SPARK_REMOTE", None)
    env.pop("SPARK_CONNECT_MODE_ENABLED", None)
    started = time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(connect_server_command(port, scratch), stdout=log,
                                   stderr=subprocess.STDOUT, env=env, cwd=scratch)
    try:
        while not _listening(port):
            if process.poll() is not None or time.perf_counter() - started > START_TIMEOUT:
                tail = log_path.read_text(errors="replace")[-4000:]
                pytest.fail(f"the Spark Connect server did not start (exit {process.poll()}):\n{tail}")
            time.sleep(0.5)
        print(f"\nSpark Connect server on 127.0.0.1:{port} started in "
              f"{time.perf_counter() - started:.1f} s")
        yield f"sc://127.0.0.1:{port}"
    finally:
        from growthwheel.warehouse import spark

        for url in [u for u in spark._remote if u.endswith(f":{port}")]:
            spark._remote.pop(url).stop()
        if not spark._remote:
            os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)
