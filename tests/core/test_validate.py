"""Validation: every r1.15 constructor check, what r1.15 missed, and all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from pruning_spec import (
    BlockDimsRule,
    NMSparsityRule,
    PruningSpec,
    Severity,
    SpecError,
    Validator,
    WeightSparsityRule,
    collect_diagnostics,
    load_spec,
    parse_hparams,
    parse_spec_text,
    validate,
)
from pruning_spec._spec import fill_defaults


def _codes(spec: PruningSpec, **options: bool) -> list[tuple[str, str]]:
    return [(d.code, d.field_path) for d in collect_diagnostics(spec, **options)]


def test_default_spec_is_valid() -> None:
    # The validator relies on this: it only looks at fields a source set.
    assert collect_diagnostics(PruningSpec()) == []
    assert collect_diagnostics(fill_defaults(PruningSpec())) == []


R115_CHECKS = [
    # docs/semantics.md §g, constructor checks 1-7.
    ("g1 begin < 0", PruningSpec(begin_pruning_step=-1), "out-of-range", "begin_pruning_step"),
    (
        "g2 end <= begin",
        PruningSpec(begin_pruning_step=10, end_pruning_step=10),
        "end-before-begin",
        "end_pruning_step",
    ),
    ("g2 end -5", PruningSpec(end_pruning_step=-5), "out-of-range", "end_pruning_step"),
    (
        "g3 schedule begin < 0",
        PruningSpec(sparsity_function_begin_step=-1),
        "out-of-range",
        "sparsity_function_begin_step",
    ),
    (
        "g4 schedule end <= begin, only begin written",
        PruningSpec(sparsity_function_begin_step=100),
        "schedule-end-before-begin",
        "sparsity_function_begin_step",
    ),
    (
        "g4 schedule end <= begin",
        PruningSpec(sparsity_function_begin_step=100, sparsity_function_end_step=50),
        "schedule-end-before-begin",
        "sparsity_function_end_step",
    ),
    ("g5 decay = 1", PruningSpec(threshold_decay=1.0), "out-of-range", "threshold_decay"),
    ("g5 decay < 0", PruningSpec(threshold_decay=-0.1), "out-of-range", "threshold_decay"),
    ("g6 initial = 1", PruningSpec(initial_sparsity=1.0), "out-of-range", "initial_sparsity"),
    ("g7 target < 0", PruningSpec(target_sparsity=-0.5), "out-of-range", "target_sparsity"),
    ("g7 target = 1", PruningSpec(target_sparsity=1.0), "out-of-range", "target_sparsity"),
    # §g 10-11: map entries.
    (
        "g10 bad block regex",
        PruningSpec(block_dims_map=[BlockDimsRule(pattern="(", block_height=2, block_width=2)]),
        "invalid-regex",
        "block_dims_map[0].pattern",
    ),
    (
        "g11 map sparsity 1",
        PruningSpec(weight_sparsity_map=[WeightSparsityRule(pattern="a", sparsity=1.0)]),
        "out-of-range",
        "weight_sparsity_map[0].sparsity",
    ),
    (
        "g11 bad regex",
        PruningSpec(weight_sparsity_map=[WeightSparsityRule(pattern="a[", sparsity=0.5)]),
        "invalid-regex",
        "weight_sparsity_map[0].pattern",
    ),
    # What r1.15 missed.
    (
        "negative map sparsity",
        PruningSpec(weight_sparsity_map=[WeightSparsityRule(pattern="a", sparsity=-0.1)]),
        "out-of-range",
        "weight_sparsity_map[0].sparsity",
    ),
    ("nan target", PruningSpec(target_sparsity=float("nan")), "not-finite", "target_sparsity"),
    (
        "inf exponent",
        PruningSpec(sparsity_function_exponent=float("inf")),
        "not-finite",
        "sparsity_function_exponent",
    ),
    (
        "nan in map",
        PruningSpec(weight_sparsity_map=[WeightSparsityRule(pattern="a", sparsity=float("nan"))]),
        "not-finite",
        "weight_sparsity_map[0].sparsity",
    ),
    (
        "empty pattern",
        PruningSpec(weight_sparsity_map=[WeightSparsityRule(pattern="", sparsity=0.5)]),
        "empty-pattern",
        "weight_sparsity_map[0].pattern",
    ),
    (
        "rule without sparsity",
        PruningSpec(weight_sparsity_map=[WeightSparsityRule(pattern="a")]),
        "missing-field",
        "weight_sparsity_map[0].sparsity",
    ),
    ("block dim 0", PruningSpec(block_height=0), "out-of-range", "block_height"),
    (
        "block dim -2",
        PruningSpec(block_dims_map=[BlockDimsRule(pattern="d", block_height=-2, block_width=4)]),
        "out-of-range",
        "block_dims_map[0].block_height",
    ),
    ("scope name with space", PruningSpec(name="my pruning"), "invalid-string", "name"),
    ("empty name", PruningSpec(name=""), "invalid-string", "name"),
    (
        "negative exponent",
        PruningSpec(sparsity_function_exponent=-1.0),
        "out-of-range",
        "sparsity_function_exponent",
    ),
    (
        "unspecified pooling",
        PruningSpec(block_pooling_function=PruningSpec.BLOCK_POOLING_FUNCTION_UNSPECIFIED),
        "invalid-enum",
        "block_pooling_function",
    ),
]


@pytest.mark.parametrize(
    ("spec", "code", "path"), [c[1:] for c in R115_CHECKS], ids=[c[0] for c in R115_CHECKS]
)
def test_each_check(spec: PruningSpec, code: str, path: str) -> None:
    assert _codes(spec) == [(code, path)]
    with pytest.raises(SpecError):
        validate(spec)


def test_end_minus_one_means_forever() -> None:
    assert _codes(PruningSpec(begin_pruning_step=100, end_pruning_step=-1)) == []


def test_block_dims_minus_one_is_allowed() -> None:
    spec = PruningSpec(
        block_height=-1, block_dims_map=[BlockDimsRule(pattern="d", block_height=1, block_width=-1)]
    )
    assert _codes(spec) == []


def test_duplicate_pattern_points_at_the_second_rule() -> None:
    spec = PruningSpec(
        weight_sparsity_map=[
            WeightSparsityRule(pattern="conv1", sparsity=0.5),
            WeightSparsityRule(pattern="conv2", sparsity=0.5),
            WeightSparsityRule(pattern="conv1", sparsity=0.7),
        ]
    )
    [diagnostic] = collect_diagnostics(spec)
    assert (diagnostic.code, diagnostic.field_path) == (
        "duplicate-pattern",
        "weight_sparsity_map[2]",
    )
    assert "weight_sparsity_map[0]" in diagnostic.message


def test_zero_target_with_map_only_matters_for_external_sparsity() -> None:
    spec = PruningSpec(
        target_sparsity=0.0, weight_sparsity_map=[WeightSparsityRule(pattern="a", sparsity=0.5)]
    )
    assert _codes(spec) == []
    assert _codes(spec, external_sparsity=True) == [("zero-target-with-map", "target_sparsity")]
    with pytest.raises(SpecError):
        Validator(external_sparsity=True).validate(spec)
    validate(spec)  # the module-level function: internal sparsity unless asked
    with pytest.raises(SpecError):
        validate(spec, external_sparsity=True)


def test_deprecated_fields_warn_only_when_changed() -> None:
    assert _codes(PruningSpec(nbins=256, use_tpu=False)) == []
    diagnostics = collect_diagnostics(PruningSpec(nbins=100, use_tpu=True))
    assert [(d.code, d.field_path, d.severity) for d in diagnostics] == [
        ("deprecated-field", "nbins", Severity.WARNING),
        ("deprecated-field", "use_tpu", Severity.WARNING),
    ]
    validate(PruningSpec(nbins=100))  # warnings alone do not fail


def test_every_problem_is_reported_not_the_first() -> None:
    spec = PruningSpec(
        begin_pruning_step=-3,
        target_sparsity=2.0,
        threshold_decay=float("nan"),
        sparsity_function_begin_step=10,
        sparsity_function_end_step=5,
        weight_sparsity_map=[WeightSparsityRule(pattern="(", sparsity=1.5)],
    )
    with pytest.raises(SpecError) as caught:
        validate(spec)
    assert sorted(d.field_path for d in caught.value.errors) == [
        "begin_pruning_step",
        "sparsity_function_end_step",
        "target_sparsity",
        "threshold_decay",
        "weight_sparsity_map[0].pattern",
        "weight_sparsity_map[0].sparsity",
    ]
    assert len(str(caught.value).splitlines()) == 6


def test_range_message_comes_from_the_schema() -> None:
    [diagnostic] = collect_diagnostics(PruningSpec(target_sparsity=1.5))
    assert diagnostic.message == "must be in [0, 1), got 1.5"
    [diagnostic] = collect_diagnostics(PruningSpec(block_width=0))
    assert diagnostic.message == "must be >= 1 or -1, got 0"


@pytest.mark.parametrize("frequency", [0, -1])
def test_pruning_frequency_below_one_is_out_of_range(frequency: int) -> None:
    # r1.15 updated at every step with 0 and tfmot divides by it; neither is meant.
    [problem] = collect_diagnostics(PruningSpec(pruning_frequency=frequency))
    assert (problem.code, problem.field_path) == ("out-of-range", "pruning_frequency")
    assert problem.message == f"must be >= 1, got {frequency}"


def test_an_exponent_the_float32_schedule_cannot_hold_is_out_of_range() -> None:
    [problem] = collect_diagnostics(PruningSpec(sparsity_function_exponent=1e300))
    assert (problem.code, problem.field_path) == ("out-of-range", "sparsity_function_exponent")


def test_a_value_at_an_exclusive_bound_is_out_of_range() -> None:
    # The exponent's bound is `gt: 0`: 0 itself is refused, the smallest float above it is not.
    [problem] = collect_diagnostics(PruningSpec(sparsity_function_exponent=0.0))
    assert (problem.code, problem.field_path) == ("out-of-range", "sparsity_function_exponent")
    assert collect_diagnostics(PruningSpec(sparsity_function_exponent=5e-324)) == []


def test_an_end_step_of_zero_is_not_open_ended() -> None:
    # Only -1 means "forever"; 0 with the default begin 0 is an empty window.
    assert _codes(PruningSpec(end_pruning_step=0)) == [("end-before-begin", "end_pruning_step")]


def test_an_invalid_string_names_what_the_field_expects() -> None:
    [problem] = collect_diagnostics(PruningSpec(name="my pruning"))
    assert problem.message.startswith("'my pruning' is not a TensorFlow scope name: ")


# A field the parser could not read is left out of validation (it already has its error);
# every other field, rule and ordering is still judged, before and after it, and a value an
# unreadable override was meant to replace is not judged either.
SKIPPING = [
    pytest.param(
        "",
        "weight_sparsity_map=[a:x]",
        [("invalid-value", "weight_sparsity_map[0].sparsity")],
        id="unreadable-rule-value-is-not-also-missing",
    ),
    pytest.param(
        "",
        "begin_pruning_step=x,nbins=3,target_sparsity=1.5",
        [
            ("invalid-value", "begin_pruning_step"),
            ("deprecated-field", "nbins"),
            ("out-of-range", "target_sparsity"),
        ],
        id="fields-after-an-unreadable-one",
    ),
    pytest.param(
        "",
        "weight_sparsity_map=[a:x,b:1.5]",
        [
            ("invalid-value", "weight_sparsity_map[0].sparsity"),
            ("out-of-range", "weight_sparsity_map[1].sparsity"),
        ],
        id="rules-after-an-unreadable-one",
    ),
    pytest.param(
        "",
        "block_dims_map=[a:2xq],weight_sparsity_map=[b:1.5]",
        [
            ("invalid-value", "block_dims_map[0].block_width"),
            ("out-of-range", "weight_sparsity_map[0].sparsity"),
        ],
        id="rules-of-another-list",
    ),
    pytest.param(
        "",
        "begin_pruning_step=x,end_pruning_step=5,sparsity_function_begin_step=50,"
        "sparsity_function_end_step=10",
        [
            ("invalid-value", "begin_pruning_step"),
            ("schedule-end-before-begin", "sparsity_function_end_step"),
        ],
        id="orderings-after-an-unreadable-side",
    ),
    pytest.param(
        "",
        "end_pruning_step=-5,sparsity_function_begin_step=50,sparsity_function_end_step=10",
        [
            ("out-of-range", "end_pruning_step"),
            ("schedule-end-before-begin", "sparsity_function_end_step"),
        ],
        id="orderings-after-a-negative-bound",
    ),
    # (spec file, overrides): the file's value is set, the override's failed to parse.
    pytest.param(
        "target_sparsity: 1.5\n",
        "target_sparsity=abc",
        [("invalid-value", "target_sparsity")],
        id="an-overridden-value-is-not-judged",
    ),
    pytest.param(
        "target_sparsity: 0.9\n",
        "target_sparsity=abc,sparsity_function_exponent=-1",
        [("invalid-value", "target_sparsity"), ("out-of-range", "sparsity_function_exponent")],
        id="fields-after-a-skipped-one",
    ),
    pytest.param(
        "begin_pruning_step: 10\nend_pruning_step: 20\n",
        "begin_pruning_step=abc,end_pruning_step=5",
        [("invalid-value", "begin_pruning_step")],
        id="an-ordering-with-a-skipped-side",
    ),
    pytest.param(
        "",
        "block_dims_map=[a:4,b:0x2]",
        [
            ("bad-map-entry", "block_dims_map[0]"),
            ("out-of-range", "block_dims_map[1].block_height"),
        ],
        id="rules-after-a-skipped-rule",
    ),
]


@pytest.mark.parametrize(("text", "overrides", "expected"), SKIPPING)
def test_validation_skips_only_what_failed_to_parse(
    tmp_path: Path, text: str, overrides: str, expected: list[tuple[str, str]]
) -> None:
    path = tmp_path / "spec.txtpb"
    path.write_text(text)
    with pytest.raises(SpecError) as raised:
        load_spec(path, overrides=overrides)
    found = sorted((d.code, d.field_path) for d in raised.value.diagnostics)
    assert found == sorted(expected)


# N:M rules.


@pytest.mark.parametrize("entry", ["d:4/4", "d:5/4"])
def test_an_n_m_rule_must_keep_fewer_than_m(entry: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_hparams(f"n_m_map=[{entry}]")
    [error] = caught.value.errors
    assert (error.code, error.field_path) == ("n-not-below-m", "n_m_map[0].m")
    # The caret is at m: 'n_m_map=[d:' is 11 characters, then 'N/'.
    assert error.span is not None and error.span.offset == 13
    assert error.hint == (
        "an N:M rule keeps n of every m consecutive weights, so n must be less than m"
    )
    parse_hparams("n_m_map=[d:3/4]")  # n < m: valid


def test_an_n_m_rule_in_text_format_is_checked_where_it_is_written() -> None:
    spec = PruningSpec(
        n_m_map=[
            NMSparsityRule(pattern="a", n=2, m=4),
            NMSparsityRule(pattern="b", n=8, m=8, axis=1),
            NMSparsityRule(pattern="c", n=0, m=65),
        ]
    )
    assert _codes(spec) == [
        ("n-not-below-m", "n_m_map[1].m"),
        ("out-of-range", "n_m_map[2].n"),
        ("out-of-range", "n_m_map[2].m"),
    ]
    with pytest.raises(SpecError) as caught:
        parse_spec_text('n_m_map {\n  pattern: "d"\n  n: 4\n  m: 2\n}\n', "nm.txtpb")
    [error] = caught.value.errors
    assert (error.code, error.span.line, error.span.column) == ("n-not-below-m", 4, 3)  # type: ignore[union-attr]
