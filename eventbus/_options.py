"""Subscription options: one typed record from ``on()`` down to the subscription.

``on``, ``once`` and ``subscribed`` take the options as keywords typed by
``SubscribeOptions``; they are checked once, here, and travel on as one
immutable ``Options`` record.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypedDict, final

from typing_extensions import TypeVar

from ._checks import check_timeout, shown
from ._errors import safe_repr
from ._event import Event
from ._handlers import callable_name, check_takes_event, is_async

__all__ = ["DEFAULTS", "OnceOptions", "Options", "SubscribeOptions", "options_from"]

DataT = TypeVar("DataT", default=Mapping[str, Any])
"""The data type of the events a predicate receives (``Event[DataT]``): a
topic's for a topic subscription, a mapping for a name."""


class OnceOptions(TypedDict, Generic[DataT], total=False):
    """The keyword options of ``once()`` (all of ``on()``'s but ``once``).

    ``priority`` (int, default 0): higher runs first. ``predicate`` (default
    None): the handler runs only when ``predicate(event)`` is true. ``weak``
    (default None: bound methods weakly, anything else strongly). ``timeout``
    (seconds, default the bus's ``handler_timeout``): an async handler still
    running then is cancelled. ``owner`` (str, default None): a tag for
    ``clear(owner=...)``.
    """

    priority: int
    predicate: Callable[[Event[DataT]], object] | None
    weak: bool | None
    timeout: float | None
    owner: str | None


class SubscribeOptions(OnceOptions[DataT], total=False):
    """The keyword options of ``on()`` and ``subscribed()``: ``OnceOptions``
    plus ``once`` (bool, default False: run at most once, ever)."""

    once: bool


@final
@dataclass(frozen=True, slots=True)
class Options:
    """Checked subscription options, as a subscription keeps them."""

    priority: int = 0
    once: bool = False
    predicate: Callable[[Event], object] | None = None
    weak: bool | None = None
    timeout: float | None = None
    owner: str | None = None


DEFAULTS: Final = Options()
_NAMES: Final = frozenset(Options.__dataclass_fields__)
_ONCE_NAMES: Final = _NAMES - {"once"}
_DEFAULTS_ONCE: Final = Options(once=True)


def options_from(given: Mapping[str, Any], caller: str) -> Options:
    """Check the keyword options given to ``caller`` (``on``, ``once`` or
    ``subscribed``) and record them; ``once`` sets ``once=True``.

    Raises ``TypeError``/``ValueError`` saying which option is wrong, and
    ``TypeError`` for an option ``caller`` does not take.
    """
    once = caller == "once"
    if not given:
        return _DEFAULTS_ONCE if once else DEFAULTS
    allowed = _ONCE_NAMES if once else _NAMES
    unknown = sorted(given.keys() - allowed)
    if unknown:
        hint = difflib.get_close_matches(unknown[0], sorted(allowed), n=1)
        raise TypeError(
            f"{caller}() got an unexpected keyword argument {unknown[0]!r}"
            + (f"; did you mean {hint[0]!r}?" if hint else "")
        )
    options = Options(**given, once=True) if once else Options(**given)
    _check(options)
    return options


def _check(options: Options) -> None:
    predicate, priority = options.predicate, options.priority
    if predicate is not None:
        if not callable(predicate):
            raise TypeError(f"predicate must be callable or None, not {shown(predicate)}")
        if is_async(predicate):
            raise TypeError(
                f"predicate {callable_name(predicate)} is async: predicates are synchronous "
                "(decide in the handler instead)"
            )
        check_takes_event(predicate, "predicate")
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise TypeError(f"priority must be an int, not {shown(priority)}")
    if not isinstance(options.once, bool):
        raise TypeError(f"once must be a bool, not {shown(options.once)}")
    if options.weak is not None and not isinstance(options.weak, bool):
        raise TypeError(f"weak must be True, False or None, not {safe_repr(options.weak)}")
    check_timeout(options.timeout, "timeout")
    if options.owner is not None and not isinstance(options.owner, str):
        raise TypeError(f"owner must be a str or None, not {shown(options.owner)}")
