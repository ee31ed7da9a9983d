"""Every ```python block of README.md and docs/**/*.md runs as written.

A page is read top to bottom, so its blocks run in order in one namespace:
a block may use what an earlier block of the same page defined (``bus``,
handlers, imports), never what another page defined. Each page runs in its own
subprocess, in a fresh temporary working directory, with the repository root
on the path (``examples.shop`` is importable); each block is its own test case,
named after the page and the line of its opening fence (``README.md:123``).

The line just before a fence may hold one of these HTML comments (invisible
once rendered):

* ``<!-- sample: no-run -->``: the block is not run (it needs a Redis server,
  starts a server, or is deliberately incomplete); the test case is skipped,
  and ``pytest -ra`` counts these skips;
* ``<!-- sample: file NAME -->``: the block (of any language) is the content
  of the file ``NAME`` in the working directory, e.g. a module that a later
  block imports, or a ``pyproject.toml`` that a pytest sample needs;
* ``<!-- sample: pytest -->``: the block is a pytest test module: it is written
  to the working directory and run with ``python -m pytest`` there.

See ``sample_runner.py`` for how blocks run (top-level ``await`` included).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("sample_runner.py")
PAGE_TIMEOUT = 600  # seconds for a whole page; a hang guard, not a speed check
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[ \t]*$")
MARKER = re.compile(r"^\s*<!--\s*sample:\s*(?P<kind>no-run|file|pytest)\s*(?P<arg>\S*)\s*-->\s*$")
NO_RUN = "marked <!-- sample: no-run -->"


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    line: int  # of the opening fence, 1-based
    kind: str  # run, file, pytest or no-run
    target: str  # the file name of a `file` block
    code: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def blocks_of(path: Path) -> list[Block]:
    """The python blocks of a page, and every block marked with a sample comment."""
    page = path.relative_to(ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        start, indent = index, fence["indent"]
        end = start + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = [text.removeprefix(indent) for text in lines[start + 1 : end]]
        marker = MARKER.match(lines[start - 1]) if start else None
        if marker is not None or fence["lang"] == "python":
            kind = marker["kind"] if marker else "run"
            target = marker["arg"] if marker else ""
            if kind == "file" and not target:
                raise ValueError(f"{page}:{start + 1}: <!-- sample: file --> needs a file name")
            blocks.append(Block(page, start + 1, kind, target, "\n".join(body) + "\n"))
        index = end + 1
    return blocks


BLOCKS = [block for path in PAGES for block in blocks_of(path)]
RUNNABLE = [block for block in BLOCKS if block.kind != "file"]


@pytest.fixture(scope="session")
def page_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Each page's results, computed the first time one of its blocks is tested."""
    return {}


def run_page(page: str, workdir: Path) -> dict[str, str]:
    blocks = [block for block in BLOCKS if block.page == page and block.kind != "no-run"]
    spec = workdir.parent / f"{workdir.name}-spec.json"
    results = workdir.parent / f"{workdir.name}-results.json"
    spec.write_text(
        json.dumps(
            {
                "page": page,
                "blocks": [
                    {"line": b.line, "kind": b.kind, "target": b.target, "code": b.code}
                    for b in blocks
                ],
            }
        )
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, str(RUNNER), str(spec), str(results)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=PAGE_TIMEOUT,
        check=False,
    )
    if not results.exists():
        pytest.fail(
            f"the samples of {page} did not finish (exit {completed.returncode}):\n"
            f"{completed.stdout[-4000:]}{completed.stderr[-4000:]}",
            pytrace=False,
        )
    outcome: dict[str, str] = json.loads(results.read_text())
    return outcome


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.id for block in RUNNABLE])
def test_sample_runs_as_written(
    block: Block,
    page_results: dict[str, dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    if block.kind == "no-run":
        pytest.skip(NO_RUN)
    if block.page not in page_results:
        workdir = tmp_path_factory.mktemp(Path(block.page).stem)
        page_results[block.page] = run_page(block.page, workdir)
    outcome = page_results[block.page][str(block.line)]
    if outcome != "ok":
        pytest.fail(f"{block.id}:\n{outcome}", pytrace=False)


def test_the_pages_have_samples() -> None:
    """Guards the extraction itself: a broken fence pattern would test nothing."""
    assert (ROOT / "README.md") in PAGES
    assert len({block.page for block in RUNNABLE}) >= 10
    assert sum(block.kind in ("run", "pytest") for block in BLOCKS) >= 30
