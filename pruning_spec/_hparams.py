"""The hparam language: `tf.contrib.training.HParams.parse` syntax, typed by the schema.

    name=cifar10,target_sparsity=0.9,weight_sparsity_map=[conv1:0.8,"a,b:c":0.5]

A strict superset of r1.15's grammar for the pruning hparams: the same clause
syntax, list splitting and type coercions, plus quoted strings (single or
double, backslash escapes) wherever a string or a map pattern goes. Map entries
split on the last colon outside quotes. Names, types, list-ness and the entry
syntax of each map come from the descriptors of `pruning.proto`.

Every problem is reported with its character offset; after a malformed clause
parsing resumes at the next clause so one run reports them all.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import NamedTuple

from google.protobuf.message import Message

from pruning_spec import _schema
from pruning_spec._diagnostics import Diagnostic, Span
from pruning_spec._schema import Kind
from pruning_spec._textproto import ParsedSource, invalid_text, unencodable_offset
from pruning_spec.v1 import pruning_pb2

SOURCE = "<hparams>"

_NAME = re.compile(r"[A-Za-z][\w.]*")
_INDEX = re.compile(r"\[\s*\d+\s*\]")
_SPACE = re.compile(r"\s*")
_SCALAR = re.compile(r"[^,\[]*")
# One list element: bare runs and quoted strings glued together, up to a space, ',' or ']'.
_ELEMENT = re.compile(
    r"""(?=[^\s,\]])[^\s,\]"']*(?:(?:"[^"\\]*(?:\\.[^"\\]*)*"|'[^'\\]*(?:\\.[^'\\]*)*')"""
    r"""[^\s,\]"']*)*""",
    re.DOTALL,
)
_SEPARATORS = re.compile(r"[\s,]*")
_NEXT_CLAUSE = re.compile(r",\s*[A-Za-z][\w.]*\s*(?:\[\s*\d+\s*\])?\s*=")
_QUOTED_PIECE = re.compile(r""""((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([^"']+)""", re.DOTALL)
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r"}
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)
_BOOLS = {"true": True, "True": True, "false": False, "False": False}


class _Text(NamedTuple):
    """A piece of the input: its decoded value and where it was."""

    value: str
    offset: int
    length: int
    quoted: bool = False


class _Clause(NamedTuple):
    name: _Text
    value: _Text | list[_Text]
    value_span: _Text


# Quoted strings and list bodies are written as "unrolled loops" (normal* (special normal*)*):
# runs match at C speed, and since a run can only end where a special piece starts, a failed
# match cannot backtrack exponentially.
_QUOTED = r""""[^"\\]*(?:\\.[^"\\]*)*"|'[^'\\]*(?:\\.[^'\\]*)*'"""
# A well-formed clause up to its terminator. When this does not match, the step-by-step
# parser below explains what is wrong.
_FAST_CLAUSE = re.compile(
    rf"""(?P<name>[A-Za-z][\w.]*)\s*=\s*
    (?:(?P<list>\[[^\]"']*(?:(?:{_QUOTED})[^\]"']*)*\])
      |(?P<quoted>{_QUOTED})\s*
      |(?P<scalar>(?![\s"'])[^,\[]*))
    (?:,\s*|\Z)""",
    re.VERBOSE | re.DOTALL,
)


# A NamedTuple's own constructor is a Python-level __new__; the fast path builds many of them.
_new_text: Callable[[tuple[str, int, int, bool]], _Text] = functools.partial(tuple.__new__, _Text)
_new_clause: Callable[[tuple[_Text, _Text | list[_Text], _Text]], _Clause] = functools.partial(
    tuple.__new__, _Clause
)


class _MalformedError(Exception):
    def __init__(self, code: str, message: str, offset: int, length: int = 1, hint: str = ""):
        super().__init__(message)
        self.diagnostic = (code, message, offset, length, hint)


def parse_hparams_source(text: str, source: str = SOURCE) -> ParsedSource:
    """Parses an hparam string into the fields it assigns, collecting every diagnostic.

    The result's message holds only the assigned fields; `assigned_lists` names
    the list fields assigned (possibly to an empty list).
    """
    return _HParamParser(text, source).parse()


class _HParamParser:
    def __init__(self, text: str, source: str) -> None:
        self._text = text
        self._source = source
        self._result = ParsedSource(
            pruning_pb2.PruningSpec(), hparams_source=source, hparams_text=text
        )
        self._assigned: dict[str, int] = {}

    def parse(self) -> ParsedSource:
        offset = unencodable_offset(self._text)
        if offset is not None:
            self._result.diagnostics.append(invalid_text(self._span(offset)))
            return self._result
        for clause in self._parse_clauses():
            self._apply(clause)
        return self._result

    # Locations and diagnostics: every report goes through here.

    def _span(self, offset: int, length: int = 1) -> Span:
        return Span(self._source, offset=offset, length=max(1, length), text=self._text)

    def _report(
        self, code: str, message: str, offset: int, length: int = 1, path: str = "", hint: str = ""
    ) -> None:
        span = self._span(offset, length)
        self._result.diagnostics.append(Diagnostic(code, message, path, span=span, hint=hint))
        if path:
            self._result.failed_paths.add(path)

    # Grammar.

    def _parse_clauses(self) -> list[_Clause]:
        clauses: list[_Clause] = []
        text = self._text
        position = _SPACE.match(text).end()  # type: ignore[union-attr]
        while position < len(text):
            try:
                clause, position = self._parse_clause(position)
                clauses.append(clause)
            except _MalformedError as malformed:
                code, message, offset, length, hint = malformed.diagnostic
                self._report(code, message, offset, length, hint=hint)
                resume = _NEXT_CLAUSE.search(text, offset)
                if resume is None:
                    break
                position = _SPACE.match(text, resume.start() + 1).end()  # type: ignore[union-attr]
        return clauses

    def _parse_clause(self, start: int) -> tuple[_Clause, int]:
        fast = _FAST_CLAUSE.match(self._text, start)
        if fast is None or self._text.startswith(",", fast.end()):
            return self._parse_clause_stepwise(start)
        return self._clause_from_match(fast), fast.end()

    def _clause_from_match(self, match: re.Match[str]) -> _Clause:
        name, as_list, quoted, scalar = match.groups()
        name_text = _new_text((name, match.start(), len(name), False))
        if as_list is not None:
            begin, end = match.span(2)
            items = [
                _new_text((e.group(), e.start(), e.end() - e.start(), False))
                for e in _ELEMENT.finditer(self._text, begin + 1, end - 1)
            ]
            return _new_clause((name_text, items, _new_text(("", begin, end - begin, False))))
        if quoted is not None:
            begin = match.start(3)
            value = _new_text((_unescape(quoted[1:-1]), begin, len(quoted), True))
            return _new_clause((name_text, value, _new_text(("", begin, len(quoted), False))))
        value = _new_text((scalar, match.start(4), len(scalar), False))
        return _new_clause((name_text, value, value))

    def _parse_clause_stepwise(self, start: int) -> tuple[_Clause, int]:
        text = self._text
        name_match = _NAME.match(text, start)
        if name_match is None:
            raise _MalformedError(
                "malformed",
                "expected a hyperparameter name",
                start,
                hint="clauses look like name=value, separated by commas",
            )
        name = _Text(name_match.group(), start, name_match.end() - start)
        position = name_match.end()
        index = _INDEX.match(text, position)
        if index is not None:
            raise _MalformedError(
                "index-assignment",
                f"index assignment to '{name.value}' is not supported",
                position,
                index.end() - position,
                hint="assign the whole list: name=[a,b]",
            )
        position = _SPACE.match(text, position).end()  # type: ignore[union-attr]
        if not text.startswith("=", position):
            raise _MalformedError("malformed", f"expected '=' after '{name.value}'", position)
        position = _SPACE.match(text, position + 1).end()  # type: ignore[union-attr]
        value: _Text | list[_Text]
        if text.startswith("[", position):
            value, end = self._parse_list(position)
        else:
            value, end = self._parse_scalar(position)
        value_span = _Text("", position, end - position)
        return _Clause(name, value, value_span), self._parse_terminator(end)

    def _parse_scalar(self, start: int) -> tuple[_Text, int]:
        text = self._text
        if text.startswith(('"', "'"), start):
            quoted = self._parse_quoted(start)
            end = _SPACE.match(text, start + quoted.length).end()  # type: ignore[union-attr]
            return quoted, end
        end = _SCALAR.match(text, start).end()  # type: ignore[union-attr]
        if text.startswith("[", end):
            raise _MalformedError(
                "malformed", "'[' inside a value", end, hint='quote the value: name="..."'
            )
        return _Text(text[start:end], start, end - start), end

    def _parse_quoted(self, start: int) -> _Text:
        text = self._text
        quote = text[start]
        position = start + 1
        while True:
            position = _next_of(text, quote + "\\", position)
            if position >= len(text):
                raise _MalformedError(
                    "unterminated-quote",
                    f"unterminated string: missing closing {quote}",
                    start,
                    len(text) - start,
                )
            if text[position] == "\\":
                position += 2
                continue
            return _Text(_unescape(text[start + 1 : position]), start, position + 1 - start, True)

    def _parse_list(self, start: int) -> tuple[list[_Text], int]:
        text = self._text
        items: list[_Text] = []
        position = start + 1
        while True:
            position = _SEPARATORS.match(text, position).end()  # type: ignore[union-attr]
            if position >= len(text):
                raise _MalformedError(
                    "malformed", "unterminated list: missing ']'", start, len(text) - start
                )
            if text[position] == "]":
                return items, position + 1
            element = _ELEMENT.match(text, position)
            if element is None or element.end() == position:  # a quote that is never closed
                self._parse_quoted(position)
                raise AssertionError("unreachable: _parse_quoted raises")  # pragma: no cover
            items.append(_Text(element.group(), position, element.end() - position))
            position = element.end()

    def _parse_terminator(self, position: int) -> int:
        text = self._text
        if position >= len(text):
            return position
        if text[position] != ",":
            raise _MalformedError(
                "malformed",
                f"unexpected {text[position]!r} after the value",
                position,
                hint="separate clauses with ',' and quote values containing ',' or '['",
            )
        position = _SPACE.match(text, position + 1).end()  # type: ignore[union-attr]
        if text.startswith(",", position):
            raise _MalformedError("malformed", "empty clause", position)
        return position

    # Typing and assignment.

    def _apply(self, clause: _Clause) -> None:
        name = clause.name
        field = _schema.FIELDS.get(name.value)
        if field is None:
            self._report(
                "unknown-name",
                f"unknown hyperparameter '{name.value}'",
                name.offset,
                name.length,
                hint=_schema.did_you_mean(name.value, _schema.FIELDS),
            )
            return
        if name.value in self._assigned:
            self._report(
                "duplicate-assignment",
                "is assigned more than once",
                name.offset,
                name.length,
                name.value,
                hint=f"first assigned at offset {self._assigned[name.value]}",
            )
            return
        self._assigned[name.value] = name.offset
        message = self._result.message
        value = clause.value
        if isinstance(value, list):
            self._apply_list(message, field, value, clause.value_span)
        elif field.is_repeated:
            self._report(
                "expected-list",
                "is a list: put its value in brackets",
                clause.value_span.offset,
                clause.value_span.length,
                name.value,
                hint=f"{name.value}=[{value.value}]",
            )
        else:
            self._result.offsets[name.value] = (value.offset, value.length)
            converted = self._convert(field, value, name.value)
            if converted is not None:
                setattr(message, name.value, converted)

    def _apply_list(
        self, message: Message, field: _schema.Field, items: list[_Text], span: _Text
    ) -> None:
        if not field.is_repeated:
            self._report(
                "unexpected-list",
                "takes a single value, not a list",
                span.offset,
                span.length,
                field.name,
            )
            return
        self._result.assigned_lists.add(field.name)
        self._result.offsets[field.name] = (span.offset, span.length)
        container = getattr(message, field.name)
        shape = _schema.rule_shape(field)  # every list is a rule list (tests/core/test_schema.py)
        for item in items:
            self._apply_rule(shape, container, item)

    def _apply_rule(self, shape: _schema.RuleShape, container: list[Message], item: _Text) -> None:
        raw = item.value
        quoted = '"' in raw or "'" in raw
        colon = _last_unquoted_colon(raw) if quoted else raw.rfind(":")
        if colon < 0:
            if _decode_pieces(item.value) == "":
                return  # r1.15: empty entries ('' in ['']) are dropped
            self._report(
                "bad-map-entry",
                f"map entry {item.value!r} has no ':'",
                item.offset,
                item.length,
                shape.name,
                hint=f"write {shape.syntax}",
            )
            return
        path = f"{shape.name}[{len(container)}]"
        rule = container.add()  # type: ignore[attr-defined]
        self._result.offsets[path] = (item.offset, item.length)
        self._result.rule_entries[path] = (item.offset, raw, colon)  # fields located lazily
        setattr(rule, shape.key, _decode_pieces(raw[:colon]) if quoted else raw[:colon])
        self._apply_rule_values(shape, rule, item, colon, path)

    def _apply_rule_values(
        self, shape: _schema.RuleShape, rule: Message, item: _Text, colon: int, path: str
    ) -> None:
        raw = item.value[colon + 1 :]
        offset = item.offset + colon + 1
        separator = shape.separator
        parts = raw.split(separator) if separator else [raw]
        if len(parts) != len(shape.values):
            self._report(
                "bad-map-entry",
                f"expected {shape.syntax.partition(':')[2]} after ':', got {raw!r}",
                offset,
                len(raw),
                path,
                hint=f"write {shape.syntax}",
            )
            return
        for (name, value_field), part in zip(shape.values, parts, strict=True):
            try:
                setattr(rule, name, convert_scalar(value_field, part))
            except ConversionError as error:
                self._report(
                    error.code, str(error), offset, len(part), f"{path}.{name}", error.hint
                )
            offset += len(part) + len(separator)

    def _convert(self, field: _schema.Field, text: _Text, path: str) -> object:
        try:
            return convert_scalar(field, text.value, quoted=text.quoted)
        except ConversionError as error:
            self._report(error.code, str(error), text.offset, text.length, path, error.hint)
            return None


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


def _next_of(text: str, chars: str, start: int) -> int:
    """The index of the first of `chars` at or after `start` (len(text) if none)."""
    found = [i for i in (text.find(c, start) for c in chars) if i >= 0]
    return min(found, default=len(text))


def _unescape(body: str) -> str:
    return _UNESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), body)


def _decode_pieces(raw: str) -> str:
    """Joins the quoted (unescaped) and bare pieces of a list element."""
    if "'" not in raw and '"' not in raw:
        return raw
    out = []
    for match in _QUOTED_PIECE.finditer(raw):
        double, single, bare = match.groups()
        if bare is not None:
            out.append(bare)
        else:
            out.append(_unescape(double if double is not None else single))
    return "".join(out)


def _last_unquoted_colon(raw: str) -> int:
    if "'" not in raw and '"' not in raw:
        return raw.rfind(":")
    colon = -1
    for match in _QUOTED_PIECE.finditer(raw):
        if match.group(3) is not None and ":" in match.group(3):
            colon = match.start(3) + match.group(3).rfind(":")
    return colon


# Rendering.

_BARE_SCALAR = re.compile(r"[^\s,\[\"'][^,\[\x00-\x1f]*")
_BARE_ELEMENT = re.compile(r"[^\s,\]\"'\x00-\x1f]+")


def quote(text: str) -> str:
    """A double-quoted string that `_parse_quoted` reads back as `text`."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{escaped}"'


def format_value(field: _schema.Field, value: object) -> str:
    kind = _schema.kind_of(field)
    if kind is Kind.BOOL:
        return "true" if value else "false"
    if kind is Kind.FLOAT:
        return repr(float(value))  # type: ignore[arg-type]
    if kind is Kind.ENUM:
        return _schema.enum_spelling(field, value)  # type: ignore[arg-type]
    if kind is Kind.STRING:
        text = str(value)
        bare = _BARE_SCALAR.fullmatch(text) and not text[-1].isspace()
        return text if bare else quote(text)
    return str(value)


def _format_rule(field: _schema.Field, rule: Message) -> str:
    shape = _schema.rule_shape(field)
    key = getattr(rule, shape.key)
    # Bare keys may hold colons (the entry splits on the last one) but not quotes.
    key_text = key if _BARE_ELEMENT.fullmatch(key) else quote(key)
    values = [format_value(f, getattr(rule, name)) for name, f in shape.values]
    return f"{key_text}:{shape.separator.join(values)}"


def render_hparams(spec: pruning_pb2.PruningSpec, *, include_defaults: bool = True) -> str:
    """The canonical hparam string of a spec, in schema order.

    With `include_defaults=False` only the fields that differ from their
    default are written; either form parses back to the same spec.
    """
    clauses = []
    for field in spec.DESCRIPTOR.fields:
        value = getattr(spec, field.name)
        if field.is_repeated:
            if not value and not include_defaults:
                continue
            body = ",".join(_format_rule(field, rule) for rule in value)
            clauses.append(f"{field.name}=[{body}]")
            continue
        # repr tells -0.0 from the default 0.0, which == does not.
        if not include_defaults and repr(value) == repr(field.default_value):
            continue
        clauses.append(f"{field.name}={format_value(field, value)}")
    return ",".join(clauses)
