"""Helpers for tests: recording emissions and muting handlers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final, final

from ._event import Event
from ._names import check_pattern, key_matches

if TYPE_CHECKING:
    from ._topic import Topic

__all__ = ["Recorder", "RecordingTap"]


@final
class Recorder:
    """Every emission matching a pattern while ``bus.record(pattern)`` is active,
    whether or not anything listens to it or it is muted."""

    __slots__ = ("events", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern: str = pattern
        self.events: list[Event] = []

    def matches(self, name: str) -> bool:
        """Whether an emission of ``name`` is recorded."""
        return key_matches(self.pattern, name)

    @property
    def names(self) -> list[str]:
        """The recorded event names, in emission order."""
        return [event.name for event in self.events]

    def count(self, name: str | Topic[Any]) -> int:
        """How many recorded events have exactly this name (a topic: its name)."""
        name = check_pattern(name)
        return sum(1 for event in self.events if event.name == name)

    def clear(self) -> None:
        """Forget what was recorded so far (recording goes on)."""
        self.events.clear()

    def __iter__(self) -> Iterator[Event]:
        return iter(list(self.events))

    def __len__(self) -> int:
        return len(self.events)

    def __repr__(self) -> str:
        return f"<Recorder {self.pattern!r} events={len(self.events)}>"


@final
class RecordingTap:
    """Shows a bus's matching emissions to a ``Recorder`` (see ``_taps``)."""

    __slots__ = ("recorder",)

    def __init__(self, recorder: Recorder) -> None:
        self.recorder: Final = recorder

    def matches(self, name: str) -> bool:
        return self.recorder.matches(name)

    def prepare(self, event: Event, chain: tuple[str, ...]) -> Event:
        return event

    def take(self, event: Event) -> None:
        self.recorder.events.append(event)
