"""A real worker process for the crash tests (``python worker_proc.py --data-dir … [--db-url …]``).

It runs :class:`growthwheel.jobs.worker.Worker` forever, like ``growthwheel worker``, with two
test-only additions: an ``email`` channel that POSTs each message's key to a receiver on
127.0.0.1 (``--receiver``; not idempotent, like SMTP), and a job kind ``tests.slow`` that logs
its start and end to a file and takes ``seconds`` to run. SIGTERM stops it gracefully.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

from growthwheel.config import Settings
from growthwheel.jobs import outbox, scheduler
from growthwheel.jobs.scheduler import JobContext
from growthwheel.jobs.worker import Worker


class PostChannel:
    """Hands each message to the receiver (which logs it): the witness of what was sent."""

    name = "email"
    idempotent = False

    def __init__(self, url: str, worker: str) -> None:
        self.url = url
        self.worker = worker

    def deliver(self, message: outbox.OutboxMessage) -> outbox.DeliveryResult:
        body = json.dumps({"key": message.key, "worker": self.worker}).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        return outbox.DeliveryResult("sent")


def _append(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


@scheduler.job("tests.slow")
def slow(ctx: JobContext) -> dict[str, Any]:
    """Log start, work for ``seconds``, commit, log end."""
    log = Path(str(ctx.params["log"]))
    _append(log, f"start {os.getpid()} {time.time():.3f}")
    time.sleep(float(ctx.params["seconds"]))
    with ctx.transaction():
        pass  # the commit is fenced by the lease
    _append(log, f"end {os.getpid()} {time.time():.3f}")
    return {"pid": os.getpid()}


def main() -> None:
    """Parse the options and run the worker until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--db-url")
    parser.add_argument("--receiver", required=True)
    parser.add_argument("--lease", type=int, default=2)
    args = parser.parse_args()
    cfg = Settings(data_dir=Path(args.data_dir), database_url=args.db_url)
    name = f"proc-{os.getpid()}"
    worker = Worker(cfg, name=name, channels={"email": PostChannel(args.receiver, name)}, poll_seconds=0.1,
                    lease_seconds=args.lease, outbox_lease_seconds=args.lease, outbox_batch=25, defaults=[])
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    print("ready", flush=True)
    worker.run_forever()
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
