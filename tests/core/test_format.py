"""fmt's canonical layout: normalized, idempotent, and it never loses a comment."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pruning_spec import _format, parse_spec_text
from pruning_spec._format import UnsafeToFormatError, format_text

ROOT = Path(__file__).resolve().parents[2]

MESSY = """\
# proto-file: pruning_spec/v1/pruning.proto

# The name.
name:"cifar10"   # trailing on name
begin_pruning_step : 0x10 ;


target_sparsity: .90
weight_sparsity_map: [{pattern: 'a' sparsity: 0.5}, <pattern: "b", sparsity: 1e-1>]
# lead block
block_dims_map {   # open comment
    pattern: "d"
    block_height: 4  block_width: -1
    # inner dangling
}  # after close
block_pooling_function: 2
# final comment
"""

CANONICAL = """\
# proto-file: pruning_spec/v1/pruning.proto

# The name.
name: "cifar10"  # trailing on name
begin_pruning_step: 16

target_sparsity: 0.9
weight_sparsity_map {
  pattern: "a"
  sparsity: 0.5
}
weight_sparsity_map {
  pattern: "b"
  sparsity: 0.1
}
# lead block
block_dims_map {  # open comment
  pattern: "d"
  block_height: 4
  block_width: -1
  # inner dangling
}  # after close
block_pooling_function: MAX
# final comment
"""


def test_messy_file_gets_the_canonical_layout() -> None:
    assert format_text(MESSY) == CANONICAL


def test_formatting_is_idempotent_and_keeps_the_spec() -> None:
    assert format_text(CANONICAL) == CANONICAL
    assert parse_spec_text(CANONICAL) == parse_spec_text(MESSY)


@pytest.mark.parametrize(
    "example", sorted((ROOT / "examples").glob("*.txtpb")), ids=lambda p: p.name
)
def test_examples_are_formatted(example: Path) -> None:
    text = example.read_text()
    assert format_text(text) == text


def test_printer_output_is_already_formatted() -> None:
    text = parse_spec_text(MESSY).to_textproto()
    assert format_text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "name: # a comment where a value belongs\n  'x'\n",
        "target_sparsty: 0.5\n",
        "weight_sparsity_map {\n",
    ],
    ids=["comment-inside-a-field", "unknown-field", "unclosed"],
)
def test_unsafe_or_broken_files_are_refused(text: str) -> None:
    with pytest.raises(UnsafeToFormatError):
        format_text(text)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param("name: # c\n  'x'\n", "'name' (line 1)", id="between-name-and-value"),
        pytest.param("block_dims_map # c\n{ pattern: 'd' }\n", "'block_dims_map' (line 1)"),
        pytest.param(
            "nbins: 1\nweight_sparsity_map: [\n# c\n]\n", "'weight_sparsity_map' (line 3)"
        ),
    ],
)
def test_comment_inside_a_field_is_refused_and_located(text: str, where: str) -> None:
    with pytest.raises(UnsafeToFormatError, match=re.escape(f"a comment inside the field {where}")):
        format_text(text)


def test_comments_between_list_elements_lead_the_next_block() -> None:
    text = (
        "weight_sparsity_map: [ # zero\n"
        "  {pattern: 'a'},  # first\n"
        "  # second\n"
        "  {pattern: 'b'}\n"
        "]\n"
    )
    assert format_text(text) == (
        "# zero\n"
        "weight_sparsity_map {\n"
        '  pattern: "a"\n'
        "}  # first\n"
        "# second\n"
        "weight_sparsity_map {\n"
        '  pattern: "b"\n'
        "}\n"
    )


def test_blank_lines_collapse_to_one() -> None:
    assert format_text("name: 'a'\n\n\n\ntarget_sparsity: 0.5\n") == (
        'name: "a"\n\ntarget_sparsity: 0.5\n'
    )


def test_blank_line_between_a_comment_and_its_field_stays() -> None:
    text = '# header\n\ntarget_sparsity: 0.9\n# about name\n\nname: "x"\n'
    assert format_text(text) == text


def test_explicitly_empty_list_is_kept() -> None:
    assert format_text("weight_sparsity_map: [ ]  # none\n") == "weight_sparsity_map: []  # none\n"


# The last check before anything is written: the result must parse to the same spec and
# hold the same comments. These reach it with a renderer that goes wrong.
SAFE_INPUT = """\
# header
name: "cifar10"  # about the name
target_sparsity: 0.9
# before the rule
weight_sparsity_map {
  pattern: "conv1"
  sparsity: 0.8
}
"""


def _wrapped_render(edit: Callable[[list[str]], list[str]]) -> Callable[..., list[str]]:
    real = _format._render

    def render(nodes: Any, tail: Any, indent: str) -> list[str]:
        lines = real(nodes, tail, indent)
        return edit(lines) if indent == "" else lines

    return render


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda lines: [ln for ln in lines if ln != "# before the rule"], id="drop"),
        pytest.param(
            lambda lines: [ln.replace("# about the name", "") for ln in lines], id="drop-trailing"
        ),
        pytest.param(
            lambda lines: [ln.replace("# header", "# headr") for ln in lines], id="edit-comment"
        ),
        pytest.param(
            lambda lines: [ln.replace("sparsity: 0.8", "sparsity: 0.7") for ln in lines],
            id="change-value",
        ),
        pytest.param(
            lambda lines: [ln for ln in lines if ln != "target_sparsity: 0.9"], id="drop-field"
        ),
        pytest.param(lambda lines: [*lines, "target_sparsity: 0.9"], id="duplicate-field"),
    ],
)
def test_result_that_loses_a_comment_or_changes_the_spec_is_refused(
    monkeypatch: pytest.MonkeyPatch, edit: Callable[[list[str]], list[str]]
) -> None:
    assert format_text(SAFE_INPUT) == SAFE_INPUT  # the real renderer passes the check
    monkeypatch.setattr(_format, "_render", _wrapped_render(edit))
    with pytest.raises(UnsafeToFormatError, match=r"^formatting would change the content$"):
        format_text(SAFE_INPUT)


def test_result_with_comments_moved_but_kept_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    def move(lines: list[str]) -> list[str]:
        kept = [ln for ln in lines if ln != "# before the rule"]
        return ["# before the rule", *kept]

    monkeypatch.setattr(_format, "_render", _wrapped_render(move))
    assert format_text(SAFE_INPUT) == "# before the rule\n" + SAFE_INPUT.replace(
        "# before the rule\n", ""
    )


def test_comments_that_the_layout_moves_are_kept() -> None:
    # Two fields on one line are split; the trailing comment follows the last one, and a
    # comment after '{' stays on the opening line.
    text = (
        "block_dims_map { pattern: 'd'  # open\n"
        "  block_height: 4  block_width: -1  # both dims\n"
        "}\n"
    )
    assert format_text(text) == (
        "block_dims_map {\n"
        '  pattern: "d"  # open\n'
        "  block_height: 4\n"
        "  block_width: -1  # both dims\n"
        "}\n"
    )
