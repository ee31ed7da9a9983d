"""What an emission reports back: one ``HandlerResult`` per handler called.

Dispatch records a flat trace and nothing else: the clock at the start, then
for each handler its outcome and the clock after it. The result objects are
built from the trace when a report is read, because most reports never are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, final

from ._event import Event, new_event
from ._handlers import HandlerInfo

__all__ = ["SKIPPED", "EmitReport", "Failure", "HandlerResult", "new_report"]


@final
class Failure:
    """Marks an outcome as an exception raised by the handler (or its predicate).

    It carries its own duration: the clock mark after a failure is taken once
    the failure was logged and reported, which is no part of the handler's time.
    """

    __slots__ = ("duration", "error")

    def __init__(self, error: Exception, duration: float) -> None:
        self.error = error
        self.duration = duration


SKIPPED: Final = object()
"""Outcome of a handler that was not called (predicate false, once already claimed, collected)."""


@final
@dataclass(frozen=True, slots=True)
class HandlerResult:
    """How one handler fared: its return value, or the exception it raised."""

    handler: HandlerInfo
    value: Any
    error: Exception | None
    duration: float
    """Seconds spent in the handler (and its predicate)."""

    @property
    def ok(self) -> bool:
        return self.error is None


new_report: Final = tuple.__new__
"""``new_report(EmitReport, (event, handlers, trace, failed))``: the emit path's constructor.

An emission nobody listens to passes the fields its event would be made from
(``new_event``'s tuple) instead of the event: nothing reads it unless the
report's ``event`` is read, which makes it then (an equal one on each read)."""


@final
class EmitReport(tuple[Any, ...]):
    """The outcome of one emission, in dispatch order.

    A tuple underneath, for the same reason as ``Event``: one is built per
    emission. Read it through its properties.
    """

    __slots__ = ()

    @property
    def event(self) -> Event:
        """The emitted event."""
        event = tuple.__getitem__(self, 0)
        if type(event) is tuple:  # a handler-less emission's: made now (see new_report)
            return new_event(Event, event)
        return event  # type: ignore[no-any-return]

    def __new__(
        cls,
        event: Event,
        handlers: Sequence[HandlerInfo] = (),
        trace: Sequence[object] = (),
        failed: int = 0,
    ) -> EmitReport:
        return new_report(cls, (event, handlers, trace, failed))

    @property
    def results(self) -> tuple[HandlerResult, ...]:
        """One per handler called, and one per predicate that raised, in dispatch order."""
        _, handlers, trace, _ = tuple.__iter__(self)
        results = []
        for index, handler in enumerate(handlers):
            outcome = trace[2 * index + 1]
            if outcome is SKIPPED:
                continue
            if type(outcome) is Failure:
                results.append(HandlerResult(handler, None, outcome.error, outcome.duration))
            else:
                duration = trace[2 * index + 2] - trace[2 * index]
                results.append(HandlerResult(handler, outcome, None, duration))
        return tuple(results)

    @property
    def ok(self) -> bool:
        """True when no handler (or predicate) failed."""
        return not tuple.__getitem__(self, 3)

    @property
    def errors(self) -> tuple[HandlerResult, ...]:
        """The failed results, in dispatch order."""
        if self.ok:
            return ()
        return tuple(result for result in self.results if result.error is not None)

    @property
    def values(self) -> tuple[Any, ...]:
        """Return values of the handlers that succeeded, in dispatch order."""
        return tuple(result.value for result in self.results if result.error is None)

    @property
    def failed(self) -> int:
        """How many handlers (or predicates) failed."""
        return tuple.__getitem__(self, 3)  # type: ignore[no-any-return]

    @property
    def duration(self) -> float:
        """Seconds from the first handler's start to the last one's end (0 without handlers)."""
        trace = tuple.__getitem__(self, 2)
        return trace[-1] - trace[0] if trace else 0.0

    def raise_errors(self) -> None:
        """Raise an ``ExceptionGroup`` of the handlers' exceptions, if any failed."""
        errors = [result.error for result in self.errors if result.error is not None]
        if errors:
            raise ExceptionGroup(
                f"{len(errors)} handler(s) failed for event {self.event.name!r}", errors
            )

    __iter__: ClassVar[None] = None  # type: ignore[assignment]  # a record, not a sequence

    def __getitem__(self, index: Any) -> Any:
        raise TypeError("EmitReport is not subscriptable; read report.results")

    def __copy__(self) -> EmitReport:
        return self

    def __deepcopy__(self, memo: object) -> EmitReport:
        return self

    def __reduce__(self) -> Any:
        raise TypeError("an EmitReport cannot be pickled: it holds live handlers and exceptions")

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    def __repr__(self) -> str:
        return (
            f"<EmitReport {self.event.name!r} id={self.event.id!r} "
            f"results={len(self.results)} failed={self.failed}>"
        )
