"""eventbus: a small, fast, async-first, in-process event bus."""

from importlib import metadata as _metadata

from ._bus import EventBus
from ._catalog import EventSpec
from ._deferred import DeferredScope
from ._errors import (
    BusClosedError,
    EventBusError,
    PayloadError,
    ReentrancyError,
    UnknownEventError,
)
from ._event import Event
from ._handlers import HandlerInfo
from ._interceptors import Interceptor
from ._report import EmitReport, HandlerResult
from ._taps import Tap
from ._testing import Recorder
from ._topic import Topic

try:
    __version__ = _metadata.version("eventbus")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "BusClosedError",
    "DeferredScope",
    "EmitReport",
    "Event",
    "EventBus",
    "EventBusError",
    "EventSpec",
    "HandlerInfo",
    "HandlerResult",
    "Interceptor",
    "PayloadError",
    "Recorder",
    "ReentrancyError",
    "Tap",
    "Topic",
    "UnknownEventError",
    "__version__",
]
