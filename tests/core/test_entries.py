"""Map entries (`pattern:value`, `pattern:HxW`): one reader for hparams and r1.15's JSON."""

from __future__ import annotations

import pytest

from pruning_spec import _schema
from pruning_spec._entries import format_entry, read_entry, value_parts
from pruning_spec.v1 import pruning_pb2

WEIGHTS = _schema.rule_shape(_schema.FIELDS["weight_sparsity_map"])
BLOCKS = _schema.rule_shape(_schema.FIELDS["block_dims_map"])
GROUPS = _schema.rule_shape(_schema.FIELDS["global_group"])


@pytest.mark.parametrize(
    ("shape", "raw", "quoting", "key", "values"),
    [
        pytest.param(WEIGHTS, "a:b:0.5", True, "a:b", {"sparsity": 0.5}, id="last-colon"),
        pytest.param(WEIGHTS, '"a:b":0.5', True, "a:b", {"sparsity": 0.5}, id="quoted-key"),
        pytest.param(WEIGHTS, '"a":0.5', False, '"a"', {"sparsity": 0.5}, id="json-verbatim"),
        pytest.param(BLOCKS, "x:y:2x-1", True, "x:y", {"block_height": 2, "block_width": -1}),
        pytest.param(GROUPS, "^enc:x/:enc@0.8", True, "^enc:x/", {"name": "enc", "sparsity": 0.8}),
        pytest.param(GROUPS, "^enc/:enc", False, "^enc/", {"name": "enc"}, id="optional-left-out"),
    ],
)
def test_read_entry(
    shape: _schema.RuleShape, raw: str, quoting: bool, key: str, values: dict[str, object]
) -> None:
    reading = read_entry(shape, raw, quoting=quoting)
    assert (reading.key, reading.values, reading.problems) == (key, values, [])


@pytest.mark.parametrize(
    ("shape", "raw", "expected"),
    [
        pytest.param(WEIGHTS, "conv1", [("bad-map-entry", 0, 5, "")], id="no-colon"),
        pytest.param(BLOCKS, "d:4", [("bad-map-entry", 2, 1, "")], id="one-block-dim"),
        pytest.param(WEIGHTS, "a:x", [("invalid-value", 2, 1, "sparsity")], id="bad-value"),
        pytest.param(
            BLOCKS,
            "d:2xq",
            [("invalid-value", 4, 1, "block_width")],
            id="second-value-located",
        ),
    ],
)
def test_entry_problems_are_located_in_the_entry(
    shape: _schema.RuleShape, raw: str, expected: list[tuple[str, int, int, str]]
) -> None:
    problems = read_entry(shape, raw, quoting=True).problems
    assert [(p.code, p.offset, p.length, p.field) for p in problems] == expected


@pytest.mark.parametrize("raw", ["", "''", '""'])
def test_empty_entries_are_empty_with_quoting(raw: str) -> None:
    reading = read_entry(WEIGHTS, raw, quoting=True)
    assert reading.is_empty and reading.problems == []


def test_value_parts_locate_every_value() -> None:
    assert value_parts(BLOCKS, "a:b:12x-1", 3) == [("12", 4), ("-1", 7)]
    assert value_parts(BLOCKS, "a:12", 1) is None


def test_format_entry_quotes_keys_only_for_hparams() -> None:
    rule = pruning_pb2.WeightSparsityRule(pattern="a,b:c", sparsity=0.5)
    field = _schema.FIELDS["weight_sparsity_map"]
    assert format_entry(field, rule, quoting=True) == '"a,b:c":0.5'
    assert format_entry(field, rule, quoting=False) == "a,b:c:0.5"
    bare = pruning_pb2.WeightSparsityRule(pattern="a:b", sparsity=0.25)
    assert format_entry(field, bare, quoting=True) == "a:b:0.25"


@pytest.mark.parametrize(
    ("quoting", "key", "offset"),
    [
        # hparams: the colon inside quotes is part of the value, which is no number.
        pytest.param(True, "a", 2, id="hparams"),
        # r1.15's JSON knows no quotes: the entry splits on its very last colon.
        pytest.param(False, 'a:"x', 5, id="json"),
    ],
)
def test_quotes_decide_the_split_only_in_hparams(quoting: bool, key: str, offset: int) -> None:
    reading = read_entry(WEIGHTS, 'a:"x:y"', quoting=quoting)
    (problem,) = reading.problems
    assert (reading.key, problem.code, problem.offset) == (key, "invalid-value", offset)


def test_a_wrong_value_count_says_what_follows_the_colon() -> None:
    (problem,) = read_entry(BLOCKS, "d:4", quoting=True).problems
    assert problem.message == "expected HxW after ':', got '4'"


@pytest.mark.parametrize(
    ("raw", "code"),
    [("a:enc@", "invalid-value"), ("a:enc@0.5@1", "bad-map-entry"), ("a", "bad-map-entry")],
)
def test_a_group_entry_needs_its_name_and_at_most_a_sparsity(raw: str, code: str) -> None:
    assert [p.code for p in read_entry(GROUPS, raw, quoting=True).problems] == [code]


def test_format_entry_writes_an_optional_value_only_when_it_is_set() -> None:
    field = _schema.FIELDS["global_group"]
    group = pruning_pb2.GlobalGroup(pattern="^enc/", name="enc")
    assert format_entry(field, group, quoting=True) == "^enc/:enc"
    group.sparsity = 0.0  # set, though 0
    assert format_entry(field, group, quoting=True) == "^enc/:enc@0.0"
