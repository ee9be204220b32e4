"""Rule patterns: Python regular expressions, matched by RE2 in time linear in the name.

A rule's pattern is searched (`re.search` semantics: unanchored) in weight names
that come from models and checkpoints anyone can hand us. Python's backtracking
engine takes exponential time on patterns such as `(a|a){0,100}b` or
`a*a*a*a*a*a*a*a*b`, and no heuristic catches them all, so every match goes
through RE2 (`google-re2`), whose automata never backtrack.

A pattern is accepted when it is a valid Python regular expression (what the
schema has always documented, and what r1.15 used) that RE2 can run with the
same meaning. It is refused with a reason otherwise:

- `invalid-regex`: Python's `re` rejects it;
- `unsupported-regex`: a construct only a backtracking engine runs
  (backreferences, lookarounds, conditionals, atomic groups, possessive repeats,
  repeat counts over 1000, `\\Z`, the `x`/`a`/`L`/`u` flags), or syntax RE2 reads
  with another meaning (`a{,3}`, POSIX classes such as `[[:alpha:]]`).

Where the two engines differ on a pattern both accept, RE2's meaning applies:
`\\w \\d \\s \\b` are ASCII-only, `$` matches only at the very end of the name,
and case-insensitive matching has no Turkish-i special cases (README,
"Patterns").
"""

from __future__ import annotations

import contextlib
import functools
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, TypeAlias

import re2

from pruning_spec._diagnostics import shorten

if sys.version_info >= (3, 11):
    import re._constants as _sre_constants  # type: ignore[import-not-found]
    import re._parser as _sre_parse  # type: ignore[import-not-found]
else:  # pragma: no cover
    import sre_constants as _sre_constants
    import sre_parse as _sre_parse

# The argument of a node of re._parser's tree (an int, a tuple, a SubPattern): re._parser
# has no stubs.
_Argument: TypeAlias = Any

INVALID_REGEX = "invalid-regex"
UNSUPPORTED_REGEX = "unsupported-regex"
_MAX_REPEAT_COUNT = 1000  # RE2's limit on {n,m}


class PatternProblem(NamedTuple):
    """Why a rule pattern cannot be used: a diagnostic code, a message and a hint."""

    code: str
    message: str
    hint: str = ""


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # problems are reported as diagnostics, not on stderr
    options.never_capture = True  # only whether a pattern matches is ever asked
    return options


_OPTIONS = _options()


# Most patterns are literal text with `.`, class escapes, simple sets ([0-9], [^a-z_]),
# simple repeats and anchors, which both engines accept and read alike (up to the ASCII
# classes the README lists). Such a pattern needs neither engine's parser to be judged;
# the length bound keeps it within RE2's memory budget. The alternatives start with
# distinct characters, so this regex cannot backtrack.
_PLAIN = re.compile(
    r"\^?(?:(?:[\w/\-:,;=<>@#%&~ ]|\.|\\[dwsDWS./\-_]"
    r"|\[\^?(?:[A-Za-z0-9](?:-[A-Za-z0-9])?|[_./:,;=<> ])+\])(?:[*+?]\??)?){0,1000}\$?",
    re.ASCII,
)
# Every a-b of a plain pattern must ascend: inside a set it is a range (z-a is an error),
# outside it is literal text, and an unneeded check only sends the pattern the long way.
_RANGE = re.compile(r"([A-Za-z0-9])-([A-Za-z0-9])", re.ASCII)


def _plain(pattern: str) -> bool:
    return _PLAIN.fullmatch(pattern) is not None and all(
        low <= high for low, high in _RANGE.findall(pattern)
    )


@functools.lru_cache(maxsize=4096)
def pattern_problem(pattern: str) -> PatternProblem | None:
    """Why `pattern` cannot be a rule pattern, or None when it can."""
    if _plain(pattern):
        return None
    problem = _python_problem(pattern)
    if problem is not None:
        return problem
    error = _re2_error(pattern)
    if error is None:
        return None
    hint = next((h for prefix, h in _RE2_HINTS if error.startswith(prefix)), "")
    return PatternProblem(
        UNSUPPORTED_REGEX,
        f"{shorten(pattern)} is refused by RE2, which matches in linear time: {error}",
        hint,
    )


def _python_problem(pattern: str) -> PatternProblem | None:
    """Invalid in Python, or a construct RE2 cannot run with Python's meaning."""
    try:
        with _quietly():
            tree = _sre_parse.parse(pattern)
    except re.error as error:
        reason = str(error)
    except (RecursionError, OverflowError):
        reason = "it is nested too deeply"
    else:
        construct = _python_only_construct(pattern, tree)
        if construct is None:
            return None
        what, hint = construct
        return PatternProblem(
            UNSUPPORTED_REGEX,
            f"{shorten(pattern)} uses {what}, which RE2's linear-time matching does not support",
            hint,
        )
    return PatternProblem(
        INVALID_REGEX, f"{shorten(pattern)} is not a valid regular expression: {reason}"
    )


@contextlib.contextmanager
def _quietly() -> Iterator[None]:
    # Python's FutureWarnings about patterns (`[[` "possible nested set") are not the
    # user's business here: such patterns are judged by what RE2 makes of them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _encoded(text: str) -> bytes:
    # Lone surrogates (possible in names read from files) become bytes no pattern matches.
    return text.encode("utf-8", "surrogatepass")


def _re2_error(pattern: str) -> str | None:
    try:
        re2.compile(_encoded(pattern), _OPTIONS)
    except re2.error as error:
        message = error.args[0] if error.args else ""
        return message.decode(errors="replace") if isinstance(message, bytes) else str(message)
    return None


_RE2_HINTS = (
    ("invalid escape sequence", "write the character itself"),
    ("invalid perl operator", "RE2 knows (?:...), (?P<name>...) and the flags i, m and s"),
    ("invalid repetition size", f"RE2 counts repeats up to {_MAX_REPEAT_COUNT} in all"),
    ("pattern too large", "the pattern is too large for RE2's memory budget: simplify it"),
    ("invalid UTF-8", "patterns are UTF-8 text"),
)


# Constructs of Python's parse tree RE2 cannot run, with what to write instead.
_UNSUPPORTED_OPS: dict[int, tuple[str, str]] = {
    _sre_constants.GROUPREF: (
        "a backreference",
        "a backreference can take exponential time; match the name without it",
    ),
    _sre_constants.GROUPREF_EXISTS: (
        "a conditional group (?(id)yes|no)",
        "write the alternatives out with |",
    ),
    _sre_constants.ASSERT: (
        "a lookahead or lookbehind",
        "match the text itself, or split the rule in two",
    ),
    _sre_constants.ASSERT_NOT: (
        "a negative lookahead or lookbehind",
        "list the weights you mean instead of the ones you don't",
    ),
}
if sys.version_info >= (3, 11):
    _UNSUPPORTED_OPS[_sre_constants.ATOMIC_GROUP] = (
        "an atomic group (?>...)",
        "a linear-time engine needs none: write the group as (?:...)",
    )
    _UNSUPPORTED_OPS[_sre_constants.POSSESSIVE_REPEAT] = (
        "a possessive repeat (*+, ++, ?+)",
        "a linear-time engine needs none: drop the second +",
    )
_REPEATS = {_sre_constants.MAX_REPEAT, _sre_constants.MIN_REPEAT}
# `{,n}` and `{,}` repeat in Python but are literal text to RE2.
_OPEN_MIN_REPEAT = re.compile(r"\{,\d*\}")
_POSIX_CLASS = re.compile(r"\[:\^?[A-Za-z]+:\]")
_INLINE_FLAGS = re.compile(r"\(\?([A-Za-z]*)(?:-([A-Za-z]*))?[:)]")
_RE2_FLAGS = frozenset("imsU")


def _python_only_construct(pattern: str, tree: _Argument) -> tuple[str, str] | None:
    """(what, hint) for the first construct RE2 would refuse or read differently."""
    literal = _literal_syntax_difference(pattern)
    if literal is not None:
        return literal
    for op, argument in _walk(list(tree)):
        if op in _UNSUPPORTED_OPS:
            return _UNSUPPORTED_OPS[op]
        if op is _sre_constants.AT and argument is _sre_constants.AT_END_STRING:
            return "\\Z", "write $: RE2's $ matches only at the end of the name, as \\Z does"
        if op in _REPEATS and _largest_count(argument) > _MAX_REPEAT_COUNT:
            return (
                "a repeat count over 1000",
                f"RE2 counts repeats up to {_MAX_REPEAT_COUNT}; write + or * instead",
            )
    return None


def _largest_count(repeat: tuple[int, int, _Argument]) -> int:
    low, high, _ = repeat
    return max(low, 0 if high == _sre_constants.MAXREPEAT else high)


def _literal_syntax_difference(pattern: str) -> tuple[str, str] | None:
    """Syntax both engines accept but read differently (or only Python reads), outside escapes."""
    for in_class, text in _unescaped_runs(pattern):
        if in_class:
            if _POSIX_CLASS.search(text):
                return (
                    "a POSIX class such as [:alpha:] inside a set",
                    "Python reads it as the characters [ : a l p h ...; write the set you mean",
                )
            continue
        if _OPEN_MIN_REPEAT.search(text):
            return (
                "a repeat {,n} with no minimum",
                "RE2 reads {,n} as literal text: write {0,n}, or \\{ for a literal brace",
            )
        for flags in _INLINE_FLAGS.finditer(text):
            unknown = set("".join(f for f in flags.groups() if f)) - _RE2_FLAGS
            if unknown:
                return (
                    f"the flag (?{''.join(sorted(unknown))})",
                    "RE2 accepts only the flags i, m and s; patterns are Unicode text already",
                )
    return None


def _unescaped_runs(pattern: str) -> list[tuple[bool, str]]:
    """(inside a set, text) runs of `pattern`, escaped characters blanked out."""
    chars = list(pattern)
    runs: list[tuple[bool, str]] = []
    index, in_class, run_start = 0, False, 0
    while index < len(chars):
        char = chars[index]
        if char == "\\":
            chars[index : index + 2] = ["\0"] * len(chars[index : index + 2])
            index += 2
        elif not in_class and char == "[":
            runs.append((False, "".join(chars[run_start:index])))
            in_class, run_start = True, index
            index += 1
            # A ']' right after '[' or '[^' is a member, not the end of the set.
            index += index < len(chars) and chars[index] == "^"
            index += index < len(chars) and chars[index] == "]"
        elif in_class and char == "]":
            runs.append((True, "".join(chars[run_start : index + 1])))
            in_class, run_start = False, index + 1
            index += 1
        else:
            index += 1
    runs.append((in_class, "".join(chars[run_start:])))
    return runs


def _walk(items: list[tuple[int, _Argument]]) -> Iterator[tuple[int, _Argument]]:
    """Every node of a parse tree, depth first."""
    stack = list(reversed(items))
    while stack:
        op, argument = stack.pop()
        yield op, argument
        if op in _REPEATS or op is _sre_constants.SUBPATTERN:
            children = [argument[-1]]
        elif op is _sre_constants.BRANCH:
            children = list(argument[1])
        else:
            children = []
        for child in reversed(children):
            stack.extend(reversed(list(child)))


class RuleMatcher:
    """Which of a list of accepted patterns are found (searched) in a name.

    One pass over the name per call whatever the number of rules: RE2's
    FilteredRE2 first looks for the literal pieces each pattern needs, then runs
    only the patterns whose pieces are present.
    """

    __slots__ = ("_filter", "_last")

    def __init__(self, patterns: Sequence[str]) -> None:
        self._filter: re2.Filter | None = None
        # The last name matched and its matches: deciding what a spec does to a weight
        # asks about its name several times in a row (plan_weights, keeps_dense).
        self._last: tuple[str, tuple[int, ...]] | None = None
        if not patterns:
            return
        found = re2.Filter()
        for pattern in patterns:
            found.Add(_encoded(pattern), _OPTIONS)
        found.Compile()
        self._filter = found

    def matching(self, name: str) -> list[int]:
        """The indices of the patterns found in `name`, in increasing order."""
        if self._filter is None:
            return []
        last = self._last  # one read: another thread may replace it
        if last is None or last[0] != name:
            found = self._filter.Match(_encoded(name))
            last = self._last = (name, tuple(sorted(found)) if found else ())
        return list(last[1])
