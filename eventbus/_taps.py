"""Taps: observers that see every matching emission before its handlers run.

A recorder is a tap; so is the Redis bridge's outbound side. A tap may refuse
an emission (the bridge refuses a payload it cannot send), so every tap of a
route first ``prepare``s, and only when all agreed does each one ``take``:
an emission is either seen by all its taps or refused with none of them
having kept it.

A tap whose ``confirms`` attribute is true may return a *confirmation* from
``take``: a future the emission waits for before any handler runs (the
bridge's confirmed mode waits until Redis has the entry). Routes without
such a tap never look for one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any, Protocol

from ._event import Event

__all__ = ["Confirmation", "Tap", "confirmed", "confirmed_sync"]

Confirmation = asyncio.Future[Any] | concurrent.futures.Future[Any]
"""What a confirming tap's ``take`` may return: the emission goes on when it is
done, and raises its exception if it failed."""


class Tap(Protocol):
    """Something a bus shows its emissions to, before their handlers run."""

    def matches(self, name: str) -> bool:
        """Whether emissions of ``name`` are shown to this tap (asked once per route)."""
        ...

    def prepare(self, event: Event, chain: tuple[str, ...]) -> Any:
        """What ``take`` will keep; raising refuses the emission (the emitter
        gets the exception, no handler runs). ``chain`` names the emissions
        whose handlers led to this one, outermost first (empty at top level)."""
        ...

    def take(self, prepared: Any) -> Any:
        """Keep what ``prepare`` returned; must not fail. A tap with a true
        ``confirms`` attribute may return a ``Confirmation`` (else None)."""
        ...


async def confirmed(waits: list[Confirmation]) -> None:
    """Wait for the confirmations of an emission (in a running loop)."""
    for wait in waits:
        await asyncio.wrap_future(wait)


def confirmed_sync(waits: list[Confirmation]) -> None:
    """Wait for the confirmations of an emission, blocking the thread (no running
    loop in it: ``emit_sync`` refuses confirming routes inside one)."""
    for wait in waits:
        if isinstance(wait, concurrent.futures.Future):
            wait.result()
        else:
            raise RuntimeError(
                "a tap returned an asyncio future to emit_sync: only a "
                "concurrent.futures.Future can be waited for outside its loop"
            )
