"""Text format parsing: strict, positioned, and it reports every problem."""

from __future__ import annotations

import pytest

from pruning_spec import SpecError, parse_spec_text
from pruning_spec._textproto import parse_textproto

THREE_MISTAKES = """\
# proto-file: pruning_spec/v1/pruning.proto
target_sparsty: 0.9
target_sparsity: 1.5
begin_pruning_step: 500
end_pruning_step: 100
"""


def _errors(text: str) -> list[tuple[str, int | None, int | None, str]]:
    with pytest.raises(SpecError) as caught:
        parse_spec_text(text, "spec.txtpb")
    return [
        (d.code, d.span.line if d.span else None, d.span.column if d.span else None, d.field_path)
        for d in caught.value.diagnostics
    ]


def test_three_mistakes_give_three_located_diagnostics() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec_text(THREE_MISTAKES, "spec.txtpb")
    diagnostics = caught.value.diagnostics
    assert [(d.code, d.span.line if d.span else 0) for d in diagnostics] == [
        ("unknown-field", 2),
        ("out-of-range", 3),
        ("end-before-begin", 5),
    ]
    assert "did you mean 'target_sparsity'?" in diagnostics[0].hint
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("spec.txtpb:2:1: error[unknown-field]:")
    assert lines[1].startswith("spec.txtpb:3:1: error[out-of-range]: target_sparsity:")
    assert lines[2].startswith("spec.txtpb:5:1: error[end-before-begin]: end_pruning_step:")


def test_unknown_fields_are_errors_not_dropped() -> None:
    assert _errors('name: "a"\nfoo { bar: 1 }\n') == [("unknown-field", 2, 1, "")]


def test_unknown_field_inside_a_rule_names_the_rule() -> None:
    text = 'weight_sparsity_map { pattern: "a" sparsity: 0.5 sparsty: 0.2 }\n'
    parsed = parse_textproto(text, "f.txtpb")
    [diagnostic] = parsed.diagnostics
    assert diagnostic.code == "unknown-field"
    assert "weight_sparsity_map[0]" in diagnostic.message
    assert diagnostic.hint == "did you mean 'sparsity'?"
    assert (diagnostic.span.line, diagnostic.span.column) == (1, 50)  # type: ignore[union-attr]


def test_positions_of_nested_fields() -> None:
    text = 'name: "x"\nweight_sparsity_map {\n  pattern: "a"\n  sparsity: 0.5\n}\n'
    parsed = parse_textproto(text, "f.txtpb")
    assert parsed.diagnostics == []
    located = {path: (span.line, span.column) for path, span in parsed.positions.items()}
    assert located == {
        "name": (1, 1),
        "weight_sparsity_map[0]": (2, 1),
        "weight_sparsity_map[0].pattern": (3, 3),
        "weight_sparsity_map[0].sparsity": (4, 3),
    }


def test_validation_errors_point_at_the_rule_field() -> None:
    text = (
        'weight_sparsity_map { pattern: "a" sparsity: 0.5 }\n'
        'weight_sparsity_map {\n  pattern: "b"\n  sparsity: 1.2\n}\n'
    )
    assert _errors(text) == [("out-of-range", 4, 3, "weight_sparsity_map[1].sparsity")]


def test_bad_value_does_not_hide_later_fields() -> None:
    text = 'target_sparsity: "half"\nbegin_pruning_step: -1\nblock_pooling_function: avg\n'
    errors = _errors(text)
    assert [(code, line) for code, line, _, _ in errors] == [
        ("syntax", 1),
        ("out-of-range", 2),
        ("invalid-enum", 3),
    ]


def test_enum_typo_gets_did_you_mean() -> None:
    parsed = parse_textproto("block_pooling_function: MAXX\n", "f.txtpb")
    [diagnostic] = parsed.diagnostics
    assert diagnostic.code == "invalid-enum"
    assert diagnostic.hint == "did you mean 'MAX'?"


def test_duplicate_singular_field_is_an_error() -> None:
    assert _errors("target_sparsity: 0.5\ntarget_sparsity: 0.6\n") == [
        ("duplicate-field", 2, 1, "target_sparsity")
    ]


def test_integer_beyond_int64_is_reported() -> None:
    assert _errors("begin_pruning_step: 9223372036854775808\n")[0][0] == "int-out-of-range"


def test_nan_and_inf_are_rejected() -> None:
    errors = _errors("target_sparsity: nan\nthreshold_decay: -inf\n")
    assert [(code, line) for code, line, _, _ in errors] == [("not-finite", 1), ("not-finite", 2)]


def test_all_text_format_spellings_are_accepted() -> None:
    text = (
        "name: 'single' 'joined'\n"
        "weight_sparsity_map: [{pattern: 'a' sparsity: 0.5}, <pattern: 'b', sparsity: 0.25>];\n"
        "block_dims_map { pattern: 'd' block_height: 2 block_width: -1 },\n"
        "use_tpu: false  # trailing comment\n"
        "block_pooling_function: 2\n"
    )
    spec = parse_spec_text(text)
    assert spec.name == "singlejoined"
    assert [(r.pattern, r.sparsity) for r in spec.weight_sparsity_map] == [("a", 0.5), ("b", 0.25)]
    assert spec.block_pooling_function == "MAX"
    assert spec.block_dims_map[0].block_width == -1


def test_unclosed_message_is_reported_at_end_of_file() -> None:
    errors = _errors('weight_sparsity_map {\n  pattern: "a"\n')
    assert errors[0][0] == "syntax"


def test_extension_syntax_is_rejected() -> None:
    assert _errors("[foo.bar]: 1\nname: 'x'\n")[0][:2] == ("unknown-field", 1)


def test_empty_text_is_the_default_spec() -> None:
    assert parse_spec_text("").to_hparams() == parse_spec_text("# only a comment\n").to_hparams()


def test_bad_escape_is_located_at_the_value_and_said_plainly() -> None:
    errors = _errors('name: "\\303"\nblock_pooling_function: -5\n')
    assert errors == [
        ("syntax", 1, 7, "name"),
        ("invalid-enum", 2, 1, "block_pooling_function"),
    ]
    with pytest.raises(SpecError, match="invalid escape sequence in string"):
        parse_spec_text('name: "\\777"\n')


def test_ordering_error_points_at_the_field_that_was_written() -> None:
    errors = _errors("sparsity_function_begin_step: 200\n")
    assert errors == [("schedule-end-before-begin", 1, 1, "sparsity_function_begin_step")]
