"""Several processes, one data directory: the server owns the warehouse, a CLI import from the
shell is handed to it while reads keep answering, and the file is sound afterwards. Also the
owner's own parts: ``server.json``, import jobs, the internal routes' guard."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import httpx
import pytest
from test_events import sqlite_key, start_server

from growthwheel.config import Settings
from growthwheel.errors import ConfigError
from growthwheel.warehouse import owner as wh_owner

GROWTHWHEEL = [sys.executable, "-m", "growthwheel.cli"]
ORDERS = 200_000


def write_orders(path: Path, n: int) -> int:
    """A generic orders CSV of ``n`` orders; returns the sum of their totals in minor units."""
    total = 0
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("order_id,customer_id,ordered_at,total,channel\n")
        for i in range(n):
            yuan, fen = i % 1000, i % 100
            total += yuan * 100 + fen
            handle.write(f"o{i},c{i % 5000},2025-0{1 + i % 9}-{1 + i % 28:02d} 10:{i % 60:02d}:00,"
                         f"{yuan}.{fen:02d},{('douyin', 'baidu', 'wechat')[i % 3]}\n")
    return total


def cli(data_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROWTHWHEEL_")}
    return subprocess.run([*GROWTHWHEEL, "--data-dir", str(data_dir), *args], capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)


def normalised(output: str) -> str:
    """CLI output without what differs between two runs (import id, seconds)."""
    return re.sub(r"\d+\.\d+ s", "", re.sub(r"imp_\w+", "", output))


def test_cli_import_while_the_server_serves_reads(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    big = tmp_path / "orders.csv"
    expected_total = write_orders(big, ORDERS)
    small = tmp_path / "small.csv"
    small.write_text("order_id,customer_id,ordered_at,total\nx1,c1,2025-03-01 10:00:00,12.30\n"
                     "x2,c2,2025-03-01,12.345\nx3,,2025-03-02,1\n", encoding="utf-8")
    key = sqlite_key(data_dir, "read")
    process, url = start_server(data_dir)
    reads: list[tuple[float, float, str, int, int | None]] = []  # (start, seconds, route, status, orders)
    stop = threading.Event()

    def keep_reading() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
            while not stop.is_set():
                for route in ("/api/v1/health", "/api/v1/warehouse/counts"):
                    began = time.monotonic()
                    response = client.get(route)
                    seconds = time.monotonic() - began
                    orders = response.json()["tables"]["orders"] if route.endswith("counts") else None
                    reads.append((began, seconds, route, response.status_code, orders))
                time.sleep(0.02)

    reader = threading.Thread(target=keep_reading)
    try:
        info = json.loads((data_dir / "server.json").read_text())
        assert info["pid"] == process.pid
        assert stat.S_IMODE((data_dir / "server.json").stat().st_mode) == 0o600
        reader.start()
        time.sleep(0.3)
        began = time.monotonic()
        done = cli(data_dir, "import", "orders", str(big), "--json")
        ended = time.monotonic()
        time.sleep(0.3)
        stop.set()
        reader.join(10)
        # The import went through the server (the CLI could not have opened the locked file).
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["rows_read"] == ORDERS
        assert result["tables"]["orders"] == {"inserted": ORDERS, "updated": 0, "unchanged": 0}

        # Reads kept answering throughout, quickly, and never saw a half-written import.
        during = [r for r in reads if began <= r[0] <= ended]
        assert len(during) >= 10, f"only {len(during)} reads during a {ended - began:.1f} s import"
        assert {r[3] for r in reads} == {200}
        slowest = max(r[1] for r in reads)
        assert slowest < 2.0, f"a read took {slowest:.2f} s"
        print(f"\nCLI import of {ORDERS:,} orders through the server: {ended - began:.1f} s; "
              f"{len(during)} reads meanwhile, slowest read {slowest * 1000:.0f} ms")
        seen = [r[4] for r in reads if r[4] is not None]
        assert set(seen) <= {0, ORDERS}
        assert seen[0] == 0
        assert seen[-1] == ORDERS

        # Same answer as a direct import, printed the same way, quarantine and all.
        handed = cli(data_dir, "import", "orders", str(small))
        alone = cli(tmp_path / "alone", "import", "orders", str(small))
        assert handed.returncode == alone.returncode == 0, handed.stderr + alone.stderr
        assert "handing the import to the running server" in handed.stderr
        assert "rows read 3 · imported 1 · quarantined 2" in handed.stdout
        assert normalised(handed.stdout) == normalised(alone.stdout)

        # KPIs and the review report from the shell are computed by the server meanwhile.
        kpis_via_server = cli(data_dir, "kpi", "--by", "month", "--json")
        assert kpis_via_server.returncode == 0, kpis_via_server.stderr
        assert sum(row["orders"] for row in json.loads(kpis_via_server.stdout)) == ORDERS + 1
        report = cli(data_dir, "report", "--period", "month", "--out", str(tmp_path / "review.html"))
        assert report.returncode == 0, report.stderr
        assert "<script" in (tmp_path / "review.html").read_text(encoding="utf-8")
    finally:
        stop.set()
        if reader.is_alive():
            reader.join(10)
        process.send_signal(signal.SIGINT)
        process.wait(30)

    # Stopped cleanly: the announcement is withdrawn and the file opens with everything in it.
    assert not (data_dir / "server.json").exists()
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*), count(DISTINCT order_id), sum(total_amount) FROM orders "
                           "WHERE order_id LIKE 'o%'").fetchone() == (ORDERS, ORDERS, expected_total)
        assert con.execute("SELECT count(*) FROM _imports").fetchone() == (2,)
    finally:
        con.close()
    # Without a server the CLI computes the same KPIs itself.
    kpis_direct = cli(data_dir, "kpi", "--by", "month", "--json")
    assert kpis_direct.returncode == 0, kpis_direct.stderr
    assert json.loads(kpis_direct.stdout) == json.loads(kpis_via_server.stdout)
    # Without a server the CLI opens the warehouse itself again.
    direct = cli(data_dir, "import", "orders", str(small), "--json")
    assert direct.returncode == 0, direct.stderr
    assert json.loads(direct.stdout)["tables"]["orders"]["unchanged"] == 1


def test_owner_runs_imports_as_jobs_and_announces_itself(tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path / "data")
    good = tmp_path / "ok.csv"
    good.write_text("order_id,customer_id,ordered_at,total\no1,c1,2025-03-01,10.00\no2,c1,2025-03-02,5.50\n")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("id,when\n1,2025-03-01\n")
    owner = wh_owner.WarehouseOwner(cfg)
    owner.start("127.0.0.1", 1)
    try:
        info = wh_owner.read_server_file(cfg)
        assert info is not None
        assert info.pid == os.getpid()
        assert info.token == owner.token
        assert info.url == "http://127.0.0.1:1"
        first = owner.job(owner.submit_import("orders", [good]))
        second = owner.job(owner.submit_import("orders", [wrong]))
        assert first is not None
        assert second is not None
        assert first.wait(30)
        assert second.wait(30)
        assert first.status == "done"
        assert first.result is not None
        assert first.result.tables["orders"].inserted == 2
        assert first.to_dict()["result"]["tables"]["orders"]["inserted"] == 2
        assert second.status == "failed"
        assert second.error_code == "missing_columns"  # an import file error the console translates
        assert "missing required column(s) order_id, customer_id, ordered_at, total" in (second.error or "")
        assert [j.id for j in owner.jobs()] == [second.id, first.id]
        assert owner.job("nope") is None
        with pytest.raises(Exception, match="no such file"):
            owner.submit_import("orders", [tmp_path / "missing.csv"])
        with owner.read() as backend:
            assert backend.table("orders").total_amount.sum().execute() == 1550
    finally:
        owner.stop()
    assert not (cfg.data_dir / "server.json").exists()
    owner.stop()  # twice is harmless


def test_internal_routes_need_the_token(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    sqlite_key(data_dir, "read")
    process, url = start_server(data_dir)
    try:
        token = json.loads((data_dir / "server.json").read_text())["token"]
        assert httpx.get(url + "/api/v1/internal/ping").status_code == 401
        wrong = httpx.get(url + "/api/v1/internal/ping", headers={"Authorization": "Bearer x" + token})
        assert wrong.status_code == 401
        body = {"table": "orders", "paths": ["/etc/passwd"], "format": "generic"}
        assert httpx.post(url + "/api/v1/internal/imports", json=body).status_code == 401
        ok = httpx.get(url + "/api/v1/internal/ping", headers={"Authorization": f"Bearer {token}"})
        assert ok.json() == {"pid": process.pid}
        missing = httpx.get(url + "/api/v1/internal/imports/job_x",
                            headers={"Authorization": f"Bearer {token}"})
        assert missing.status_code == 404
        assert httpx.get(url + "/api/v1/warehouse/counts").status_code == 401
        found = wh_owner.find_server(Settings(data_dir=data_dir))
        assert found is not None
        assert found.pid == process.pid
        message = wh_owner.warehouse_in_use_error(Settings(data_dir=data_dir)).message
        assert f"the Growthwheel server (pid {process.pid}" in message
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)


def test_server_start_waits_for_a_cli_import_to_let_go(tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path / "data")
    cfg.data_dir.mkdir(parents=True)
    hold = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "time.sleep(3)")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(cfg.warehouse_path)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match="is in use by another process; wait for it to finish"):
            wh_owner.WarehouseOwner(cfg, lock_wait=0.3).start()
        patient = wh_owner.WarehouseOwner(cfg, lock_wait=30)
        began = time.monotonic()
        patient.start()
        waited = time.monotonic() - began
        patient.stop()
    finally:
        holder.kill()
        holder.wait()
    assert 1.0 < waited < 10.0
