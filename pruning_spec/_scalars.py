"""One scalar value, read from hparam text and written in either syntax.

The hparam language and the text format share one quoted-string syntax here:
one escape table serves the hparam reader, the hparam printer and the text
printer, and every grammar that contains a quoted string (clauses, list
elements, map entries) is built from `QUOTED_STRING`.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable

from pruning_spec import _schema
from pruning_spec._schema import Kind

# A quoted string, single or double, with backslash escapes; written as an "unrolled loop"
# (normal* (special normal*)*): runs match at C speed, and since a run can only end where a
# special piece starts, a failed match cannot backtrack exponentially.
QUOTED_STRING = r""""[^"\\]*(?:\\.[^"\\]*)*"|'[^'\\]*(?:\\.[^'\\]*)*'"""
_QUOTED_OR_BARE = re.compile(rf"""(?P<quoted>{QUOTED_STRING})|(?P<bare>[^"']+)""", re.DOTALL)

# The one escape table: character <-> the letter after the backslash.
_ESCAPE_LETTERS = {"\\": "\\", '"': '"', "'": "'", "\n": "n", "\t": "t", "\r": "r"}
_UNESCAPED = {letter: char for char, letter in _ESCAPE_LETTERS.items()}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
# What a double-quoted string must escape: in hparams the table's characters (other
# control characters stand for themselves); in text format every control character too,
# the ones the table lacks as octal.
_HPARAM_NEEDS_ESCAPE = re.compile(r'[\\"\n\t\r]')
_TEXT_NEEDS_ESCAPE = re.compile(r'[\\"\x00-\x1f\x7f]')


class Syntax(enum.Enum):
    """Where a value is written: an hparam string or a text-format file."""

    HPARAMS = "hparams"
    TEXT = "text"


def unescape(body: str) -> str:
    """The text a quoted string's body stands for; an unknown escape stands for itself."""
    return _ESCAPE.sub(lambda m: _UNESCAPED.get(m.group(1), m.group(0)), body)


def quote(text: str, syntax: Syntax = Syntax.HPARAMS) -> str:
    """A double-quoted string that reads back as `text` in `syntax`."""
    if syntax is Syntax.HPARAMS:
        body = _HPARAM_NEEDS_ESCAPE.sub(lambda m: "\\" + _ESCAPE_LETTERS[m[0]], text)
    else:
        body = _TEXT_NEEDS_ESCAPE.sub(_text_escape, text)
    return f'"{body}"'


def _text_escape(match: re.Match[str]) -> str:
    char = match[0]
    letter = _ESCAPE_LETTERS.get(char)
    return "\\" + letter if letter is not None else f"\\{ord(char):03o}"


def decode_pieces(raw: str) -> str:
    """Joins the bare and the (unescaped) quoted pieces of a list element or map key."""
    if "'" not in raw and '"' not in raw:
        return raw
    out = []
    for piece in _QUOTED_OR_BARE.finditer(raw):
        quoted = piece.group("quoted")
        out.append(piece.group("bare") if quoted is None else unescape(quoted[1:-1]))
    return "".join(out)


def last_unquoted(raw: str, char: str) -> int:
    """The index of the last `char` outside quoted pieces (-1 if none)."""
    if "'" not in raw and '"' not in raw:
        return raw.rfind(char)
    found = -1
    for piece in _QUOTED_OR_BARE.finditer(raw):
        bare = piece.group("bare")
        if bare is not None and char in bare:
            found = piece.start() + bare.rfind(char)
    return found


# Writing.

# Strings written bare in hparams: nothing the grammar would read differently.
_BARE_SCALAR = re.compile(r"[^\s,\[\"'][^,\[\x00-\x1f]*")


def format_scalar(field: _schema.Field, value: object, syntax: Syntax) -> str:
    """The canonical spelling of one value of `field` in `syntax`."""
    kind = _schema.kind_of(field)
    if kind is Kind.BOOL:
        return "true" if value else "false"
    if kind is Kind.FLOAT:
        return repr(float(value))  # type: ignore[arg-type]
    if kind is Kind.ENUM:
        number = int(value)  # type: ignore[call-overload]
        if syntax is Syntax.HPARAMS:
            return _schema.enum_spelling(field, number)
        return str(_schema.enum_type_of(field).values_by_number[number].name)
    if kind is Kind.STRING:
        text = str(value)
        if syntax is Syntax.HPARAMS and _BARE_SCALAR.fullmatch(text) and not text[-1].isspace():
            return text
        return quote(text, syntax)
    return str(value)


# Reading (hparam text; the text format has protobuf's tokenizer).


class ConversionError(ValueError):
    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint


def convert_scalar(field: _schema.Field, raw: str, *, quoted: bool = False) -> object:
    """Types one hparam value the way r1.15's `HParams.parse` did.

    Raises `ConversionError` (a `ValueError`) saying what was expected.
    """
    kind = _schema.kind_of(field)
    if kind is Kind.STRING:
        return raw
    if quoted:
        raise ConversionError("invalid-value", f"expects {_KIND_WORDS[kind]}, got a quoted string")
    if kind is Kind.ENUM:
        return _to_enum(field, raw)
    return _CONVERTERS[kind](raw)


_KIND_WORDS = {
    Kind.INT: "an integer",
    Kind.FLOAT: "a number",
    Kind.BOOL: "a boolean (true, false, True, False, 0 or 1)",
    Kind.ENUM: "one of the listed values",
    Kind.STRING: "a string",
    Kind.MESSAGE: "a message",
}
_BOOLS = {"true": True, "True": True, "false": False, "False": False}


def _to_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConversionError(
            "invalid-value",
            f"expects an integer, got {raw!r}",
            hint="integers take no decimal point or exponent",
        ) from None
    if not _schema.INT64_MIN <= value <= _schema.INT64_MAX:
        raise ConversionError("int-out-of-range", f"{value} does not fit in a 64-bit integer")
    return value


def _to_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConversionError("invalid-value", f"expects a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConversionError("not-finite", f"must be a finite number, got {raw.strip()!r}")
    return value


def _to_bool(raw: str) -> bool:
    stripped = raw.strip()
    if stripped in _BOOLS:
        return _BOOLS[stripped]
    try:
        return bool(int(stripped))
    except ValueError:
        raise ConversionError(
            "invalid-value", f"expects {_KIND_WORDS[Kind.BOOL]}, got {raw!r}"
        ) from None


_CONVERTERS: dict[Kind, Callable[[str], object]] = {
    Kind.INT: _to_int,
    Kind.FLOAT: _to_float,
    Kind.BOOL: _to_bool,
}


def _to_enum(field: _schema.Field, raw: str) -> int:
    spellings = _schema.hparam_values(_schema.enum_type_of(field))
    value = raw.strip()
    if value in spellings:
        return spellings[value]
    raise ConversionError(
        "invalid-enum",
        f"{raw!r} is not a valid value",
        hint=_schema.did_you_mean(value, spellings) or "expected one of " + ", ".join(spellings),
    )
