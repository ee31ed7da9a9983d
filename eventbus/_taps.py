"""Taps: observers that see every matching emission before its handlers run.

A recorder is a tap; so is the Redis bridge's outbound side. A tap may refuse
an emission (the bridge refuses a payload it cannot send), so every tap of a
route first ``prepare``s, and only when all agreed does each one ``take``:
an emission is either seen by all its taps or refused with none of them
having kept it.
"""

from __future__ import annotations

from typing import Any, Protocol

from ._event import Event

__all__ = ["Tap"]


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

    def take(self, prepared: Any) -> None:
        """Keep what ``prepare`` returned; must not fail."""
        ...
