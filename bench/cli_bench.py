"""Benchmark: how fast the ``growthwheel`` command answers, against ``python -c pass``.

Each command runs as a fresh process, as a user types it, ``--repeat`` times; the median wall time
and the median CPU time (user + system of the child) are printed with the ratio to the baseline,
``python -c pass`` measured in the same run (so a busy machine shows in both). Commands:

* ``growthwheel --help`` (target: under 0.5 s);
* ``growthwheel kpi`` and ``growthwheel rfm`` on a demo shop (target: under 2 s);
* small commands, ``growthwheel experiments list`` and ``segments list`` (target: under 2 s);
* the same two while ``growthwheel serve`` owns the warehouse (they are answered by the server).

Usage::

    python bench/cli_bench.py [--customers 5000] [--days 365] [--repeat 5] [--data-dir DIR]

``--data-dir`` reuses a shop already built (e.g. ``make demo``'s ``growthwheel-data``, 50,000
customers); otherwise a demo shop is simulated into a temporary directory first.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GROWTHWHEEL = [sys.executable, "-m", "growthwheel.cli"]
TARGETS = {"--help": 0.5, "kpi": 2.0, "rfm": 2.0, "experiments": 2.0, "segments": 2.0}


def timed(args: list[str], repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of running ``args`` as a new process ``repeat`` times."""
    walls: list[float] = []
    cpus: list[float] = []
    env = {**os.environ, "COLUMNS": "80"}
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve(data_dir: Path) -> subprocess.Popen[bytes]:
    """``growthwheel serve`` on ``data_dir``, returned once it owns the warehouse."""
    from growthwheel.config import Settings
    from growthwheel.warehouse.server import find_server

    process = subprocess.Popen([*GROWTHWHEEL, "--data-dir", str(data_dir), "serve", "--port",
                                str(free_port())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while find_server(Settings(data_dir=data_dir), wait=1.0) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the server did not start")
        time.sleep(0.2)
    return process


def main() -> None:
    """Build (or reuse) a shop, time the commands, print the table of ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=None)
    options = parser.parse_args()

    scratch = None
    data_dir = options.data_dir
    if data_dir is None:
        scratch = Path(tempfile.mkdtemp(prefix="growthwheel-cli-bench-"))
        data_dir = scratch / "shop"
        started = time.perf_counter()
        subprocess.run([*GROWTHWHEEL, "--data-dir", str(data_dir), "demo", "--customers",
                        str(options.customers), "--days", str(options.days), "--no-serve"],
                       check=True, stdout=subprocess.DEVNULL)
        print(f"demo shop: {options.customers:,} customers, {options.days} days, built in "
              f"{time.perf_counter() - started:.1f} s ({data_dir})")
    else:
        print(f"shop: {data_dir}")
    shop = ["--data-dir", str(data_dir)]
    try:
        rows: list[tuple[str, float, float]] = []
        base_wall, base_cpu = timed([sys.executable, "-c", "pass"], options.repeat)
        rows.append(("python -c pass (baseline)", base_wall, base_cpu))
        for name, args in (("--help", ["--help"]), ("kpi", [*shop, "kpi"]), ("rfm", [*shop, "rfm"]),
                           ("experiments list", [*shop, "experiments", "list"]),
                           ("segments list", [*shop, "segments", "list"])):
            rows.append((f"growthwheel {name}", *timed([*GROWTHWHEEL, *args], options.repeat)))
        server = serve(data_dir)
        try:
            for name in ("kpi", "rfm"):
                rows.append((f"growthwheel {name} (server running)",
                             *timed([*GROWTHWHEEL, *shop, name], options.repeat)))
        finally:
            server.terminate()
            server.wait(timeout=60)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    print(f"\nmedian of {options.repeat} runs; ratio = wall time / wall time of `python -c pass`")
    print(f"{'command':<40} {'wall s':>8} {'cpu s':>8} {'ratio':>8}  target")
    for label, wall, cpu in rows:
        name = label.split()[1] if label.startswith("growthwheel") else ""
        target = TARGETS.get(name)
        verdict = "" if target is None else (
            f"< {target:g} s: wall {'met' if wall < target else 'NOT met'}, "
            f"cpu {'met' if cpu < target else 'NOT met'}")
        print(f"{label:<40} {wall:>8.3f} {cpu:>8.3f} {wall / base_wall:>8.1f}  {verdict}")
    print("(cpu s is the child's user + system time: what the command costs when it does not wait "
          "for a CPU; on a busy machine wall time is longer)")
    print(f"\nmachine load average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
