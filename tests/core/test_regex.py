"""Nested-repeat detection for weight-name patterns."""

from __future__ import annotations

import pytest

from pruning_spec._regex import nested_repeat


@pytest.mark.parametrize(
    "pattern",
    [
        r"(a+)+$",
        r"(a*)*",
        r"(\w+\s?)*x",
        r"(?:x?y*)+z",
        r"(a|b+)+",
        r"((a+))+",
        r"(a|a)+$",
        r"(a|aa)+$",
        r"(.|\s)*!",
        r"(x|y?)+",
    ],
)
def test_exponential_shapes_are_found(pattern: str) -> None:
    assert nested_repeat(pattern) == pattern


@pytest.mark.parametrize(
    "pattern",
    [
        r"conv1",
        r".*.*",
        r"(conv\d+/)+kernel",
        r"((ab)+c)+",
        r"dense[0-9]+/kernel$",
        r"a{2,3}",
        "(",
        r"(conv|dense)+",
        r"(ab|ac)+",
        r"(\w|-)+",
        r"layer_(1|2|3)/kernel",
    ],
)
def test_safe_or_invalid_patterns_pass(pattern: str) -> None:
    assert nested_repeat(pattern) is None
