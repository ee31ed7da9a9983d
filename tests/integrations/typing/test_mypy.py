"""The typing test: mypy --strict on correct and incorrect uses of the API.

``correct_usage.py`` must type-check as it is; in ``incorrect_usage.py`` every
offending line carries ``# type: ignore[<code>]`` and mypy warns about unused
ignores, so each line must still be rejected, for that reason.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[2]


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


def test_correct_usage() -> None:
    """Correct usage type checks."""
    result = mypy(HERE / "correct_usage.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_incorrect_usage() -> None:
    """Each incorrect usage is rejected, for its reason."""
    result = mypy(HERE / "incorrect_usage.py")
    assert result.returncode == 0, result.stdout + result.stderr
