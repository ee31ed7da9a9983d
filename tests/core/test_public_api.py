"""The public surface: what `eventbus` exports, its version and its typing marker."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest

import eventbus

API_NAMES = [
    "BusClosedError",
    "DeferredScope",
    "EmitReport",
    "Event",
    "EventBus",
    "EventBusError",
    "EventSpec",
    "HandlerInfo",
    "HandlerResult",
    "Interceptor",
    "PayloadError",
    "Recorder",
    "ReentrancyError",
    "Tap",
    "Topic",
    "UnknownEventError",
    "__version__",
]


def test_all_is_sorted() -> None:
    assert eventbus.__all__ == sorted(eventbus.__all__)


def test_all_lists_the_api() -> None:
    """All lists exactly the names of the api."""
    assert sorted(eventbus.__all__) == sorted(API_NAMES)


def test_all_is_the_exports() -> None:
    """Nothing public-looking leaks from the package namespace (e.g. helpers
    imported by ``__init__``): every public name is in ``__all__``."""
    exported = sorted(
        name
        for name, value in vars(eventbus).items()
        if (not name.startswith("_") or name == "__version__")
        and not isinstance(value, type(eventbus))  # submodules
    )

    assert sorted(set(exported) - set(eventbus.__all__)) == []  # leaked public names
    assert eventbus.__all__ == exported


@pytest.mark.parametrize("name", API_NAMES)
def test_names_importable(name: str) -> None:
    """Every api name is importable from eventbus."""
    namespace: dict[str, object] = {}
    exec(f"from eventbus import {name}", namespace)

    assert namespace[name] is getattr(eventbus, name)


def test_star_import() -> None:
    """Star import gives exactly the api names."""
    namespace: dict[str, object] = {}
    exec("from eventbus import *", namespace)

    assert sorted(key for key in namespace if key != "__builtins__") == sorted(API_NAMES)


@pytest.mark.parametrize(
    "name",
    [
        "EventBus",
        "Event",
        "EmitReport",
        "HandlerResult",
        "HandlerInfo",
        "EventSpec",
        "Recorder",
        "EventBusError",
        "ReentrancyError",
        "UnknownEventError",
        "PayloadError",
        "BusClosedError",
    ],
)
def test_classes_are_public(name: str) -> None:
    """Api classes are public classes."""
    cls = getattr(eventbus, name)

    assert isinstance(cls, type)
    assert cls.__name__ == name


@pytest.mark.parametrize(
    ("name", "bases"),
    [
        ("ReentrancyError", (eventbus.EventBusError,)),
        ("UnknownEventError", (eventbus.EventBusError, LookupError)),
        ("PayloadError", (eventbus.EventBusError, TypeError)),
        ("BusClosedError", (eventbus.EventBusError, RuntimeError)),
    ],
)
def test_errors_base_class(name: str, bases: tuple[type, ...]) -> None:
    """Errors derive from event bus error."""
    cls = getattr(eventbus, name)

    for base in bases:
        assert issubclass(cls, base), base
    assert issubclass(eventbus.EventBusError, Exception)


def test_py_typed_shipped() -> None:
    """Py typed is shipped in the package directory."""
    package_dir = Path(eventbus.__file__).parent

    assert (package_dir / "py.typed").is_file()


def test_version_installed() -> None:
    """Version is the installed distribution version."""
    assert eventbus.__version__ == importlib.metadata.version("eventbus")


def test_version_in_pyproject() -> None:
    """Version is the one in pyproject."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]

    assert eventbus.__version__ == declared


def test_version_is_a_str() -> None:
    assert isinstance(eventbus.__version__, str)
    assert eventbus.__version__ != "0.0.0"
