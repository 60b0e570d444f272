"""Benchmark of recommendations (issue 15): co-purchase counts, recommending for 1M customers,
serving.

Each part runs in its own subprocess, so its peak memory (max RSS, DuckDB's native memory
included) is its own:

* ``pairs``: every pair's basket count (each product once per order) over ``--lines`` synthetic
  order lines (Zipf-popular SKUs), by the Ibis expression (``recs.copurchase.pair_counts`` on
  DuckDB, materialised) and by the pandas baseline (self-merge on the order, ``a < b``,
  ``groupby().size()``) on the same integer-coded Parquet file; the two answers are checked equal
  (pairs, sum and sum of squares of the counts). Prints the ratio Ibis / pandas.
* ``recs``: ``--customers`` synthetic customers (a favourite category each, staples bought again):
  the history built from order lines, the replenishment due days (the journeys' trigger), the
  blend fitted (re-purchase, replenish, TIFU-KNN, item cosine, ALS, popularity) and 20 items
  recommended to every customer; the baseline is re-purchase frequency alone (fit + recommend) in
  the same run. Prints seconds per step, max RSS, and the ratio blend / baseline.
* ``serve``: a real uvicorn server on 127.0.0.1 answering ``GET /api/v1/recommendations/{id}``
  and ``GET /api/v1/products/{sku}/also-bought`` from ``--serve-customers`` stored lists
  (SQLite store), sequential requests with an API key; the baseline is ``GET /api/v1/health``
  (answered on the event loop, no database) in the same run. Prints p50 / p99 and ratios.

Usage::

    nice -n 5 python bench/recommend_bench.py [--part all|pairs|recs|serve] [--lines 10000000]
        [--customers 1000000] [--serve-customers 100000] [--requests 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SKUS = 20_000


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------
# Co-purchase pair counts
# ---------------------------------------------------------------------------------------------


def make_lines(path: Path, lines: int, seed: int = 1) -> None:
    """``order_id, sku`` (int64) with about four lines per order, Zipf-popular SKUs."""
    rng = np.random.default_rng(seed)
    sizes = 1 + rng.poisson(3.0, lines // 3)
    sizes = sizes[np.cumsum(sizes) <= lines]
    order = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    ranks = rng.zipf(1.3, len(order))
    sku = ((ranks - 1) % SKUS).astype(np.int64)
    pd.DataFrame({"order_id": order, "sku": sku}).to_parquet(path, index=False)


def pairs_ibis(path: Path) -> dict[str, Any]:
    """Pair counts by the Ibis expression on DuckDB, materialised in the database."""
    import ibis

    from growthwheel.recs import copurchase as cp

    con = ibis.duckdb.connect()
    con.raw_sql("SET enable_progress_bar = false")
    started = time.perf_counter()
    lines = con.read_parquet(str(path))
    pc = cp.pair_counts(cp.basket_items(lines), 1)
    con.create_table("pairs", pc)
    seconds = time.perf_counter() - started
    t = con.table("pairs")
    check = t.aggregate(pairs=t.count(), total=t.n_ab.sum(), sq=(t.n_ab * t.n_ab).sum()).execute().iloc[0]
    return {"seconds": seconds, "pairs": int(check.pairs), "total": int(check.total), "sq": int(check.sq),
            "max_rss_mb": _rss_mb()}


def pairs_pandas(path: Path) -> dict[str, Any]:
    """The pandas baseline: dedupe, self-merge on the order with a < b, group and count."""
    started = time.perf_counter()
    df = pd.read_parquet(path).drop_duplicates()
    m = df.merge(df, on="order_id", suffixes=("_a", "_b"))
    m = m[m.sku_a < m.sku_b]
    counts = m.groupby(["sku_a", "sku_b"], sort=False).size()
    seconds = time.perf_counter() - started
    v = counts.to_numpy().astype(np.int64)
    return {"seconds": seconds, "pairs": len(v), "total": int(v.sum()), "sq": int((v * v).sum()),
            "max_rss_mb": _rss_mb()}


# ---------------------------------------------------------------------------------------------
# Recommendations for many customers
# ---------------------------------------------------------------------------------------------


def make_history(customers: int, seed: int = 2) -> pd.DataFrame:
    """Order lines of ``customers`` synthetic customers over a year (5,000 SKUs in 50 categories)."""
    rng = np.random.default_rng(seed)
    items, cats = 5000, 50
    per_cat = items // cats
    n_orders = 1 + rng.poisson(1.8, customers)
    cust = np.repeat(np.arange(customers), n_orders)
    day = rng.integers(0, 365, len(cust))
    fav = rng.integers(0, cats, customers)
    staple = fav * per_cat + rng.integers(0, 5, customers)  # a staple each, bought again
    k = 1 + rng.poisson(1.5, len(cust))
    order = np.repeat(np.arange(len(cust)), k)
    c = cust[order]
    own = rng.random(len(order)) < 0.6
    in_fav = fav[c] * per_cat + (rng.zipf(1.5, len(order)) - 1) % per_cat
    anywhere = (rng.zipf(1.2, len(order)) - 1) % items
    sku = np.where(own, in_fav, anywhere)
    first = np.r_[True, order[1:] != order[:-1]]
    sku = np.where(first & (rng.random(len(order)) < 0.5), staple[c], sku)
    at = pd.Timestamp("2025-01-01") + pd.to_timedelta(day[order], unit="D") + pd.to_timedelta(
        order % 86_400, unit="s")
    return pd.DataFrame({"customer_id": c.astype(np.int64), "order_id": order.astype(np.int64),
                         "ordered_at": at, "sku": sku.astype(np.int64)})


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def recs_run(customers: int) -> dict[str, Any]:
    """Time each step of recommending 20 items to every customer; the baseline alone first
    (each step's time is written to stderr as it ends)."""
    from growthwheel.recs import evaluation, history
    from growthwheel.recs import recommenders as r

    out: dict[str, Any] = {}
    t = time.perf_counter()
    frame = make_history(customers)
    out["generate_s"] = time.perf_counter() - t
    out["lines"] = len(frame)
    t = time.perf_counter()
    h = history.from_lines(frame)
    out["history_s"] = time.perf_counter() - t
    _say(f"history of {customers:,} customers: {out['history_s']:.1f} s")
    out["orders"] = len(h.basket_customer)
    del frame
    users = np.arange(h.n_customers, dtype=np.int64)
    day = np.full(len(users), int(h.basket_day.max()), dtype=np.int64)
    t = time.perf_counter()
    base = r.Repurchase().fit(h)
    r.recommend(base, users, day, 20)
    out["baseline_repurchase_s"] = time.perf_counter() - t
    _say(f"baseline re-purchase fit + recommend: {out['baseline_repurchase_s']:.1f} s")
    t = time.perf_counter()
    products = pd.DataFrame({"sku": [str(i) for i in range(0, 5000, 100)],
                             "consumption_cycle_days": [30] * 50})
    due = evaluation.due_days(h, products)
    out["due_days_s"] = time.perf_counter() - t
    _say(f"due days: {out['due_days_s']:.1f} s")
    weights = {"replenish": 1.0, "tifu_knn": 1.0, "item_cosine": 0.25, "als": 1.0, "popularity": 0.5}
    fit: dict[str, float] = {}
    models: dict[str, Any] = {}
    for name in weights:
        t = time.perf_counter()
        models[name] = r.make(name, due).fit(h)
        fit[name] = time.perf_counter() - t
        _say(f"fit {name}: {fit[name]:.1f} s")
    out["fit_s"] = fit
    blend = r.Blend(models, weights)
    t = time.perf_counter()
    idx = np.full((len(users), 20), -1, dtype=np.int64)
    step = max(len(users) // 10, 1)
    for start in range(0, len(users), step):
        part, _ = r.recommend(blend, users[start:start + step], day[start:start + step], 20)
        idx[start:start + len(part)] = part
        _say(f"recommended {start + len(part):,} customers: {time.perf_counter() - t:.1f} s")
    out["recommend_s"] = time.perf_counter() - t
    out["customers"] = h.n_customers
    out["items"] = h.n_items
    out["filled"] = float((idx[:, -1] >= 0).mean())
    out["blend_total_s"] = out["due_days_s"] + sum(fit.values()) + out["recommend_s"]
    out["max_rss_mb"] = _rss_mb()
    return out


# ---------------------------------------------------------------------------------------------
# Serving
# ---------------------------------------------------------------------------------------------


def serve_run(customers: int, requests: int) -> dict[str, Any]:
    """A real server on 127.0.0.1; sequential requests; p50 / p99 per route."""
    import http.client
    import socket

    import uvicorn

    from growthwheel.accounts import service as accounts
    from growthwheel.accounts.models import utcnow
    from growthwheel.api.app import create_app
    from growthwheel.config import Settings
    from growthwheel.recs import service
    from growthwheel.recs.api import router
    from growthwheel.store import db

    folder = Path(tempfile.mkdtemp(prefix="recs-serve-"))
    cfg = Settings(data_dir=folder, database_url=None)
    db.migrate(cfg)
    rng = np.random.default_rng(3)
    skus = [f"SKU{i:05d}" for i in range(5000)]
    lists = [[[skus[j], float(20 - n), "similar", f"product {j}"]
              for n, j in enumerate(rng.choice(5000, 20, replace=False))] for _ in range(customers)]
    also = {s: [[skus[j], 0.3, 1.5, 0.001, None] for j in rng.choice(5000, 20, replace=False)]
            for s in skus}
    built = {"customers": [f"C{i:07d}" for i in range(customers)], "lists": lists, "products": also,
             "weights": {"repurchase": 1.0}, "evaluation": None,
             "popular": [[s, 1.0, "popular", None] for s in skus[:20]]}
    t = time.perf_counter()
    with db.session_scope(cfg) as session:
        service.save(session, built, utcnow())
        for s in skus[:50]:
            service.set_exclusion(session, s, "out_of_stock", "bench", utcnow())
        key, _ = accounts.create_api_key(session, "bench", ("read",), created_by="bench")
    store_s = time.perf_counter() - t
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(cfg, routers=[router], with_warehouse=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {key}"}

    def timed(paths: list[str]) -> list[float]:
        out = []
        for p in paths:
            t0 = time.perf_counter()
            conn.request("GET", p, headers=headers)
            resp = conn.getresponse()
            resp.read()
            out.append((time.perf_counter() - t0) * 1000)
            assert resp.status == 200, (p, resp.status)
        return out

    pick = rng.integers(0, customers, requests)
    timed(["/api/v1/health"] * 50 + [f"/api/v1/recommendations/C{i:07d}" for i in pick[:50]])  # warm up
    health = timed(["/api/v1/health"] * requests)
    recs = timed([f"/api/v1/recommendations/C{i:07d}" for i in pick])
    also_ms = timed([f"/api/v1/products/{skus[i % 5000]}/also-bought" for i in pick])
    server.should_exit = True
    thread.join(10)

    def pct(v: list[float], q: float) -> float:
        return float(np.percentile(v, q))

    return {"customers_stored": customers, "store_s": store_s, "requests": requests,
            "health_p50_ms": pct(health, 50), "health_p99_ms": pct(health, 99),
            "recs_p50_ms": pct(recs, 50), "recs_p99_ms": pct(recs, 99),
            "also_p50_ms": pct(also_ms, 50), "also_p99_ms": pct(also_ms, 99), "max_rss_mb": _rss_mb()}


# ---------------------------------------------------------------------------------------------


def _child(args: list[str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, *args], check=True, stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    """Run the parts asked for and print their numbers and ratios."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", default="all", choices=["all", "pairs", "recs", "serve"])
    ap.add_argument("--lines", type=int, default=10_000_000)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--serve-customers", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--child", default=None)
    ap.add_argument("--path", default=None)
    a = ap.parse_args()
    if a.child == "pairs_ibis":
        print(json.dumps(pairs_ibis(Path(a.path))))
        return
    if a.child == "pairs_pandas":
        print(json.dumps(pairs_pandas(Path(a.path))))
        return
    if a.child == "recs":
        print(json.dumps(recs_run(a.customers)))
        return
    if a.child == "serve":
        print(json.dumps(serve_run(a.serve_customers, a.requests)))
        return
    print(f"load average at start: {os.getloadavg()}", flush=True)
    if a.part in ("all", "pairs"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "lines.parquet"
            make_lines(path, a.lines)
            n = len(pd.read_parquet(path, columns=["order_id"]))
            ib = _child(["--child", "pairs_ibis", "--path", str(path)])
            pdn = _child(["--child", "pairs_pandas", "--path", str(path)])
        same = all(ib[k] == pdn[k] for k in ("pairs", "total", "sq"))
        print(f"pairs over {n:,} order lines: {ib['pairs']:,} distinct pairs, equal answers: {same}")
        print(f"  ibis/duckdb {ib['seconds']:.1f} s (max RSS {ib['max_rss_mb']:.0f} MB); "
              f"pandas {pdn['seconds']:.1f} s (max RSS {pdn['max_rss_mb']:.0f} MB); "
              f"ratio ibis/pandas {ib['seconds'] / pdn['seconds']:.2f}", flush=True)
    if a.part in ("all", "recs"):
        rr = _child(["--child", "recs", "--customers", str(a.customers)])
        print(f"recommendations for {rr['customers']:,} customers ({rr['orders']:,} orders, {rr['lines']:,} "
              f"lines, {rr['items']:,} products): history {rr['history_s']:.1f} s, due days "
              f"{rr['due_days_s']:.1f} s, fit {json.dumps({k: round(v, 1) for k, v in rr['fit_s'].items()})}"
              ", "
              f"recommend 20 each {rr['recommend_s']:.1f} s; blend total {rr['blend_total_s']:.1f} s vs "
              f"re-purchase baseline {rr['baseline_repurchase_s']:.1f} s (ratio "
              f"{rr['blend_total_s'] / rr['baseline_repurchase_s']:.1f}); max RSS {rr['max_rss_mb']:.0f} MB; "
              f"lists filled to 20: {rr['filled']:.1%}", flush=True)
    if a.part in ("all", "serve"):
        sv = _child(["--child", "serve", "--serve-customers", str(a.serve_customers),
                     "--requests", str(a.requests)])
        print(f"serving from {sv['customers_stored']:,} stored lists (stored in {sv['store_s']:.1f} s), "
              f"{sv['requests']:,} sequential requests each: recommendations p50 {sv['recs_p50_ms']:.2f} ms "
              f"p99 {sv['recs_p99_ms']:.2f} ms; also-bought p50 {sv['also_p50_ms']:.2f} ms p99 "
              f"{sv['also_p99_ms']:.2f} ms; baseline /health p50 {sv['health_p50_ms']:.2f} ms p99 "
              f"{sv['health_p99_ms']:.2f} ms (ratio p99 {sv['recs_p99_ms'] / sv['health_p99_ms']:.1f})",
              flush=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
