"""Logging through structlog without configuring it, and nearly for free when
debug is filtered out.

structlog offers no notification when it is reconfigured, so the gate
remembers the wrapper class it last saw in structlog's global configuration:
one identity test per emission tells whether the cached verdict "debug is
filtered" still holds. Anything else (debug on, or a level only known at run
time, as with the stdlib integration) takes the slow path, which rebuilds the
bound logger whenever any part of the configuration changed.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, Final

import structlog

if TYPE_CHECKING:
    import asyncio

    from ._event import Event
    from ._handlers import HandlerInfo
    from ._report import EmitReport

try:  # structlog's global configuration; a private name, hence the fallback
    from structlog._config import _CONFIG as structlog_config
except ImportError:  # pragma: no cover - only on a structlog that renamed it

    class _NoConfig:
        default_wrapper_class: Any = None
        default_processors: Any = None
        logger_factory: Any = None
        default_context_class: Any = None

    structlog_config = _NoConfig()  # type: ignore[assignment]

__all__ = ["BusLog", "LogGate", "logging_failed", "structlog_config"]

_STATIC_DEBUG: Final[dict[Any, bool]] = {
    structlog.make_filtering_bound_logger(level): level <= logging.DEBUG
    for level in (
        logging.NOTSET,
        logging.DEBUG,
        logging.INFO,
        logging.WARNING,
        logging.ERROR,
        logging.CRITICAL,
    )
}
_LAZY_PROXY: Final = type(structlog.get_logger())


def _config_key() -> tuple[Any, ...]:
    cfg = structlog_config
    return (
        cfg.default_wrapper_class,
        cfg.default_processors,
        cfg.logger_factory,
        cfg.default_context_class,
    )


class LogGate:
    """Holds a bus's logger and answers "is debug on?" cheaply.

    Dispatch reads two attributes: ``seen_wrapper`` (compared with structlog's
    current wrapper class) and ``may_debug``; only when either says so does it
    call ``debug``.
    """

    __slots__ = ("_bound", "_key", "_logger", "_static_debug", "may_debug", "seen_wrapper")

    def __init__(self, logger: Any | None) -> None:
        self._logger: Any = logger if logger is not None else structlog.get_logger("eventbus")
        self._key: tuple[Any, ...] | None = None
        self._bound: Any = None
        self._static_debug: bool | None = None
        self.seen_wrapper: Any = None
        self.may_debug = True
        self._refresh()

    def _refresh(self) -> None:
        key = _config_key()
        if key == self._key and self._bound is not None:
            return
        logger = self._logger
        bound = logger.bind() if isinstance(logger, _LAZY_PROXY) else logger
        wrapper = type(bound)
        if wrapper in _STATIC_DEBUG:
            static: bool | None = _STATIC_DEBUG[wrapper]
        elif hasattr(bound, "is_enabled_for"):
            static = None  # the level can change at run time: ask each time
        else:
            static = True
        self._key, self._bound, self._static_debug = key, bound, static
        self.seen_wrapper = key[0]
        self.may_debug = static is not False

    @property
    def bound(self) -> Any:
        """A bound logger reflecting structlog's current configuration."""
        self._refresh()
        return self._bound

    def debug(self, message: str, **fields: Any) -> None:
        """Log at debug level if enabled; the slow path of the per-emission check."""
        try:
            bound = self.bound
            enabled = self._static_debug
            if enabled is None:
                enabled = bound.is_enabled_for(logging.DEBUG)
            if enabled:
                bound.debug(message, **fields)
        except Exception as error:
            logging_failed(message, error)

    def info(self, message: str, **fields: Any) -> None:
        try:
            self.bound.info(message, **fields)
        except Exception as error:
            logging_failed(message, error)

    def error(self, message: str, **fields: Any) -> None:
        try:
            self.bound.error(message, **fields)
        except Exception as error:
            logging_failed(message, error)

    def warning(self, message: str, **fields: Any) -> None:
        try:
            self.bound.warning(message, **fields)
        except Exception as error:
            logging_failed(message, error)


def logging_failed(message: str, error: Exception) -> None:
    """Report on stderr that the log entry ``message`` could not be written.

    Logging is a side effect of an emission: a processor that raises, a closed
    stream or an exception no renderer can show must not change what the
    emission does, so this never raises either.
    """
    try:
        try:
            detail = str(error)
        except Exception:
            detail = "<str() failed>"
        sys.stderr.write(
            f"eventbus: could not log {message!r}: {type(error).__qualname__}: {detail}\n"
        )
    except Exception:
        pass


class BusLog:
    """Every line one bus logs, with its name; never a payload value.

    ``gate`` is read on the emit path to skip ``emitted`` cheaply (see ``LogGate``).
    """

    __slots__ = ("bus", "gate")

    def __init__(self, bus: str, logger: Any | None) -> None:
        self.bus: Final = bus
        self.gate: Final = LogGate(logger)

    def emitted(self, report: EmitReport, muted: bool) -> None:
        event = report.event
        self.gate.debug(
            "eventbus.emitted",
            bus=self.bus,
            event_name=event.name,
            event_id=event.id,
            parent_id=event.parent_id,
            source=event.source,
            depth=event.depth,
            handlers=len(report.results),
            failed=report.failed,
            muted=muted,
            duration_ms=round(report.duration * 1000, 3),
        )

    def handler_failed(self, event: Event, info: HandlerInfo, error: Exception) -> None:
        self.gate.error(
            "eventbus.handler_failed",
            bus=self.bus,
            event_name=event.name,
            event_id=event.id,
            handler=info.name,
            pattern=info.pattern,
            error_type=type(error).__qualname__,
            exc_info=error,
        )

    def on_error_failed(self, event: Event, error: BaseException) -> None:
        self.gate.error(
            "eventbus.on_error_failed",
            bus=self.bus,
            event_name=event.name,
            event_id=event.id,
            exc_info=error,
        )

    def loop_refused(self, name: str, chain: str, reason: str) -> None:
        self.gate.error(
            "eventbus.loop_refused", bus=self.bus, event_name=name, chain=chain, reason=reason
        )

    def handler_collected_unused(self, info: HandlerInfo) -> None:
        """A weakly held handler's object was collected before the handler ever
        ran: almost always ``bus.on(name, Temporary().method)``.

        Called from a weakref callback (at any moment, in any thread, maybe
        during garbage collection): a logging failure is reported on stderr,
        never raised.
        """
        self.gate.warning(
            "eventbus.handler_collected_unused",
            bus=self.bus,
            handler=info.name,
            pattern=info.pattern,
            hint="its object was collected before it ever ran: keep a reference "
            "to the object, or subscribe with weak=False",
        )

    def publish_failed(self, task: asyncio.Task[Any], error: BaseException) -> None:
        self.gate.error(
            "eventbus.publish_failed", bus=self.bus, task=task.get_name(), exc_info=error
        )

    def publish_cancelled(self, event: Event) -> None:
        """A published emission's task was cancelled (its loop shut down while it
        was pending, or someone cancelled it): it did not finish."""
        self.gate.warning(
            "eventbus.publish_cancelled", bus=self.bus, event_name=event.name, event_id=event.id
        )

    def deferred_discarded(self, names: list[str]) -> None:
        """Held emissions (of a ``deferred()`` scope, a session) were dropped
        because what they waited for failed: their names, never their payloads."""
        self.gate.info("eventbus.deferred_discarded", bus=self.bus, count=len(names), names=names)
