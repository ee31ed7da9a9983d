"""Interceptors: code that runs around each emission and each handler run.

A bus with no interceptor never comes here: its routes carry no
``Interception`` and dispatch through ``_dispatch``'s loops. A route that
some interceptor matches carries one (built with the route, at subscribe
time), and its emissions run through ``intercepted`` / ``intercepted_sync``
below instead: the same loops, with the interceptors' hooks around them.

A hook is a generator function that yields once: the code before the
``yield`` runs before, the code after it runs after, receiving the outcome
(the ``EmitReport`` for an emission, the handler's exception or None for a
handler run). A ``BaseException`` that stops the emission (a cancellation) is
thrown in at the ``yield`` instead, so ``with`` blocks and ``finally``
clauses around it clean up.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping
from inspect import isawaitable
from time import perf_counter
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from ._blocking import BlockingRunner, finish_awaitable
from ._chain import Frame, current_frame
from ._dispatch import Hooks, admit, finish_on_error_sync, refuse_awaitable
from ._event import Event
from ._interceptors import NO_HEADERS, HandlerHook, Interception
from ._report import SKIPPED, EmitReport, Failure, new_report

if TYPE_CHECKING:
    from ._bus import EventBus
    from ._routes import Route

__all__ = ["intercepted", "intercepted_sync"]

# ---------------------------------------------------------------- running hooks

Run = Generator[None, Any, None]


def _name(run: Run) -> str:
    return getattr(run, "__qualname__", type(run).__name__)


def _start(hooks: Iterable[Callable[..., Run]], *args: Any) -> list[Run]:
    """Run every hook to its ``yield``; if one raises, finish those started (the
    exception thrown in) and raise it."""
    runs: list[Run] = []
    for hook in hooks:
        run = hook(*args)
        try:
            next(run)
        except BaseException as error:
            if isinstance(error, StopIteration):
                error = RuntimeError(f"interceptor hook {_name(run)} did not yield")
            _abort(runs, error)
            raise error from None
        runs.append(run)
    return runs


def _finish(runs: list[Run], outcome: object) -> None:
    """Send ``outcome`` into the started hooks, innermost first; the first
    exception one raises is raised once every hook has finished."""
    raised: BaseException | None = None
    for run in reversed(runs):
        try:
            run.send(outcome)
        except StopIteration:
            continue
        except BaseException as error:
            raised = raised or error
            continue
        run.close()
        raised = raised or RuntimeError(f"interceptor hook {_name(run)} yielded twice")
    if raised is not None:
        raise raised


def _abort(runs: list[Run], error: BaseException) -> None:
    """Throw ``error`` into the started hooks, innermost first (the caller
    raises it); another exception one raises is lost with a note on ``error``."""
    for run in reversed(runs):
        try:
            run.throw(error)
        except StopIteration:
            continue
        except BaseException as raised:
            if raised is not error:
                error.add_note(f"interceptor hook {_name(run)} raised {raised!r}")
            continue
        run.close()


# ---------------------------------------------------------------- dispatch


async def intercepted(
    interception: Interception,
    bus: EventBus,
    route: Route,
    event: Event,
    parent: Frame | None,
    hooks: Hooks,
    headers: Mapping[str, str] = NO_HEADERS,
) -> EmitReport:
    """``emit`` / ``publish`` / ``emit_received`` past admission, for a route
    with interceptors: the emission hooks around the awaiting dispatch loop."""
    runs = _start(interception.emission, bus, event, headers)
    try:
        if route.calls:
            live = [True]  # cleared when the dispatch ends: see _chain.Frame
            token = current_frame.set((bus, event, parent, live))
            try:
                report = await _dispatch(route, event, hooks, interception.handler)
            finally:
                live[0] = False
                current_frame.reset(token)
        else:
            report = new_report(EmitReport, (event, (), (), 0))
    except BaseException as error:
        _abort(runs, error)
        raise
    _finish(runs, report)
    return report


def intercepted_sync(
    interception: Interception,
    bus: EventBus,
    route: Route,
    event: Event,
    parent: Frame | None,
    hooks: Hooks,
    in_loop: bool,
) -> EmitReport:
    """``emit_sync`` past admission, for a route with interceptors: the
    emission hooks around the blocking dispatch loop."""
    runs = _start(interception.emission, bus, event, NO_HEADERS)
    try:
        if route.calls:
            live = [True]
            token = current_frame.set((bus, event, parent, live))
            try:
                report = _dispatch_sync(route, event, hooks, in_loop, interception.handler)
            finally:
                live[0] = False
                current_frame.reset(token)
        else:
            report = new_report(EmitReport, (event, (), (), 0))
    except BaseException as error:
        _abort(runs, error)
        raise
    _finish(runs, report)
    return report


async def _dispatch(
    route: Route, event: Event, hooks: Hooks, around: tuple[HandlerHook, ...]
) -> EmitReport:
    """``_dispatch.dispatch`` with the handler hooks around each handler run."""
    trace: list[object] = [perf_counter()]
    add = trace.append
    failed = 0
    for direct, info in route.calls:
        try:
            handler = direct if direct is not None else admit(info, event, hooks)
            if handler is None:
                add(SKIPPED)
                add(perf_counter())
                continue
            runs = _start(around, event, info)
            try:
                value = handler(event)
                if value is not None and (type(value) is CoroutineType or isawaitable(value)):
                    timeout = info.timeout
                    if timeout is None:
                        value = await value
                    else:
                        value = await finish_awaitable(value, timeout, info.name)
            except Exception as error:
                _finish(runs, error)
                raise
            except BaseException as error:
                _abort(runs, error)
                raise
            _finish(runs, None)
        except Exception as error:
            failed += 1
            add(Failure(error, perf_counter() - trace[-1]))  # type: ignore[operator]
            pending = hooks.failures.handler_failed(event, info, error)
            if pending is not None:
                await hooks.failures.finish(pending, event)
        else:
            add(value)
        add(perf_counter())
    return new_report(EmitReport, (event, route.handlers, trace, failed))


def _dispatch_sync(
    route: Route, event: Event, hooks: Hooks, in_loop: bool, around: tuple[HandlerHook, ...]
) -> EmitReport:
    """``_dispatch.dispatch_sync`` with the handler hooks around each handler run."""
    trace: list[object] = [perf_counter()]
    add = trace.append
    failed = 0
    runner: BlockingRunner | None = None
    for direct, info in route.calls:
        try:
            handler = direct if direct is not None else admit(info, event, hooks)
            if handler is None:
                add(SKIPPED)
                add(perf_counter())
                continue
            runs = _start(around, event, info)
            try:
                value = handler(event)
                if value is not None and (type(value) is CoroutineType or isawaitable(value)):
                    if in_loop:
                        refuse_awaitable(value, info)
                    runner = runner or BlockingRunner(hooks.loop_elsewhere(), hooks.background)
                    value = runner.run(value, info.timeout, info.name)
            except Exception as error:
                _finish(runs, error)
                raise
            except BaseException as error:
                _abort(runs, error)
                raise
            _finish(runs, None)
        except Exception as error:
            failed += 1
            add(Failure(error, perf_counter() - trace[-1]))  # type: ignore[operator]
            pending = hooks.failures.handler_failed(event, info, error)
            if pending is not None:
                runner = finish_on_error_sync(hooks, pending, event, in_loop, runner)
        else:
            add(value)
        add(perf_counter())
    return new_report(EmitReport, (event, route.handlers, trace, failed))
