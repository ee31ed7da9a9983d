"""The outbound side of a Redis bridge: a tap on the bus that encodes each
forwarded emission, and a writer that appends them to the stream in order,
a pipelined batch at a time.

Every entry taken gets a sequence number (``mark()`` is the last one given):
``sent_up_to(mark)`` waits until every entry up to ``mark`` has left the
outbox. In confirmed mode (and, with ``when_full="wait"``, once the outbox is
full) the tap hands the emission a confirmation, done when its entry is in
the stream; the writer fails it with ``NotSentError`` after ``send_timeout``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final

from eventbus import Event
from eventbus._interceptors import NO_HEADERS
from eventbus._names import key_matches

from ._entries import encode
from ._link import Link
from ._options import Options
from ._trimming import TrimWatch

__all__ = ["NotSentError", "Outbox", "OutboxFullError"]

Waiter = asyncio.Future[None] | concurrent.futures.Future[None]


class Waited:
    """An entry whose emitter waits for it: its fields, the emitter's waiter, and
    when the waiter fails (``send_timeout`` after the entry was taken)."""

    __slots__ = ("deadline", "fields", "waiter")

    def __init__(self, fields: dict[str, str], waiter: Waiter, deadline: float) -> None:
        self.fields: Final = fields
        self.waiter: Final = waiter
        self.deadline: Final = deadline


Item = dict[str, str] | Waited
"""An entry in the outbox: its fields, or (someone waits for it) a ``Waited``.
Plain fields for the others keep the asynchronous mode as cheap as it was."""


class OutboxFullError(RuntimeError):
    """An emission refused because the bridge's outbox holds ``max_outbox``
    entries already (``when_full="raise"``): Redis is slow or unreachable."""


class NotSentError(RuntimeError):
    """A confirmed emission whose entry Redis did not take within ``send_timeout``
    (or whose bridge stopped first). No handler ran; the entry is dropped from the
    outbox unless it was already being sent (then it may still reach the stream)."""


class Outbox:
    """Forwarded emissions on their way to the stream.

    As a tap (``eventbus.Tap``) it refuses a payload JSON cannot carry before any
    handler runs and queues the others; ``run`` sends them. Emissions may come
    from any thread: appending to a deque is atomic, the count of entries taken
    is only ever read as a lower bound (see ``_done``), and the writer is woken
    on its own loop.
    """

    __slots__ = (
        "_batch",
        "_confirm",
        "_flushes",
        "_group",
        "_headers",
        "_idle",
        "_link",
        "_loop",
        "_max",
        "_maxlen",
        "_queue",
        "_sending",
        "_taken",
        "_timeout",
        "_trims",
        "_wait_when_full",
        "_wakeup",
        "confirms",
        "diverts",
        "patterns",
    )

    def __init__(
        self,
        link: Link,
        options: Options,
        headers: Callable[[Event], Mapping[str, str]] | None = None,
    ) -> None:
        self._link: Final = link
        self._headers: Final = headers  # the bus's outgoing_headers: a trace context
        self.patterns: Final = options.forward
        # The origin of its entries: that group's handlers ran here, its consumers skip them.
        # Stream-only: the handlers run from the stream only, in every group (no origin).
        self._group: Final = "" if options.stream_only else options.group or ""
        self.diverts: Final = options.stream_only  # takes the emissions away from local handlers
        self._batch: Final = options.batch
        self._maxlen: Final = options.maxlen
        self._confirm: Final = options.confirm
        self._max: Final = options.max_outbox
        self._wait_when_full: Final = options.when_full == "wait"
        self._timeout: Final = options.send_timeout
        self.confirms: Final = self._confirm or self._wait_when_full
        """Read by the bus (see ``eventbus.Tap``): ``take`` may return a confirmation."""
        self._trims: Final = TrimWatch(link) if options.maxlen is not None else None
        self._queue: Final[deque[Item]] = deque()
        self._sending: list[Item] = []  # taken off the queue by the writer, being sent
        self._taken = 0  # entries taken so far: the last one's sequence number
        self._idle = False  # the writer waits for entries: wake it when one comes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._flushes: list[tuple[int, asyncio.Future[None]]] = []

    def __len__(self) -> int:
        return len(self._queue) + len(self._sending)

    # The tap protocol.

    def matches(self, name: str) -> bool:
        return any(key_matches(pattern, name) for pattern in self.patterns)

    def prepare(self, event: Event, chain: tuple[str, ...]) -> dict[str, str]:
        if len(self._queue) + len(self._sending) >= self._max and not self._wait_when_full:
            raise OutboxFullError(
                f"cannot forward {event.name!r}: the outbox of the bridge to "
                f"{self._link.stream!r} holds max_outbox={self._max} emissions that Redis "
                "has not taken yet (it is slow or unreachable)"
            )
        headers = NO_HEADERS if self._headers is None else self._headers(event)
        return encode(event, chain, self._group, self._link.stream, headers)

    def take(self, fields: dict[str, str]) -> Waiter | None:
        waiter: Waiter | None = None
        if self._confirm or (self._wait_when_full and len(self) >= self._max):
            loop = self._loop
            if loop is not None and asyncio._get_running_loop() is loop:
                waiter = loop.create_future()
            else:  # another thread, or another loop: waited for through a thread-safe future
                waiter = concurrent.futures.Future()
            self._queue.append(Waited(fields, waiter, time.monotonic() + self._timeout))
        else:
            self._queue.append(fields)
        self._taken += 1  # after the append: see _done
        if self._idle:
            self._idle = False
            self._wake()
        return waiter

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

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the writer runs on (before the tap is added: see ``take``)."""
        self._loop = loop
        self._wakeup = asyncio.Event()

    async def run(self, stopping: asyncio.Event) -> None:
        """Send queued entries until ``stopping`` is set and none is left.

        An unreachable server is retried (entries stay queued, in order); a
        batch resent after a lost reply may be in the stream twice. Confirmed
        entries not sent within ``send_timeout`` fail their emission.
        """
        if self._loop is None:
            self.bind(asyncio.get_running_loop())
        expiring = asyncio.create_task(self._expire_loop()) if self.confirms else None
        try:
            await self._write(stopping)
        finally:
            if expiring is not None:
                expiring.cancel()

    async def _write(self, stopping: asyncio.Event) -> None:
        wakeup = self._wakeup
        assert wakeup is not None
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
            batch = self._next_batch()
            if not batch:
                self._wake_flushes()  # only expired entries: dropped
                continue
            trims = self._trims
            checking = trims is not None and trims.due()
            try:
                async with link.client.pipeline(transaction=False) as pipe:
                    for item in batch:
                        fields = item.fields if type(item) is Waited else item
                        pipe.xadd(link.stream, fields, maxlen=self._maxlen, approximate=True)
                    if checking:
                        assert trims is not None
                        trims.ask(pipe)
                    replies = await pipe.execute(raise_on_error=not checking)
            except BaseException as error:
                self._sending = []
                queue.extendleft(reversed(batch))  # in order, for the next try or start
                if not isinstance(error, Exception):
                    raise  # cancelled: stop() reports what is left
                failures = await link.recover(error, failures)
                continue
            self._sending = []
            link.server_up()
            failures = 0
            if checking:
                assert trims is not None
                self._check_added(replies[: len(batch)])
                trims.read(replies[len(batch) :])
            for item in batch:
                if type(item) is Waited and not item.waiter.done():
                    item.waiter.set_result(None)
            link.counts["forwarded"] += len(batch)
            link.log.debug("eventbus.redis.forwarded", stream=link.stream, count=len(batch))
            self._wake_flushes()

    def _next_batch(self) -> list[Item]:
        """Up to ``batch`` entries off the queue (into ``_sending``), skipping the
        confirmed ones that already failed (expired: their emitter was told)."""
        queue = self._queue
        batch: list[Item] = []
        while queue and len(batch) < self._batch:
            item = queue.popleft()
            if type(item) is Waited and item.waiter.done():
                continue  # failed (expired or cancelled): its emitter was told; dropped
            batch.append(item)
        self._sending = batch
        return batch

    @staticmethod
    def _check_added(replies: list[Any]) -> None:
        """With ``raise_on_error=False``, a refused ``XADD`` comes back as a reply."""
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply

    async def _expire_loop(self) -> None:
        period = min(1.0, self._timeout / 4)
        while True:
            await asyncio.sleep(period)
            self.expire(time.monotonic())

    def expire(self, now: float) -> None:
        """Fail the waiters of confirmed entries older than ``send_timeout``."""
        expired: list[tuple[str | None, Waiter]] = []
        # A copy: another thread may append meanwhile (list() copies at once, in C).
        for item in itertools.chain(self._sending, list(self._queue)):
            if type(item) is not Waited:
                continue
            if item.deadline > now:
                break  # the deadlines of waited-for entries grow along the outbox
            if not item.waiter.done():
                expired.append((item.fields.get("name"), item.waiter))
        for name, waiter in expired:
            _fail(
                waiter,
                NotSentError(
                    f"Redis did not take the entry of {name!r} within "
                    f"send_timeout={self._timeout} s (stream {self._link.stream!r}; "
                    "the server is slow or unreachable)"
                ),
            )

    def stop(self) -> None:
        """Wake the writer so that it sees it must stop."""
        self._idle = False
        self._wake()

    # Waiting for the stream.

    def mark(self) -> int:
        """The sequence number of the last entry taken so far (0: none yet)."""
        return self._taken

    async def sent_up_to(self, mark: int) -> None:
        """Wait until every entry taken up to ``mark`` (see ``mark()``) has left the
        outbox: appended to the stream, or, for a confirmed one, failed visibly to
        its emitter. Raises ``RuntimeError`` if the bridge stops with it unsent."""
        if self._done() >= mark:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flushes.append((mark, waiter))
        await waiter

    async def wait_forwarded(self, mark: int) -> None:
        """``sent_up_to``, under the name the consumer side knows it by (it
        acknowledges an entry only once what its handlers forwarded is sent)."""
        await self.sent_up_to(mark)

    async def flush(self) -> None:
        """Wait until every entry queued so far is in the stream."""
        await self.sent_up_to(self.mark())

    def fail_flushes(self, error: Exception) -> None:
        """The writer stopped with entries left: every waiting ``sent_up_to`` and
        every confirmed emission still waiting raises ``error``."""
        flushes, self._flushes = self._flushes, []
        for _, waiter in flushes:
            if not waiter.done():
                waiter.set_exception(error)
        waiters = [item.waiter for item in list(self._queue) if type(item) is Waited]
        for item_waiter in waiters:
            if not item_waiter.done():
                _fail(item_waiter, NotSentError(str(error)))

    def _done(self) -> int:
        """Every entry up to this sequence number has left the outbox.

        Read on the writer's loop, while other threads may be taking entries:
        ``take`` counts an entry after queueing it, so the answer may fall short
        for a moment (a wait lasts a batch longer), never overshoot."""
        taken = self._taken
        return taken - len(self._queue) - len(self._sending)

    def _wake_flushes(self) -> None:
        done = self._done()
        still: list[tuple[int, asyncio.Future[None]]] = []
        for target, waiter in self._flushes:
            if target > done:
                still.append((target, waiter))
            elif not waiter.done():
                waiter.set_result(None)
        self._flushes = still


def _fail(waiter: Waiter, error: Exception) -> None:
    with contextlib.suppress(concurrent.futures.InvalidStateError, asyncio.InvalidStateError):
        waiter.set_exception(error)
