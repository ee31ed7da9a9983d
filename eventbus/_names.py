"""Validation and matching of event names and subscription patterns."""

from __future__ import annotations

import re

from ._errors import safe_repr

_SEGMENT = r"[A-Za-z0-9_-]+"
_NAME = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")
_PATTERN = re.compile(rf"(?:{_SEGMENT}\.)*\*|{_SEGMENT}(?:\.{_SEGMENT})*")

WILDCARD = "*"
_MAX_REMEMBERED = 8192
_valid_names: set[str] = set()
_valid_patterns: set[str] = set()
"""Keys already validated: subscribing and unsubscribing skip the regex for them."""


def _remember(valid: set[str], key: str) -> None:
    if len(valid) >= _MAX_REMEMBERED:
        valid.clear()
    valid.add(key)


def check_name(name: object) -> str:
    """Return ``name`` if it is a concrete event name, else raise ``TypeError``/``ValueError``."""
    if type(name) is str and name in _valid_names:
        return name
    if not isinstance(name, str):
        raise TypeError(f"event name must be a str, not {type(name).__name__}: {safe_repr(name)}")
    if _NAME.fullmatch(name) is None:
        if "*" in name:
            raise ValueError(
                f"expected a concrete event name, not the pattern {safe_repr(name)}"
                if _PATTERN.fullmatch(name)
                else _describe_bad(name)
            )
        raise ValueError(_describe_bad(name))
    name = str.__str__(name)  # a str subclass (an enum member...) becomes a plain str
    _remember(_valid_names, name)
    return name


def check_pattern(pattern: object) -> str:
    """Return ``pattern`` if it is an event name or a ``prefix.*``/``*`` pattern
    (of a ``Topic``: its name)."""
    if type(pattern) is str and pattern in _valid_patterns:
        return pattern
    if not isinstance(pattern, str):
        from ._topic import Topic  # a topic means its name

        if isinstance(pattern, Topic):
            return pattern.name
        raise TypeError(
            "event name or pattern must be a str, not "
            f"{type(pattern).__name__}: {safe_repr(pattern)}"
        )
    if _PATTERN.fullmatch(pattern) is None:
        raise ValueError(_describe_bad(pattern, allow_pattern=True))
    pattern = str.__str__(pattern)
    _remember(_valid_patterns, pattern)
    return pattern


def _describe_bad(value: str, *, allow_pattern: bool = False) -> str:
    rule = "dot-separated segments of [A-Za-z0-9_-]"
    if allow_pattern:
        rule += ", optionally ending in '.*' (or '*' alone)"
    if WILDCARD in value:
        rule += "; '*' may only be a whole last segment ('user.*') or the whole pattern ('*')"
    return f"invalid event name {safe_repr(value)}: expected {rule}"


def is_pattern(key: str) -> bool:
    """Whether a (valid) subscription key is a pattern rather than a concrete name."""
    return key.endswith(WILDCARD)


def pattern_prefix(pattern: str) -> str:
    """The name prefix a pattern matches: ``"user.*"`` gives ``"user."``, ``"*"`` gives ``""``."""
    return pattern[:-1]


def key_matches(key: str, name: str) -> bool:
    """Whether the subscription key (name or pattern) receives the concrete ``name``."""
    if is_pattern(key):
        return name.startswith(pattern_prefix(key))
    return key == name


def keys_overlap(key: str, query: str) -> bool:
    """Whether some concrete name is received by ``key`` and matched by ``query``.

    Both may be names or patterns; used by ``listeners(pattern)``.
    """
    key_is_pattern, query_is_pattern = is_pattern(key), is_pattern(query)
    if not key_is_pattern and not query_is_pattern:
        return key == query
    if not query_is_pattern:
        return key_matches(key, query)
    if not key_is_pattern:
        return key_matches(query, key)
    a, b = pattern_prefix(key), pattern_prefix(query)
    return a.startswith(b) or b.startswith(a)
