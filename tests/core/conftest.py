"""The ``emit`` fixture: one test per behaviour, run under each way of emitting."""

from __future__ import annotations

import pytest
from emitters import EMIT_MODES, Emitter


@pytest.fixture(params=EMIT_MODES)
def emit(request: pytest.FixtureRequest) -> Emitter:
    """Each way of emitting in turn; narrow it with
    ``@pytest.mark.parametrize("emit", [...], indirect=True)``."""
    return Emitter(request.param)
