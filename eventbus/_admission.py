"""Admission: whether an emission may run, decided before any handler does.

An emission is refused when the bus is closed (unless a handler of one of its
accepted emissions makes it), when its payload fails its declaration, and
when it would loop back into its own chain or nest deeper than ``max_depth``.
An admitted emission's event is shown to the route's taps, which may refuse
it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from time import time
from typing import Any, Final, NoReturn, final

from ._catalog import check_payload
from ._chain import Frame, chain_names, compact_chain, loops_back, runs_on, stand_in_chain
from ._errors import BusClosedError, ReentrancyError
from ._event import Event, new_event, next_serial
from ._lifecycle import Lifecycle
from ._logging import BusLog
from ._names import check_name
from ._routes import Route
from ._taps import Confirmation, Tap, confirmed, confirmed_sync

__all__ = ["Admission", "show_taps"]


def show_taps(
    taps: tuple[Tap, ...],
    event: Event,
    parent: Frame | None,
    waits: list[Confirmation] | None = None,
) -> None:
    """Every tap prepares first (any may refuse the emission), then all take;
    the confirmations of confirming taps go to ``waits`` (given for confirming
    routes only)."""
    chain = chain_names(parent)
    if len(taps) == 1 and waits is None:
        tap = taps[0]
        tap.take(tap.prepare(event, chain))
        return
    prepared = [tap.prepare(event, chain) for tap in taps]
    for tap, item in zip(taps, prepared, strict=True):
        confirmation = tap.take(item)
        if waits is not None and confirmation is not None:
            waits.append(confirmation)


@final
class Admission:
    """The checks of one bus. ``owner`` is the bus, as the chain's frames name it."""

    __slots__ = ("_lifecycle", "_log", "max_depth", "owner")

    def __init__(self, owner: object, max_depth: int, lifecycle: Lifecycle, log: BusLog) -> None:
        self.owner: Final = owner
        self.max_depth: Final = max_depth
        self._lifecycle: Final = lifecycle
        self._log: Final = log

    def admit(
        self,
        route: Route,
        payload: dict[str, Any],
        source: str | None,
        parent: Frame | None,
        waits: list[Confirmation] | None = None,
    ) -> Event:
        """Make the event of an emission that needs checking, or refuse it.

        The caller has already counted the emission as in flight; the emit
        fast path (top-level, no payload check, no tap, no source, open bus)
        does not come here. For a confirming route the caller passes ``waits``,
        which receives the confirmations to wait for before dispatch.
        """
        if source is not None and not isinstance(source, str):
            raise TypeError(f"source must be a str or None, not {type(source).__name__}")
        if route.shape is not None:  # a name declared with a data type: build or check it
            payload = route.shape.fit(route.name, payload)
        if parent is None:
            self.check(route, payload, 0, None, None)
            fields: tuple[Any, ...] = (route.name, payload, source, next_serial(), None, 0, time())
        else:
            parent_event = parent[1]
            depth = parent_event.depth + 1
            self.check(route, payload, depth, parent, parent)
            fields = (route.name, payload, source, next_serial(), parent_event.id, depth, time())
        event = new_event(Event, fields)
        if route.taps:
            show_taps(route.taps, event, parent, waits)
        return event

    async def admit_confirmed(
        self, route: Route, payload: dict[str, Any], source: str | None, parent: Frame | None
    ) -> Event:
        """``admit`` for a confirming route: wait for its taps' confirmations."""
        waits: list[Confirmation] = []
        event = self.admit(route, payload, source, parent, waits)
        await confirmed(waits)
        return event

    def admit_blocking(
        self, route: Route, payload: dict[str, Any], source: str | None, parent: Frame | None
    ) -> Event:
        """``admit_confirmed`` for ``emit_sync`` outside a running loop: blocks the thread."""
        waits: list[Confirmation] = []
        event = self.admit(route, payload, source, parent, waits)
        confirmed_sync(waits)
        return event

    def check(
        self,
        route: Route,
        payload: Mapping[str, Any],
        depth: int,
        chain: Frame | None,
        emitter: Frame | None,
    ) -> None:
        """Raise if an emission of ``route`` at ``depth`` below ``chain`` is refused:
        closed bus (unless ``emitter`` is one of its handlers), a payload that
        fails its declaration, a loop."""
        name = route.name
        if self._lifecycle.closing:
            self.refuse_if_closed(name, emitter)
        if route.payload_check:
            check_payload(name, route.payload_check, payload)
        if chain is not None or depth:
            self._refuse_if_looping(route, depth, chain)

    def receive(
        self,
        route: Route,
        event: Event,
        chain: tuple[str, ...],
        skip: Tap | None,
        waits: list[Confirmation] | None = None,
    ) -> Frame | None:
        """Check an event made in another process as a top-level emission (no
        handler of this bus emitted it), show it to every tap but ``skip``, and
        return frames standing for ``chain``, the emissions that led to it there
        (``waits`` as for ``admit``)."""
        ancestors = stand_in_chain(self.owner, tuple(check_name(name) for name in chain), event)
        self.check(route, event.payload, event.depth, ancestors, None)
        taps = tuple(tap for tap in route.taps if tap is not skip)
        if taps:
            show_taps(taps, event, ancestors, waits)
        return ancestors

    def refuse_async_in_loop(self, route: Route, parent: Frame | None) -> NoReturn:
        """``emit_sync`` in a running loop's thread cannot run the route's async
        handlers (nor wait for a confirming tap): say which, and whose (their
        ``owner``), and what to use instead."""
        if self._lifecycle.closing:
            self.refuse_if_closed(route.name, parent)
        if not route.has_async:
            confirming = ", ".join(repr(tap) for tap in route.taps if getattr(tap, "confirms", 0))
            raise RuntimeError(
                f"emit_sync({route.name!r}) inside a running event loop cannot wait for the "
                f"confirmation of {confirming}; use `await bus.emit(...)` or `bus.publish(...)`"
            )
        async_handlers = ", ".join(
            info.name if info.owner is None else f"{info.name} (owner {info.owner!r})"
            for info in route.handlers
            if info.is_async
        )
        raise RuntimeError(
            f"emit_sync({route.name!r}) inside a running event loop cannot run async handlers "
            f"({async_handlers}); use `await bus.emit(...)` or `bus.publish(...)`"
        )

    def refuse_if_closed(self, name: str, emitter: Frame | None) -> None:
        """Raise ``BusClosedError`` unless ``emitter`` runs on this bus and it is
        still finishing (a closing bus accepts its chains' emissions)."""
        if self._lifecycle.closed or not runs_on(emitter, self.owner):
            raise BusClosedError(f"bus {self._log.bus!r} is closed: emission of {name!r} refused")

    def _refuse_if_looping(self, route: Route, depth: int, parent: Frame | None) -> None:
        name = route.name
        if depth > self.max_depth:
            self._refuse_loop(name, parent, f"it would nest deeper than max_depth={self.max_depth}")
        if not route.reentrant and loops_back(parent, self.owner, name):
            self._refuse_loop(name, parent, "it is already being emitted in this chain")

    def _refuse_loop(self, name: str, parent: Frame | None, reason: str) -> None:
        chain = (*chain_names(parent), name)
        self._log.loop_refused(name, " -> ".join(chain), reason)
        shown = compact_chain(chain)
        raise ReentrancyError(f"refused to emit {name!r}: {reason}: {shown}", chain)
