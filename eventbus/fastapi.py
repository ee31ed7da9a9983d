"""FastAPI integration: one bus per application, handed to routes as a dependency.

```python
from fastapi import FastAPI
from eventbus import EventBus
from eventbus.fastapi import Events, attach

app = FastAPI()
attach(app, EventBus("shop"))          # app.state.events; closed at shutdown, reopened at startup

@app.post("/sessions/{session_id}/close")
async def close_session(session_id: int, events: Events) -> dict[str, bool]:
    report = await events.emit("sale.closed", session_id=session_id)
    return {"ok": report.ok}

@app.post("/tills/{till_id}/close")
async def close_till(till_id: int, events: Events) -> dict[str, bool]:
    events.defer("till.closed", till_id=till_id)   # runs once this returned without raising
    return {"ok": True}
```

Needs the ``fastapi`` extra: ``pip install 'eventbus[fastapi]'``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Final, TypeAlias

try:
    from fastapi import Depends, FastAPI
    from starlette.requests import HTTPConnection
except ImportError as _missing:  # pragma: no cover - exercised by a test that hides FastAPI
    raise ImportError(
        f"eventbus.fastapi needs FastAPI, which could not be imported ({_missing}); "
        "install the extra: pip install 'eventbus[fastapi]'"
    ) from _missing

from ._bus import EventBus

__all__ = ["STATE_ATTRIBUTE", "Events", "attach", "get_events"]

STATE_ATTRIBUTE: Final = "events"
"""The attribute of ``app.state`` that holds the application's bus."""

_Lifespan: TypeAlias = Callable[[Any], contextlib.AbstractAsyncContextManager[Any]]


def attach(app: FastAPI, bus: EventBus, *, close: bool = True) -> EventBus:
    """Make ``bus`` the application's bus and tie it to the application's lifespan.

    * ``app.state.events`` is ``bus`` from now on, and ``get_events`` (the
      ``Events`` dependency) hands it to routes.
    * At startup, the bus is bound to the server's event loop (``bind()``):
      async handlers of an emission made by ``emit_sync`` from a sync route
      (which FastAPI runs in a worker thread) run on that loop, even if nothing
      was emitted before. A bus closed by an earlier run of the lifespan is
      reopened (``reopen()``), its subscriptions intact: a module-level
      application may be started again, e.g. by a second ``TestClient``.
    * At shutdown, after the last request, published emissions are drained
      while the application's resources are still there; then the
      application's own lifespan shutdown code runs (it may still emit); then
      the bus is closed with ``aclose()``: new emissions are refused and every
      accepted one, published ones included, finishes. With ``close=False`` it
      is only drained (``drain()``), for a bus that outlives the application.

    The application's own lifespan (``FastAPI(lifespan=...)``) is kept.
    Attaching the same bus again is harmless; another bus is a ``RuntimeError``.
    Returns ``bus``.
    """
    if not isinstance(bus, EventBus):
        raise TypeError(f"attach() needs an EventBus, not {type(bus).__name__}: {bus!r}")
    attached: object = getattr(app.state, STATE_ATTRIBUTE, None)
    if attached is bus:
        return bus
    if attached is not None:
        raise RuntimeError(
            f"app.state.{STATE_ATTRIBUTE} already holds {attached!r}: an application has one bus"
        )
    setattr(app.state, STATE_ATTRIBUTE, bus)
    app.router.lifespan_context = _with_bus(app.router.lifespan_context, bus, close=close)
    return bus


def _with_bus(inner: _Lifespan, bus: EventBus, *, close: bool) -> _Lifespan:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        bus.bind()
        bus.reopen()  # closed by an earlier run of this lifespan
        async with inner(app) as state:
            yield state
            # Not in a `finally`: a lifespan torn down by an error must not hang here.
            await bus.drain()  # published emissions finish while the app's resources exist
        # After the application's own shutdown code, which may still emit.
        if close:
            await bus.aclose()
        else:
            await bus.drain()

    return lifespan


async def get_events(connection: HTTPConnection) -> EventBus:
    """FastAPI dependency: the bus attached to the application with ``attach``.

    Works for HTTP and WebSocket routes. Raises ``RuntimeError`` when no bus
    was attached.
    """
    bus = getattr(connection.app.state, STATE_ATTRIBUTE, None)
    if not isinstance(bus, EventBus):
        raise RuntimeError(
            f"no EventBus in app.state.{STATE_ATTRIBUTE}: "
            "call eventbus.fastapi.attach(app, bus) when creating the application"
        )
    return bus


async def _deferring(bus: Annotated[EventBus, Depends(get_events)]) -> AsyncIterator[EventBus]:
    """The application's bus, with a ``deferred()`` scope around the route:
    what the route defers runs once it returned, and is discarded if it raised."""
    async with bus.deferred():
        yield bus


Events: TypeAlias = Annotated[EventBus, Depends(_deferring)]
"""A route parameter annotated ``events: Events`` receives the application's bus.

``events.defer(...)`` holds an emission until the route has returned without
raising; it then runs where the exit code of a dependency with ``yield`` runs.
It is discarded if the route raised, an ``HTTPException`` included."""
