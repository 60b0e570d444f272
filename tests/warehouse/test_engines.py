"""Every analytic on every engine: one suite parametrised over DuckDB, Spark in this process and
Spark through Spark Connect, the way ibis tests its backends.

One small demo shop (the simulator's: products, customers, order lines, events with UTM tags, ad
spend, reviews) plus experiment exposures is imported once into a DuckDB warehouse and once into
a Spark warehouse; the Spark warehouse is then read both by a Spark started in the test process
(``spark-local``) and by a local Spark Connect server (``spark-connect``, fixture
``spark_connect``). Each test computes one family of results on its engine and compares it with
DuckDB's, exactly: the same rows, the same integers, Decimals and dates, floats equal to 1e-9
relative (two engines add floating-point numbers in different orders; every count, amount and
date must be identical). DuckDB's results are also checked for substance (non-empty, consistent),
so an empty answer on both sides cannot pass.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from growthwheel.config import Settings
from growthwheel.sim.demo import DEMO_SHOP, IMPORT_ORDER
from growthwheel.warehouse import db, ingest

CUSTOMERS, DAYS, SEED, START = 150, 120, 11, date(2025, 1, 1)
EXPERIMENT, VARIANTS = "pdp", ("control", "b")
EXPOSED_FROM = datetime(2025, 2, 1, tzinfo=UTC)

ENGINES = [
    "duckdb",
    pytest.param("spark-local", marks=pytest.mark.spark),
    pytest.param("spark-connect", marks=[pytest.mark.spark, pytest.mark.spark_connect]),
]


# ---------------------------------------------------------------------------------------------
# The shop, imported once per engine family
# ---------------------------------------------------------------------------------------------


def _exposures_csv(customers_csv: Path, out: Path) -> Path:
    """One to three exposures per customer for ~2/3 of the customers, the variant by hash (a few
    customers see both variants: they must be left out everywhere alike)."""
    with customers_csv.open(encoding="utf-8") as fh:
        ids = [row["customer_id"] for row in csv.DictReader(fh)]
    rows = []
    for i, cid in enumerate(ids):
        digest = int(hashlib.sha256(cid.encode()).hexdigest(), 16)
        if digest % 3 == 0:
            continue
        variant = VARIANTS[digest % 2]
        for n in range(1 + digest % 3):
            at = EXPOSED_FROM + timedelta(days=(digest >> 8) % 40 + 5 * n, minutes=(digest >> 16) % 1440)
            seen = VARIANTS[1 - digest % 2] if (digest % 17 == 0 and n == 1) else variant
            props = json.dumps({"experiment": EXPERIMENT, "variant": seen})
            rows.append([f"x{i}-{n}", "experiment_exposure", at.isoformat(), cid, props])
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["event_id", "type", "occurred_at", "customer_id", "properties"])
        writer.writerows(rows)
    return out


@pytest.fixture(scope="module")
def shop_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo shop's import files (and an exposures file), built once."""
    from growthwheel.sim.shop import build_demo_files

    out = tmp_path_factory.mktemp("engine-shop")
    files = build_demo_files(out, customers=CUSTOMERS, days=DAYS, seed=SEED, start=START)
    paths = dict(files.paths)
    paths["exposures"] = _exposures_csv(paths["customers"], out / "exposures.csv")
    return paths


def _import_shop(cfg: Settings, files: dict[str, Path]) -> None:
    cfg.save_shop(DEMO_SHOP)
    for table in IMPORT_ORDER:
        result = ingest.import_files(table, [files[table]], cfg=cfg)
        assert result.rows_read > result.rows_quarantined, table
    exposures = ingest.import_files("events", [files["exposures"]], cfg=cfg)
    assert exposures.rows_quarantined == 0


@pytest.fixture(scope="module")
def warehouses(shop_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Data directories: ``duckdb`` and ``spark`` (Parquet snapshots), the same shop in each."""
    root = tmp_path_factory.mktemp("engine-warehouses")
    dirs = {"duckdb": root / "duckdb", "spark": root / "spark"}
    for kind, data_dir in dirs.items():
        _import_shop(Settings(data_dir=data_dir, warehouse=kind, database_url=None),  # type: ignore[arg-type]
                     shop_files)
    return dirs


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, warehouses: dict[str, Path]) -> Settings:
    """Settings that read the shop on one engine."""
    name = request.param
    if name == "duckdb":
        return Settings(data_dir=warehouses["duckdb"], warehouse="duckdb", database_url=None)
    if name == "spark-local":
        request.getfixturevalue("spark_session")
        return Settings(data_dir=warehouses["spark"], warehouse="spark", database_url=None)
    url = request.getfixturevalue("spark_connect")
    return Settings(data_dir=warehouses["spark"], warehouse="spark", spark_remote=url, database_url=None)


# ---------------------------------------------------------------------------------------------
# Exact comparison
# ---------------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A result as plain, comparable Python: frames as sorted lists of records, numpy scalars as
    Python numbers, timestamps as naive datetimes, NaN/NaT as None; floats left as floats."""
    if isinstance(value, pd.DataFrame):
        records = [{str(k): plain(v) for k, v in r.items()} for r in value.to_dict(orient="records")]
        return sorted(records, key=lambda r: json.dumps(r, sort_keys=True, default=str))
    if is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.tz_convert(None).to_pydatetime() if value.tzinfo else value.to_pydatetime()
    if isinstance(value, str | bytes | bool | Decimal | date):
        return value
    if hasattr(value, "item"):  # numpy scalar
        return plain(value.item())
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def assert_same(got: Any, want: Any, path: str = "") -> None:
    """``got == want`` exactly, except floats (1e-9 relative); names the first difference."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{path}: {type(got).__name__} instead of a dict"
        assert sorted(got) == sorted(want), f"{path}: keys differ"
        for key in want:
            assert_same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list), f"{path}: {type(got).__name__} instead of a list"
        assert len(got) == len(want), f"{path}: {len(got)} rows instead of {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool) and isinstance(got, int | float):
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), f"{path}: {got!r} != {want!r}"
    else:
        assert type(got) is type(want) or {type(got), type(want)} <= {int, bool}, \
            f"{path}: {got!r} ({type(got).__name__}) != {want!r} ({type(want).__name__})"
        assert got == want, f"{path}: {got!r} != {want!r}"


_reference: dict[str, Any] = {}


def check(name: str, engine: Settings, compute: Callable[[Any], Any],
          warehouses: dict[str, Path]) -> Any:
    """Compute ``name`` on ``engine`` and (once) on DuckDB; assert they are the same. Returns
    DuckDB's result (for the caller's own checks of substance)."""
    if name not in _reference:
        duck = db.connect(Settings(data_dir=warehouses["duckdb"], warehouse="duckdb", database_url=None))
        try:
            _reference[name] = plain(compute(duck))
        finally:
            duck.disconnect()
    want = _reference[name]
    if engine.warehouse != "duckdb":
        got = plain(compute(db.connect(engine)))
        assert_same(got, want, name)
    return want


AS_OF = START + timedelta(days=DAYS - 1)  # the simulated history's last day
MID = START + timedelta(days=DAYS // 2)


# ---------------------------------------------------------------------------------------------
# The analytics
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_kpis(engine: Settings, warehouses: dict[str, Path]) -> None:
    from growthwheel.insight import kpis

    def compute(con: Any) -> Any:
        return {
            "month": kpis.kpi_frame(con, by="month"),
            "week": kpis.kpi_frame(con, by="week", start=MID, end=AS_OF),
            "day": kpis.kpi_frame(con, by="day", start=AS_OF - timedelta(days=9), end=AS_OF),
            "quarter": kpis.kpi_frame(con, by="quarter"),
            "channel": kpis.kpi_frame(con, by="month", dimension="channel"),
            "category": kpis.kpi_frame(con, by="month", start=MID, dimension="category"),
            "products": kpis.gmv_by_product(con, by="month", start=MID, end=AS_OF),
        }

    duck = check("kpis", engine, compute, warehouses)
    months = duck["month"]
    assert len(months) == 4
    assert all(m["orders"] > 0 and m["gmv"] > 0 for m in months)
    assert any(m["ad_spend"] for m in months)
    assert any(r["channel"] for r in duck["channel"])
    assert len(duck["day"]) == 10
    assert len(duck["products"]) > 10


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_review_report(engine: Settings, warehouses: dict[str, Path]) -> None:
    from growthwheel.reports import review

    def compute(con: Any) -> Any:
        return {period: review.review_context(con, period=period, as_of=None, shop_name="s",
                                              currency="CNY")
                for period in ("week", "month")}

    duck = check("review", engine, compute, warehouses)
    assert set(duck) == {"week", "month"}
    assert duck["week"] != duck["month"]


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_rfm_lifecycle_cohorts_funnels(engine: Settings, warehouses: dict[str, Path]) -> None:
    from growthwheel.insight import cohorts, funnels, lifecycle, rfm

    def compute(con: Any) -> Any:
        o, e = con.table("orders"), con.table("events")
        scores = rfm.rfm_scores(o, AS_OF)
        th = lifecycle.thresholds_for(o, end=AS_OF)
        return {
            "rfm": scores.execute(),
            "rfm_median": rfm.rfm_scores(o, MID, cut="median").execute(),
            "grid": rfm.rfm_grid(scores).execute(),
            "classic": rfm.rfm_segment_summary(scores).execute(),
            "value": rfm.rfm_segment_summary(scores, scheme="value").execute(),
            "rfm_report": rfm.rfm_report(o, AS_OF),
            "thresholds": th,
            "stages": lifecycle.stages(o, AS_OF, th).execute(),
            "lifecycle_report": lifecycle.lifecycle_report(o, AS_OF, start=MID),
            "cohorts": cohorts.retention_frame(o, by="month", end=AS_OF, by_channel=True),
            "rolling": cohorts.retention_frame(o, by="week", mode="rolling", end=AS_OF),
            "funnel": funnels.funnel_frame(e, breakdown="utm_source"),
            "funnel_window": funnels.funnel_frame(e, window=timedelta(hours=2), start=MID, end=AS_OF),
        }

    duck = check("rfm", engine, compute, warehouses)
    assert len(duck["rfm"]) > 50
    assert len(duck["stages"]) > 50
    assert duck["funnel"]
    assert duck["cohorts"]
    assert duck["lifecycle_report"]["customers"] > 50


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_clv_summary_fits_and_scores(engine: Settings, warehouses: dict[str, Path]) -> None:
    from growthwheel.insight import clv

    def compute(con: Any) -> Any:
        summary = clv.load_summary(con, calibration_end=MID, holdout_end=AS_OF)
        scores = clv.compute_scores(con, horizon=6, calibration_end=AS_OF)
        return {
            "summary": summary.frame,
            "fits": clv.fit_summary(summary).to_dict(),
            "scores": scores.frame.drop(columns=["scored_at"]),
        }

    duck = check("clv", engine, compute, warehouses)
    assert len(duck["summary"]) > 50
    assert duck["fits"]["repeat_buyers"] > 5
    assert sum(r["clv"] for r in duck["scores"]) > 0


SEGMENTS = {
    "bought_recently": {"type": "orders", "measure": "count", "op": ">=", "value": 1,
                        "window": {"last": 30, "unit": "days"}},
    "big_spenders": {"type": "orders", "measure": "amount", "op": ">=", "value": "300.00"},
    "viewed_not_bought": {"all": [
        {"type": "events", "event": "view", "op": ">", "value": 0, "window": {"last": 30, "unit": "days"}},
        {"type": "events", "event": "purchase", "op": "=", "value": 0,
         "window": {"last": 30, "unit": "days"}},
    ]},
    "quiet_lately": {"type": "orders", "measure": "count", "op": "=", "value": 0,
                     "window": {"last": 30, "unit": "days"}},
    "champions": {"type": "score", "field": "rfm_segment", "op": "in",
                  "value": ["Champions", "Loyal Customers"]},
    "not_at_risk_regulars": {"all": [
        {"type": "orders", "measure": "count", "op": ">=", "value": 2},
        {"not": {"type": "score", "field": "lifecycle_stage", "op": "equals", "value": "at_risk"}},
    ]},
    "new_signups": {"type": "attribute", "field": "signed_up_at", "op": "within",
                    "window": {"last": 1, "unit": "months"}},
}


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_segment_membership_and_tags(engine: Settings, warehouses: dict[str, Path]) -> None:
    from growthwheel.segments import compile as seg
    from growthwheel.segments import repository
    from growthwheel.segments.definition import parse_definition

    def compute(con: Any) -> Any:
        ctx = seg.Context(as_of=AS_OF, timezone=DEMO_SHOP.timezone, currency_exponent=2)
        members = {}
        for name, definition in SEGMENTS.items():
            node = parse_definition(json.dumps(definition))
            ids = seg.member_ids(node, seg.load_sources(con, node, AS_OF), ctx).to_pyarrow()
            members[name] = sorted(ids.column("customer_id").to_pylist())
        return {"members": members, "tags": seg.customer_tags(con).execute(),
                "tag_counts": repository.tag_counts(con)}

    duck = check("segments", engine, compute, warehouses)
    sizes = {name: len(ids) for name, ids in duck["members"].items()}
    assert all(0 < n < CUSTOMERS + 50 for n in sizes.values()), sizes


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_experiment_metrics(engine: Settings, warehouses: dict[str, Path]) -> None:
    from growthwheel.experiments import metrics
    from growthwheel.experiments.schemas import MetricSpec

    window = metrics.Window(EXPOSED_FROM.replace(tzinfo=None),
                            datetime.combine(AS_OF + timedelta(days=1), datetime.min.time()))
    specs = [MetricSpec(kind="conversion"), MetricSpec(kind="revenue"), MetricSpec(kind="orders"),
             MetricSpec(kind="aov"), MetricSpec(kind="refund_rate"),
             MetricSpec(kind="conversion", event="add_to_cart"),
             MetricSpec(kind="revenue", cap=0.9), MetricSpec(kind="revenue", window_days=14),
             MetricSpec(kind="retention", days_from=7, days_to=14)]

    def compute(con: Any) -> Any:
        first = metrics.first_exposures(con, EXPERIMENT, "customer", window)
        return {
            "exposures": metrics.exposure_counts(first),
            "plain": metrics.metric_stats(con, EXPERIMENT, "customer", window, VARIANTS, specs,
                                          cuped_days=0),
            "cuped": metrics.metric_stats(con, EXPERIMENT, "customer", window, VARIANTS,
                                          [MetricSpec(kind="revenue"), MetricSpec(kind="aov")],
                                          cuped_days=14),
        }

    duck = check("experiments", engine, compute, warehouses)
    units = duck["exposures"]["units"]
    assert units["control"] > 20
    assert units["b"] > 20
    assert duck["exposures"]["multiple"] > 0


# ---------------------------------------------------------------------------------------------
# Writes: segment refreshes (membership, history, rule tags), manual tags, CLV scores
# ---------------------------------------------------------------------------------------------

FIRST_REFRESH = datetime(2025, 4, 1, 2, 0, tzinfo=UTC).replace(tzinfo=None)  # naive UTC, as stored
SECOND_REFRESH = datetime(2025, 5, 1, 2, 0, tzinfo=UTC).replace(tzinfo=None)
_written: dict[str, Path] = {}


def _write_everything(cfg: Settings) -> None:
    """The same writes on any engine, through the warehouse owner's ``run_write`` (the server's
    writer): two saved segments (one a tag rule) refreshed twice, manual tags added and removed,
    CLV scores stored."""
    from growthwheel.insight import clv
    from growthwheel.segments import service
    from growthwheel.store.db import migrate, session_scope
    from growthwheel.warehouse.owner import WarehouseOwner

    migrate(cfg)
    owner = WarehouseOwner(cfg)
    owner.start()
    try:
        with session_scope(cfg) as session:
            service.create_segment(session, "regulars", SEGMENTS["not_at_risk_regulars"], principal=None,
                                   actor_name="tests", tag="regular")
            service.create_segment(session, "recent", SEGMENTS["bought_recently"], principal=None,
                                   actor_name="tests")
        for as_of, at in ((AS_OF - timedelta(days=30), FIRST_REFRESH), (AS_OF, SECOND_REFRESH)):
            with owner.read() as backend:  # a write may not be asked for inside a read block
                ctx = service.context(cfg, backend, as_of)
            with session_scope(cfg) as session:
                for name in ("regulars", "recent"):
                    service.refresh_segment(session, service.get_segment(session, name), ctx,
                                            owner.run_write, principal=None, actor_name="tests", at=at)
        with owner.read() as backend:
            ids = sorted(backend.table("customers").customer_id.execute())[:6]
            scores = clv.compute_scores(backend, horizon=6, calibration_end=AS_OF)
        with session_scope(cfg) as session:
            service.change_tag(session, "vip", owner.run_write, add=ids[:4], principal=None)
            service.change_tag(session, "vip", owner.run_write, remove=ids[1:2], add=ids[4:6],
                               principal=None)
        owner.run_write(lambda con: clv.write_scores(con, scores))
    finally:
        owner.stop()


def written_cfg(engine: Settings, warehouses: dict[str, Path], root: Path) -> Settings:
    """``engine`` over a copy of its warehouse after :func:`_write_everything` (done once per
    warehouse kind: both Spark engines read the same written snapshot)."""
    import shutil

    kind = engine.warehouse
    if kind not in _written:
        target = root / f"written-{kind}"
        shutil.copytree(warehouses[kind], target)
        _write_everything(engine.model_copy(update={"data_dir": target}))
        _written[kind] = target
    return engine.model_copy(update={"data_dir": _written[kind]})


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_writes_segments_tags_scores(engine: Settings, warehouses: dict[str, Path],
                                     tmp_path_factory: pytest.TempPathFactory) -> None:
    from growthwheel.segments import compile as seg
    from growthwheel.segments import repository, service
    from growthwheel.segments.definition import parse_definition
    from growthwheel.store.db import session_scope

    root = tmp_path_factory.getbasetemp() / "engine-writes"
    root.mkdir(exist_ok=True)
    cfg = written_cfg(engine, warehouses, root)
    duck_cfg = written_cfg(Settings(data_dir=warehouses["duckdb"], warehouse="duckdb", database_url=None),
                           warehouses, root)
    rich = {"all": [SEGMENTS["bought_recently"],
                    {"type": "score", "field": "clv", "op": ">=", "value": "20"},
                    {"not": {"type": "tag", "tags": ["vip"]}}]}

    def compute_for(c: Settings) -> Callable[[Any], Any]:
        def compute(con: Any) -> Any:
            with session_scope(c) as session:
                segs = {name: service.get_segment(session, name) for name in ("regulars", "recent")}
                out: dict[str, Any] = {
                    name: {"members": s.members, "as_of": s.as_of,
                           "rows": service.member_rows(con, s).to_pylist(),
                           "history": service.history(con, s)}
                    for name, s in segs.items()
                }
            out["tags"] = repository.tag_counts(con)
            out["customer_tags"] = seg.customer_tags(con).execute()
            out["scores"] = con.table("customer_scores").drop("scored_at").execute()
            node = parse_definition(json.dumps(rich))
            ctx = seg.Context(as_of=AS_OF, timezone=DEMO_SHOP.timezone, currency_exponent=2)
            ids = seg.member_ids(node, seg.load_sources(con, node, AS_OF), ctx).to_pyarrow()
            out["rich"] = sorted(ids.column("customer_id").to_pylist())
            return out
        return compute

    if "writes" not in _reference:
        duck = db.connect(duck_cfg)
        try:
            _reference["writes"] = plain(compute_for(duck_cfg)(duck))
        finally:
            duck.disconnect()
    want = _reference["writes"]
    if engine.warehouse != "duckdb":
        assert_same(plain(compute_for(cfg)(db.connect(cfg))), want, "writes")
    assert want["regulars"]["members"] > 5
    assert len(want["regulars"]["history"]) == 2
    assert {r["tag"] for r in want["tags"]} >= {"regular", "vip"}
    assert next(r for r in want["tags"] if r["tag"] == "vip")["manual"] == 5
    assert len(want["scores"]) > 50
    assert want["rich"]


# ---------------------------------------------------------------------------------------------
# Spark Connect settings: a clear line, at once, for a wrong or unreachable server
# ---------------------------------------------------------------------------------------------


def test_spark_remote_must_be_a_connect_url() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="sc://host:port"):
        Settings(warehouse="spark", spark_remote="http://spark:15002")


def test_unreachable_connect_server_fails_at_once(tmp_path: Path) -> None:
    import socket

    pytest.importorskip("grpc")
    from growthwheel.errors import ConfigError

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = Settings(data_dir=tmp_path, warehouse="spark", spark_remote=f"sc://127.0.0.1:{port}")
    # The address check answers (pyspark's own client would retry for about ten minutes).
    with pytest.raises(ConfigError, match=rf"sc://127.0.0.1:{port} \(.*\); check GROWTHWHEEL_SPARK_REMOTE"):
        db.connect(cfg)


@pytest.mark.spark
def test_one_process_uses_spark_in_process_or_spark_connect_not_both(spark_session: Any,
                                                                       tmp_path: Path) -> None:
    """pyspark routes its functions by a process-wide switch: asking for Spark Connect beside a
    running local Spark is a clear error, not a failure deep inside a later query."""
    import socket

    from growthwheel.errors import ConfigError
    from growthwheel.warehouse import spark

    with socket.socket() as listener:  # answers the address check; no Connect server behind it
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        cfg = Settings(data_dir=tmp_path, warehouse="spark",
                       spark_remote=f"sc://127.0.0.1:{listener.getsockname()[1]}")
        with pytest.raises(ConfigError, match="Spark in process and Spark Connect side by side"):
            spark.session(cfg)
    assert spark.session(Settings(warehouse="spark")) is spark_session  # the local one still runs
