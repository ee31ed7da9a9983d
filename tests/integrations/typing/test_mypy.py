"""The typing tests: mypy --strict and pyright on correct and incorrect uses of the API.

``correct_usage.py`` and ``typed_correct_usage.py`` must type-check as they
are. In ``incorrect_usage.py`` and ``typed_incorrect_usage.py`` every
offending line carries ``# type: ignore[<code>]``: mypy warns about unused
ignores, so each line must still be rejected, for that reason; pyright runs
with those comments disabled and must report errors on exactly those lines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
CORRECT = ["correct_usage.py", "typed_correct_usage.py"]
INCORRECT = ["incorrect_usage.py", "typed_incorrect_usage.py"]
MARKED = re.compile(r"#\s*type:\s*ignore\[[a-z]")


def mypy(path: Path) -> subprocess.CompletedProcess[str]:
    """Run mypy from the repository root (its configuration, its cache)."""
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--warn-unused-ignores", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", CORRECT)
def test_correct_usage(name: str) -> None:
    """Correct usage type checks."""
    result = mypy(HERE / name)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", INCORRECT)
def test_incorrect_usage(name: str) -> None:
    """Each incorrect usage is rejected, for its reason."""
    result = mypy(HERE / name)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def pyright_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[int]]:
    """The lines pyright reports errors on, per file, type-ignore comments disabled."""
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent)) or shutil.which(
        "pyright"
    )
    if pyright is None:
        pytest.skip("pyright is not installed (extra `typecheck`)")
    config = tmp_path_factory.mktemp("pyright") / "pyrightconfig.json"
    config.write_text(json.dumps({"enableTypeIgnoreComments": False, "pythonVersion": "3.11"}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [pyright, "-p", str(config), "--pythonpath", sys.executable, "--outputjson"]
        + [str(HERE / name) for name in CORRECT + INCORRECT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    report = json.loads(result.stdout)
    errors: dict[str, set[int]] = {name: set() for name in CORRECT + INCORRECT}
    for diagnostic in report["generalDiagnostics"]:
        if diagnostic["severity"] == "error":
            name = Path(diagnostic["file"]).name
            errors[name].add(diagnostic["range"]["start"]["line"] + 1)
    return errors


@pytest.mark.parametrize("name", CORRECT)
def test_correct_usage_under_pyright(name: str, pyright_errors: dict[str, set[int]]) -> None:
    """Correct usage type checks under pyright too."""
    assert pyright_errors[name] == set()


@pytest.mark.parametrize("name", INCORRECT)
def test_incorrect_usage_under_pyright(name: str, pyright_errors: dict[str, set[int]]) -> None:
    """Pyright rejects exactly the marked lines."""
    lines = (HERE / name).read_text().splitlines()
    marked = {number for number, line in enumerate(lines, 1) if MARKED.search(line)}
    assert pyright_errors[name] == marked
