"""Memory per subscription, measured with tracemalloc.

For each subject: a fresh emitter and ``n`` distinct handler objects (closures
from one factory) are created first; then the traced memory is read, all ``n``
handlers are subscribed to one event name, and the traced memory is read again.
``(after - before) / n`` is what one subscription costs the library (the handler
objects themselves are excluded: they exist before the first reading).
"""

from __future__ import annotations

import gc
import tracemalloc
from dataclasses import dataclass

from ._cases import make_sync_handler
from ._peers import NA, Subject


@dataclass
class MemoryResult:
    subject: str
    bytes_per_subscription: float | None
    na: str | None = None


def measure(subject: Subject, n: int) -> MemoryResult:
    if subject.error:
        return MemoryResult(subject.key, None, subject.error)
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        subscribe = subject.subscriber()
        if isinstance(subscribe, NA):
            return MemoryResult(subject.key, None, subscribe.reason)
        handlers = [make_sync_handler() for _ in range(n)]
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for h in handlers:
            subscribe(h)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        del subscribe, handlers
        return MemoryResult(subject.key, (after - before) / n)
    except Exception as exc:  # a peer API changed: report, don't die
        return MemoryResult(subject.key, None, f"failed: {type(exc).__name__}: {exc}")
    finally:
        if not was_tracing:
            tracemalloc.stop()
        gc.collect()


def measure_all(subjects: list[Subject], n: int) -> list[MemoryResult]:
    return [measure(s, n) for s in subjects]
