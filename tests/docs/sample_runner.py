"""Run the samples of one documentation page, in order, in one namespace.

Used by ``test_samples.py``, in a subprocess whose working directory is a
fresh temporary directory::

    python sample_runner.py SPEC.json RESULTS.json

``SPEC.json`` lists the page's blocks (``line``, ``kind``, ``code``,
``target``). ``RESULTS.json`` receives, for each block's line, ``"ok"``, a
skip reason, or the error's traceback. The first block that fails stops the
page: the blocks after it are reported as not run.

Kinds:

* ``run``: executed in the page's namespace. A block with a top-level
  ``await`` runs as a coroutine on the page's event loop (one loop per page,
  kept between blocks, so a task published in one block can be awaited in the
  next); any other block runs with no loop running, as in a script.
* ``file``: written to ``target`` in the working directory (which is on
  ``sys.path``), for later blocks to import or use.
* ``pytest``: written to a test module and run with ``python -m pytest`` in
  the working directory, with the files written so far.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

PYTEST_TIMEOUT = 300  # seconds; a hang guard, not a speed check


def run_pytest(code: str, line: int, workdir: Path) -> str:
    module = workdir / f"test_sample_{line}.py"
    module.write_text(code)
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", module.name],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=PYTEST_TIMEOUT,
            check=False,
        )
    finally:
        module.unlink()
    if completed.returncode != 0:
        return f"pytest exited with {completed.returncode}:\n{completed.stdout}{completed.stderr}"
    return "ok"


def main(spec_path: str, results_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    page: str = spec["page"]
    workdir = Path.cwd()
    sys.path.insert(0, str(workdir))
    namespace: dict[str, Any] = {"__name__": "__main__"}
    loop = asyncio.new_event_loop()
    results: dict[str, str] = {}
    failed_at: int | None = None
    for block in spec["blocks"]:
        line: int = block["line"]
        kind: str = block["kind"]
        if failed_at is not None:
            results[str(line)] = f"not run: {page}:{failed_at} failed before it"
            continue
        try:
            if kind == "file":
                (workdir / block["target"]).write_text(block["code"])
                importlib.invalidate_caches()
                outcome = "ok"
            elif kind == "pytest":
                outcome = run_pytest(block["code"], line, workdir)
            else:
                code = compile(
                    block["code"], f"{page}:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
                )
                if code.co_flags & inspect.CO_COROUTINE:
                    loop.run_until_complete(eval(code, namespace))
                else:
                    exec(code, namespace)
                outcome = "ok"
        except BaseException:
            outcome = traceback.format_exc()
        results[str(line)] = outcome
        if outcome != "ok":
            failed_at = line
    Path(results_path).write_text(json.dumps(results))
    sys.stdout.flush()
    sys.stderr.flush()
    # Samples may leave daemon threads or loops behind: they must not hold the exit.
    os._exit(0)


if __name__ == "__main__":
    main(*sys.argv[1:])
