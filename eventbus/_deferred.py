"""Deferred emissions: checked at once, held while a block runs, emitted once
it succeeded and dropped if it raised.

``bus.defer`` finds the innermost open scope of its bus in the current
context (a context variable, so it follows ``await``s and tasks as the chain
does) and holds the emission there. A scope opened inside another one of the
same bus joins it, like a savepoint: what it holds moves to the outer scope
when its block succeeds, and only the outermost scope emits.
"""

from __future__ import annotations

import itertools
import threading
from asyncio.events import _get_running_loop
from contextvars import ContextVar, Token
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final, Self

from ._chain import current_frame
from ._errors import BusClosedError
from ._event import TypedPayload
from ._topic import Topic, resolve

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from ._admission import Admission
    from ._bus import EventBus
    from ._logging import BusLog
    from ._report import EmitReport
    from ._routes import Router

__all__ = ["DeferredScope", "Held", "current_scope", "defer", "name_of", "open_scope_of"]

Held = tuple[int, "str | Topic[Any]", "str | None", dict[str, Any], object]
"""One held emission: (when it was deferred, name or topic, source, payload, tag). The
tag is what the scope's owner noted when it was deferred (the transaction of
a session, see ``eventbus.sqlalchemy``), else None."""

_order = itertools.count()
"""Orders held emissions by their ``defer`` call across scopes and threads."""

_by_order: Final = itemgetter(0)

current_scope: Final[ContextVar[DeferredScope | None]] = ContextVar(
    "eventbus_deferred", default=None
)
"""The innermost scope opened in this context, of any bus (each links to the
one that was current when it opened)."""

_NEW, _OPEN, _DONE = 0, 1, 2


def name_of(target: str | Topic[Any]) -> str:
    """The event name a held emission was deferred under."""
    return target if isinstance(target, str) else target.name


def defer(
    bus: EventBus,
    router: Router,
    admission: Admission,
    name_or_topic: object,
    data: object,
    source: str | None,
    payload: dict[str, Any],
) -> None:
    """Check an emission as ``emit`` would and hold it in the innermost open
    scope of ``bus`` in the current context. The caller scrubs what it raises."""
    name, payload = resolve(name_or_topic, data, payload, router.catalog.specs)
    route = router.route(name)
    if source is not None and not isinstance(source, str):
        raise TypeError(f"source must be a str or None, not {type(source).__name__}")
    if route.shape is not None:  # a name declared with a data type: build or check it now
        payload = route.shape.fit(route.name, payload)
    admission.check(route, payload, 0, None, current_frame.get())
    scope = open_scope_of(bus)
    if scope is None:
        raise RuntimeError(
            f"defer({route.name!r}) needs an open `bus.deferred()` scope of bus {bus.name!r} "
            "in this context; use emit() to emit now"
        )
    target = name_or_topic if isinstance(name_or_topic, Topic) else route.name
    scope._hold((next(_order), target, source, payload, None))


def open_scope_of(bus: EventBus) -> DeferredScope | None:
    """The innermost open scope of ``bus`` in the current context. Scopes that
    have exited (seen by a task that outlived one) are passed over."""
    scope = current_scope.get()
    while scope is not None:
        if scope.bus is bus and scope._is_open:
            return scope
        scope = scope._outer
    return None


class DeferredScope:
    """A block whose emissions, deferred with ``bus.defer``, run only if it
    succeeds: ``with bus.deferred() as scope:`` or ``async with``.

    When the outermost scope of a bus exits without an exception, the held
    emissions run in the order they were deferred (``async with``: ``emit``;
    ``with``: ``emit_sync``) and ``reports`` lists their reports. When a
    scope exits with an exception, its held emissions are dropped (logged as
    ``eventbus.deferred_discarded``) and the exception propagates. A scope is
    entered once.
    """

    __slots__ = (
        "_admission",
        "_held",
        "_lock",
        "_log",
        "_outer",
        "_parent",
        "_reports",
        "_router",
        "_state",
        "_tag",
        "_token",
        "bus",
    )

    def __init__(self, bus: EventBus, *, tag: Callable[[], object] | None = None) -> None:
        self.bus: Final = bus
        self._router: Final[Router] = bus._router
        self._admission: Final[Admission] = bus._admission
        self._log: Final[BusLog] = bus._log
        self._lock: Final = threading.Lock()  # defer may come from worker threads
        self._held: list[Held] = []
        self._reports: list[EmitReport] = []
        self._state = _NEW
        self._parent: DeferredScope | None = None
        self._token: Token[DeferredScope | None] | None = None
        self._outer: DeferredScope | None = None
        """The scope that was current when this one opened (of any bus)."""
        self._tag = tag
        """Notes what a held emission waits for, when it is deferred (a session's
        transaction); inherited by the scopes opened inside this one."""

    def __repr__(self) -> str:
        state = ("new", "open", "exited")[self._state]
        return f"<DeferredScope of {self.bus.name!r} {state} held={len(self._held)}>"

    @property
    def reports(self) -> tuple[EmitReport, ...]:
        """The reports of the held emissions that ran, in the order they ran
        (empty until the outermost scope has exited; always empty for an inner
        scope, whose emissions run with the outer one)."""
        return tuple(self._reports)

    @property
    def _is_open(self) -> bool:
        """Whether the block is running (emissions may be deferred into it)."""
        return self._state == _OPEN

    # ------------------------------------------------------------------ the block

    def __enter__(self) -> Self:
        self._open(join=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        held = self._close(exc)
        if held:
            self._run_sync(held)

    async def __aenter__(self) -> Self:
        self._open(join=True)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        held = self._close(exc)
        if held:
            await self._run_async(held)

    def _open(self, *, join: bool) -> None:
        """Make this the current scope; with ``join``, inside an open scope of
        the same bus, join it."""
        with self._lock:
            if self._state != _NEW:
                raise RuntimeError(
                    "this deferred() scope was already entered: each block needs its own "
                    "bus.deferred()"
                )
            self._state = _OPEN
        if join:
            self._parent = parent = open_scope_of(self.bus)
            if parent is not None and self._tag is None:
                self._tag = parent._tag
        self._outer = current_scope.get()
        self._token = current_scope.set(self)

    def _close(self, exc: BaseException | None) -> list[Held] | None:
        """Leave the block: drop what is held if it raised (``exc``), hand it to
        the outer scope if there is one, else return it, in order, to be run."""
        self._leave()
        held = self._take(finish=True)
        if exc is not None:
            self._discard(held)
            return None
        if self._parent is not None:
            self._parent._join(held)
            return None
        return held

    def _leave(self) -> None:
        """Make the scope that was current before this one current again."""
        try:
            if current_scope.get() is not self or self._token is None:
                raise ValueError("not the current scope")
            current_scope.reset(self._token)  # ValueError in another context (task)
        except ValueError:
            self._discard(self._take(finish=True))
            raise RuntimeError(
                "a deferred() scope must exit in the task (context) that entered it, "
                "after the scopes opened inside it: its held emissions were discarded"
            ) from None

    # ------------------------------------------------------------------ holding

    def _hold(self, item: Held) -> None:
        """Hold one checked emission, noting its tag."""
        tag = self._tag
        if tag is not None:
            item = (item[0], item[1], item[2], item[3], tag())
        with self._lock:
            if self._state != _OPEN:
                raise RuntimeError(
                    f"defer({name_of(item[1])!r}): its deferred() scope has exited meanwhile"
                )
            self._held.append(item)

    def _join(self, items: list[Held]) -> None:
        """Take over what an inner scope held (its block succeeded)."""
        if not items:
            return
        with self._lock:
            accepted = self._state == _OPEN
            if accepted:
                self._held += items
        if not accepted:
            self._discard(items)
            raise RuntimeError(
                "an inner deferred() scope exited after the scope it joined: "
                "its held emissions were discarded"
            )

    @property
    def _holding(self) -> bool:
        """Whether any emission is held."""
        return bool(self._held)

    def _take(self, *, finish: bool = False) -> list[Held]:
        """Remove and return what is held, in order; with ``finish``, hold nothing more."""
        with self._lock:
            held, self._held = self._held, []
            if finish:
                self._state = _DONE
        held.sort(key=_by_order)
        return held

    def _take_tagged(self, tag: object) -> list[Held]:
        """Remove and return the held emissions tagged ``tag``, in order."""
        with self._lock:
            taken = [item for item in self._held if item[4] is tag]
            self._held = [item for item in self._held if item[4] is not tag]
        taken.sort(key=_by_order)
        return taken

    def _retag(self, old: object, new: object) -> None:
        """Tag ``new`` what was tagged ``old`` (a savepoint released into its parent)."""
        with self._lock:
            self._held = [
                (order, name, source, payload, new if tag is old else tag)
                for order, name, source, payload, tag in self._held
            ]

    def _stop(self) -> None:
        """Hold nothing more (what is held stays)."""
        with self._lock:
            self._state = _DONE

    def _discard(self, held: list[Held]) -> None:
        """Drop held emissions, logging their names (never their payloads)."""
        if held:
            self._log.deferred_discarded([name_of(item[1]) for item in held])

    # ------------------------------------------------------------------ running

    def _run_sync(self, held: list[Held]) -> None:
        """Emit each held emission with ``emit_sync``, in order. Inside a running
        loop's thread, one with an async handler is refused before any runs."""
        if _get_running_loop() is not None:
            for item in held:
                route = self._router.route(name_of(item[1]))
                if route.needs_loop:
                    self._discard(held)
                    try:
                        self._admission.refuse_async_in_loop(route, current_frame.get())
                    except BusClosedError:
                        raise
                    except RuntimeError as error:
                        raise RuntimeError(
                            f"{error}; a `with bus.deferred()` scope exited in a running "
                            "loop's thread: use `async with bus.deferred()` (no held "
                            "emission ran)"
                        ) from None
        emit_sync = self.bus.emit_sync
        for index, (_, target, source, payload, _tag) in enumerate(held):
            try:
                if type(payload) is TypedPayload and not isinstance(target, str):
                    report = emit_sync(target, payload.data, source=source)
                else:
                    report = emit_sync(name_of(target), source=source, **payload)
                self._reports.append(report)
            except BaseException:
                self._discard(held[index + 1 :])
                raise

    async def _run_async(self, held: list[Held]) -> None:
        """Await ``emit`` for each held emission, in order."""
        emit = self.bus.emit
        for index, (_, target, source, payload, _tag) in enumerate(held):
            try:
                if type(payload) is TypedPayload and not isinstance(target, str):
                    report = await emit(target, payload.data, source=source)
                else:
                    report = await emit(name_of(target), source=source, **payload)
                self._reports.append(report)
            except BaseException:
                self._discard(held[index + 1 :])
                raise
