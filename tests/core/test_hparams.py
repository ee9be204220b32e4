"""The hparam language: r1.15 `HParams.parse` syntax, typed by `pruning.proto`.

Reference: docs/semantics.md §h (grammar, typing, the [run] table of r1.15
behaviours) and docs/semantics.md §h.4 (a strict superset of r1.15 for
these fields, plus quoted strings; every problem reported with its character
offset and a caret; the printer quotes only when needed and round-trips).

Errors are checked by what each diagnostic's span covers in the input
(`text[offset:offset + length]`), so a wrong offset or length fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pruning_spec import (
    Diagnostic,
    NormalizedSpec,
    PruningSpec,
    SpecError,
    load_spec,
    parse_hparams,
    parse_spec_text,
)
from pruning_spec._hparams import parse_hparams_source
from pruning_spec._loader import parse_json

README_HPARAMS = (
    "name=cifar10_pruning,begin_pruning_step=10000,end_pruning_step=100000,"
    "target_sparsity=0.9,weight_sparsity_map=[conv1:0.8,conv.*/kernel:0.6],"
    "block_dims_map=[dense1:4x4]"
)


# Helpers.


def spec_of(**fields: Any) -> NormalizedSpec:
    """The spec with `fields` set and every other field at its default.

    Rule lists are given as tuples: (pattern, sparsity) and (pattern, height, width).
    """
    message = PruningSpec()
    for name, value in fields.items():
        if name == "weight_sparsity_map":
            for pattern, sparsity in value:
                message.weight_sparsity_map.add(pattern=pattern, sparsity=sparsity)
        elif name == "block_dims_map":
            for pattern, height, width in value:
                message.block_dims_map.add(pattern=pattern, block_height=height, block_width=width)
        else:
            setattr(message, name, value)
    return NormalizedSpec(message)


def weight_rules(spec: NormalizedSpec) -> list[tuple[str, float]]:
    return [(rule.pattern, rule.sparsity) for rule in spec.weight_sparsity_map]


def block_rules(spec: NormalizedSpec) -> list[tuple[str, int, int]]:
    return [(r.pattern, r.block_height, r.block_width) for r in spec.block_dims_map]


def pointed(text: str, diagnostic: Diagnostic) -> str:
    """The part of `text` a diagnostic's span covers.

    An empty value has a one-character span at its position: the next
    character (`]` in `[a:]`), or nothing at the end of the text.
    """
    span = diagnostic.span
    assert span is not None
    assert span.offset is not None
    return text[span.offset : span.offset + span.length]


def located(text: str, diagnostics: tuple[Diagnostic, ...]) -> list[tuple[str, int, str]]:
    """(code, offset, covered text) of each diagnostic, in order."""
    found = []
    for diagnostic in diagnostics:
        assert diagnostic.span is not None
        assert diagnostic.span.source == "<hparams>"
        assert diagnostic.span.offset is not None
        found.append((diagnostic.code, diagnostic.span.offset, pointed(text, diagnostic)))
    return found


def errors_of(text: str, base: NormalizedSpec | None = None) -> tuple[Diagnostic, ...]:
    with pytest.raises(SpecError) as caught:
        parse_hparams(text, base)
    return caught.value.errors


def raw(text: str) -> PruningSpec:
    """The fields an hparam string assigns, before validation; it must have no diagnostic."""
    parsed = parse_hparams_source(text)
    assert parsed.diagnostics == []
    return parsed.message


# 1. Clause grammar (docs/semantics.md §h.1).


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", {}, id="empty-string-changes-nothing"),
        pytest.param("pruning_frequency=7,", {"pruning_frequency": 7}, id="one-trailing-comma"),
        pytest.param(
            "pruning_frequency=7, ", {"pruning_frequency": 7}, id="trailing-comma-and-space"
        ),
        pytest.param(
            "pruning_frequency=7, target_sparsity=0.25",
            {"pruning_frequency": 7, "target_sparsity": 0.25},
            id="space-after-comma",
        ),
        pytest.param(
            "pruning_frequency=7,\t  target_sparsity=0.25",
            {"pruning_frequency": 7, "target_sparsity": 0.25},
            id="several-whitespace-after-comma",
        ),
        pytest.param(
            "pruning_frequency=7 ,target_sparsity=0.25",
            {"pruning_frequency": 7, "target_sparsity": 0.25},
            id="space-before-comma-ends-an-int",
        ),
        pytest.param("pruning_frequency = 7", {"pruning_frequency": 7}, id="spaces-around-eq"),
        pytest.param("pruning_frequency= 7", {"pruning_frequency": 7}, id="space-after-eq"),
        pytest.param("pruning_frequency =7", {"pruning_frequency": 7}, id="space-before-eq"),
        pytest.param(
            "weight_sparsity_map = [conv1:0.25]",
            {"weight_sparsity_map": [("conv1", 0.25)]},
            id="list-with-spaces-around-eq",
        ),
        pytest.param(
            "weight_sparsity_map=[a:0.5], pruning_frequency=3,",
            {"weight_sparsity_map": [("a", 0.5)], "pruning_frequency": 3},
            id="list-then-space-after-comma",
        ),
        pytest.param(
            "begin_pruning_step=10,end_pruning_step=20,pruning_frequency=5",
            {"begin_pruning_step": 10, "end_pruning_step": 20, "pruning_frequency": 5},
            id="three-clauses",
        ),
    ],
)
def test_clause_grammar_accepts(text: str, expected: dict[str, Any]) -> None:
    assert parse_hparams(text) == spec_of(**expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # r1.15: `i=1,,` is Malformed with rest ','.
        pytest.param("pruning_frequency=7,,", [("malformed", 20, ",")], id="double-comma"),
        pytest.param(
            "pruning_frequency=7, ,target_sparsity=0.25",
            [("malformed", 21, ",")],
            id="empty-clause-between-commas",
        ),
        # r1.15: `i` and `=1` are Malformed.
        pytest.param("pruning_frequency", [("malformed", 17, "")], id="name-without-eq"),
        pytest.param("=7", [("malformed", 0, "=")], id="eq-without-name"),
        pytest.param("_x=1", [("malformed", 0, "_")], id="name-starting-with-underscore"),
        pytest.param("1x=1", [("malformed", 0, "1")], id="name-starting-with-digit"),
        pytest.param("pruning-frequency=1", [("malformed", 7, "-")], id="dash-in-name"),
        # r1.15: `IL [0]=5` is Malformed (no space allowed before the index).
        pytest.param("pruning_frequency [0]=5", [("malformed", 18, "[")], id="space-before-index"),
        # r1.15: `s=a[0]` is Malformed (a scalar may not contain '[').
        pytest.param("name=a[0]", [("malformed", 6, "[")], id="bracket-inside-scalar"),
        # r1.15: `L=[x]y` is Malformed.
        pytest.param(
            "weight_sparsity_map=[x:0.5]y", [("malformed", 27, "y")], id="text-after-list"
        ),
        # r1.15: `f=1,5` is Malformed with rest '5'.
        pytest.param(
            "sparsity_function_exponent=1,5", [("malformed", 29, "5")], id="comma-inside-float"
        ),
        # r1.15: `i=1;f=2` parses i = '1;f=2', which then fails the int conversion.
        pytest.param(
            "pruning_frequency=1;target_sparsity=2",
            [("invalid-value", 18, "1;target_sparsity=2")],
            id="semicolon-is-not-a-separator",
        ),
        pytest.param(
            "weight_sparsity_map=[a:0.5",
            [("malformed", 20, "[a:0.5")],
            id="unterminated-list",
        ),
        # The terminator after a list is ',' immediately (r1.15's regex).
        pytest.param(
            "weight_sparsity_map=[a:0.5] ,pruning_frequency=3",
            [("malformed", 27, " ")],
            id="space-between-list-and-comma",
        ),
    ],
)
def test_clause_grammar_rejects(text: str, expected: list[tuple[str, int, str]]) -> None:
    assert located(text, errors_of(text)) == expected


def test_empty_string_assigns_nothing_and_keeps_the_base() -> None:
    parsed = parse_hparams_source("")
    assert (parsed.message, parsed.diagnostics, parsed.assigned_lists) == (PruningSpec(), [], set())
    base = spec_of(target_sparsity=0.75, weight_sparsity_map=[("a", 0.5)])
    assert parse_hparams("", base) == base


def test_trailing_comma_is_equivalent_to_none() -> None:
    assert parse_hparams("target_sparsity=0.25,") == parse_hparams("target_sparsity=0.25")


def test_comma_inside_float_keeps_the_clause_before_it() -> None:
    parsed = parse_hparams_source("sparsity_function_exponent=1,5")
    assert parsed.message.sparsity_function_exponent == 1.0


# Index assignment, duplicates, list-ness (§h.2, §h.3).


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "pruning_frequency[0]=5",
            [("index-assignment", 17, "[0]")],
            id="index-on-a-scalar",
        ),
        pytest.param(
            "weight_sparsity_map[0]=a:0.5",
            [("index-assignment", 19, "[0]")],
            id="index-on-a-list",
        ),
        pytest.param(
            "block_dims_map[ 12 ]=[d:2x2]",
            [("index-assignment", 14, "[ 12 ]")],
            id="list-to-an-index-with-spaces",
        ),
        pytest.param(
            "weight_sparsity_map=[a:0.5],weight_sparsity_map[0]=b:0.5",
            [("index-assignment", 47, "[0]")],
            id="list-then-index",
        ),
    ],
)
def test_index_assignment_is_rejected(text: str, expected: list[tuple[str, int, str]]) -> None:
    assert located(text, errors_of(text)) == expected


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        pytest.param("pruning_frequency=1,pruning_frequency=1", 20, id="same-value-twice"),
        pytest.param("pruning_frequency=1,pruning_frequency=2", 20, id="scalar-twice"),
        pytest.param("pruning_frequency=1, pruning_frequency=[1]", 21, id="scalar-then-list"),
        pytest.param(
            "weight_sparsity_map=[a:0.1],weight_sparsity_map=[b:0.2]", 28, id="list-then-list"
        ),
        pytest.param("block_dims_map=[],block_dims_map=[]", 18, id="empty-list-twice"),
        pytest.param("target_sparsity=0.25,nbins=3,target_sparsity=0.25", 29, id="not-adjacent"),
    ],
)
def test_duplicate_assignment_points_at_the_second_name(text: str, offset: int) -> None:
    errors = errors_of(text)
    [name] = {pointed(text, e) for e in errors}
    assert located(text, errors) == [("duplicate-assignment", offset, name)]
    assert errors[0].field_path == name
    assert f"offset {text.index(name)}" in errors[0].hint


def test_duplicate_is_reported_even_when_the_first_value_is_bad() -> None:
    text = "pruning_frequency=x,pruning_frequency=1"
    assert located(text, errors_of(text)) == [
        ("invalid-value", 18, "x"),
        ("duplicate-assignment", 20, "pruning_frequency"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("pruning_frequency=[1]", [("unexpected-list", 18, "[1]")], id="list-to-int"),
        pytest.param("name=[a]", [("unexpected-list", 5, "[a]")], id="list-to-str"),
        pytest.param("target_sparsity=[ ]", [("unexpected-list", 16, "[ ]")], id="empty-to-float"),
        pytest.param(
            "weight_sparsity_map=a:0.5", [("expected-list", 20, "a:0.5")], id="scalar-to-map"
        ),
        pytest.param(
            "block_dims_map=dense1:4x4",
            [("expected-list", 15, "dense1:4x4")],
            id="scalar-to-block-map",
        ),
        pytest.param("block_dims_map=", [("expected-list", 15, "")], id="nothing-to-block-map"),
    ],
)
def test_list_ness_must_match_the_field(text: str, expected: list[tuple[str, int, str]]) -> None:
    assert located(text, errors_of(text)) == expected


def test_expected_list_hint_shows_the_bracketed_form() -> None:
    [error] = errors_of("weight_sparsity_map=conv1:0.8")
    assert error.field_path == "weight_sparsity_map"
    assert error.hint == "weight_sparsity_map=[conv1:0.8]"


# Unknown names.


def test_unknown_name_has_one_diagnostic_with_did_you_mean() -> None:
    text = "target_sparsty=0.9"
    with pytest.raises(SpecError) as caught:
        parse_hparams(text)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "unknown-name"
    assert diagnostic.span is not None
    assert (diagnostic.span.offset, diagnostic.span.length) == (0, len("target_sparsty"))
    assert "target_sparsity" in diagnostic.hint


@pytest.mark.parametrize(
    ("text", "name", "suggestion"),
    [
        pytest.param("Target_Sparsity=0.5", "Target_Sparsity", "target_sparsity", id="case"),
        pytest.param("target.sparsity=0.5", "target.sparsity", "target_sparsity", id="dotted"),
        pytest.param("begin_step=0", "begin_step", "begin_pruning_step", id="shortened"),
        pytest.param("zzz=1", "zzz", None, id="nothing-close"),
    ],
)
def test_unknown_names(text: str, name: str, suggestion: str | None) -> None:
    [error] = errors_of(text)
    assert located(text, (error,)) == [("unknown-name", 0, name)]
    if suggestion is None:
        assert error.hint == ""
    else:
        assert error.hint == f"did you mean '{suggestion}'?"


def test_unknown_name_in_the_middle_is_located() -> None:
    text = "target_sparsity=0.25, pruning_frequncy=3"
    assert located(text, errors_of(text)) == [("unknown-name", 22, "pruning_frequncy")]


# 2. Value typing (§h.2).


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        # int: Python int(): sign, surrounding whitespace and underscores.
        pytest.param("pruning_frequency=1_000", "pruning_frequency", 1000, id="int-underscore"),
        pytest.param("block_height=-1", "block_height", -1, id="int-minus"),
        pytest.param("pruning_frequency=+5", "pruning_frequency", 5, id="int-plus"),
        pytest.param("begin_pruning_step=0", "begin_pruning_step", 0, id="int-zero"),
        pytest.param("pruning_frequency= 7 ", "pruning_frequency", 7, id="int-spaces"),
        pytest.param("end_pruning_step=-1", "end_pruning_step", -1, id="int-minus-one"),
        # float: int accepted, '.5', exponents.
        pytest.param("threshold_decay=0", "threshold_decay", 0.0, id="float-from-int-zero"),
        pytest.param(
            "sparsity_function_exponent=2", "sparsity_function_exponent", 2.0, id="float-from-int"
        ),
        pytest.param("target_sparsity=.5", "target_sparsity", 0.5, id="float-leading-dot"),
        pytest.param("target_sparsity=1e-3", "target_sparsity", 0.001, id="float-exponent"),
        pytest.param(
            "sparsity_function_exponent=2.5E2",
            "sparsity_function_exponent",
            250.0,
            id="float-capital-exponent",
        ),
        pytest.param("target_sparsity= 0.25 ", "target_sparsity", 0.25, id="float-spaces"),
        # bool: true/True/false/False, otherwise bool(int(v)).
        pytest.param("use_tpu=true", "use_tpu", True, id="bool-true"),
        pytest.param("use_tpu=True", "use_tpu", True, id="bool-True"),
        pytest.param("use_tpu=false", "use_tpu", False, id="bool-false"),
        pytest.param("use_tpu=False", "use_tpu", False, id="bool-False"),
        pytest.param("use_tpu=0", "use_tpu", False, id="bool-0"),
        pytest.param("use_tpu=1", "use_tpu", True, id="bool-1"),
        pytest.param("use_tpu=2", "use_tpu", True, id="bool-2"),
        pytest.param("use_tpu=-1", "use_tpu", True, id="bool-minus-1"),
        pytest.param("use_tpu= true", "use_tpu", True, id="bool-space-before"),
        # enum: the schema's hparam spelling.
        pytest.param("block_pooling_function=MAX", "block_pooling_function", "MAX", id="enum-max"),
        pytest.param("block_pooling_function=AVG", "block_pooling_function", "AVG", id="enum-avg"),
        # str: verbatim.
        pytest.param("name=cifar10", "name", "cifar10", id="str"),
        pytest.param("name=a.b/c-d>e", "name", "a.b/c-d>e", id="str-punctuation"),
        pytest.param('name="cifar10"', "name", "cifar10", id="str-double-quoted"),
        pytest.param("name='cifar10'", "name", "cifar10", id="str-single-quoted"),
    ],
)
def test_values_are_typed_by_the_schema(text: str, field: str, expected: object) -> None:
    spec = parse_hparams(text)
    value = getattr(spec, field)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Inner spaces, quotes, '=' and ']' are kept; `c_c=` gives ''.
        pytest.param("name=a b", "a b", id="inner-space"),
        pytest.param("name=", "", id="empty"),
        pytest.param("name=a ", "a ", id="trailing-space-kept"),
        pytest.param('name=2.3"', '2.3"', id="quote-not-at-start"),
        pytest.param("name=/a=b/c/d", "/a=b/c/d", id="equals-sign"),
        pytest.param("name=a]b", "a]b", id="closing-bracket"),
        # Quoted strings (the extension).
        pytest.param('name="a,b[c]"', "a,b[c]", id="quoted-comma-and-brackets"),
        pytest.param("name='x y'", "x y", id="single-quoted-space"),
        pytest.param('name=""', "", id="quoted-empty"),
        pytest.param('name="a\\"b"', 'a"b', id="escaped-double-quote"),
        pytest.param("name='a\\'b'", "a'b", id="escaped-single-quote"),
        pytest.param('name="a\\\\b"', "a\\b", id="escaped-backslash"),
        pytest.param('name="a\\db"', "a\\db", id="unknown-escape-kept"),
        pytest.param('name="x" ', "x", id="quoted-then-space"),
    ],
)
def test_strings_are_verbatim(text: str, expected: str) -> None:
    assert raw(text).name == expected


def test_string_that_is_no_scope_name_fails_validation_at_its_value() -> None:
    text = "name=a b"
    assert located(text, errors_of(text)) == [("invalid-string", 5, "a b")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("pruning_frequency=1.0", ("invalid-value", 18, "1.0"), id="int-decimal"),
        pytest.param("pruning_frequency=1e3", ("invalid-value", 18, "1e3"), id="int-exponent"),
        pytest.param("pruning_frequency=0x10", ("invalid-value", 18, "0x10"), id="int-hex"),
        pytest.param("pruning_frequency=", ("invalid-value", 18, ""), id="int-empty"),
        pytest.param("pruning_frequency=ten", ("invalid-value", 18, "ten"), id="int-word"),
        pytest.param("pruning_frequency=true", ("invalid-value", 18, "true"), id="int-bool"),
        pytest.param(
            "pruning_frequency=9223372036854775808",
            ("int-out-of-range", 18, "9223372036854775808"),
            id="int-beyond-int64",
        ),
        pytest.param("threshold_decay=nan", ("not-finite", 16, "nan"), id="float-nan"),
        pytest.param("threshold_decay=NaN", ("not-finite", 16, "NaN"), id="float-NaN"),
        pytest.param("threshold_decay=inf", ("not-finite", 16, "inf"), id="float-inf"),
        pytest.param("threshold_decay=-inf", ("not-finite", 16, "-inf"), id="float-minus-inf"),
        pytest.param(
            "threshold_decay=infinity", ("not-finite", 16, "infinity"), id="float-infinity"
        ),
        pytest.param("threshold_decay=1e999", ("not-finite", 16, "1e999"), id="float-overflow"),
        pytest.param("threshold_decay=", ("invalid-value", 16, ""), id="float-empty"),
        pytest.param("threshold_decay=half", ("invalid-value", 16, "half"), id="float-word"),
        pytest.param('threshold_decay="0.5"', ("invalid-value", 16, '"0.5"'), id="float-quoted"),
        pytest.param("use_tpu=TRUE", ("invalid-value", 8, "TRUE"), id="bool-TRUE"),
        pytest.param("use_tpu=yes", ("invalid-value", 8, "yes"), id="bool-yes"),
        pytest.param("use_tpu=", ("invalid-value", 8, ""), id="bool-empty"),
        pytest.param("use_tpu=1.0", ("invalid-value", 8, "1.0"), id="bool-float"),
        pytest.param(
            "block_pooling_function=max", ("invalid-enum", 23, "max"), id="enum-lowercase"
        ),
        pytest.param(
            "block_pooling_function=MEAN", ("invalid-enum", 23, "MEAN"), id="enum-unknown"
        ),
        pytest.param(
            "block_pooling_function=BLOCK_POOLING_FUNCTION_UNSPECIFIED",
            ("invalid-enum", 23, "BLOCK_POOLING_FUNCTION_UNSPECIFIED"),
            id="enum-unspecified",
        ),
    ],
)
def test_values_of_the_wrong_type_are_rejected(text: str, expected: tuple[str, int, str]) -> None:
    errors = errors_of(text)
    assert located(text, errors) == [expected]
    assert errors[0].field_path == text.split("=", 1)[0]


def test_lowercase_enum_gets_did_you_mean() -> None:
    [error] = errors_of("block_pooling_function=max")
    assert error.hint == "did you mean 'MAX'?"


def test_wrong_value_changes_nothing_else() -> None:
    """A value that fails its conversion does not stop the other clauses from being read."""
    parsed = parse_hparams_source("target_sparsity=0.25,pruning_frequency=1.5,nbins=3")
    assert [d.code for d in parsed.diagnostics] == ["invalid-value"]
    assert parsed.message.target_sparsity == 0.25
    assert parsed.message.nbins == 3
    assert not parsed.message.HasField("pruning_frequency")


# Lists (§h.2 "List RHS").


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("[a:0.25, b:0.5]", [("a", 0.25), ("b", 0.5)], id="comma-space"),
        pytest.param("[a:0.25 b:0.5]", [("a", 0.25), ("b", 0.5)], id="space"),
        pytest.param("[a:0.25,,b:0.5]", [("a", 0.25), ("b", 0.5)], id="double-comma"),
        pytest.param("[ a:0.25 ,\tb:0.5 ]", [("a", 0.25), ("b", 0.5)], id="padded"),
        pytest.param("[a:0.25,]", [("a", 0.25)], id="trailing-comma"),
        pytest.param("[]", [], id="empty"),
        pytest.param("[ ]", [], id="space-only"),
        pytest.param("[,]", [], id="comma-only"),
        pytest.param("['']", [], id="empty-single-quoted-string"),
        pytest.param('[""]', [], id="empty-double-quoted-string"),
        pytest.param("['',a:0.25]", [("a", 0.25)], id="empty-entry-dropped"),
    ],
)
def test_list_splitting(body: str, expected: list[tuple[str, float]]) -> None:
    base = spec_of(weight_sparsity_map=[("old", 0.75)])
    spec = parse_hparams(f"weight_sparsity_map={body}", base)
    assert weight_rules(spec) == expected


def test_open_bracket_inside_a_list_is_part_of_an_element() -> None:
    """r1.15: `[[a]` gives ['[a']."""
    assert [r.pattern for r in raw("weight_sparsity_map=[[a:0.5]").weight_sparsity_map] == ["[a"]


def test_empty_list_is_an_assignment() -> None:
    parsed = parse_hparams_source("block_dims_map=[]")
    assert parsed.diagnostics == []
    assert parsed.assigned_lists == {"block_dims_map"}


# 3. Map entries.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "weight_sparsity_map=[conv1:0.8,conv.*/kernel:0.6]",
            [("conv1", 0.8), ("conv.*/kernel", 0.6)],
            id="readme",
        ),
        pytest.param("weight_sparsity_map=[a:0]", [("a", 0.0)], id="int-sparsity"),
        pytest.param("weight_sparsity_map=[a:b:0.5]", [("a:b", 0.5)], id="last-colon"),
        pytest.param("weight_sparsity_map=[a::0.5]", [("a:", 0.5)], id="pattern-ends-colon"),
        pytest.param("weight_sparsity_map=[a=b:0.5]", [("a=b", 0.5)], id="equals-in-pattern"),
        pytest.param("weight_sparsity_map=[a\\d:0.5]", [("a\\d", 0.5)], id="bare-backslash"),
        pytest.param(
            'weight_sparsity_map=["a,b:c":0.5]', [("a,b:c", 0.5)], id="quoted-comma-colon"
        ),
        pytest.param(
            'weight_sparsity_map=["conv[0-9]+/kernel":0.8]',
            [("conv[0-9]+/kernel", 0.8)],
            id="quoted-brackets-design-example",
        ),
        pytest.param('weight_sparsity_map=["a b":0.5]', [("a b", 0.5)], id="quoted-space"),
        pytest.param("weight_sparsity_map=['x] y':0.5]", [("x] y", 0.5)], id="single-quoted"),
        pytest.param(
            "weight_sparsity_map=['x,y':0.25, \"z]\":0.5]",
            [("x,y", 0.25), ("z]", 0.5)],
            id="two-quoted-entries",
        ),
        pytest.param('weight_sparsity_map=["a\\"b":0.5]', [('a"b', 0.5)], id="escaped-quote"),
        pytest.param('weight_sparsity_map=["a\\\\b":0.5]', [("a\\b", 0.5)], id="escaped-backslash"),
        pytest.param(
            'weight_sparsity_map=["conv\\d":0.5]', [("conv\\d", 0.5)], id="unknown-escape-kept"
        ),
        pytest.param(
            "weight_sparsity_map=['it\\'s':0.5]", [("it's", 0.5)], id="escaped-single-quote"
        ),
        pytest.param('weight_sparsity_map=["a"b:0.5]', [("ab", 0.5)], id="quoted-and-bare-pieces"),
    ],
)
def test_weight_sparsity_map_entries(text: str, expected: list[tuple[str, float]]) -> None:
    assert weight_rules(parse_hparams(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("block_dims_map=[dense1:4x4]", [("dense1", 4, 4)], id="readme"),
        pytest.param("block_dims_map=[d:-1x4]", [("d", -1, 4)], id="minus-one-height"),
        pytest.param("block_dims_map=[d:4x-1]", [("d", 4, -1)], id="minus-one-width"),
        pytest.param("block_dims_map=[d:-1x-1]", [("d", -1, -1)], id="minus-one-both"),
        pytest.param("block_dims_map=[a:b:2x3]", [("a:b", 2, 3)], id="last-colon"),
        pytest.param('block_dims_map=["d:1":2x3]', [("d:1", 2, 3)], id="quoted-colon"),
        pytest.param(
            "block_dims_map=[d1:1x8 d2:8x1]", [("d1", 1, 8), ("d2", 8, 1)], id="two-entries"
        ),
    ],
)
def test_block_dims_map_entries(text: str, expected: list[tuple[str, int, int]]) -> None:
    assert block_rules(parse_hparams(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("block_dims_map=[dense1:4X4]", [("bad-map-entry", 23, "4X4")], id="capital-x"),
        pytest.param("block_dims_map=[dense1]", [("bad-map-entry", 16, "dense1")], id="no-colon"),
        pytest.param(
            "weight_sparsity_map=[conv1]", [("bad-map-entry", 21, "conv1")], id="weight-no-colon"
        ),
        pytest.param(
            "weight_sparsity_map=[a:0.5,conv1 b:0.5]",
            [("bad-map-entry", 27, "conv1")],
            id="space-splits-an-entry",
        ),
        pytest.param("block_dims_map=[d:4]", [("bad-map-entry", 18, "4")], id="one-dim"),
        pytest.param("block_dims_map=[d:4x4x4]", [("bad-map-entry", 18, "4x4x4")], id="three-dims"),
        pytest.param("block_dims_map=[d:]", [("bad-map-entry", 18, "]")], id="no-dims"),
        pytest.param(
            "block_dims_map=[d:axb]",
            [("invalid-value", 18, "a"), ("invalid-value", 20, "b")],
            id="dims-not-ints",
        ),
        pytest.param("block_dims_map=[d:4x]", [("invalid-value", 20, "]")], id="empty-width"),
        pytest.param("block_dims_map=[d:1.5x2]", [("invalid-value", 18, "1.5")], id="float-dim"),
        pytest.param(
            "weight_sparsity_map=[a:abc]", [("invalid-value", 23, "abc")], id="sparsity-word"
        ),
        pytest.param("weight_sparsity_map=[a:]", [("invalid-value", 23, "]")], id="no-sparsity"),
        pytest.param("weight_sparsity_map=[a:nan]", [("not-finite", 23, "nan")], id="nan"),
        pytest.param(
            'weight_sparsity_map=["a,b":inf]', [("not-finite", 27, "inf")], id="inf-after-quoted"
        ),
        pytest.param(
            'weight_sparsity_map=[a:"0.5"]', [("invalid-value", 23, '"0.5"')], id="quoted-value"
        ),
        pytest.param(
            'weight_sparsity_map=["abc:0.5]',
            [("unterminated-quote", 21, '"abc:0.5]')],
            id="unterminated-double",
        ),
        pytest.param(
            "weight_sparsity_map=[a:0.5,'b:0.5]",
            [("unterminated-quote", 27, "'b:0.5]")],
            id="unterminated-single",
        ),
        pytest.param(
            'weight_sparsity_map=["a\\":0.5]',
            [("unterminated-quote", 21, '"a\\":0.5]')],
            id="escaped-closing-quote",
        ),
        pytest.param(
            'name="cifar10', [("unterminated-quote", 5, '"cifar10')], id="unterminated-name"
        ),
        pytest.param('name="ab"c', [("malformed", 9, "c")], id="text-after-quoted-name"),
    ],
)
def test_bad_map_entries(text: str, expected: list[tuple[str, int, str]]) -> None:
    assert located(text, errors_of(text)) == expected


def test_bad_map_entry_hints_show_the_entry_shape() -> None:
    [block] = errors_of("block_dims_map=[dense1:4X4]")
    assert block.field_path == "block_dims_map[0]"
    assert block.hint == "write pattern:HxW"
    [weight] = errors_of("weight_sparsity_map=[conv1]")
    assert weight.field_path == "weight_sparsity_map"
    assert weight.hint == "write pattern:sparsity"


def test_map_value_errors_name_the_rule_field() -> None:
    errors = errors_of("weight_sparsity_map=[a:0.5,b:x],block_dims_map=[c:2xy]")
    assert [e.field_path for e in errors] == [
        "weight_sparsity_map[1].sparsity",
        "block_dims_map[0].block_width",
    ]


# 4. Diagnostics: location, caret, collecting every problem.


def test_caret_rendering_of_an_unknown_name() -> None:
    with pytest.raises(SpecError) as caught:
        parse_hparams("target_sparsty=0.9")
    assert str(caught.value) == (
        "<hparams>:0: error[unknown-name]: unknown hyperparameter 'target_sparsty'"
        " (did you mean 'target_sparsity'?)\n"
        "  target_sparsty=0.9\n"
        "  ^^^^^^^^^^^^^^"
    )


def test_caret_under_a_value_in_the_middle() -> None:
    text = "target_sparsity=0.25,pruning_frequency=1.5,begin_pruning_step=3"
    with pytest.raises(SpecError) as caught:
        parse_hparams(text)
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("<hparams>:39: error[invalid-value]: pruning_frequency: ")
    assert lines[1:] == ["  " + text, "  " + " " * 39 + "^^^"]


def test_caret_at_the_end_for_a_missing_value() -> None:
    text = "pruning_frequency="
    with pytest.raises(SpecError) as caught:
        parse_hparams(text)
    assert str(caught.value).splitlines()[1:] == ["  " + text, "  " + " " * 18 + "^"]


def test_several_problems_are_reported_in_one_error() -> None:
    text = "target_sparsty=0.9,threshold_decay=nan,block_pooling_function=MEAN"
    with pytest.raises(SpecError) as caught:
        parse_hparams(text)
    error = caught.value
    assert located(text, error.diagnostics) == [
        ("unknown-name", 0, "target_sparsty"),
        ("not-finite", 35, "nan"),
        ("invalid-enum", 62, "MEAN"),
    ]
    rendered = str(error)
    for caret in ("  ^^^^^^^^^^^^^^", "  " + " " * 35 + "^^^", "  " + " " * 62 + "^^^^"):
        assert caret in rendered.splitlines()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "name=a[0],target_sparsity=1.5,pruning_frequency=x",
            [("malformed", 6, "["), ("out-of-range", 26, "1.5"), ("invalid-value", 48, "x")],
            id="bracket-in-scalar",
        ),
        pytest.param(
            "pruning_frequency=7,,target_sparsity=1.5",
            [("malformed", 20, ","), ("out-of-range", 37, "1.5")],
            id="double-comma",
        ),
        pytest.param(
            "nbins[0]=5,threshold_decay=nan",
            [("index-assignment", 5, "[0]"), ("not-finite", 27, "nan")],
            id="index",
        ),
        pytest.param(
            "weight_sparsity_map=[a:0.5]y, target_sparsity=1.5",
            [("malformed", 27, "y"), ("out-of-range", 46, "1.5")],
            id="text-after-list",
        ),
        pytest.param(
            'name="ab"c,use_tpu=yes',
            [("malformed", 9, "c"), ("invalid-value", 19, "yes")],
            id="text-after-quote",
        ),
        pytest.param(
            "=1,target_sparsty=0.5",
            [("malformed", 0, "="), ("unknown-name", 3, "target_sparsty")],
            id="missing-name",
        ),
    ],
)
def test_parsing_resumes_after_a_malformed_clause(
    text: str, expected: list[tuple[str, int, str]]
) -> None:
    assert located(text, errors_of(text)) == expected


def test_clause_after_a_malformed_one_is_applied() -> None:
    parsed = parse_hparams_source("name=a[0],target_sparsity=0.25")
    assert [d.code for d in parsed.diagnostics] == ["malformed"]
    assert parsed.message.target_sparsity == 0.25
    assert not parsed.message.HasField("name")


def test_diagnostic_location_is_the_character_offset() -> None:
    [error] = errors_of("target_sparsity=0.25,use_tpu=yes")
    assert error.span is not None
    assert error.span.location() == "<hparams>:29"
    assert error.format(caret=False).startswith("<hparams>:29: error[invalid-value]: use_tpu: ")


# 5. Validation through hparams.


@pytest.mark.parametrize(
    ("text", "expected", "path"),
    [
        pytest.param(
            "target_sparsity=1.5", ("out-of-range", 16, "1.5"), "target_sparsity", id="target"
        ),
        pytest.param(
            "target_sparsity= 1.5", ("out-of-range", 17, "1.5"), "target_sparsity", id="spaced"
        ),
        pytest.param(
            "end_pruning_step=5,begin_pruning_step=10",
            ("end-before-begin", 17, "5"),
            "end_pruning_step",
            id="end-before-begin",
        ),
        pytest.param(
            "sparsity_function_begin_step=50,sparsity_function_end_step=50",
            ("schedule-end-before-begin", 59, "50"),
            "sparsity_function_end_step",
            id="schedule-end-before-begin",
        ),
        pytest.param(
            "end_pruning_step=-5", ("out-of-range", 17, "-5"), "end_pruning_step", id="end-minus-5"
        ),
        pytest.param(
            "weight_sparsity_map=[a:0.1,b:1.5]",
            ("out-of-range", 29, "1.5"),
            "weight_sparsity_map[1].sparsity",
            id="rule-sparsity",
        ),
        pytest.param(
            "block_dims_map=[d:0x4]",
            ("out-of-range", 18, "0"),
            "block_dims_map[0].block_height",
            id="block-height-zero",
        ),
        pytest.param(
            "block_dims_map=[d:4x-2]",
            ("out-of-range", 20, "-2"),
            "block_dims_map[0].block_width",
            id="block-width-minus-2",
        ),
        pytest.param(
            'weight_sparsity_map=["a b(":0.5]',
            ("invalid-regex", 21, '"a b("'),
            "weight_sparsity_map[0].pattern",
            id="quoted-bad-regex",
        ),
        pytest.param(
            "weight_sparsity_map=[:0.5]",
            ("empty-pattern", 21, ":"),
            "weight_sparsity_map[0].pattern",
            id="empty-pattern",
        ),
        pytest.param(
            "weight_sparsity_map=[a:0.1,a:0.2]",
            ("duplicate-pattern", 27, "a:0.2"),
            "weight_sparsity_map[1]",
            id="duplicate-pattern",
        ),
    ],
)
def test_validation_errors_point_into_the_hparam_string(
    text: str, expected: tuple[str, int, str], path: str
) -> None:
    errors = errors_of(text)
    assert located(text, errors) == [expected]
    assert errors[0].field_path == path


def test_validation_error_located_in_the_middle_renders_a_caret() -> None:
    text = "pruning_frequency=3,target_sparsity=1.5"
    with pytest.raises(SpecError) as caught:
        parse_hparams(text)
    assert str(caught.value).splitlines() == [
        "<hparams>:36: error[out-of-range]: target_sparsity: must be in [0, 1), got 1.5",
        "  " + text,
        "  " + " " * 36 + "^^^",
    ]


def test_deprecated_fields_are_warnings_not_errors() -> None:
    spec = parse_hparams("nbins=100,use_tpu=true")
    assert (spec.nbins, spec.use_tpu) == (100, True)
    assert [(w.code, w.field_path) for w in spec.warnings] == [
        ("deprecated-field", "nbins"),
        ("deprecated-field", "use_tpu"),
    ]
    assert [pointed("nbins=100,use_tpu=true", w) for w in spec.warnings] == ["100", "true"]


# 6. Overrides (contrib semantics: scalars replace, a named list is replaced wholesale).

BASE_FILE = """\
name: "base"
target_sparsity: 0.6
pruning_frequency: 20
weight_sparsity_map { pattern: "a" sparsity: 0.1 }
weight_sparsity_map { pattern: "b" sparsity: 0.2 }
block_dims_map { pattern: "d" block_height: 2 block_width: 2 }
"""


@pytest.fixture
def base_file(tmp_path: Path) -> Path:
    path = tmp_path / "base.txtpb"
    path.write_text(BASE_FILE)
    return path


def test_override_replaces_a_scalar_and_keeps_the_rest(base_file: Path) -> None:
    spec = load_spec(base_file, overrides="target_sparsity=0.75,use_tpu=0")
    assert spec == spec_of(
        name="base",
        target_sparsity=0.75,
        pruning_frequency=20,
        weight_sparsity_map=[("a", 0.1), ("b", 0.2)],
        block_dims_map=[("d", 2, 2)],
    )


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        pytest.param("weight_sparsity_map=[c:0.3]", [("c", 0.3)], id="one-rule"),
        pytest.param(
            "weight_sparsity_map=[b:0.4,c:0.3]", [("b", 0.4), ("c", 0.3)], id="overlapping"
        ),
        pytest.param("weight_sparsity_map=[]", [], id="empty"),
        pytest.param("weight_sparsity_map=['']", [], id="empty-string-entry"),
    ],
)
def test_override_replaces_a_list_wholesale(
    base_file: Path, override: str, expected: list[tuple[str, float]]
) -> None:
    spec = load_spec(base_file, overrides=override)
    assert weight_rules(spec) == expected
    assert block_rules(spec) == [("d", 2, 2)]  # lists the override does not name are kept
    assert spec.target_sparsity == 0.6


@pytest.mark.parametrize("override", [None, "", "  "], ids=["none", "empty", "blank"])
def test_empty_override_changes_nothing(base_file: Path, override: str | None) -> None:
    assert load_spec(base_file, overrides=override) == load_spec(base_file)


def test_file_error_stays_at_file_line_and_override_error_at_offset(tmp_path: Path) -> None:
    path = tmp_path / "bad.txtpb"
    path.write_text('name: "base"\ntarget_sparsity: 1.5\n')
    override = "threshold_decay=1.5,pruning_frequency=x"
    with pytest.raises(SpecError) as caught:
        load_spec(path, overrides=override)
    errors = caught.value.errors
    from_file = [e for e in errors if e.span is not None and e.span.source == str(path)]
    from_override = tuple(e for e in errors if e not in from_file)
    [file_error] = from_file
    assert (file_error.code, file_error.field_path) == ("out-of-range", "target_sparsity")
    assert file_error.span is not None
    assert (file_error.span.line, file_error.span.column, file_error.span.offset) == (2, 1, None)
    assert located(override, from_override) == [
        ("out-of-range", 16, "1.5"),  # a validation error of an overriding value
        ("invalid-value", 38, "x"),  # a parse error of the override
    ]
    rendered = str(caught.value)
    assert f"{path}:2:1: error[out-of-range]: target_sparsity" in rendered
    assert "<hparams>:16: error[out-of-range]: threshold_decay" in rendered
    assert "<hparams>:38: error[invalid-value]: pruning_frequency" in rendered
    assert "  " + override + "\n  " + " " * 16 + "^^^" in rendered


def test_validation_error_caused_by_the_override_points_at_the_override(base_file: Path) -> None:
    override = "pruning_frequency=5, weight_sparsity_map=[c:1.5]"
    with pytest.raises(SpecError) as caught:
        load_spec(base_file, overrides=override)
    assert located(override, caught.value.errors) == [("out-of-range", 44, "1.5")]


def test_cross_field_error_points_at_the_overriding_value(base_file: Path) -> None:
    override = "begin_pruning_step=100,end_pruning_step=50"
    with pytest.raises(SpecError) as caught:
        load_spec(base_file, overrides=override)
    assert located(override, caught.value.errors) == [("end-before-begin", 40, "50")]


def test_override_replaces_an_invalid_value_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.txtpb"
    path.write_text('target_sparsity: 1.5\nweight_sparsity_map { pattern: "(" sparsity: 2 }\n')
    spec = load_spec(path, overrides="target_sparsity=0.5,weight_sparsity_map=[ok:0.25]")
    assert spec == spec_of(target_sparsity=0.5, weight_sparsity_map=[("ok", 0.25)])


def test_override_of_parse_spec_text_and_of_a_base_spec() -> None:
    text = 'name: "t"\nweight_sparsity_map { pattern: "a" sparsity: 0.1 }\n'
    spec = parse_spec_text(text, overrides="weight_sparsity_map=[b:0.2],nbins=3")
    assert weight_rules(spec) == [("b", 0.2)]
    assert (spec.name, spec.nbins) == ("t", 3)
    again = parse_hparams("target_sparsity=0.7", spec)
    assert (again.name, again.target_sparsity, weight_rules(again)) == ("t", 0.7, [("b", 0.2)])


# 7. The README example, round trips and the printer's quoting.


def test_readme_example_parses() -> None:
    spec = parse_hparams(README_HPARAMS)
    assert spec == spec_of(
        name="cifar10_pruning",
        begin_pruning_step=10000,
        end_pruning_step=100000,
        target_sparsity=0.9,
        weight_sparsity_map=[("conv1", 0.8), ("conv.*/kernel", 0.6)],
        block_dims_map=[("dense1", 4, 4)],
    )
    assert spec.warnings == ()


def test_readme_example_prints_in_contrib_syntax() -> None:
    spec = parse_hparams(README_HPARAMS)
    assert spec.to_hparams(include_defaults=False) == (
        "name=cifar10_pruning,begin_pruning_step=10000,end_pruning_step=100000,"
        "weight_sparsity_map=[conv1:0.8,conv.*/kernel:0.6],block_dims_map=[dense1:4x4],"
        "target_sparsity=0.9"
    )
    for printed in (spec.to_hparams(), spec.to_hparams(include_defaults=False)):
        assert '"' not in printed
        assert "'" not in printed


ROUND_TRIP_CASES = [
    pytest.param("", id="defaults"),
    pytest.param(README_HPARAMS, id="readme"),
    pytest.param(
        "block_pooling_function=MAX,block_height=-1,block_width=4,use_tpu=true,nbins=7,"
        "threshold_decay=0.125,initial_sparsity=0.1,sparsity_function_exponent=1e-05",
        id="every-kind",
    ),
    pytest.param('weight_sparsity_map=["a,b":0.5]', id="comma-pattern"),
    pytest.param('weight_sparsity_map=["x]y":0.5]', id="bracket-pattern"),
    pytest.param('weight_sparsity_map=["a b":0.5]', id="space-pattern"),
    pytest.param('weight_sparsity_map=["a\\"b\\\\.c":0.5]', id="quote-and-backslash-pattern"),
    pytest.param("weight_sparsity_map=['it\\'s':0.5]", id="single-quote-pattern"),
    pytest.param('weight_sparsity_map=["a\\nb\\tc":0.5]', id="control-characters"),
    pytest.param("weight_sparsity_map=[a:b:0.5,a\\d+:0.25]", id="colon-and-backslash"),
    pytest.param('block_dims_map=["conv[0-9]+/kernel":-1x4,"d,1":2x2]', id="quoted-blocks"),
    pytest.param("threshold_decay=-0.0", id="negative-zero-decay"),
]


@pytest.mark.parametrize("text", ROUND_TRIP_CASES)
@pytest.mark.parametrize("include_defaults", [True, False], ids=["full", "minimal"])
def test_printed_hparams_parse_back_to_the_same_spec(text: str, include_defaults: bool) -> None:
    spec = parse_hparams(text)
    printed = spec.to_hparams(include_defaults=include_defaults)
    assert parse_hparams(printed) == spec, f"{printed!r} does not parse back to {text!r}"


@pytest.mark.parametrize(
    ("pattern", "printed"),
    [
        pytest.param("conv1", "conv1", id="plain"),
        pytest.param("conv.*/kernel", "conv.*/kernel", id="regex"),
        pytest.param("a:b", "a:b", id="colon-stays-bare"),
        pytest.param("a\\d+", "a\\d+", id="backslash-stays-bare"),
        pytest.param("a\\[", "a\\[", id="open-bracket-stays-bare"),
        pytest.param("a,b", '"a,b"', id="comma"),
        pytest.param("x]y", '"x]y"', id="closing-bracket"),
        pytest.param("conv[0-9]+/kernel", '"conv[0-9]+/kernel"', id="character-class"),
        pytest.param("a b", '"a b"', id="space"),
        pytest.param('a"b', '"a\\"b"', id="double-quote"),
        pytest.param("it's", '"it\'s"', id="single-quote"),
        pytest.param("a\\,", '"a\\\\,"', id="backslash-in-quoted"),
        pytest.param("a\nb", '"a\\nb"', id="newline"),
    ],
)
def test_printer_quotes_patterns_only_when_needed(pattern: str, printed: str) -> None:
    spec = spec_of(weight_sparsity_map=[(pattern, 0.5)], block_dims_map=[(pattern, 2, 3)])
    assert spec.to_hparams(include_defaults=False) == (
        f"weight_sparsity_map=[{printed}:0.5],block_dims_map=[{printed}:2x3]"
    )
    again = parse_hparams(spec.to_hparams(include_defaults=False))
    assert weight_rules(again) == [(pattern, 0.5)]
    assert block_rules(again) == [(pattern, 2, 3)]
    assert again == spec


def test_default_spec_prints_every_field_in_schema_order() -> None:
    assert NormalizedSpec().to_hparams() == (
        "name=model_pruning,begin_pruning_step=0,end_pruning_step=-1,"
        "weight_sparsity_map=[],block_dims_map=[],threshold_decay=0.0,pruning_frequency=10,"
        "nbins=256,block_height=1,block_width=1,block_pooling_function=AVG,"
        "initial_sparsity=0.0,target_sparsity=0.5,sparsity_function_begin_step=0,"
        "sparsity_function_end_step=100,sparsity_function_exponent=3.0,use_tpu=false"
    )
    assert NormalizedSpec().to_hparams(include_defaults=False) == ""


# One grammar: a clause is read by the regex its pieces compose; when that does not match,
# the explanation walks the same pieces. If the two ever disagree (the regex rejects a clause
# whose pieces all match), parsing raises AssertionError instead of reporting.
_FRAGMENTS = st.sampled_from(
    [
        "name",
        "target_sparsity",
        "weight_sparsity_map",
        "block_dims_map",
        "=",
        " ",
        ",",
        "[",
        "]",
        ":",
        '"',
        "'",
        "\\",
        "0.5",
        "4x4",
        "a",
        "conv1",
        "x",
        "-1",
        "\t",
        "[0]",
    ]
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=14).map("".join) | st.text(max_size=30))
@example('name= "ab')
@example('name= "a"b')
@example("weight_sparsity_map= ['a':0.5 ")
@example("name=a,,b=c")
@example('name="a" ,, b=c')
@example("weight_sparsity_map=[a:0.5] ")
def test_every_rejected_clause_is_explained(text: str) -> None:
    parsed = parse_hparams_source(text)  # an AssertionError here is a disagreement
    for diagnostic in parsed.diagnostics:
        assert diagnostic.span is not None and 0 <= diagnostic.span.offset <= len(text)


@pytest.mark.parametrize(
    ("text", "code", "offset", "length"),
    [
        ("=1", "malformed", 0, 1),
        ("name[0]=a", "index-assignment", 4, 3),
        ("name 1", "malformed", 5, 1),
        ("weight_sparsity_map=[a:0.5", "malformed", 20, 6),
        ("weight_sparsity_map=[a:0.5,'b", "unterminated-quote", 27, 2),
        ('name="ab', "unterminated-quote", 5, 3),
        ('name="a"b', "malformed", 8, 1),
        ("name=a[b", "malformed", 6, 1),
        ("name=a,,nbins=3", "malformed", 7, 1),
        ("target_sparsity=[a, b]", "unexpected-list", 16, 6),
        ("name=a\ud800b", "invalid-text", 6, 1),
    ],
)
def test_explanation_names_the_piece_that_fails(
    text: str, code: str, offset: int, length: int
) -> None:
    (diagnostic,) = parse_hparams_source(text).diagnostics
    assert diagnostic.span is not None
    assert (diagnostic.code, diagnostic.span.offset, diagnostic.span.length) == (
        code,
        offset,
        length,
    )


# Map entries split on the LAST colon outside quotes.
LAST_COLON_WEIGHTS = [
    pytest.param("weight_sparsity_map=[a:b:0.8]", [("a:b", 0.8)], id="bare"),
    pytest.param("weight_sparsity_map=[a:b:c:0.8,d:0.5]", [("a:b:c", 0.8), ("d", 0.5)], id="bare3"),
    pytest.param('weight_sparsity_map=["a:b":0.8]', [("a:b", 0.8)], id="quoted-key"),
    pytest.param('weight_sparsity_map=["q":b:0.8]', [("q:b", 0.8)], id="quoted-then-bare-colon"),
    pytest.param('weight_sparsity_map=[a:"x":0.8]', [("a:x", 0.8)], id="bare-colon-then-quoted"),
    pytest.param("weight_sparsity_map=['a:b':c:0.25]", [("a:b:c", 0.25)], id="single-quoted"),
]
LAST_COLON_BLOCKS = [
    pytest.param("block_dims_map=[x:y:2x3]", [("x:y", 2, 3)], id="bare"),
    pytest.param('block_dims_map=["x:y":2x3]', [("x:y", 2, 3)], id="quoted-key"),
    pytest.param('block_dims_map=["x":y:z:1x4]', [("x:y:z", 1, 4)], id="quoted-then-bare-colons"),
]


@pytest.mark.parametrize(("text", "expected"), LAST_COLON_WEIGHTS)
def test_weight_map_entries_split_on_the_last_unquoted_colon(
    text: str, expected: list[tuple[str, float]]
) -> None:
    parsed = parse_hparams_source(text)
    assert parsed.diagnostics == []
    assert [(r.pattern, r.sparsity) for r in parsed.message.weight_sparsity_map] == expected
    assert weight_rules(parse_hparams(text)) == expected


@pytest.mark.parametrize(("text", "expected"), LAST_COLON_BLOCKS)
def test_block_map_entries_split_on_the_last_unquoted_colon(
    text: str, expected: list[tuple[str, int, int]]
) -> None:
    parsed = parse_hparams_source(text)
    assert parsed.diagnostics == []
    assert block_rules(parse_hparams(text)) == expected


@pytest.mark.parametrize(
    ("entries", "field", "expected"),
    [
        pytest.param(["a:b:0.8"], "weight_sparsity_map", [("a:b", 0.8)], id="weights"),
        pytest.param(
            ["a:b:c:0.25", "d:0.5"],
            "weight_sparsity_map",
            [("a:b:c", 0.25), ("d", 0.5)],
            id="weights-three-colons",
        ),
        pytest.param(["x:y:2x3"], "block_dims_map", [("x:y", 2, 3)], id="blocks"),
    ],
)
def test_json_string_map_entries_split_on_the_last_colon(
    entries: list[str], field: str, expected: list[tuple[object, ...]]
) -> None:
    parsed = parse_json(json.dumps({field: entries}))
    assert parsed.diagnostics == []
    spec = NormalizedSpec(parsed.message)
    rules = weight_rules(spec) if field == "weight_sparsity_map" else block_rules(spec)
    assert rules == expected
