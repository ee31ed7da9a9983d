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
    "check_takes_event",
    "is_async",
    "subscription_identity",
]

Handler = Callable[[Event], Any]
Predicate = Callable[[Event], object]
_NOT_WEAKREFABLE: Final = (types.BuiltinMethodType, types.BuiltinFunctionType)


_FUNCTION: Final = types.FunctionType
_METHOD: Final = types.MethodType
_BUILTIN_BOUND: Final = (types.BuiltinMethodType, types.MethodWrapperType)
_ROUTINES: Final = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    types.MethodWrapperType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
)
_CO_COROUTINE: Final = inspect.CO_COROUTINE
_CO_VARARGS: Final = inspect.CO_VARARGS
_MARKERS: Final = hasattr(inspect, "markcoroutinefunction")
"""Python 3.12+: a plain function may be marked as a coroutine function."""
_MAX_UNWRAP: Final = 100

Identity = int | tuple[int, int | str]
"""What makes two subscriptions of one key the same (see ``subscription_identity``)."""


def _attribute(obj: object, name: str) -> Any:
    """``obj.name``, or None when reading it fails in any way (a ``__getattr__``
    that raises something else than ``AttributeError``)."""
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def callable_name(obj: object) -> str:
    """``module.qualname`` of a callable, for logs and introspection.

    A bound method is named by its function, a built-in one (``items.append``)
    by its object's type (``builtins.list.append``), a ``partial`` by the
    function it wraps, and a wrapper without its own ``__qualname__`` by its
    ``__wrapped__``; a callable object without any of these by its class.
    """
    target = obj.__func__ if isinstance(obj, _METHOD) else obj
    if isinstance(target, (_FUNCTION, type)):
        return f"{target.__module__}.{target.__qualname__}"
    for _ in range(_MAX_UNWRAP):
        if isinstance(target, functools.partial):
            target = target.func
            continue
        qualname = _attribute(target, "__qualname__")
        if isinstance(qualname, str):
            module = _attribute(target, "__module__")
            if not isinstance(module, str):  # a built-in method: its object's module
                owner = _attribute(target, "__self__")
                module = (
                    owner.__name__
                    if isinstance(owner, types.ModuleType)
                    else type(owner).__module__
                )
            return f"{module}.{qualname}"
        wrapped = _attribute(target, "__wrapped__")
        if wrapped is None or not callable(wrapped):
            break
        target = wrapped
    cls = type(target)
    return f"{cls.__module__}.{cls.__qualname__}"


def subscription_identity(handler: Callable[..., Any]) -> Identity:
    """A key equal for equal handlers: bound methods by (function, object), since
    ``obj.method`` builds a new method object on every attribute access; built-in
    bound methods (``items.append``) likewise by (object, method name)."""
    if type(handler) is _FUNCTION:
        return id(handler)
    if isinstance(handler, _METHOD):
        return id(handler.__func__), id(handler.__self__)
    if isinstance(handler, _BUILTIN_BOUND):
        owner = _builtin_owner(handler)
        if owner is not None:
            return id(owner), handler.__name__
    return id(handler)


def _builtin_owner(method: Any) -> object | None:
    """The object a built-in method is bound to; None for a module's function (``len``)."""
    owner = method.__self__
    return None if owner is None or isinstance(owner, types.ModuleType) else owner


def is_async(handler: Callable[..., Any]) -> bool:
    """Whether calling ``handler`` gives a coroutine, as far as can be told before:
    ``inspect.iscoroutinefunction`` (functions marked with
    ``inspect.markcoroutinefunction`` included), or its class's ``__call__`` is."""
    target = handler.__func__ if isinstance(handler, _METHOD) else handler
    if type(target) is _FUNCTION:
        return bool(target.__code__.co_flags & _CO_COROUTINE) or (
            _MARKERS and inspect.iscoroutinefunction(target)
        )
    try:
        if inspect.iscoroutinefunction(target):
            return True
    except Exception:  # a __getattr__ that raises: judge by the class alone
        pass
    call = getattr(type(target), "__call__", None)  # noqa: B004 - we want the type's __call__
    return not isinstance(target, _ROUTINES) and inspect.iscoroutinefunction(call)


def check_handler(handler: object) -> None:
    """Raise ``TypeError`` unless ``handler`` is callable."""
    if not callable(handler):
        raise TypeError(f"handler must be callable, not {shown(handler)}")


def check_takes_event(obj: Callable[..., Any], what: str) -> None:
    """Raise ``TypeError`` unless ``obj`` can be called with exactly one positional
    argument (the ``Event``), when Python can tell (``inspect.signature``).

    A plain function (or a method of one) without ``__wrapped__`` or
    ``__signature__`` is judged from its code, cheaply: only what that cannot
    accept is handed to ``inspect.signature``.
    """
    function, bound = (obj.__func__, 1) if type(obj) is _METHOD else (obj, 0)
    if type(function) is _FUNCTION and not (
        (attributes := function.__dict__)
        and ("__wrapped__" in attributes or "__signature__" in attributes)
    ):
        code = function.__code__
        positional = code.co_argcount - bound
        kw_only = code.co_kwonlyargcount
        if positional == 1 and not kw_only:  # def handler(event): the usual case
            return
        defaults = function.__defaults__
        if (
            positional - (len(defaults) if defaults else 0) <= 1
            and (positional >= 1 or code.co_flags & _CO_VARARGS)
            and (not kw_only or len(function.__kwdefaults__ or ()) == kw_only)
        ):
            return
    try:
        signature = inspect.signature(obj)
    except Exception:  # no signature to read (some builtins): accept
        return
    try:
        signature.bind(None)
    except TypeError:
        raise TypeError(
            f"{what} {callable_name(obj)} cannot be called with one argument (the Event): "
            f"its signature is {signature}"
        ) from None


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
        "_unused",
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
    _identity: Identity
    _unused: list[None] | None
    """Weakly held and never run yet: ``[None]``, emptied by its first run."""

    def __init__(
        self,
        handler: Handler,
        identity: Identity,
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
            code = handler.__code__
            if (
                code.co_kwonlyargcount
                or handler.__dict__  # __wrapped__ or __signature__ may say otherwise
                or not (
                    code.co_argcount == 1 or (code.co_flags & _CO_VARARGS and not code.co_argcount)
                )
            ):
                check_takes_event(handler, "handler")
            strong, ref = handler, None
            self.name = f"{handler.__module__}.{handler.__qualname__}"
            self.is_async = bool(code.co_flags & _CO_COROUTINE) or (
                _MARKERS and inspect.iscoroutinefunction(handler)
            )
        else:
            check_takes_event(handler, "handler")
            strong, ref = _hold(handler, weak, on_collected)
            self.name = callable_name(handler)
            self.is_async = is_async(handler)
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
        self._unused = None if ref is None else [None]


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
    if isinstance(handler, _BUILTIN_BOUND) and _builtin_owner(handler) is not None:
        return _hold_builtin_method(handler, weak, on_collected)
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


def _hold_builtin_method(
    method: Any, weak: bool | None, on_collected: Callable[[object], None]
) -> tuple[Handler | None, Callable[[], Handler | None] | None]:
    """A built-in bound method (``deque().append``) follows the bound-method rule:
    weakly held when its object can be weakly referenced, else strongly (or a
    ``TypeError`` when ``weak=True``)."""
    owner = method.__self__
    descriptor = _unbound(method)
    if descriptor is None:  # e.g. dict.fromkeys: bound to a class, not found on its type
        reason = "it cannot be bound again from its object's type"
    else:
        try:
            ref = _WeakBuiltinMethod(owner, on_collected)
        except TypeError:
            reason = f"its object ({type(owner).__name__}) does not support weak references"
        else:
            ref._descriptor = descriptor
            return None, ref
    if weak:
        raise TypeError(f"cannot hold {callable_name(method)} weakly: {reason}")
    return method, None


def _unbound(method: Any) -> Any | None:
    """The descriptor of ``type(obj)`` that binds to the built-in method
    ``obj.name``, or None when it cannot be found that way."""
    owner, name = method.__self__, method.__name__
    cls = type(owner)
    for klass in cls.__mro__:
        descriptor = klass.__dict__.get(name)
        if descriptor is not None:
            break
    else:
        return None
    try:
        return descriptor if descriptor.__get__(owner, cls) == method else None
    except Exception:
        return None


class _WeakBuiltinMethod(weakref.ref[Any]):
    """A weak reference to a built-in bound method's object that binds the method
    again on each call, as ``weakref.WeakMethod`` does for Python methods."""

    __slots__ = ("_descriptor",)
    _descriptor: Any

    def __call__(self) -> Any:
        owner = super().__call__()
        return None if owner is None else self._descriptor.__get__(owner, type(owner))
