"""A small demo shop in a temporary data directory, and a real ``growthwheel serve`` over it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Shop:
    """The demo shop's data directory."""

    data_dir: Path


@dataclass(frozen=True)
class Server:
    """A ``growthwheel serve`` process holding the shop's warehouse."""

    process: subprocess.Popen[bytes]
    url: str


@pytest.fixture(scope="package")
def demo_shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    """300 customers over 120 days (the browser tests' size), built once for these tests."""
    from growthwheel.config import Settings
    from growthwheel.sim.demo import build_demo

    data_dir = tmp_path_factory.mktemp("cli-shop")
    build_demo(Settings(data_dir=data_dir), customers=300, days=120, seed=3, start=date(2025, 1, 1))
    return Shop(data_dir)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(data_dir: Path) -> Server:
    """``growthwheel serve`` in a subprocess on a free loopback port, once it owns the warehouse."""
    from growthwheel.config import Settings
    from growthwheel.warehouse.server import find_server

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "growthwheel.cli", "--data-dir", str(data_dir), "serve",
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "80"},
    )
    cfg = Settings(data_dir=data_dir)
    deadline = time.monotonic() + 120
    while find_server(cfg, wait=1.0) is None:
        if process.poll() is not None:
            why = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"the server stopped: {why}")
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError("the server did not announce itself in server.json")
        time.sleep(0.2)
    return Server(process, f"http://127.0.0.1:{port}")


def stop_server(server: Server) -> None:
    """SIGTERM, then wait for the server to let go of the warehouse."""
    server.process.terminate()
    try:
        server.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)
    if server.process.stderr:
        server.process.stderr.close()


@pytest.fixture
def running_server(demo_shop: Shop) -> Iterator[Server]:
    """The demo shop served by a real ``growthwheel serve`` process for one test."""
    server = start_server(demo_shop.data_dir)
    try:
        yield server
    finally:
        stop_server(server)
