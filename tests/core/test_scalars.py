"""The one quoted-string syntax and the one scalar spelling, shared by hparams and text format."""

from __future__ import annotations

import pytest
from google.protobuf import text_format
from hypothesis import given
from hypothesis import strategies as st

from pruning_spec import _schema
from pruning_spec._scalars import (
    ConversionError,
    Syntax,
    convert_scalar,
    decode_pieces,
    format_scalar,
    last_unquoted,
    quote,
    unescape,
)
from pruning_spec.v1 import pruning_pb2


@pytest.mark.parametrize(
    ("body", "text"),
    [
        pytest.param('a\\"b', 'a"b', id="double-quote"),
        pytest.param("a\\'b", "a'b", id="single-quote"),
        pytest.param("a\\\\b", "a\\b", id="backslash"),
        pytest.param("a\\nb\\tc\\rd", "a\nb\tc\rd", id="controls"),
        pytest.param("conv\\d", "conv\\d", id="unknown-escape-kept"),
        pytest.param("\\\\n", "\\n", id="escaped-backslash-then-n"),
        pytest.param("a\\\nb", "a\\\nb", id="backslash-newline-kept"),
    ],
)
def test_unescape_reads_the_escape_table(body: str, text: str) -> None:
    assert unescape(body) == text


@pytest.mark.parametrize(
    ("text", "hparams", "textproto"),
    [
        pytest.param("plain", '"plain"', '"plain"', id="plain"),
        pytest.param('a"b\\c', '"a\\"b\\\\c"', '"a\\"b\\\\c"', id="quote-and-backslash"),
        pytest.param("a\nb\tc\rd", '"a\\nb\\tc\\rd"', '"a\\nb\\tc\\rd"', id="table-controls"),
        pytest.param("x\x01y\x7f", '"x\x01y\x7f"', '"x\\001y\\177"', id="other-controls"),
        pytest.param("it's", '"it\'s"', '"it\'s"', id="single-quote-unescaped"),
    ],
)
def test_quote_in_each_syntax(text: str, hparams: str, textproto: str) -> None:
    assert quote(text, Syntax.HPARAMS) == hparams
    assert quote(text, Syntax.TEXT) == textproto


@given(st.text())
def test_quoted_hparam_strings_read_back(text: str) -> None:
    assert unescape(quote(text)[1:-1]) == text
    assert decode_pieces(quote(text)) == text


@given(st.text())
def test_quoted_text_format_strings_read_back_with_protobuf(text: str) -> None:
    spec = text_format.Parse(f"name: {quote(text, Syntax.TEXT)}", pruning_pb2.PruningSpec())
    assert spec.name == text


@pytest.mark.parametrize(
    ("raw", "decoded", "last_colon"),
    [
        pytest.param("a:b:0.5", "a:b:0.5", 3, id="bare"),
        pytest.param('"a:b":0.5', "a:b:0.5", 5, id="colon-in-quotes"),
        pytest.param("'x':y:z", "x:y:z", 5, id="single-quoted-then-bare"),
        pytest.param('a"b"c', "abc", -1, id="glued-pieces"),
        pytest.param('"a\\":b"', 'a":b', -1, id="escaped-quote-hides-colon"),
        pytest.param("a:'b:c'", "a:b:c", 1, id="last-colon-inside-single-quotes"),
    ],
)
def test_pieces_and_the_last_unquoted_colon(raw: str, decoded: str, last_colon: int) -> None:
    assert decode_pieces(raw) == decoded
    assert last_unquoted(raw, ":") == last_colon


def _field(name: str) -> _schema.Field:
    return _schema.FIELDS[name]


@pytest.mark.parametrize(
    ("field", "value", "hparams", "textproto"),
    [
        pytest.param("use_tpu", True, "true", "true", id="bool"),
        pytest.param("target_sparsity", 0.1 + 0.2, "0.30000000000000004", "0.30000000000000004"),
        pytest.param("pruning_frequency", -1, "-1", "-1", id="int"),
        pytest.param("block_pooling_function", 1, "AVG", "AVG", id="enum"),
        pytest.param("name", "cifar10", "cifar10", '"cifar10"', id="bare-string"),
        pytest.param("name", "a,b", '"a,b"', '"a,b"', id="comma-quoted"),
        pytest.param("name", "trailing ", '"trailing "', '"trailing "', id="trailing-space"),
        pytest.param("name", "", '""', '""', id="empty"),
        pytest.param("name", "x\x01", '"x\x01"', '"x\\001"', id="control"),
    ],
)
def test_format_scalar_in_each_syntax(
    field: str, value: object, hparams: str, textproto: str
) -> None:
    assert format_scalar(_field(field), value, Syntax.HPARAMS) == hparams
    assert format_scalar(_field(field), value, Syntax.TEXT) == textproto


@pytest.mark.parametrize(
    ("raw", "accepted"),
    [
        (str(_schema.INT64_MAX), True),
        (str(_schema.INT64_MIN), True),
        (str(_schema.INT64_MAX + 1), False),
        (str(_schema.INT64_MIN - 1), False),
    ],
)
def test_integers_take_exactly_the_int64_range(raw: str, accepted: bool) -> None:
    field = _field("begin_pruning_step")
    if accepted:
        assert convert_scalar(field, raw) == int(raw)
    else:
        with pytest.raises(ConversionError, match="does not fit in a 64-bit integer"):
            convert_scalar(field, raw)
