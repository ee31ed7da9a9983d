"""The outbound side of a Redis bridge: a tap on the bus that encodes each
forwarded emission, and a writer that appends them to the stream in order,
a pipelined batch at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Final

from eventbus import Event
from eventbus._names import key_matches

from ._entries import encode
from ._link import Link
from ._options import Options

__all__ = ["Outbox"]


class Outbox:
    """Forwarded emissions on their way to the stream.

    As a tap (``eventbus.Tap``) it refuses a payload JSON cannot carry before any
    handler runs and queues the others; ``run`` sends them. Emissions may come
    from any thread: appending to a deque is atomic, and the writer is woken
    on its own loop.
    """

    __slots__ = (
        "_batch",
        "_flushes",
        "_group",
        "_idle",
        "_link",
        "_loop",
        "_maxlen",
        "_queue",
        "_wakeup",
        "diverts",
        "patterns",
    )

    def __init__(self, link: Link, options: Options) -> None:
        self._link: Final = link
        self.patterns: Final = options.forward
        # The origin of its entries: that group's handlers ran here, its consumers skip them.
        # Stream-only: the handlers run from the stream only, in every group (no origin).
        self._group: Final = "" if options.stream_only else options.group or ""
        self.diverts: Final = options.stream_only  # takes the emissions away from local handlers
        self._batch: Final = options.batch
        self._maxlen: Final = options.maxlen
        self._queue: Final[deque[dict[str, str]]] = deque()
        self._idle = False  # the writer waits for entries: wake it when one comes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._flushes: list[tuple[int, asyncio.Future[None]]] = []

    def __len__(self) -> int:
        return len(self._queue)

    # The tap protocol.

    def matches(self, name: str) -> bool:
        return any(key_matches(pattern, name) for pattern in self.patterns)

    def prepare(self, event: Event, chain: tuple[str, ...]) -> dict[str, str]:
        return encode(event, chain, self._group, self._link.stream)

    def take(self, fields: dict[str, str]) -> None:
        self._queue.append(fields)
        if self._idle:
            self._idle = False
            self._wake()

    def _wake(self) -> None:
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None:
            return
        if asyncio._get_running_loop() is loop:
            wakeup.set()
        else:  # another thread; a closed loop raises, and stop() reports what is left
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wakeup.set)

    # The writer.

    async def run(self, stopping: asyncio.Event) -> None:
        """Send queued entries until ``stopping`` is set and none is left.

        An unreachable server is retried (entries stay queued, in order); a
        batch resent after a lost reply may be in the stream twice.
        """
        self._loop = asyncio.get_running_loop()
        wakeup = self._wakeup = asyncio.Event()
        queue, link = self._queue, self._link
        failures = 0
        while True:
            if not queue:
                if stopping.is_set():
                    return
                self._idle = True
                wakeup.clear()
                if not queue:
                    await wakeup.wait()
                self._idle = False
                continue
            count = min(len(queue), self._batch)
            entries = [queue[index] for index in range(count)]
            try:
                async with link.client.pipeline(transaction=False) as pipe:
                    for fields in entries:
                        pipe.xadd(link.stream, fields, maxlen=self._maxlen, approximate=True)
                    await pipe.execute()
            except Exception as error:
                failures = await link.recover(error, failures)
                continue
            link.server_up()
            failures = 0
            for _ in range(count):
                queue.popleft()
            link.counts["forwarded"] += count
            link.log.debug("eventbus.redis.forwarded", stream=link.stream, count=count)
            self._wake_flushes()

    def stop(self) -> None:
        """Wake the writer so that it sees it must stop."""
        self._idle = False
        self._wake()

    async def flush(self) -> None:
        """Wait until every entry queued so far is in the stream."""
        if not self._queue:
            return
        target = self._link.counts["forwarded"] + len(self._queue)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flushes.append((target, waiter))
        await waiter

    def mark(self) -> int:
        """The number of entries queued so far, sent or not (for ``wait_forwarded``)."""
        return self._link.counts["forwarded"] + len(self._queue)

    async def wait_forwarded(self, mark: int) -> None:
        """Wait until the first ``mark`` entries ever queued are in the stream (the
        consumer acknowledges an entry only once what its handlers forwarded is)."""
        if self._link.counts["forwarded"] >= mark:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flushes.append((mark, waiter))
        await waiter

    def fail_flushes(self, error: Exception) -> None:
        """The writer stopped with entries left: every waiting ``flush`` raises ``error``."""
        flushes, self._flushes = self._flushes, []
        for _, waiter in flushes:
            if not waiter.done():
                waiter.set_exception(error)

    def _wake_flushes(self) -> None:
        done = self._link.counts["forwarded"]
        still: list[tuple[int, asyncio.Future[None]]] = []
        for target, waiter in self._flushes:
            if target > done:
                still.append((target, waiter))
            elif not waiter.done():
                waiter.set_result(None)
        self._flushes = still
