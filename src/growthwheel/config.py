"""Settings: one pydantic-settings class, environment prefix ``GROWTHWHEEL_``.

The shop's own facts (currency, timezone) live in ``shop.json`` inside the data directory so that
every process that opens the directory agrees on them; environment variables override the file.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from growthwheel.errors import ConfigError
from growthwheel.kit.money import currency_exponent

SHOP_FILE = "shop.json"


class ShopSettings(BaseModel):
    """Facts about the shop that every computation must agree on."""

    name: str = "My shop"
    currency: str = "CNY"
    timezone: str = "Asia/Shanghai"

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        value = value.upper()
        currency_exponent(value)  # raises for unknown codes
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)") from exc
        return value


class SparkSettings(BaseModel):
    """How to reach Spark when ``warehouse = "spark"``."""

    master: str = "local[2]"
    app_name: str = "growthwheel"
    warehouse_uri: str | None = None
    """How Spark names ``spark_dir`` when its executors see it elsewhere
    (``GROWTHWHEEL_SPARK__WAREHOUSE_URI``, e.g. ``hdfs://nn/gw/spark-warehouse`` or
    ``file:///mnt/shared/gw/spark-warehouse``); default: the absolute local path of ``spark_dir``."""
    imports: Literal["duckdb", "spark"] = "duckdb"
    """Where generic CSV imports are validated and merged (``GROWTHWHEEL_SPARK__IMPORTS``):
    ``spark`` runs them on Spark itself (``warehouse/spark_ingest.py``; for histories bigger than
    the server's memory); ``duckdb`` (default) validates and merges on the server, then publishes."""


#: ``server.concurrency`` on SQLite when not set (see :class:`ServerSettings`).
SQLITE_CONCURRENCY = 8


class ServerSettings(BaseModel):
    """How ``growthwheel serve`` takes load (``GROWTHWHEEL_SERVER__*``; README "Production").

    ``concurrency`` is the one number the rest follows: at most that many requests use the
    operational store at once (the admission limit); the worker-thread pool gets
    ``concurrency + 8`` threads and the connection pool ``concurrency + 4`` connections (+ 8
    overflow), so an admitted request never waits for a connection and the request holding a
    row lock always finds a thread to finish on.
    """

    workers: int = Field(default=1, ge=1, le=64)
    """Server processes (``serve --workers``); PostgreSQL only when above 1."""
    concurrency: int = Field(default=32, ge=1, le=1000)
    """Requests using the store at once, per process: 32 on PostgreSQL, 8 on SQLite unless set
    (SQLite has one writer; more threads only wait for it and for the GIL — ``bench/crowd_bench.py``
    with 200 clients answered faster and kept ``/health`` quicker at 8 than at 32)."""
    queue: int = Field(default=1000, ge=0, le=100_000)
    """Requests that may wait for admission; one more is answered 503 at once."""
    queue_timeout: float = Field(default=30.0, gt=0, le=600)
    """Seconds a request may wait for admission before it is answered 503."""
    retry_after: int = Field(default=2, ge=1, le=600)
    """The ``Retry-After`` (seconds) of a 503."""
    write_timeout: float = Field(default=30.0, gt=0, le=600)
    """SQLite: seconds a transaction may wait for the store's one writer before it is answered 503."""
    switch_interval: float = Field(default=0.005, gt=0, le=0.1)
    """Seconds a thread may hold the GIL while another waits for it (``sys.setswitchinterval``;
    Python's default, 0.005, kept: 0.001 made no difference to ``/api/v1/health`` in the crowd
    measurable on the shared machine, see README "Production")."""
    gc_tuning: bool = True
    """Freeze the loaded application out of the garbage collector's sight (``kit/runtime.py``): no
    full collection walks the whole application while requests wait."""
    api_key_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    """How long a verified API key is trusted without asking the store (0: always ask). A key
    revoked through this process stops working at once; through another process, within this time."""

    @property
    def threads(self) -> int:
        """Worker threads of the server's thread pool."""
        return self.concurrency + 8

    @property
    def pool_size(self) -> int:
        """Connections kept in the operational store's pool."""
        return self.concurrency + 4


class Settings(BaseSettings):
    """All settings; read from ``GROWTHWHEEL_*`` environment variables (nested with ``__``)."""

    model_config = SettingsConfigDict(env_prefix="GROWTHWHEEL_", env_nested_delimiter="__")

    data_dir: Path = Field(default=Path("growthwheel-data"))
    warehouse: Literal["duckdb", "spark"] = "duckdb"
    spark: SparkSettings = SparkSettings()
    spark_remote: str | None = None
    """``sc://host:port`` of a Spark Connect server (``GROWTHWHEEL_SPARK_REMOTE``); when set, the Spark
    warehouse is read through it instead of a Spark started in this process."""
    shop_currency: str | None = None
    shop_timezone: str | None = None
    database_url: str | None = None
    """Operational store; default ``sqlite:///<data dir>/growthwheel.sqlite``."""
    server: ServerSettings = ServerSettings()
    """Processes, admission, pools (``GROWTHWHEEL_SERVER__CONCURRENCY`` …)."""
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Reverse proxies whose ``X-Forwarded-For`` is believed: addresses or CIDR networks,
    comma-separated (``GROWTHWHEEL_TRUSTED_PROXIES=127.0.0.1,10.0.0.0/8``). Default none: the
    client is the TCP peer. With proxies, the client is the right-most address of the header that
    is not one of them (what the login throttle and the audit log record)."""

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_networks(cls, value: object) -> list[str]:
        items = value.replace(",", " ").split() if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError("GROWTHWHEEL_TRUSTED_PROXIES: give addresses or networks separated by commas")
        networks = []
        for item in items:
            try:
                networks.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
            except ValueError:
                raise ValueError(
                    f"GROWTHWHEEL_TRUSTED_PROXIES: {item!r} is not an IP address or network (e.g. 10.0.0.0/8)"
                ) from None
        return networks

    @model_validator(mode="after")
    def _sqlite_concurrency(self) -> Settings:
        """On SQLite, ``server.concurrency`` defaults to :data:`SQLITE_CONCURRENCY`."""
        if not self.database_url and "concurrency" not in self.server.model_fields_set:
            self.server = self.server.model_copy(update={"concurrency": SQLITE_CONCURRENCY})
        return self

    @field_validator("spark_remote")
    @classmethod
    def _connect_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("sc://"):
            raise ValueError(
                f"GROWTHWHEEL_SPARK_REMOTE must be a Spark Connect URL sc://host:port, not {value!r}"
            )
        return value or None

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB warehouse file."""
        return self.data_dir / "warehouse.duckdb"

    @property
    def store_url(self) -> str:
        """SQLAlchemy URL of the operational store (PostgreSQL when ``database_url`` says so)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'growthwheel.sqlite').resolve()}"

    @property
    def spark_dir(self) -> Path:
        """Where the Spark warehouse keeps its Parquet tables."""
        return self.data_dir / "spark-warehouse"

    def shop(self) -> ShopSettings:
        """The shop's settings: ``shop.json`` in the data directory, then environment overrides.

        Read again only when the file changes (its size and time of change; :meth:`save_shop`
        replaces it whole): the checkout asks on every order."""
        path = self.data_dir / SHOP_FILE
        try:
            found = os.stat(path)
            stamp: tuple[int, int, int] | None = (found.st_mtime_ns, found.st_size, found.st_ino)
        except FileNotFoundError:
            stamp = None
        key = (str(path), stamp, self.shop_currency, self.shop_timezone)
        cached = _SHOPS.get(key)
        if cached is None:
            cached = self._read_shop(path, exists=stamp is not None)
            if len(_SHOPS) > 64:
                _SHOPS.clear()
            _SHOPS[key] = cached
        return cached.model_copy()

    def _read_shop(self, path: Path, *, exists: bool) -> ShopSettings:
        data: dict[str, str] = {}
        if exists:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
        if self.shop_currency:
            data["currency"] = self.shop_currency
        if self.shop_timezone:
            data["timezone"] = self.shop_timezone
        try:
            return ShopSettings(**data)
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def save_shop(self, shop: ShopSettings) -> Path:
        """Write ``shop.json`` atomically."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / SHOP_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(shop.model_dump(), indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
        return path


_SHOPS: dict[tuple[str, tuple[int, int, int] | None, str | None, str | None], ShopSettings] = {}
""":meth:`Settings.shop` answers by file and overrides (see there)."""

_current: Settings | None = None


def settings() -> Settings:
    """The settings in force: those set by the CLI's global options or a test, else the environment's."""
    global _current
    if _current is None:
        _current = Settings()
    return _current


def set_settings(new: Settings | None) -> None:
    """Replace the process-wide settings (``None`` re-reads the environment on next use)."""
    global _current
    _current = new
