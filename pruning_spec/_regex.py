"""Spotting weight-name patterns that can make Python's regex engine backtrack exponentially.

`(a+)+$` searched in a long name of `a`s takes 2^n steps: the engine tries every
way of splitting the run between the inner and the outer repeat. A repeat
whose body is itself only a repeat (plus optional parts) is the shape that does
this; a body with a mandatory literal (`(conv\\d+/)+`) is not flagged. Overlapping
alternatives under a repeat (`(a|aa)+`) are not detected.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import re._parser as _sre_parse  # type: ignore[import-not-found]
else:  # pragma: no cover
    import sre_parse as _sre_parse

_REPEATS = {_sre_parse.MAX_REPEAT, _sre_parse.MIN_REPEAT}
_ZERO_WIDTH = {_sre_parse.AT, _sre_parse.ASSERT, _sre_parse.ASSERT_NOT}


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
            if high == _sre_parse.MAXREPEAT and unbounded and not mandatory:
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
