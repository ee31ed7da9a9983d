"""What happens when a handler fails: an error log line, then the bus's
``on_error`` hook, whose own failures are logged and go no further."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Final, final

from ._blocking import BlockingRunner
from ._event import Event
from ._handlers import HandlerInfo
from ._lifecycle import Lifecycle
from ._logging import BusLog

__all__ = ["ErrorHook", "Failures"]

ErrorHook = Callable[[Event, HandlerInfo, Exception], Any]


@final
class Failures:
    """Reports handler failures for the dispatch loops of one bus."""

    __slots__ = ("_lifecycle", "_log", "_on_error")

    def __init__(self, log: BusLog, on_error: ErrorHook | None, lifecycle: Lifecycle) -> None:
        self._log: Final = log
        self._on_error: Final = on_error
        self._lifecycle: Final = lifecycle

    def handler_failed(
        self, event: Event, info: HandlerInfo, error: Exception
    ) -> Awaitable[Any] | None:
        """Log a handler's failure and pass it to ``on_error``; return what that
        returned if it must be awaited (see the ``finish_*`` methods)."""
        self._log.handler_failed(event, info, error)
        if self._on_error is None:
            return None
        try:
            result = self._on_error(event, info, error)
        except Exception as hook_error:
            self._log.on_error_failed(event, hook_error)
            return None
        return result if result is not None and inspect.isawaitable(result) else None

    async def finish(self, pending: Awaitable[Any], event: Event) -> None:
        """Await ``on_error``'s awaitable (``emit``, ``publish``)."""
        try:
            await pending
        except Exception as error:
            self._log.on_error_failed(event, error)

    def finish_later(self, pending: Awaitable[Any], event: Event) -> None:
        """Inside a running loop ``emit_sync`` cannot block: finish ``on_error``'s
        awaitable as a task that ``drain`` and ``aclose`` wait for."""
        self._lifecycle.run_later(self.finish(pending, event), event)

    def finish_blocking(
        self, pending: Awaitable[Any], event: Event, runner: BlockingRunner
    ) -> None:
        """Finish ``on_error``'s awaitable for ``emit_sync`` outside a loop."""
        try:
            runner.run(pending, None)
        except Exception as error:
            self._log.on_error_failed(event, error)
