"""eventbus.sqlalchemy: emissions deferred in ``defer_until_commit`` run once the
session's transaction committed, against a real SQLite database (sync, and
``aiosqlite`` for ``AsyncSession``)."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import AsyncIterator, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from emitters import HANG_GUARD
from sqlalchemy import Engine, Integer, String, create_engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from eventbus import Event, EventBus
from eventbus.sqlalchemy import CommitScope, defer_until_commit


class Base(DeclarativeBase):
    pass


class Sale(Base):
    __tablename__ = "sales"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String, unique=True)


class Boom(Exception):
    pass


def discards(logs: list[MutableMapping[str, Any]]) -> list[list[str]]:
    return [entry["names"] for entry in logs if entry["event"] == "eventbus.deferred_discarded"]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def seen(bus: EventBus) -> list[str]:
    """The names of the events the bus dispatched, in order."""
    names: list[str] = []
    bus.on("*", lambda event: names.append(event.name))
    return names


def duplicate_in_savepoint(bus: EventBus, session: Session) -> None:
    """Insert a second sale S-1 in a savepoint, deferring "b" there: the flush fails."""
    with session.begin_nested():
        session.add(Sale(reference="S-1"))
        bus.defer("b")
        session.flush()


def sales(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Sale)) or 0


# ---------------------------------------------------------------- Session


class TestCommit:
    def test_commit_after_the_block(self, engine: Engine, bus: EventBus, seen: list[str]) -> None:
        """Deferred in the block, run when session.begin() commits after it."""
        with Session(engine) as session, session.begin(), defer_until_commit(bus, session):
            session.add(Sale(reference="S-1"))
            bus.defer("sale.closed", sale_id=1)
        assert seen == ["sale.closed"]

    def test_commit_inside_the_block(self, engine: Engine, bus: EventBus, seen: list[str]) -> None:
        """A commit inside the block runs what was deferred before it, at once."""
        with Session(engine) as session, defer_until_commit(bus, session):
            session.add(Sale(reference="S-1"))
            bus.defer("sale.closed")
            assert seen == []
            session.commit()
            assert seen == ["sale.closed"]

    def test_handlers_see_the_committed_rows(self, engine: Engine, bus: EventBus) -> None:
        """When a handler runs, the transaction's rows are visible to other sessions."""
        counted: list[int] = []
        bus.on("sale.closed", lambda event: counted.append(sales(engine)))
        with Session(engine) as session, session.begin(), defer_until_commit(bus, session):
            session.add(Sale(reference="S-1"))
            bus.defer("sale.closed")
        assert counted == [1]

    def test_order_and_reports(self, engine: Engine, bus: EventBus, seen: list[str]) -> None:
        """Several deferred emissions run in the order deferred; the scope reports them."""
        bus.on("b", lambda event: event["n"])
        with Session(engine) as session:
            with session.begin(), defer_until_commit(bus, session) as scope:
                bus.defer("b", n=1)
                bus.defer("a")
                bus.defer("b", n=2)
            assert seen == ["b", "a", "b"]
            assert [report.values for report in scope.reports] == [(None, 1), (None,), (None, 2)]

    def test_commit_runs_once(self, engine: Engine, bus: EventBus, seen: list[str]) -> None:
        """What one commit ran is not run again by a later commit of the session."""
        with Session(engine) as session:
            with defer_until_commit(bus, session):
                bus.defer("a")
                session.commit()
                session.add(Sale(reference="S-2"))
                session.commit()
            session.add(Sale(reference="S-3"))
            session.commit()
        assert seen == ["a"]

    def test_inner_deferred_scope_waits_for_the_commit(
        self, engine: Engine, bus: EventBus, seen: list[str]
    ) -> None:
        """A bus.deferred() scope inside joins the session's: its emissions wait for the commit."""
        with Session(engine) as session, session.begin(), defer_until_commit(bus, session):
            with bus.deferred():
                bus.defer("a")
            assert seen == []
        assert seen == ["a"]

    def test_two_buses_on_one_session(self, engine: Engine) -> None:
        """Scopes of two buses on one session each run their own emissions at the commit."""
        first, second = EventBus("first"), EventBus("second")
        seen: list[str] = []
        first.on("a", lambda event: seen.append("first"))
        second.on("a", lambda event: seen.append("second"))
        with Session(engine) as session:
            with defer_until_commit(first, session), defer_until_commit(second, session):
                first.defer("a")
                second.defer("a")
            session.commit()
        assert sorted(seen) == ["first", "second"]


class TestRollback:
    def test_rollback_discards(self, engine: Engine, bus: EventBus, seen: list[str]) -> None:
        """A rollback discards what was deferred, and logs it."""
        with structlog.testing.capture_logs() as logs, Session(engine) as session:
            with defer_until_commit(bus, session):
                session.add(Sale(reference="S-1"))
                bus.defer("sale.closed", secret="hunter2")
                session.rollback()
            session.commit()
        assert seen == []
        assert discards(logs) == [["sale.closed"]]
        assert "hunter2" not in repr(logs)

    def test_later_commit_runs_only_what_followed(
        self, engine: Engine, bus: EventBus, seen: list[str]
    ) -> None:
        """After a rollback, a later commit runs only what was deferred since."""
        with Session(engine) as session, defer_until_commit(bus, session):
            session.add(Sale(reference="S-1"))
            bus.defer("before")
            session.rollback()
            session.add(Sale(reference="S-2"))
            bus.defer("after")
            session.commit()
        assert seen == ["after"]

    def test_deferred_before_a_transaction_waits_for_the_next(
        self, engine: Engine, bus: EventBus, seen: list[str]
    ) -> None:
        """Deferred while the session has no transaction, an emission waits for
        the next one: a rollback with nothing begun has nothing to discard."""
        with Session(engine) as session, defer_until_commit(bus, session):
            bus.defer("a")
            session.rollback()  # no transaction: a no-op for SQLAlchemy too
            session.add(Sale(reference="S-1"))
            session.commit()
        assert seen == ["a"]

    def test_block_raising_rolls_back(self, engine: Engine, bus: EventBus, seen: list[str]) -> None:
        """A block that raises inside session.begin() is rolled back: nothing runs."""

        def close_sale() -> None:
            with Session(engine) as session, session.begin(), defer_until_commit(bus, session):
                session.add(Sale(reference="S-1"))
                bus.defer("sale.closed")
                raise Boom

        with pytest.raises(Boom):
            close_sale()
        assert seen == []
        assert sales(engine) == 0

    def test_block_raising_discards_before_a_commit(
        self, engine: Engine, bus: EventBus, seen: list[str]
    ) -> None:
        """A block that raises discards what it deferred, even if the session commits later."""

        def block(session: Session) -> None:
            with defer_until_commit(bus, session):
                bus.defer("a")
                raise Boom

        with Session(engine) as session:
            with pytest.raises(Boom):
                block(session)
            session.commit()
        assert seen == []

    def test_closing_the_session_discards(
        self, engine: Engine, bus: EventBus, seen: list[str]
    ) -> None:
        """A session closed without committing discards what waited for it."""
        with (
            structlog.testing.capture_logs() as logs,
            Session(engine) as session,
            defer_until_commit(bus, session),
        ):
            session.add(Sale(reference="S-1"))
            bus.defer("a")
        assert seen == []
        assert discards(logs) == [["a"]]


class TestSavepoints:
    def test_released_savepoint_kept(self, engine: Engine, bus: EventBus, seen: list[str]) -> None:
        """What was deferred in a released savepoint runs at the commit."""
        with Session(engine) as session, session.begin(), defer_until_commit(bus, session):
            bus.defer("a")
            with session.begin_nested():
                session.add(Sale(reference="S-1"))
                bus.defer("b")
            assert seen == []
        assert seen == ["a", "b"]

    def test_rolled_back_savepoint_discards_its_own(
        self, engine: Engine, bus: EventBus, seen: list[str]
    ) -> None:
        """A savepoint rolled back discards what was deferred inside it, not before or after."""

        def savepoint(session: Session) -> None:
            with session.begin_nested():
                bus.defer("b")
                raise Boom

        with (
            structlog.testing.capture_logs() as logs,
            Session(engine) as session,
            session.begin(),
            defer_until_commit(bus, session),
        ):
            bus.defer("a")
            with pytest.raises(Boom):
                savepoint(session)
            bus.defer("c")
        assert seen == ["a", "c"]
        assert discards(logs) == [["b"]]

    def test_failed_flush_in_savepoint(
        self, engine: Engine, bus: EventBus, seen: list[str]
    ) -> None:
        """A constraint violation inside a savepoint discards its emissions only."""
        with Session(engine) as session, session.begin(), defer_until_commit(bus, session):
            session.add(Sale(reference="S-1"))
            bus.defer("a")
            with pytest.raises(IntegrityError):
                duplicate_in_savepoint(bus, session)
        assert seen == ["a"]
        assert sales(engine) == 1

    def test_nested_savepoints(self, engine: Engine, bus: EventBus, seen: list[str]) -> None:
        """An inner savepoint released into an outer one that rolls back is discarded with it."""

        def savepoints(session: Session) -> None:
            with session.begin_nested():
                with session.begin_nested():
                    bus.defer("b")
                raise Boom

        with Session(engine) as session, session.begin(), defer_until_commit(bus, session):
            bus.defer("a")
            with pytest.raises(Boom):
                savepoints(session)
        assert seen == ["a"]


class TestFailingCommit:
    def test_constraint_violation_at_commit(
        self, engine: Engine, bus: EventBus, seen: list[str]
    ) -> None:
        """A commit failing on a constraint (at its flush) runs nothing; the rollback discards."""
        with Session(engine) as session:
            session.add(Sale(reference="S-1"))
            session.commit()

        def close_sale() -> None:
            with Session(engine) as session, session.begin(), defer_until_commit(bus, session):
                session.add(Sale(reference="S-1"))
                bus.defer("sale.closed")

        with structlog.testing.capture_logs() as logs, pytest.raises(IntegrityError):
            close_sale()
        assert seen == []
        assert discards(logs) == [["sale.closed"]]

    def test_retry_after_failed_commit(
        self, engine: Engine, bus: EventBus, seen: list[str]
    ) -> None:
        """After a failed commit and its rollback, a retry runs only what it deferred."""
        with Session(engine) as session:
            session.add(Sale(reference="S-1"))
            session.commit()
            with defer_until_commit(bus, session):
                session.add(Sale(reference="S-1"))
                bus.defer("first")
                with pytest.raises(IntegrityError):
                    session.commit()
                session.rollback()
                session.add(Sale(reference="S-2"))
                bus.defer("second")
                session.commit()
        assert seen == ["second"]


class TestUse:
    def test_defer_after_the_block(self, engine: Engine, bus: EventBus) -> None:
        """Once the block exited, defer finds no scope."""
        with Session(engine) as session:
            with defer_until_commit(bus, session):
                pass
            with pytest.raises(RuntimeError, match="open"):
                bus.defer("a")

    async def test_async_with_on_a_session(self, engine: Engine, bus: EventBus) -> None:
        """A Session needs `with`."""
        with Session(engine) as session, pytest.raises(TypeError, match="`with`"):
            async with defer_until_commit(bus, session):
                pass

    def test_not_a_session(self, bus: EventBus) -> None:
        with pytest.raises(TypeError, match="Session or an AsyncSession, not int"):
            defer_until_commit(bus, 3)  # type: ignore[arg-type]

    def test_not_a_bus(self, engine: Engine) -> None:
        with Session(engine) as session, pytest.raises(TypeError, match="EventBus"):
            defer_until_commit("bus", session)  # type: ignore[arg-type]

    async def test_one_refusal_does_not_hold_back_another_bus(self, engine: Engine) -> None:
        """When one bus's emissions are refused at the commit, another bus's still run."""
        first, second = EventBus("first"), EventBus("second")
        seen: list[str] = []

        async def handler(event: Event) -> None:
            pass

        first.on("a", handler)  # async: refused by emit_sync in this running loop's thread
        second.on("a", lambda event: seen.append("second"))
        with Session(engine) as session:
            with defer_until_commit(first, session), defer_until_commit(second, session):
                first.defer("a")
                second.defer("a")
            with pytest.raises(RuntimeError, match="async with"):
                session.commit()
        assert seen == ["second"]

    def test_handlers_run_outside_the_scope(self, engine: Engine, bus: EventBus) -> None:
        """A handler of an emission run at a commit inside the block cannot defer into it."""

        def handler(event: Event) -> None:
            bus.defer("b")

        bus.on("a", handler)
        with Session(engine) as session, defer_until_commit(bus, session) as scope:
            bus.defer("a")
            session.commit()
        assert isinstance(scope.reports[0].errors[0].error, RuntimeError)

    def test_missing_sqlalchemy_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Importing eventbus.sqlalchemy without SQLAlchemy names the extra."""
        monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # makes `import sqlalchemy` fail
        monkeypatch.delitem(sys.modules, "eventbus.sqlalchemy")
        with pytest.raises(ImportError, match=r"pip install 'eventbus\[sqlalchemy\]'"):
            importlib.import_module("eventbus.sqlalchemy")

    def test_is_a_scope(self, engine: Engine, bus: EventBus) -> None:
        with Session(engine) as session:
            assert isinstance(defer_until_commit(bus, session), CommitScope)

    async def test_sync_session_in_a_loop_refuses_async_handlers(
        self, engine: Engine, bus: EventBus
    ) -> None:
        """A Session committed in a running loop's thread follows emit_sync's rules."""

        async def handler(event: Event) -> None:
            pass

        bus.on("a", handler)
        with Session(engine) as session, defer_until_commit(bus, session):
            bus.defer("a")
            with pytest.raises(RuntimeError, match="async with"):
                session.commit()


# ---------------------------------------------------------------- AsyncSession


@pytest.fixture
async def async_engine(tmp_path: Path) -> AsyncIterator[Any]:
    pytest.importorskip("greenlet", reason="AsyncSession needs sqlalchemy[asyncio] (greenlet)")
    pytest.importorskip("aiosqlite")
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


def async_session(engine: Any) -> Any:
    from sqlalchemy.ext.asyncio import AsyncSession

    return AsyncSession(engine)


class TestAsyncSession:
    async def test_commit_in_the_block_awaited_at_exit(
        self, async_engine: Any, bus: EventBus
    ) -> None:
        """Committed inside the block: the emissions are awaited when it exits,
        async handlers included."""
        done: list[str] = []

        async def handler(event: Event) -> None:
            await asyncio.sleep(0)
            done.append(event.name)

        bus.on("sale.closed", handler)
        async with async_session(async_engine) as session:
            async with defer_until_commit(bus, session) as scope, session.begin():
                session.add(Sale(reference="S-1"))
                bus.defer("sale.closed")
            assert done == ["sale.closed"]
            assert len(scope.reports) == 1

    async def test_commit_after_the_block(self, async_engine: Any, bus: EventBus) -> None:
        """Committed after the block: emitted in a task that drain() waits for."""
        done = asyncio.Event()
        seen: list[str] = []

        async def handler(event: Event) -> None:
            seen.append(event.name)
            done.set()

        bus.on("*", handler)
        async with async_session(async_engine) as session:
            async with session.begin(), defer_until_commit(bus, session):
                session.add(Sale(reference="S-1"))
                bus.defer("a")
                bus.defer("b")
            await asyncio.wait_for(bus.drain(), HANG_GUARD)
        assert seen == ["a", "b"]

    async def test_explicit_commit(self, async_engine: Any, bus: EventBus) -> None:
        """await session.commit() inside the block: emitted at the block's exit."""
        seen: list[str] = []
        bus.on("a", lambda event: seen.append(event.name))
        async with async_session(async_engine) as session:
            async with defer_until_commit(bus, session):
                session.add(Sale(reference="S-1"))
                bus.defer("a")
                await session.commit()
                assert seen == []
            assert seen == ["a"]

    async def test_committed_then_raising_still_runs(
        self, async_engine: Any, bus: EventBus
    ) -> None:
        """What was committed inside the block runs at its exit even if it then raised."""
        seen: list[str] = []
        bus.on("*", lambda event: seen.append(event.name))

        async def block(session: Any) -> None:
            async with defer_until_commit(bus, session):
                bus.defer("committed")
                await session.commit()
                bus.defer("not_committed")
                raise Boom

        async with async_session(async_engine) as session:
            with pytest.raises(Boom):
                await block(session)
            await session.commit()
        assert seen == ["committed"]

    async def test_rollback_discards(self, async_engine: Any, bus: EventBus) -> None:
        seen: list[str] = []
        bus.on("a", lambda event: seen.append(event.name))
        with structlog.testing.capture_logs() as logs:
            async with async_session(async_engine) as session:
                async with defer_until_commit(bus, session):
                    session.add(Sale(reference="S-1"))
                    bus.defer("a")
                    await session.rollback()
                await session.commit()
        assert seen == []
        assert discards(logs) == [["a"]]

    async def test_savepoint_rolled_back(self, async_engine: Any, bus: EventBus) -> None:
        """A savepoint rolled back discards what was deferred inside it."""
        seen: list[str] = []
        bus.on("*", lambda event: seen.append(event.name))

        async def savepoint(session: Any) -> None:
            async with session.begin_nested():
                bus.defer("b")
                raise Boom

        async with (
            async_session(async_engine) as session,
            defer_until_commit(bus, session),
            session.begin(),
        ):
            bus.defer("a")
            with pytest.raises(Boom):
                await savepoint(session)
            bus.defer("c")
        assert seen == ["a", "c"]

    async def test_failing_commit(self, async_engine: Any, bus: EventBus) -> None:
        """A commit failing on a constraint runs nothing."""
        seen: list[str] = []
        bus.on("a", lambda event: seen.append(event.name))
        async with async_session(async_engine) as session:
            session.add(Sale(reference="S-1"))
            await session.commit()

        async def close_sale(session: Any) -> None:
            async with defer_until_commit(bus, session), session.begin():
                session.add(Sale(reference="S-1"))
                bus.defer("a")

        async with async_session(async_engine) as session:
            with pytest.raises(IntegrityError):
                await close_sale(session)
        await asyncio.wait_for(bus.drain(), HANG_GUARD)
        assert seen == []

    async def test_with_on_an_async_session(self, async_engine: Any, bus: EventBus) -> None:
        """An AsyncSession needs `async with`."""
        async with async_session(async_engine) as session:
            with pytest.raises(TypeError, match="`async with`"), defer_until_commit(bus, session):
                pass
