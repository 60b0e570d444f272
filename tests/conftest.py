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
import sqlite3
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


#: The test files that take longest (seconds per file on a 2-core machine, ``--durations``),
#: longest first. ``make test`` runs the files on two xdist workers (``--dist loadfile
#: --no-loadscope-reorder``) in the order of the collection; these start first so that no worker
#: is left with a long file while the other has finished. A file missing here only runs later.
LONGEST_FIRST = (
    "tests/warehouse/test_spark_ingest.py",  # ~200 s
    "tests/warehouse/test_engines.py",  # ~180 s
    "tests/platform/test_security.py",  # ~160 s (the OpenAPI fuzz run)
    "tests/journeys/test_crash_smtp.py",  # ~100 s (10,000 emails, twice)
    "tests/e2e/test_zh_console.py",
    "tests/segments/test_funnel_condition.py",
    "tests/platform/test_crowd.py",
    "tests/test_demo_cli.py",
    "tests/segments/test_segment_line_categories.py",
    "tests/jobs/test_crash.py",
    "tests/warehouse/test_spark_server.py",
    "tests/insight/test_clv_summary.py",
    "tests/e2e/test_drill_to_action.py",
    "tests/warehouse/test_spark.py",
    "tests/insight/test_rfm.py",
    "tests/platform/test_owner.py",
    "tests/sim/test_living_demo.py",
    "tests/cli/test_analyst.py",
)


def _longest_first(items: list[pytest.Item]) -> None:
    """Order ``items`` by file: :data:`LONGEST_FIRST`, then the other files by their number of
    tests, most first (xdist's own order); tests keep their order within a file."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    files = [item.nodeid.split("::", 1)[0] for item in items]
    per_file: dict[str, int] = {}
    for name in files:
        per_file[name] = per_file.get(name, 0) + 1
    keys = {id(item): (rank.get(name, len(rank)), -per_file[name], name)
            for item, name in zip(items, files, strict=True)}
    items.sort(key=lambda item: keys[id(item)])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest files first (:data:`LONGEST_FIRST`). Tests marked ``spark_connect`` run only
    when asked for by ``-m`` (``make test`` runs them in a second pytest process): pyspark routes
    its functions to Spark Connect by a process-wide switch, so one process cannot use Spark in
    process and Spark Connect side by side."""
    _longest_first(items)
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

    _migrated: str | None = None

    def create_database(self, *, migrated: bool = False) -> str:
        """A new database; returns its name. Empty, or with ``migrated`` a copy of a store
        migrated to the newest migration (:meth:`migrated_template`)."""
        template = self.migrated_template() if migrated else None
        self._counter += 1
        name = f"gw_test_{os.getpid()}_{self._counter}"
        self._admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def migrated_template(self) -> str:
        """A database migrated by ``db.migrate`` once (from empty, every migration), that
        :meth:`create_database` copies: a copy takes ~0.2 s, a migration ~2 s."""
        if self._migrated is None:
            name = self.create_database()
            cfg = Settings(data_dir=self.directory / "template", database_url=self.url(name))
            db.migrate(cfg)
            _dispose(cfg)  # a template must have no connections when it is copied
            self._migrated = name
        return self._migrated

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


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store migrated by ``db.migrate`` once (from empty, every migration), as one file
    that ``store_cfg`` copies: a copy takes milliseconds, a migration ~0.5 s."""
    cfg = Settings(data_dir=tmp_path_factory.mktemp("migrated-sqlite"), database_url=None)
    db.migrate(cfg)
    _dispose(cfg)
    source = Path(cfg.store_url.removeprefix("sqlite:///"))
    copy = source.with_name("template.sqlite")
    live, out = sqlite3.connect(source), sqlite3.connect(copy)
    try:
        live.backup(out)  # one consistent file, whatever the WAL still held
    finally:
        live.close()
        out.close()
    return copy


@pytest.fixture(params=["sqlite", "postgresql"])
def store_cfg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a fresh, migrated operational store: SQLite in ``tmp_path`` or a new PG database.

    Both start as a copy of a store migrated once per test session (every migration, from
    empty); ``db.migrate`` then finds the copy at the newest migration, as on any start.
    """
    if request.param == "sqlite":
        cfg = Settings(data_dir=tmp_path, database_url=None)
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"),
                        cfg.store_url.removeprefix("sqlite:///"))
        db.migrate(cfg)
        yield cfg
        _dispose(cfg)
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database(migrated=True)
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
