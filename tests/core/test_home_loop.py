"""The home loop (``bind``, ``loop``) and the background loop of ``emit_sync``.

Regressions of issue 12, item 2 ("loops the bus did not create"): emit_sync ran
async handlers on a throwaway loop per call, losing what they published.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import warnings
from typing import Any

import pytest
import structlog

from eventbus import Event, EventBus

GUARD = 60  # seconds: a hang guard, never a timing assertion


def _in_thread(function: Any, *args: Any) -> Any:
    """Run ``function(*args)`` in a new thread (no running loop there) and return its result."""
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(function(*args))
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(GUARD)
    assert not thread.is_alive(), "still running after the hang guard"
    if errors:
        raise errors[0]
    return results[0]


# ---------------------------------------------------------------- bind and loop


class TestBind:
    async def test_binds_running_loop(self, bus: EventBus) -> None:
        """bind() with no argument makes the running loop the home loop."""
        bus.bind()

        assert bus.loop is asyncio.get_running_loop()

    def test_no_loop_before_use(self, bus: EventBus) -> None:
        """A new bus has no home loop."""
        assert bus.loop is None

    def test_no_argument_outside_loop(self, bus: EventBus) -> None:
        """bind() with no argument outside a running loop is a RuntimeError."""
        with pytest.raises(RuntimeError, match="running event loop"):
            bus.bind()

    def test_not_a_loop(self, bus: EventBus) -> None:
        """bind() with something that is not an event loop is a TypeError."""
        with pytest.raises(TypeError, match="event loop"):
            bus.bind("loop")  # type: ignore[arg-type]

    async def test_another_running_loop(self, bus: EventBus) -> None:
        """bind() to another loop while the home loop runs is a RuntimeError."""
        bus.bind()
        other = asyncio.new_event_loop()
        try:
            with pytest.raises(RuntimeError, match="still running"):
                bus.bind(other)
            assert bus.loop is asyncio.get_running_loop()
        finally:
            other.close()

    async def test_async_with_binds(self) -> None:
        """``async with bus`` binds the bus to the running loop."""
        async with EventBus("ctx") as bus:
            assert bus.loop is asyncio.get_running_loop()

    async def test_first_emit_binds(self, bus: EventBus) -> None:
        """The first loop on which the bus runs ``await emit`` becomes its home loop."""
        await bus.emit("x")

        assert bus.loop is asyncio.get_running_loop()


class TestReplaced:
    def test_stopped_home_replaced(self) -> None:
        """A module-level bus used by two asyncio.run calls in a row moves to the second loop."""
        bus = EventBus("module")
        homes: list[asyncio.AbstractEventLoop | None] = []

        async def use() -> None:
            await bus.emit("x")
            homes.append(bus.loop)
            assert bus.loop is asyncio.get_running_loop()

        asyncio.run(use())
        asyncio.run(use())

        assert homes[0] is not homes[1]

    def test_bind_replaces_closed(self) -> None:
        """bind() replaces a home loop that has closed."""
        bus = EventBus("module")
        asyncio.run(bus.emit("x"))
        loop = asyncio.new_event_loop()
        try:
            bus.bind(loop)
            assert bus.loop is loop
        finally:
            loop.close()

    async def test_other_loop_leaves_home(self, bus: EventBus) -> None:
        """``await emit`` on another loop while the home loop runs leaves the home loop."""
        bus.bind()
        home = asyncio.get_running_loop()

        report = await asyncio.to_thread(asyncio.run, bus.emit("x"))

        assert report.ok
        assert bus.loop is home


# ---------------------------------------------------------------- emit_sync's loop


class TestEmitSyncLoop:
    async def test_bound_before_to_thread(self, bus: EventBus) -> None:
        """Once bound, a handler of emit_sync from to_thread can await a future of the main loop."""
        bus.bind()
        main = asyncio.get_running_loop()
        future: asyncio.Future[str] = main.create_future()
        main.call_soon(future.set_result, "from main")

        async def handler(event: Event) -> str:
            return await future

        bus.on("x", handler)

        report = await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "x"), GUARD)

        assert report.values == ("from main",), report.errors
        assert bus.loop is main

    async def test_unbound_runs_on_background(self, bus: EventBus) -> None:
        """Unbound, emit_sync from to_thread before any emit uses the background loop."""
        seen: list[tuple[asyncio.AbstractEventLoop, threading.Thread]] = []

        async def handler(event: Event) -> None:
            seen.append((asyncio.get_running_loop(), threading.current_thread()))

        bus.on("x", handler)

        await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "x"), GUARD)
        await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "x"), GUARD)

        assert seen[0] == seen[1]
        assert seen[0][0] is not asyncio.get_running_loop()
        assert bus.loop is None  # the background loop never becomes the home loop
        await asyncio.wait_for(bus.aclose(), GUARD)

    def test_background_reused(self, bus: EventBus) -> None:
        """Calls with no running home loop share one background loop and thread."""
        seen: list[tuple[asyncio.AbstractEventLoop, threading.Thread]] = []

        async def handler(event: Event) -> None:
            seen.append((asyncio.get_running_loop(), threading.current_thread()))

        bus.on("x", handler)

        bus.emit_sync("x")
        bus.emit_sync("x")

        assert len(seen) == 2
        assert seen[0] == seen[1]
        assert seen[0][1].daemon
        asyncio.run(bus.aclose())

    def test_aclose_stops_background(self, bus: EventBus) -> None:
        """aclose() stops the background loop: its thread ends and the loop closes."""
        seen: list[tuple[asyncio.AbstractEventLoop, threading.Thread]] = []

        async def handler(event: Event) -> None:
            seen.append((asyncio.get_running_loop(), threading.current_thread()))

        bus.on("x", handler)
        bus.emit_sync("x")

        asyncio.run(asyncio.wait_for(bus.aclose(), GUARD))

        loop, thread = seen[0]
        assert not thread.is_alive()
        assert loop.is_closed()

    async def test_home_loop_stopped(self, bus: EventBus) -> None:
        """With the home loop stopped, emit_sync runs handlers on the background loop."""
        home = asyncio.new_event_loop()
        bus.bind(home)
        seen: list[asyncio.AbstractEventLoop] = []

        async def handler(event: Event) -> None:
            seen.append(asyncio.get_running_loop())

        bus.on("x", handler)
        try:
            await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "x"), GUARD)
            await asyncio.wait_for(asyncio.to_thread(bus.emit_sync, "x"), GUARD)
        finally:
            home.close()

        assert seen[0] is seen[1]  # the background loop, not a loop per call
        assert seen[0] is not home
        assert seen[0] is not asyncio.get_running_loop()
        await asyncio.wait_for(bus.aclose(), GUARD)


class TestPublishFromEmitSync:
    def test_drain_waits(self, bus: EventBus) -> None:
        """A task an emit_sync handler publishes keeps running, and drain() waits for it."""
        release = threading.Event()
        done: list[str] = []

        def blocks(event: Event) -> None:
            assert release.wait(GUARD)
            done.append("published")

        async def publishes(event: Event) -> None:
            bus.publish("later")

        async def later(event: Event) -> None:
            await asyncio.to_thread(blocks, event)

        bus.on("x", publishes)
        bus.on("later", later)

        assert bus.emit_sync("x").ok

        async def drain() -> None:
            draining = asyncio.create_task(bus.drain())
            await asyncio.sleep(0)
            assert not draining.done()
            release.set()
            await asyncio.wait_for(draining, GUARD)

        asyncio.run(drain())
        assert done == ["published"]
        asyncio.run(asyncio.wait_for(bus.aclose(), GUARD))

    def test_aclose_finishes(self, bus: EventBus) -> None:
        """aclose() finishes the task an emit_sync handler published, without hanging."""
        returned = threading.Event()
        done: list[str] = []

        async def publishes(event: Event) -> None:
            bus.publish("later")

        async def later(event: Event) -> None:
            assert await asyncio.to_thread(returned.wait, GUARD)  # until emit_sync has returned
            done.append("published")

        bus.on("x", publishes)
        bus.on("later", later)

        assert _in_thread(bus.emit_sync, "x").ok
        returned.set()
        asyncio.run(asyncio.wait_for(bus.aclose(), GUARD))

        assert done == ["published"]


# ---------------------------------------------------------------- a loop shutting down


class TestPublishCancelled:
    def test_warning_logged(self, bus: EventBus) -> None:
        """A published task cancelled by asyncio.run's shutdown is logged at warning level."""
        started = asyncio.Event()

        async def hangs(event: Event) -> None:
            started.set()
            await asyncio.Event().wait()

        bus.on("x", hangs)

        async def main() -> None:
            task = bus.publish("x")
            await started.wait()
            assert not task.done()

        with structlog.testing.capture_logs() as logs:
            asyncio.run(main())

        cancelled = [entry for entry in logs if entry["event"] == "eventbus.publish_cancelled"]
        assert len(cancelled) == 1
        assert cancelled[0]["log_level"] == "warning"
        assert cancelled[0]["event_name"] == "x"
        assert cancelled[0]["event_id"]

    def test_aclose_does_not_wait(self, bus: EventBus) -> None:
        """aclose() does not wait for a published task whose loop closed with it pending."""
        started = asyncio.Event()

        async def hangs(event: Event) -> None:
            started.set()
            await asyncio.Event().wait()

        bus.on("x", hangs)

        tasks: list[asyncio.Task[Any]] = []

        async def main() -> None:
            tasks.append(bus.publish("x"))
            await started.wait()

        loop = asyncio.new_event_loop()
        loop.run_until_complete(main())
        loop.close()  # without cancelling the pending task: it will never finish
        asyncio.run(asyncio.wait_for(bus.aclose(), GUARD))

        assert bus.closed
        with contextlib.suppress(ValueError):  # closed outside the task's context
            tasks[0].get_coro().close()


# ---------------------------------------------------------------- fork


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
class TestFork:
    def test_child_makes_new_loops(self, bus: EventBus) -> None:
        """In a forked child the bus has no home loop and runs handlers on a new background loop."""
        seen: list[threading.Thread] = []

        async def handler(event: Event) -> str:
            seen.append(threading.current_thread())
            return "ran"

        bus.on("x", handler)
        home = asyncio.new_event_loop()
        bus.bind(home)
        running = threading.Event()
        home.call_soon(running.set)
        home_thread = threading.Thread(target=home.run_forever, daemon=True)
        home_thread.start()
        try:
            assert running.wait(GUARD)
            bus.emit_sync("x")  # on the running home loop, in the parent
            assert seen == [home_thread]
            with warnings.catch_warnings():  # Python 3.12+ warns of fork() with threads
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # the child: only the scenario, then _exit
                ok = False
                try:
                    ok = bus.loop is None and bus.emit_sync("x").values == ("ran",)
                    ok = ok and seen[-1] is not home_thread
                finally:
                    os._exit(0 if ok else 1)
            assert _wait_for_child(pid) == 0
        finally:
            home.call_soon_threadsafe(home.stop)
            home_thread.join(GUARD)
            home.close()
        asyncio.run(bus.aclose())


def _wait_for_child(pid: int) -> int:
    """Wait for a forked child (killing it after the hang guard); return its exit code."""
    done = threading.Event()
    status: list[int] = []

    def wait() -> None:
        status.append(os.waitpid(pid, 0)[1])
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    if not done.wait(GUARD):
        os.kill(pid, 9)
        done.wait(GUARD)
        pytest.fail("the forked child hung")
    return os.waitstatus_to_exitcode(status[0])
