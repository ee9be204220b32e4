"""Rule patterns: Python syntax, RE2 matching, and a located reason for every refusal."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pruning_spec._regex import (
    INVALID_REGEX,
    UNSUPPORTED_REGEX,
    RuleMatcher,
    _plain,
    _python_problem,
    _re2_error,
    pattern_problem,
)

# Each takes Python's backtracking engine seconds to minutes on a name of a few dozen
# characters (issue 12): (pattern, a name it is found in, a long name it is not found in).
CATASTROPHIC = [
    (r"a*a*a*a*a*a*a*a*b", "aaab", "a" * 10_000),
    (r"(a+){25}b", "a" * 30 + "b", "a" * 10_000),
    (r"(a|a){0,100}b", "aab", "a" * 10_000),
    (r".*.*.*.*.*.*=", "x=1", "x" * 10_000),
    (r"\w*\w*\w*\w*\w*!", "ab!", "w" * 10_000),
    (r"(a+)+$", "xa", "a" * 10_000 + "!"),
    (r"(a|aa)+$", "aa", "a" * 10_000 + "!"),
    (r"(.|\s)*!", "ab!", " " * 10_000),
]


@pytest.mark.parametrize(("pattern", "found_in", "long_name"), CATASTROPHIC)
def test_catastrophic_patterns_are_accepted_and_answer_at_once(
    pattern: str, found_in: str, long_name: str
) -> None:
    assert pattern_problem(pattern) is None
    matcher = RuleMatcher([pattern])
    assert matcher.matching(found_in) == [0]
    assert matcher.matching(long_name) == []


@pytest.mark.parametrize(
    ("pattern", "reason", "hint"),
    [
        (r"(a)\1*b", "uses a backreference", "exponential"),
        (r"(?P<x>a)(?P=x)", "uses a backreference", "exponential"),
        (r"(?=conv)\w+", "uses a lookahead or lookbehind", "split the rule"),
        (r"(?<=conv)1", "uses a lookahead or lookbehind", "split the rule"),
        (r"dense(?!_1)", "uses a negative lookahead", "list the weights"),
        (r"(a)?(?(1)b|c)", "uses a conditional group", "alternatives"),
        (r"(?>conv)", "uses an atomic group", "(?:...)"),
        (r"conv*+", "uses a possessive repeat", "drop the second +"),
        (r"a{1001}", "uses a repeat count over 1000", "up to 1000"),
        (r"a{2000,}", "uses a repeat count over 1000", "up to 1000"),
        (r"kernel\Z", "uses \\Z", "write $"),
        (r"[[:alpha:]]+", "uses a POSIX class", "[ : a l p h"),
        (r"conv{,3}", "uses a repeat {,n} with no minimum", "write {0,n}"),
        (r"(?x) conv 1", "uses the flag (?x)", "flags i, m and s"),
        (r"(?a)\w", "uses the flag (?a)", "flags i, m and s"),
        (r"(?u)conv", "uses the flag (?u)", "flags i, m and s"),
        (r"(?s:(?x: conv 1))", "uses the flag (?x)", "flags i, m and s"),
        # What RE2 refuses on its own: its reason, with a hint where there is one.
        (r"conv\u0031", "refused by RE2, which matches in linear time: invalid escape", "itself"),
        (r"(?#note)conv", "invalid perl operator", "(?:...)"),
        (r"((a{1000}){1000}){1000}", "invalid repetition size", "up to 1000"),
    ],
)
def test_what_only_backtracking_runs_is_unsupported_with_a_hint(
    pattern: str, reason: str, hint: str
) -> None:
    problem = pattern_problem(pattern)
    assert problem is not None
    assert problem.code == UNSUPPORTED_REGEX
    assert reason in problem.message
    assert hint in problem.hint


@pytest.mark.parametrize(
    "pattern", [r"\{,3}", r"[{,3}]", r"\(?u", r"[(?x)]", r"a{1000}", r"(?i)conv", r"(?i:a)"]
)
def test_lookalikes_of_unsupported_syntax_are_accepted(pattern: str) -> None:
    assert pattern_problem(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("[", "unterminated character set"),
        ("a**", "multiple repeat"),
        ("(" * 1000 + ")" * 1000, "nested too deeply"),
    ],
)
def test_invalid_python_patterns_are_invalid(pattern: str, reason: str) -> None:
    problem = pattern_problem(pattern)
    assert problem is not None
    assert problem.code == INVALID_REGEX
    assert reason in problem.message
    assert len(problem.message) < 300  # a long pattern is echoed shortened


# Where RE2's meaning differs from Python's for a pattern both accept (README, "Patterns").
@pytest.mark.parametrize(
    ("pattern", "name", "python_matches"),
    [
        (r"^\w+$", "dénse", True),  # \w, \W: ASCII letters, digits and _ only
        (r"layer\d", "layer٣", True),  # \d, \D: ASCII digits only
        (r"a\sb", "a\vb", True),  # \s, \S: space, \t \n \f \r only
        (r"a\sb", "a\xa0b", True),
        (r"\bb", "éb", False),  # \b, \B: ASCII word boundaries
        (r"kernel$", "kernel\n", True),  # $: only at the very end of the name
        (r"(?i)layer_i", "LAYER_\u0130", True),  # (?i): no Turkish dotted/dotless i folding
    ],
)
def test_documented_differences_from_python(pattern: str, name: str, python_matches: bool) -> None:
    assert bool(re.search(pattern, name)) is python_matches
    assert pattern_problem(pattern) is None
    assert RuleMatcher([pattern]).matching(name) == ([] if python_matches else [0])


def test_a_name_with_a_lone_surrogate_matches_nothing_it_does_not_contain() -> None:
    matcher = RuleMatcher(["conv", "x$"])
    assert matcher.matching("conv\ud800") == [0]
    assert matcher.matching("\ud800") == []


def test_no_rules_match_nothing() -> None:
    assert RuleMatcher([]).matching("anything") == []


def test_many_rules_each_found_where_it_is() -> None:
    patterns = [f"^model/layer_{i}/" for i in range(2_000)] + [r"kernel$", r"\d+/bias"]
    matcher = RuleMatcher(patterns)
    assert matcher.matching("model/layer_1999/kernel") == [1999, 2000]
    assert matcher.matching("model/layer_7/bias") == [7, 2001]
    assert matcher.matching("model/layer_7x/bias") == []
    assert matcher.matching("head/12/bias") == [2001]


def test_a_name_asked_again_gets_the_same_answer_in_a_list_of_its_own() -> None:
    # The matcher remembers its last name: a caller's edit to an answer must not stick.
    matcher = RuleMatcher(["conv", "1/", "^conv1/k$"])
    first = matcher.matching("conv1/k")
    first.clear()
    assert matcher.matching("conv1/k") == [0, 1, 2]
    assert matcher.matching("conv2/k") == [0]
    assert matcher.matching("dense") == []
    assert matcher.matching("dense") == []
    assert matcher.matching("conv1/k") == [0, 1, 2]


# On printable ASCII names (no newline) every accepted pattern means what it means in Python.
_NAME_ALPHABET = string.ascii_letters[:6] + string.digits[:3] + "_/.-:"
_PIECES = [
    "a", "b", "c", "1", "_", "/", ".", r"\.", r"\d", r"\w", r"\s", r"\b", r"\W", "[a-c]",
    "[^a]", "^", "$", "(?i)", "(a|b)", "(?:ab|c)", "*", "+", "?", "{1,2}", "{2}", "*?", "|",
]  # fmt: skip


@given(
    pieces=st.lists(st.sampled_from(_PIECES), min_size=1, max_size=6),
    names=st.lists(st.text(_NAME_ALPHABET, max_size=12), min_size=1, max_size=5),
)
def test_re2_agrees_with_re_search_on_ascii_names(pieces: list[str], names: list[str]) -> None:
    pattern = "".join(pieces)
    if pattern_problem(pattern) is not None:
        return
    matcher = RuleMatcher([pattern, "a"])
    for name in names:
        expected = [i for i, p in enumerate([pattern, "a"]) if re.search(p, name)]
        assert matcher.matching(name) == expected, (pattern, name)


@settings(max_examples=500)
@given(st.text("az09_/.-\\dwsDW*+?^$[]{}()|", max_size=12))
@example("a**")
@example("a*+")
@example("a?+b")
@example("\\d+*")
@example("[z-a]")
@example("[a-c-e]")
@example("[]a]")
def test_the_fast_path_accepts_only_what_both_engines_accept(pattern: str) -> None:
    # Plain patterns skip both parsers; each must be one the full check accepts too.
    if _plain(pattern):
        assert _python_problem(pattern) is None
        assert _re2_error(pattern) is None
