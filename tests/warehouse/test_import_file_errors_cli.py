"""Issue 13: ``growthwheel import`` tells a bad file in its language (``GROWTHWHEEL_LANG`` or the
locale), on one line, naming the file, and exits 1; a header-only file gets a notice.

Each language runs in one child process that calls the CLI's entry point once per bad file (the
CLI keeps its settings in process-wide state, which must not leak into other test modules)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from import_file_cases import BAD_FILES

CHILD = r"""
import contextlib, io, json, sys
from growthwheel.cli.main import main

answers = {}
for case_id, argv in json.loads(sys.argv[1]).items():
    sys.argv = ["growthwheel", *argv]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    answers[case_id] = [code, stdout.getvalue(), stderr.getvalue()]
print(json.dumps(answers))
"""


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every bad file (and one header-only file) imported by the CLI in English and in Chinese:
    ``{lang: {case id: [exit code, stdout, stderr]}}``."""
    folder = tmp_path_factory.mktemp("cli_errors")
    data = folder / "data"
    runs: dict[str, list[str]] = {}
    for bad in BAD_FILES:
        path = folder / bad.id / bad.name
        path.parent.mkdir()
        path.write_bytes(bad.content)
        runs[bad.id] = ["--data-dir", str(data), "import", bad.table, str(path), "--format", bad.fmt]
    header_only = folder / "今日订单.csv"
    header_only.write_text("customer_id,name\n", encoding="utf-8")
    runs["header_only"] = ["--data-dir", str(data), "import", "customers", str(header_only)]
    runs["missing"] = ["--data-dir", str(data), "import", "customers", str(folder / "没有.csv")]
    found = {}
    for lang, env in (("en", {"LANG": "C.UTF-8", "GROWTHWHEEL_LANG": "en"}),
                      ("zh", {"LANG": "zh_CN.UTF-8"})):
        done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(runs)], capture_output=True,
                              text=True, check=True, timeout=300, cwd=folder,
                              env={"PATH": "/usr/bin:/bin", "HOME": str(folder), "COLUMNS": "400", **env})
        found[lang] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("bad", BAD_FILES, ids=[b.id for b in BAD_FILES])
def test_the_cli_tells_a_bad_file_in_its_language(answers: dict[str, dict[str, Any]], bad: Any) -> None:
    code, _out, err = answers["en"][bad.id]
    assert code == 1
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err  # one line
    assert f"{bad.name}: " in err  # English: the path, then the reason
    assert "Traceback" not in err
    code, _out, err = answers["zh"][bad.id]
    assert code == 1
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err  # one line
    assert f"“{bad.name}”" in err
    assert bad.zh in err
    assert "{" not in err  # every placeholder filled


def test_a_missing_file_and_a_header_only_file(answers: dict[str, dict[str, Any]]) -> None:
    assert answers["zh"]["missing"][0] == 1
    assert "“没有.csv”不存在或不是文件。" in answers["zh"]["missing"][2]
    assert "没有.csv: no such file" in answers["en"]["missing"][2]
    code, out, _err = answers["zh"]["header_only"]
    assert code == 0
    assert "“今日订单.csv”只有表头行，没有数据行" in out
    assert '"今日订单.csv" has only its header row' in answers["en"]["header_only"][1]
