"""``growthwheel --help`` answers at once: the root imports no analytics or database library, each
command group is imported only when used, and every lazily registered command is real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import growthwheel
from growthwheel.cli.lazy import LAZY, LazyGroup
from growthwheel.cli.main import app

HEAVY = ("pandas", "numpy", "ibis", "duckdb", "pyarrow", "sqlalchemy", "pydantic", "scipy", "fastapi",
         "pyspark", "growthwheel.config", "growthwheel.insight", "growthwheel.store")


def _modules_after(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(h for h in HEAVY if h in modules or any(m.startswith(h + ".") for m in modules))


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert _heavy(_modules_after("import growthwheel.cli.main")) == []


def test_help_lists_every_command_without_importing_them() -> None:
    code = ("import sys\nfrom growthwheel.cli.main import app\nsys.argv = ['growthwheel', '--help']\n"
            "try:\n    app()\nexcept SystemExit:\n    pass")
    modules = _modules_after(code)
    assert _heavy(modules) == []
    assert not any(m.endswith(".cli") and m.startswith("growthwheel.") and m != "growthwheel.cli"
                   for m in modules), "a domain's cli module was imported for --help"
    done = subprocess.run([sys.executable, "-m", "growthwheel.cli", "--help"], capture_output=True,
                          text=True, check=True, timeout=120, env={"COLUMNS": "100", "PATH": ""})
    for name in (*LAZY, "kpi", "report", "import", "serve", "demo", "quarantine"):
        assert f" {name} " in done.stdout, name


def test_a_lazy_command_imports_its_own_module_only() -> None:
    code = ("import sys\nfrom growthwheel.cli.main import app\n"
            "sys.argv = ['growthwheel', 'stats', '--help']\ntry:\n    app()\nexcept SystemExit:\n    pass")
    modules = _modules_after(code)
    assert "growthwheel.cli.stats" in modules
    assert "growthwheel.segments.cli" not in modules
    assert "growthwheel.promotions.cli" not in modules


@pytest.mark.parametrize("name", sorted(LAZY))
def test_every_lazy_entry_loads_with_the_help_it_announces(name: str) -> None:
    entry = LAZY[name]
    command = entry.load(name)
    assert command.name == name
    own = (command.help or "").strip().split("\n\n")[0].replace("\n", " ")
    assert own == entry.help, f"cli/lazy.py announces {entry.help!r}, the command says {own!r}"


def test_the_root_group_is_lazy_and_complete() -> None:
    import typer

    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    with typer.Context(group) as ctx:
        names = group.list_commands(ctx)
    assert names == sorted(names)
    assert set(LAZY) <= set(names)


def test_version_answers_without_a_command() -> None:
    done = subprocess.run([sys.executable, "-m", "growthwheel.cli", "--version"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == growthwheel.__version__


@pytest.mark.parametrize("group", ["experiments", "promotions", "journeys", "segments"])
def test_a_listing_command_imports_no_statistics_or_dataframes(group: str, tmp_path: Path) -> None:
    """``<group> list`` reads the operational store only: it must not pay for scipy (the A/B
    statistics) or pandas (1-2 s of a small command's start before these were imported lazily)."""
    code = ("import sys\nfrom growthwheel.cli.main import app\n"
            f"sys.argv = ['growthwheel', '--data-dir', {str(tmp_path / 'data')!r}, {group!r}, 'list']\n"
            "try:\n    app()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code")
    modules = _modules_after(code)
    assert f"growthwheel.{group}.cli" in modules
    assert [h for h in ("scipy", "pandas") if h in modules] == []
