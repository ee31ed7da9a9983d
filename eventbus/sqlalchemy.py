"""SQLAlchemy integration: emissions that run only once a session's transaction committed.

```python
from eventbus.sqlalchemy import defer_until_commit

with Session(engine) as session, session.begin(), defer_until_commit(bus, session):
    session.add(Sale(id=7, total_cents=1250))
    bus.defer("sale.closed", sale_id=7, total_cents=1250)
# committed by session.begin(): "sale.closed" ran; had it rolled back, it would not have
```

Needs the ``sqlalchemy`` extra: ``pip install 'eventbus[sqlalchemy]'``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final, Self, final

try:
    from sqlalchemy import event
    from sqlalchemy.orm import Session, SessionTransaction
except ImportError as _missing:  # pragma: no cover - exercised by a test that hides SQLAlchemy
    raise ImportError(
        f"eventbus.sqlalchemy needs SQLAlchemy, which could not be imported ({_missing}); "
        "install the extra: pip install 'eventbus[sqlalchemy]'"
    ) from _missing

from ._bus import EventBus
from ._deferred import DeferredScope, Held, current_scope, name_of
from ._event import Event

if TYPE_CHECKING:
    from types import TracebackType

    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["CommitScope", "defer_until_commit"]

_INFO_KEY: Final = "eventbus.commit_scopes"
"""The key of ``session.info`` holding the session's ``_Watch``."""


def defer_until_commit(bus: EventBus, session: Session | AsyncSession) -> CommitScope:
    """A scope of ``bus`` tied to ``session``'s transaction: ``with`` for a
    ``Session``, ``async with`` for an ``AsyncSession``.

    Emissions deferred while it is open (``bus.defer``) run after the session's
    transaction commits, also when that commit comes after the block, and are
    discarded if it rolls back (a savepoint rolled back discards what was
    deferred inside it); after a rollback, a later commit runs only what was
    deferred since. The block raising discards what it deferred that was not
    committed yet. A ``Session`` emits them inside ``commit()`` (with ``emit_sync``);
    an ``AsyncSession`` when the ``async with`` block exits, or, for a commit
    after the block, in a task (as ``publish`` would).
    """
    if not isinstance(bus, EventBus):
        raise TypeError(f"defer_until_commit() needs an EventBus, not {type(bus).__name__}")
    if isinstance(session, Session):
        return CommitScope(bus, session, is_async=False)
    if _is_async_session(session):
        return CommitScope(bus, session.sync_session, is_async=True)
    raise TypeError(
        f"defer_until_commit() needs a Session or an AsyncSession, not {type(session).__name__}"
    )


def _is_async_session(session: object) -> bool:
    """Whether ``session`` is an ``AsyncSession`` (whose module needs greenlet:
    imported only when something else than a ``Session`` is given)."""
    try:
        from sqlalchemy.ext.asyncio import AsyncSession
    except ImportError:  # no greenlet: nothing can be an AsyncSession
        return False
    return isinstance(session, AsyncSession)


@final
class _Watch:
    """Follows one session's transactions for the commit scopes open on it.

    Registered once per session (SQLAlchemy cannot remove a listener while it
    dispatches), it does nothing when no scope waits.
    """

    __slots__ = ("_committed", "_lock", "scopes")

    def __init__(self, session: Session) -> None:
        self._lock: Final = threading.Lock()
        self._committed = False
        self.scopes: list[CommitScope] = []
        event.listen(session, "after_commit", self._after_commit)
        event.listen(session, "after_transaction_end", self._after_transaction_end)

    @staticmethod
    def of(session: Session) -> _Watch:
        watch = session.info.get(_INFO_KEY)
        if not isinstance(watch, _Watch):
            watch = session.info[_INFO_KEY] = _Watch(session)
        return watch

    def add(self, scope: CommitScope) -> None:
        with self._lock:
            self.scopes = [*self.scopes, scope]

    def remove(self, scope: CommitScope) -> None:
        with self._lock:
            self.scopes = [known for known in self.scopes if known is not scope]

    def _after_commit(self, session: Session) -> None:
        self._committed = True  # the transaction ending next (root or savepoint) committed

    def _after_transaction_end(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is not None and not transaction.nested:
            return  # a flush's own transaction: its parent decides
        committed, self._committed = self._committed, False
        failure: BaseException | None = None
        for scope in self.scopes:  # each scope hears of it, whatever another raised
            try:
                scope._transaction_ended(transaction, committed=committed)
            except BaseException as error:
                failure = failure or error
        if failure is not None:
            raise failure


class CommitScope(DeferredScope):
    """The scope ``defer_until_commit`` opens: its held emissions wait for the
    session's transaction to commit."""

    __slots__ = ("_is_async", "_lifecycle", "_ready", "_session", "_watch")

    def __init__(self, bus: EventBus, session: Session, *, is_async: bool) -> None:
        super().__init__(bus, tag=self._transaction)
        self._lifecycle: Final = bus._lifecycle
        self._session: Final = session
        self._is_async: Final = is_async
        self._ready: list[Held] = []  # committed while an async block runs: emitted at its exit
        self._watch: _Watch | None = None

    def _transaction(self) -> SessionTransaction | None:
        """What an emission deferred now waits for: the innermost savepoint, else
        the session's transaction (None before it began: the next one)."""
        session = self._session
        return session.get_nested_transaction() or session.get_transaction()

    def _begin(self, *, is_async: bool) -> None:
        if is_async != self._is_async:
            kind, use = (
                ("an AsyncSession", "async with") if self._is_async else ("a Session", "with")
            )
            raise TypeError(f"defer_until_commit() on {kind} is used with `{use}`")
        self._open(join=False)  # its emissions wait for the commit, not for an outer scope
        self._watch = _Watch.of(self._session)
        self._watch.add(self)

    def _finish(self, exc: BaseException | None) -> list[Held]:
        """Leave the block; return what was committed while it ran (async)."""
        try:
            self._leave()
        finally:
            self._stop()
            if exc is not None:
                self._discard(self._take())
            if not self._holding:
                self._retire()
        ready, self._ready = self._ready, []
        return ready

    def _retire(self) -> None:
        if self._watch is not None:
            self._watch.remove(self)

    def __enter__(self) -> Self:
        self._begin(is_async=False)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._finish(exc)

    async def __aenter__(self) -> Self:
        self._begin(is_async=True)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        ready = self._finish(exc)
        if ready:
            await self._run_async(ready)

    def _transaction_ended(self, transaction: SessionTransaction, *, committed: bool) -> None:
        """The session's transaction or one of its savepoints ended."""
        if transaction.nested:
            parent = transaction.parent
            if committed:
                self._retag(transaction, parent)
            else:
                self._discard(self._take_tagged(transaction))
            return
        held = self._take()
        if not self._is_open:
            self._retire()
        if not committed:
            self._discard(held)
        elif not held:
            return
        elif not self._is_async:
            # Its handlers run outside this scope, as those of any held emission do.
            token = current_scope.set(self._outer)
            try:
                self._run_sync(held)
            finally:
                current_scope.reset(token)
        elif self._is_open:
            self._ready += held  # awaited when the block exits
        else:
            self._emit_later(held)

    def _emit_later(self, held: list[Held]) -> None:
        """Emit in a task what an ``AsyncSession`` committed after its block;
        ``drain()`` and ``aclose()`` wait for it, as for ``publish``. A log line
        about the task (cancelled, failed) names its first emission."""
        self._lifecycle.run_later(self._run_async(held), Event(name_of(held[0][1])))
