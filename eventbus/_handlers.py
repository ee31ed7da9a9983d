"""Subscriptions: how a handler is held (strongly or weakly) and what is known
about it, all settled once at subscribe time so that emitting does no
introspection."""

from __future__ import annotations

import functools
import inspect
import types
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, final

from ._checks import shown
from ._event import Event

if TYPE_CHECKING:
    from ._options import Options

__all__ = [
    "HandlerInfo",
    "_Subscription",
    "callable_name",
    "check_handler",
    "subscription_identity",
]

Handler = Callable[[Event], Any]
Predicate = Callable[[Event], object]
_NOT_WEAKREFABLE: Final = (types.BuiltinMethodType, types.BuiltinFunctionType)


_FUNCTION: Final = types.FunctionType
_METHOD: Final = types.MethodType
_CO_COROUTINE: Final = inspect.CO_COROUTINE


def callable_name(obj: object) -> str:
    """``module.qualname`` of a callable, for logs and introspection."""
    target = obj.__func__ if isinstance(obj, _METHOD) else obj
    if isinstance(target, (_FUNCTION, types.BuiltinFunctionType, type)):
        return f"{target.__module__}.{target.__qualname__}"
    if isinstance(target, functools.partial):
        return callable_name(target.func)
    cls = type(target)
    return f"{cls.__module__}.{cls.__qualname__}"


def subscription_identity(handler: Callable[..., Any]) -> int | tuple[int, int]:
    """A key equal for equal handlers: bound methods by (function, object), since
    ``obj.method`` builds a new method object on every attribute access."""
    if isinstance(handler, _METHOD):
        return id(handler.__func__), id(handler.__self__)
    return id(handler)


def _is_async(handler: Callable[..., Any]) -> bool:
    target = handler.__func__ if isinstance(handler, _METHOD) else handler
    if type(target) is _FUNCTION:
        return bool(target.__code__.co_flags & _CO_COROUTINE)
    if inspect.iscoroutinefunction(target):
        return True
    call = getattr(type(target), "__call__", None)  # noqa: B004 - we want the type's __call__
    return not inspect.isroutine(target) and inspect.iscoroutinefunction(call)


def check_handler(handler: object) -> None:
    """Raise ``TypeError`` unless ``handler`` is callable."""
    if not callable(handler):
        raise TypeError(f"handler must be callable, not {shown(handler)}")


class _Subscription:
    """Slot storage of a ``HandlerInfo``, filled by a plain ``__init__`` (cheap)
    before the object becomes a read-only ``HandlerInfo``."""

    __slots__ = (
        "_claim",
        "_identity",
        "_predicate",
        "_predicate_ref",
        "_ref",
        "_strong",
        "has_predicate",
        "is_async",
        "name",
        "once",
        "order",
        "owner",
        "pattern",
        "priority",
        "timeout",
        "weak",
    )

    name: str
    pattern: str
    priority: int
    once: bool
    weak: bool
    timeout: float | None
    has_predicate: bool
    owner: str | None
    is_async: bool
    order: int
    _strong: Handler | None
    _ref: Callable[[], Handler | None] | None
    _predicate: Predicate | None
    _predicate_ref: Callable[[], Predicate | None] | None
    _claim: list[None] | None
    _identity: int | tuple[int, int]

    def __init__(
        self,
        handler: Handler,
        identity: int | tuple[int, int],
        pattern: str,
        options: Options,
        timeout: float | None,
        order: int,
        on_collected: Callable[[object], None],
    ) -> None:
        weak, once, predicate = options.weak, options.once, options.predicate
        strong: Handler | None
        ref: Callable[[], Handler | None] | None
        if type(handler) is _FUNCTION and weak is not True:  # the common case, cheaply
            strong, ref = handler, None
            self.name = f"{handler.__module__}.{handler.__qualname__}"
            self.is_async = bool(handler.__code__.co_flags & _CO_COROUTINE)
        else:
            strong, ref = _hold(handler, weak, on_collected)
            self.name = callable_name(handler)
            self.is_async = _is_async(handler)
        self.pattern = pattern
        self.priority = options.priority
        self.once = once
        self.weak = ref is not None
        self.timeout = timeout
        self.has_predicate = predicate is not None
        self.owner = options.owner
        self.order = order
        self._strong = strong
        self._ref = ref
        if ref is not None and isinstance(predicate, _METHOD):
            # A weakly held handler's bound-method predicate must not keep its object alive.
            weak_predicate = _weak_method_or_none(predicate, on_collected)
            self._predicate = predicate if weak_predicate is None else None
            self._predicate_ref = weak_predicate
        else:
            self._predicate, self._predicate_ref = predicate, None
        self._claim = [None] if once else None
        self._identity = identity


@final
class HandlerInfo(_Subscription):
    """One subscription, as introspection and reports show it. Read-only.

    ``callback`` is the live callable, or ``None`` once a weakly held handler
    was collected. ``timeout`` is the one that applies (the subscription's, else
    the bus's ``handler_timeout``). ``is_async`` tells whether the handler is a
    coroutine function; ``order`` is its place in subscription order.
    """

    __slots__ = ()

    @property
    def callback(self) -> Handler | None:
        """The subscribed callable, or ``None`` once its object was collected."""
        if self._ref is None:
            return self._strong
        return self._ref()

    @property
    def alive(self) -> bool:
        """False once a weakly held handler (or its weakly held predicate) was collected."""
        return (self._ref is None or self._ref() is not None) and (
            self._predicate_ref is None or self._predicate_ref() is not None
        )

    @property
    def predicate(self) -> Predicate | None:
        """The live predicate, or None (none given, or collected with its object)."""
        if self._predicate_ref is not None:
            return self._predicate_ref()
        return self._predicate

    @property
    def direct(self) -> Handler | None:
        """The callable to call without any check, or ``None`` when dispatch must
        first dereference, test the predicate or claim a once-subscription."""
        if self._ref is None and not self.has_predicate and not self.once:
            return self._strong
        return None

    def claim(self) -> bool:
        """Take the single run of a once-subscription; atomic across threads."""
        try:
            self._claim.pop()  # type: ignore[union-attr]
        except (IndexError, AttributeError):
            return False
        return True

    def __copy__(self) -> HandlerInfo:
        return self

    def __deepcopy__(self, memo: object) -> HandlerInfo:
        return self

    def __reduce__(self) -> Any:
        raise TypeError("a HandlerInfo cannot be pickled: it holds a live subscription")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"HandlerInfo is read-only: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"HandlerInfo is read-only: cannot delete {name!r}")

    def __repr__(self) -> str:
        flags = "".join(
            f", {flag}=True" for flag in ("once", "weak", "has_predicate") if getattr(self, flag)
        )
        return (
            f"<HandlerInfo {self.name} on {self.pattern!r} priority={self.priority}{flags}"
            f"{f', owner={self.owner!r}' if self.owner else ''}>"
        )


def _weak_method_or_none(
    method: types.MethodType, on_collected: Callable[[object], None]
) -> Callable[[], Any] | None:
    try:
        return weakref.WeakMethod(method, on_collected)
    except TypeError:  # its object cannot be weakly referenced
        return None


def _hold(
    handler: Handler, weak: bool | None, on_collected: Callable[[object], None]
) -> tuple[Handler | None, Callable[[], Handler | None] | None]:
    """Decide how a subscription holds its handler: (handler, None) or (None, weakref).

    ``on_collected`` is called with the dead reference once the handler is gone.
    """
    if weak is False:
        return handler, None
    if isinstance(handler, types.MethodType):
        try:
            return None, weakref.WeakMethod(handler, on_collected)
        except TypeError:
            if weak:
                raise TypeError(
                    f"cannot hold {callable_name(handler)} weakly: its object "
                    f"({type(handler.__self__).__name__}) does not support weak references"
                ) from None
            return handler, None  # default: keep working rather than fail or vanish
    if not weak:
        return handler, None
    if isinstance(handler, _NOT_WEAKREFABLE):
        raise TypeError(
            f"cannot hold {callable_name(handler)} weakly: builtins are not weakly referenceable"
        )
    try:
        return None, weakref.ref(handler, on_collected)
    except TypeError:
        raise TypeError(
            f"cannot hold {callable_name(handler)} weakly: "
            f"{type(handler).__name__} objects do not support weak references"
        ) from None
