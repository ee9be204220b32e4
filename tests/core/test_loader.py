"""Loading spec files in every format, and every way a file can be bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pruning_spec import NormalizedSpec, PruningSpec, SpecError, load_spec, parse_hparams
from pruning_spec._loader import parse_json

ROOT = Path(__file__).resolve().parents[2]


def _codes(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return [d.code for d in caught.value.diagnostics]


@pytest.mark.parametrize(
    "example", sorted((ROOT / "examples").glob("*.txtpb")), ids=lambda p: p.name
)
def test_examples_load(example: Path) -> None:
    spec = load_spec(example)
    assert spec.warnings == ()


@pytest.mark.parametrize("suffix", [".txtpb", ".textproto", ".pbtxt", ".textpb"])
def test_text_suffixes(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"spec{suffix}"
    path.write_text("target_sparsity: 0.75\n")
    assert load_spec(path).target_sparsity == 0.75


def test_binary_round_trip(tmp_path: Path) -> None:
    spec = parse_hparams("target_sparsity=0.8,weight_sparsity_map=[conv:0.6]")
    path = tmp_path / "spec.pb"
    path.write_bytes(spec.to_binary())
    assert load_spec(path) == spec


def test_binary_with_unknown_field_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "spec.pb"
    path.write_bytes(
        PruningSpec(target_sparsity=0.8).SerializeToString() + b"\xf8\x06\x01"
    )  # field 111
    assert _codes(path) == ["unknown-field"]


def test_binary_garbage_is_a_decode_error(tmp_path: Path) -> None:
    path = tmp_path / "spec.pb"
    path.write_bytes(b"\xff\xff\xff\xff")
    assert _codes(path) == ["decode-error"]


def test_contrib_to_json_loads(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(
        '{"name": "cifar10", "weight_sparsity_map": ["conv1:0.8", "a:b:0.5"], '
        '"block_dims_map": [""], "target_sparsity": 0.9, "threshold_decay": 0, '
        '"block_pooling_function": "MAX"}'
    )
    spec = load_spec(path)
    assert [(r.pattern, r.sparsity) for r in spec.weight_sparsity_map] == [
        ("conv1", 0.8),
        ("a:b", 0.5),
    ]
    assert spec.block_dims_map == ()
    assert spec.threshold_decay == 0.0
    assert spec.block_pooling_function == "MAX"


def test_json_rule_objects_load(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(
        json.dumps({"block_dims_map": [{"pattern": "d", "block_height": 2, "block_width": -1}]})
    )
    assert load_spec(path).block_dims_for("d", (4, 6)) == (2, 6)


def test_json_problems_are_located(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(
        '{\n  "target_sparsty": 0.9,\n  "begin_pruning_step": 1.5,\n  "use_tpu": 1\n}\n'
    )
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert [(d.code, d.span.line) for d in caught.value.diagnostics] == [  # type: ignore[union-attr]
        ("unknown-field", 2),
        ("invalid-value", 3),
        ("invalid-value", 4),
    ]


def test_json_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text('{"target_sparsity": 0.9,,}')
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    [diagnostic] = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.column) == ("syntax", 1, 25)  # type: ignore[union-attr]


def test_empty_file_is_the_default_spec(tmp_path: Path) -> None:
    path = tmp_path / "empty.txtpb"
    path.write_text("")
    assert load_spec(path) == NormalizedSpec()


def test_binary_garbage_as_text_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "garbage.txtpb"
    path.write_bytes(bytes(range(1, 128)) * 3)
    assert _codes(path)[0] == "syntax"


def test_invalid_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txtpb"
    path.write_bytes('name: "ok"\nname: "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "invalid-utf8"
    assert (diagnostic.span.line, diagnostic.span.column) == (2, 11)  # type: ignore[union-attr]


def test_directory_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "dir.txtpb").mkdir()
    assert _codes(tmp_path / "dir.txtpb") == ["io-error"]
    assert _codes(tmp_path / "missing.txtpb") == ["io-error"]


def test_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("target_sparsity: 0.5\n")
    with pytest.raises(SpecError, match=r"\.txtpb"):
        load_spec(path)


def test_override_replaces_lists_wholesale(tmp_path: Path) -> None:
    path = tmp_path / "base.txtpb"
    path.write_text('weight_sparsity_map { pattern: "a" sparsity: 0.5 }\ntarget_sparsity: 0.9\n')
    spec = load_spec(path, overrides="weight_sparsity_map=[b:0.25]")
    assert [r.pattern for r in spec.weight_sparsity_map] == ["b"]
    assert spec.target_sparsity == 0.9
    assert load_spec(path, overrides="weight_sparsity_map=[]").weight_sparsity_map == ()


def test_override_fixes_an_error_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "base.txtpb"
    path.write_text("target_sparsity: 1.5\n")
    assert load_spec(path, overrides="target_sparsity=0.5").target_sparsity == 0.5


def test_diagnostics_without_a_position_still_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "spec.pb"
    path.write_bytes(PruningSpec(target_sparsity=1.5).SerializeToString())
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.span is not None and diagnostic.span.source == str(path)


# Hostile JSON (issue 12).


@pytest.mark.parametrize("depth", [33, 1_000, 100_000])
def test_json_nested_too_deep_is_a_located_syntax_error(depth: int) -> None:
    parsed = parse_json('{"weight_sparsity_map": ' + "[" * depth + "]" * depth + "}", "deep.json")
    [problem] = parsed.diagnostics
    assert problem.code == "syntax"
    assert "nested more than 32 deep" in problem.message
    assert (problem.span.line, problem.span.column) == (1, 56)  # type: ignore[union-attr]


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    parsed = parse_json('{"name": "' + "[" * 100 + '"}')
    assert [d.code for d in parsed.diagnostics] == []


def test_thousands_of_unknown_keys_are_each_located_until_the_stop() -> None:
    keys = [f"k{i}" for i in range(30_000)]
    text = "{\n" + ",\n".join(f'  "{key}": 1' for key in keys) + "\n}"
    parsed = parse_json(text, "keys.json")
    *located, stop = parsed.diagnostics
    assert len(located) == 10_000
    assert located[-1].message == "PruningSpec has no field named 'k9999'"
    assert (located[-1].span.line, located[-1].span.column) == (10_001, 3)  # type: ignore[union-attr]
    assert (stop.code, stop.message) == (
        "too-many-problems",
        "stopped after 10,000 problems; the rest of the input is not read",
    )


def test_a_key_is_located_where_it_is_a_key_not_inside_a_string() -> None:
    text = '{"name": "the \\"nbinz\\": key", "nbinz": 1}'
    [problem] = parse_json(text).diagnostics
    assert problem.span.column == text.index('"nbinz": 1') + 1  # type: ignore[union-attr]


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=40,
    ),
    st.integers(0, 40) | st.sampled_from([1_000, 5_000]),
)
def test_the_json_loader_is_total(document: object, extra_depth: int) -> None:
    # At the default recursion limit: any text is a ParsedSource, never an exception.
    text = "[" * extra_depth + json.dumps(document) + "]" * extra_depth
    for candidate in (text, text[: len(text) // 2], "{" + text):
        parsed = parse_json(candidate)
        assert all(d.code for d in parsed.diagnostics)
