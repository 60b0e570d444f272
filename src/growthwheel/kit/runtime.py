"""Interpreter settings of a long-running server process: GIL switching and the garbage collector.

Two things make a busy Python server's latency tail, beyond the work itself:

* **The GIL hand-over.** A thread that wants the GIL waits up to ``sys.getswitchinterval()``
  (5 ms by default) before asking the holder to let go, and the event loop asks again after every
  system call (accept, read, write, poll). With dozens of checkout threads running Python, a
  request the event loop answers by itself (``/api/v1/health``) queues behind them several times
  over. A shorter interval (``server.switch_interval``, e.g. 1 ms) bounds each of those waits at a
  cost in context switches; on the shared 2-core machine (load average 25-45) 1 ms made no
  measurable difference to ``/health`` in the crowd, so the default stays Python's 5 ms.
* **Full collections.** The cyclic garbage collector's oldest generation holds every object of
  the loaded application (routers, models, Ibis, pandas: hundreds of thousands of objects); a
  full collection walks all of them while holding the GIL, tens of milliseconds on which every
  request waits. :func:`gc.freeze` after start-up moves what exists then out of the collector's
  sight for good; what requests allocate is still collected as before. (A larger young-generation
  threshold was tried and left out: objects that outlive a young collection make each one longer,
  which moved the pricing bench's p99 up, not down.)

:func:`tune_interpreter` applies both; the server calls it once its application is loaded
(``growthwheel serve``, and each process of ``serve --workers``); ``bench/pricing_bench.py``
calls it to measure what a server does.
"""

from __future__ import annotations

import gc
import sys


def tune_interpreter(switch_interval: float = 0.005, *, gc_tuning: bool = True) -> None:
    """Set the GIL switch interval (seconds); with ``gc_tuning``, collect once and move every object
    alive now to the permanent generation (call it after start-up, when the application's
    long-lived objects exist)."""
    sys.setswitchinterval(switch_interval)
    if gc_tuning:
        gc.collect()
        gc.freeze()
