"""The server's interpreter set-up (kit/runtime.py): GIL switch interval and garbage collector.

Each case runs in a fresh interpreter: freezing the collector is process-wide and for good.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from growthwheel.config import ServerSettings

PROBE = """
import gc, json, sys
from growthwheel.config import Settings
from growthwheel.kit.runtime import tune_interpreter
cfg = Settings()
junk = [[n] for n in range(1000)]  # objects alive at start-up
tune_interpreter(cfg.server.switch_interval, gc_tuning=cfg.server.gc_tuning)
print(json.dumps({"switch": sys.getswitchinterval(), "thresholds": gc.get_threshold(),
                  "frozen": gc.get_freeze_count()}))
"""


def _probe(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", PROBE], env={**env, "PATH": ""}, capture_output=True,
                         text=True, check=True, timeout=60)
    return dict(json.loads(out.stdout))


def test_server_defaults_freeze_start_up() -> None:
    found = _probe({})
    assert found["switch"] == pytest.approx(0.005)
    assert found["thresholds"] == [700, 10, 10]  # Python's own: young collections stay short
    assert isinstance(found["frozen"], int)
    assert found["frozen"] > 1000  # the start-up objects left the collector's generations


def test_settings_change_the_interval_and_turn_the_freeze_off() -> None:
    found = _probe({"GROWTHWHEEL_SERVER__SWITCH_INTERVAL": "0.001", "GROWTHWHEEL_SERVER__GC_TUNING": "false"})
    assert found["switch"] == pytest.approx(0.001)
    assert found["frozen"] == 0


@pytest.mark.parametrize("value", [0, -0.001, 0.5])
def test_switch_interval_out_of_range_is_refused(value: float) -> None:
    with pytest.raises(ValidationError, match="switch_interval"):
        ServerSettings(switch_interval=value)
