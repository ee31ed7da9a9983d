"""The chain of emissions that led to the current one, carried by a context
variable so that it follows ``await``s, tasks (``publish``) and other buses."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Final

from ._event import Event, new_event

__all__ = [
    "FINISHED",
    "Frame",
    "chain_names",
    "compact_chain",
    "current_frame",
    "loops_back",
    "runs_on",
    "stand_in_chain",
]

Frame = tuple[object, Event, "Frame | None", list[bool]]
"""(the bus dispatching it, the event being dispatched, the frame that emitted
it, its running cell). The cell holds True while the emission's handlers run;
the emit path sets it to False when its dispatch ends, so that a task a
handler started, which keeps the chain in its context, can tell that this
emission is over."""

FINISHED: Final[list[bool]] = [False]
"""The running cell of a frame that never runs here (``stand_in_chain``)."""

current_frame: Final[ContextVar[Frame | None]] = ContextVar("eventbus_chain", default=None)


def chain_names(frame: Frame | None) -> tuple[str, ...]:
    """Event names from the outermost emission down to ``frame``."""
    names: list[str] = []
    while frame is not None:
        names.append(frame[1].name)
        frame = frame[2]
    names.reverse()
    return tuple(names)


def loops_back(frame: Frame | None, bus: object, name: str) -> bool:
    """Whether ``name`` is already being emitted on ``bus`` somewhere up the chain."""
    while frame is not None:
        if frame[0] is bus and frame[1].name == name:
            return True
        frame = frame[2]
    return False


def runs_on(frame: Frame | None, bus: object) -> bool:
    """Whether the chain includes an emission on ``bus`` that is still running:
    the caller is one of its handlers, or code a handler awaits or a task it
    started while the emission is under way."""
    while frame is not None:
        if frame[0] is bus and frame[3][0]:
            return True
        frame = frame[2]
    return False


def stand_in_chain(bus: object, names: tuple[str, ...], event: Event) -> Frame | None:
    """Frames standing for the emissions named ``names`` (outermost first) that
    led to ``event`` in another process, as if they had run on ``bus``."""
    frame: Frame | None = None
    last = len(names) - 1
    for index, name in enumerate(names):
        stand_in_id = event.parent_id if index == last else ""
        fields: tuple[Any, ...] = (name, {}, None, stand_in_id, None, index, 0.0)
        frame = (bus, new_event(Event, fields), frame, FINISHED)
    return frame


def compact_chain(names: tuple[str, ...]) -> str:
    """``names`` joined by `` -> ``, a block repeated three times or more shown
    once with its count: ``a x18``, ``(a -> b) x9``; long chains end with their
    length, ``(18 emissions)``."""
    parts: list[str] = []
    count = len(names)
    index = 0
    while index < count:
        for size in range(1, (count - index) // 3 + 1):
            if names[index + size] != names[index]:  # cheap test before slicing
                continue
            block = names[index : index + size]
            repeats = 1
            while names[index + repeats * size : index + (repeats + 1) * size] == block:
                repeats += 1
            if repeats >= 3:
                shown = block[0] if size == 1 else "(" + " -> ".join(block) + ")"
                parts.append(f"{shown} x{repeats}")
                index += repeats * size
                break
        else:
            parts.append(names[index])
            index += 1
    shown = " -> ".join(parts)
    return shown if len(parts) == count else f"{shown} ({count} emissions)"
