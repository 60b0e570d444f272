"""The warehouse layer depends on nothing above it (issue 11, item 6).

Checked on the import graph a fresh interpreter builds: importing every module of
``growthwheel.warehouse`` must not load the API, accounts, insight or reports packages, so the
warehouse can be used (by the CLI, the worker, a notebook) without the web application.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import growthwheel.warehouse

ABOVE = ("growthwheel.api", "growthwheel.accounts", "growthwheel.insight", "growthwheel.reports",
         "growthwheel.web")


def test_warehouse_modules_import_nothing_above_them() -> None:
    names = sorted(
        m.name for m in pkgutil.walk_packages(growthwheel.warehouse.__path__, "growthwheel.warehouse.")
    )
    assert {"growthwheel.warehouse.owner", "growthwheel.warehouse.spool",
            "growthwheel.warehouse.jobs", "growthwheel.warehouse.server"} <= set(names)
    code = (
        "import importlib, json, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                       text=True).stdout)
    above = [m for m in loaded if m.startswith(ABOVE)]
    assert above == [], f"the warehouse layer pulls in {above}"


def test_routes_live_with_the_api() -> None:
    from fastapi import FastAPI

    from growthwheel.api import imports, warehouse

    app = FastAPI()
    app.include_router(warehouse.router)
    app.include_router(imports.router)
    assert app.url_path_for("ping") == "/api/v1/internal/ping"
    assert app.url_path_for("post_import") == "/api/v1/internal/imports"
    assert app.url_path_for("get_counts") == "/api/v1/warehouse/counts"
    assert app.url_path_for("list_quarantine") == "/api/v1/quarantine"
