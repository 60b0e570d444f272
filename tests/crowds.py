"""A crowd of threads released together, for the race tests of both stores."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from growthwheel.errors import GrowthwheelError

CROWD_SECONDS = 90.0


def crowd(n: int, work: Callable[[int], Any], seconds: float = CROWD_SECONDS) -> list[Any]:
    """Run ``work(i)`` for i in 0…n-1 on n threads released together; every thread must finish
    within ``seconds``. Domain errors become their code, anything else ``unexpected …``."""
    barrier = threading.Barrier(n, timeout=seconds)
    results: list[Any] = [None] * n

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except GrowthwheelError as exc:
            results[index] = exc.code
        except Exception as exc:  # reported by the callers' assertions, never swallowed
            results[index] = f"unexpected {type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "the crowd did not finish in time"
    return results
