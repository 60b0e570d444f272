"""Fixtures shared by the whole test suite.

Spark: ``spark_session``. Operational store:
- ``pg_cluster`` (session): a throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl``) in a temp
  dir on a free loopback port, trust auth, stopped and deleted at the end. As root the server
  runs as the ``postgres`` user. Missing binaries fail the test with a clear message.
- ``store_cfg`` (parametrised ``sqlite`` / ``postgresql``): ``Settings`` for a fresh, migrated
  store in ``tmp_path``; on PostgreSQL a new database per test, dropped afterwards.
- ``make_user`` / ``make_api_key``: factories that create accounts directly in the store.
- ``log_in(client, email, password)``: logs a ``TestClient`` in through ``POST /login``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from growthwheel.accounts import service
from growthwheel.config import Settings
from growthwheel.store import db
from served_app import log_client_in

# ---------------------------------------------------------------------------------------------
# Spark (tests marked ``spark``): one local Spark per test session, because it takes 10-30 s
# to start. Tests ask for ``spark_session``; ``spark.connect(cfg)`` then reuses it.
# ---------------------------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``spark_connect`` run only when asked for by ``-m`` (``make test`` runs them in
    a second pytest process): pyspark routes its functions to Spark Connect by a process-wide
    switch, so one process cannot use Spark in process and Spark Connect side by side."""
    if "spark_connect" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="Spark Connect tests run in a process of their own: "
                                   "pytest -m spark_connect (make test runs them)")
    for item in items:
        if item.get_closest_marker("spark_connect") is not None:
            item.add_marker(skip)


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


# ---------------------------------------------------------------------------------------------
# Operational store on SQLite and on a throwaway PostgreSQL cluster.
# ---------------------------------------------------------------------------------------------

PG_USER = "postgres"


def _pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl`` (PATH first, then Debian's layout)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgCluster:
    """A running throwaway PostgreSQL server."""

    port: int
    directory: Path
    _counter: int = 0

    def url(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={PG_USER} dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        """A new empty database; returns its name."""
        self._counter += 1
        name = f"gw_test_{os.getpid()}_{self._counter}"
        self._admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name`` even if connections are still open."""
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """Start a PostgreSQL cluster for the whole test session (fails clearly without binaries)."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.fail(
            "PostgreSQL binaries not found (initdb and pg_ctl on PATH or under /usr/lib/postgresql/*/bin):"
            " install PostgreSQL 15 (apt-get install postgresql-15) to run the PostgreSQL half of the suite"
        )
    as_root = os.geteuid() == 0
    directory = Path(tempfile.mkdtemp(prefix="gw-pg-"))
    data = directory / "data"
    run_as = ["runuser", "-u", PG_USER, "--"] if as_root else []
    if as_root:
        shutil.chown(directory, user=PG_USER)
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}

    def run(*args: str) -> None:
        done = subprocess.run([*run_as, *args], capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            output = done.stderr or done.stdout
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {output}")

    started = time.perf_counter()
    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", PG_USER, "-E", "UTF8", "--no-sync")
    port = 0
    for _attempt in range(5):  # the port may be taken between choosing and binding it
        port = _free_port()
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {directory} -c fsync=off"
                   " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        try:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(directory / "server.log"), "-w",
                "-t", "30", "-o", options, "start")
            break
        except RuntimeError:
            if _attempt == 4:
                log = (directory / "server.log").read_text(errors="replace")[-2000:]
                shutil.rmtree(directory, ignore_errors=True)
                pytest.fail(f"PostgreSQL did not start: {log}")
    print(f"\nPostgreSQL started on port {port} in {time.perf_counter() - started:.1f} s")
    try:
        yield PgCluster(port=port, directory=directory)
    finally:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, env=env, check=False)
        shutil.rmtree(directory, ignore_errors=True)


def _dispose(cfg: Settings) -> None:
    db.engine(cfg).dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_cfg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a fresh, migrated operational store: SQLite in ``tmp_path`` or a new PG database."""
    if request.param == "sqlite":
        cfg = Settings(data_dir=tmp_path, database_url=None)
        db.migrate(cfg)
        yield cfg
        _dispose(cfg)
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database()
    cfg = Settings(data_dir=tmp_path, database_url=cluster.url(name))
    try:
        db.migrate(cfg)
        yield cfg
    finally:
        _dispose(cfg)
        cluster.drop_database(name)


@dataclass(frozen=True)
class Account:
    """A user made by ``make_user``, with the password in clear for logging in."""

    id: str
    email: str
    password: str
    role: str


@pytest.fixture
def make_user(store_cfg: Settings) -> Callable[..., Account]:
    """``make_user(role="admin", email=None, password=None) -> Account`` in ``store_cfg``'s store."""
    counter = iter(range(1, 1_000_000))

    def make(role: str = "admin", email: str | None = None, password: str | None = None) -> Account:
        email = email or f"{role}{next(counter)}@example.com"
        password = password or f"pw-{role}-0123456789"
        with db.session_scope(store_cfg) as session:
            user = service.create_user(session, email, role, password)
            return Account(id=user.id, email=user.email, password=password, role=user.role)

    return make


@pytest.fixture
def make_api_key(store_cfg: Settings) -> Callable[..., str]:
    """``make_api_key(*scopes, name="test key") -> key`` in ``store_cfg``'s store."""

    def make(*scopes: str, name: str = "test key") -> str:
        with db.session_scope(store_cfg) as session:
            key, _row = service.create_api_key(session, name, scopes or ("read",), created_by="tests")
            return key

    return make


@pytest.fixture
def log_in() -> Callable[..., Any]:
    """``log_in(client, email, password)``: POST /login with a valid CSRF token; asserts success."""

    return log_client_in
