"""Spotting weight-name patterns that can make Python's regex engine backtrack exponentially.

`(a+)+$` searched in a long name of `a`s takes 2^n steps: the engine tries every
way of splitting the run between the inner and the outer repeat. Two shapes do
this and are flagged:
- an unbounded repeat whose body is itself only a repeat plus optional parts
  (`(a+)+`, `(\\w+\\s?)*`); a body with a mandatory literal (`(conv\\d+/)+`) is fine;
- an unbounded repeat over alternatives that can start with the same character
  (`(a|aa)+`, `(.|\\s)*`); `(conv|dense)+` is fine.
First characters are judged on ASCII, so a few safe patterns over character
classes may be flagged; none of the exponential shapes above is missed.
"""

from __future__ import annotations

import functools
import re
import sys
import warnings
from typing import Any

if sys.version_info >= (3, 11):
    import re._parser as _sre_parse  # type: ignore[import-not-found]
else:  # pragma: no cover
    import sre_parse as _sre_parse

_REPEATS = {_sre_parse.MAX_REPEAT, _sre_parse.MIN_REPEAT}
_ZERO_WIDTH = {_sre_parse.AT, _sre_parse.ASSERT, _sre_parse.ASSERT_NOT}


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> re.Pattern[str] | str:
    """The compiled pattern, or the reason it does not compile.

    Python's FutureWarnings about patterns (`[[` "possible nested set") are not
    the user's business here: the pattern means today what it says.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return re.compile(pattern)
        except re.error as error:
            return str(error)


@functools.lru_cache(maxsize=4096)
def nested_repeat(pattern: str) -> str | None:
    """The source of a repeat that nests another unbounded one, or None if there is none."""
    try:
        tree = _sre_parse.parse(pattern)
    except Exception:
        return None
    return _find(list(tree), pattern)


def _find(items: list[tuple[Any, Any]], pattern: str) -> str | None:
    for op, arg in items:
        if op in _REPEATS:
            _, high, body = arg
            mandatory, unbounded = _shape(list(body))
            if high == _sre_parse.MAXREPEAT and (
                (unbounded and not mandatory) or _overlapping_branch(list(body))
            ):
                return pattern
            found = _find(list(body), pattern)
        elif op is _sre_parse.SUBPATTERN:
            found = _find(list(arg[-1]), pattern)
        elif op is _sre_parse.BRANCH:
            found = next((f for alt in arg[1] if (f := _find(list(alt), pattern))), None)
        else:
            found = None
        if found:
            return found
    return None


def _shape(items: list[tuple[Any, Any]]) -> tuple[bool, bool]:
    """(has a mandatory non-repeated element, has an unbounded repeat), looking through groups."""
    mandatory = unbounded = False
    for op, arg in items:
        if op in _REPEATS:
            _, high, body = arg
            unbounded = unbounded or high == _sre_parse.MAXREPEAT or _shape(list(body))[1]
        elif op is _sre_parse.SUBPATTERN:
            inner_mandatory, inner_unbounded = _shape(list(arg[-1]))
            mandatory, unbounded = mandatory or inner_mandatory, unbounded or inner_unbounded
        elif op is _sre_parse.BRANCH:
            shapes = [_shape(list(alt)) for alt in arg[1]]
            mandatory = mandatory or all(m for m, _ in shapes)
            unbounded = unbounded or any(u for _, u in shapes)
        elif op not in _ZERO_WIDTH:
            mandatory = True
    return mandatory, unbounded


_CATEGORY_CHARS = {
    _sre_parse.CATEGORY_DIGIT: frozenset(range(48, 58)),
    _sre_parse.CATEGORY_SPACE: frozenset(map(ord, " \t\n\r\f\v")),
    _sre_parse.CATEGORY_WORD: frozenset(c for c in range(128) if chr(c).isalnum() or chr(c) == "_"),
}


def _overlapping_branch(items: list[tuple[Any, Any]]) -> bool:
    """A top-level alternation (through groups) with two alternatives that may match alike.

    Alternatives overlap when they can start with the same character, or when one
    can match the empty string (Python factors `a|aa` into `a(?:|a)`).
    """
    for op, arg in items:
        if op is _sre_parse.SUBPATTERN and _overlapping_branch(list(arg[-1])):
            return True
        if op is _sre_parse.BRANCH:
            starts = [_first_chars(list(alternative)) for alternative in arg[1]]
            for index, (first, first_empty) in enumerate(starts):
                for other, other_empty in starts[index + 1 :]:
                    if first_empty or other_empty or first is None or other is None:
                        return True
                    if first & other:
                        return True
    return False


def _first_chars(items: list[tuple[Any, Any]]) -> tuple[frozenset[int] | None, bool]:
    """(ASCII code points a sequence can start with, or None for anything; can it be empty)."""
    chars: set[int] = set()
    for op, arg in items:
        if op is _sre_parse.LITERAL:
            return frozenset(chars | {arg}), False
        if op is _sre_parse.IN:
            found = _class_chars(arg)
            return (None if found is None else frozenset(chars | found)), False
        if op in _REPEATS or op is _sre_parse.SUBPATTERN or op is _sre_parse.BRANCH:
            alternatives = (
                [arg[2]] if op in _REPEATS else arg[1] if op is _sre_parse.BRANCH else [arg[-1]]
            )
            empty = op in _REPEATS and arg[0] == 0
            for alternative in alternatives:
                start, alternative_empty = _first_chars(list(alternative))
                if start is None:
                    return None, False
                chars |= start
                empty = empty or alternative_empty
            if not empty:
                return frozenset(chars), False
        elif op not in _ZERO_WIDTH:
            return None, False
    return frozenset(chars), True


def _class_chars(items: list[tuple[Any, Any]]) -> set[int] | None:
    chars: set[int] = set()
    for op, arg in items:
        if op is _sre_parse.LITERAL:
            chars.add(arg)
        elif op is _sre_parse.RANGE and arg[1] - arg[0] < 1024:
            chars.update(range(arg[0], arg[1] + 1))
        elif op is _sre_parse.CATEGORY and arg in _CATEGORY_CHARS:
            chars |= _CATEGORY_CHARS[arg]
        else:  # negated classes, wide ranges, other categories
            return None
    return chars
