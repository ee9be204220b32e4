"""Strict text-format parsing that keeps going after a mistake.

protobuf's own parser stops at the first error and keeps no positions, so this
walks the text with its public `Tokenizer`: every field's `line:col` is
recorded under its field path (`weight_sparsity_map[2].sparsity`), unknown
names get a did-you-mean, and one bad field does not hide the next one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import re

from google.protobuf import text_format
from google.protobuf.message import Message

from pruning_spec import _entries, _schema
from pruning_spec._diagnostics import (
    Diagnostic,
    Span,
    TooManyProblemsError,
    line_and_column,
    stop_if_too_many,
)
from pruning_spec._schema import Kind
from pruning_spec.v1 import pruning_pb2

MESSAGE_CLOSING = {"{": "}", "<": ">"}
_CLOSING = {**MESSAGE_CLOSING, "[": "]"}
# protobuf prefixes some messages with the whole offending line in quotes.
_QUOTED_LINE = re.compile(r"^'.*?': ")


class _FieldError(Exception):
    """A syntax error inside the value of the field at `path`."""

    def __init__(self, error: text_format.ParseError, path: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.path = path


class Step(enum.Enum):
    """What one item of a file's layout is."""

    SCALAR = "scalar"  # `name: value`
    OPEN = "open"  # `name {` (or `<`), also each element of `name: [{...}, ...]`
    CLOSE = "close"  # `}` (or `>`)
    EMPTY_LIST = "empty-list"  # `name: []`


@dataclasses.dataclass(frozen=True)
class LayoutItem:
    """One item of a file's structure, where its first and last tokens are (line, column)."""

    step: Step
    start: tuple[int, int]
    end: tuple[int, int]
    name: str = ""
    field: _schema.Field | None = None
    value: object = None  # a scalar's parsed value


@dataclasses.dataclass(frozen=True)
class Comment:
    line: int
    column: int
    text: str  # from '#' to the end of the line, trailing space removed


@dataclasses.dataclass
class Layout:
    """A file's structure and comments, in source order: what `fmt` lays out again."""

    items: list[LayoutItem] = dataclasses.field(default_factory=list)
    comments: list[Comment] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ParsedSource:
    """A message as parsed from one source, with where each field came from."""

    message: pruning_pb2.PruningSpec
    positions: dict[str, Span] = dataclasses.field(default_factory=dict)
    diagnostics: list[Diagnostic] = dataclasses.field(default_factory=list)
    failed_paths: set[str] = dataclasses.field(default_factory=set)
    # List fields the source assigns, even to an empty list (overrides replace them).
    assigned_lists: set[str] = dataclasses.field(default_factory=set)
    # Fields from an hparam string: path -> (offset, length) in `hparams_text`. Spans are
    # built only when a diagnostic needs one, which keeps parsing a flag cheap.
    offsets: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    hparams_source: str = ""
    hparams_text: str = ""
    # Map entries from an hparam string: rule path -> (offset, entry text, index of the
    # colon); where each of the rule's fields is written is worked out only when asked.
    rule_entries: dict[str, tuple[int, str, int]] = dataclasses.field(default_factory=dict)
    # The file or stream the message came from, for diagnostics no field locates.
    source: str = ""
    # Text format only, when asked for (`keep_layout`).
    layout: Layout | None = None

    def locate(self, path: str) -> Span | None:
        span = self.positions.get(path)
        if span is not None:
            return span
        where = self.offsets.get(path) or self._rule_field_offset(path)
        if where is None:
            return None
        offset, length = where
        return Span(self.hparams_source, offset=offset, length=length, text=self.hparams_text)

    def _rule_field_offset(self, path: str) -> tuple[int, int] | None:
        rule_path, _, name = path.rpartition(".")
        entry = self.rule_entries.get(rule_path)
        if entry is None:
            return None
        offset, raw, colon = entry
        shape = _schema.rule_shape(_schema.FIELDS[rule_path.split("[", 1)[0]])
        if name == shape.key:
            return offset, colon or 1
        parts = _entries.value_parts(shape, raw, colon)
        names = [value_name for value_name, _ in shape.values]
        if parts is None or name not in names:
            return None
        text, start = parts[names.index(name)]
        return offset + start, len(text) or 1


def text_lines(text: str) -> list[str]:
    """Lines as text format counts them: only '\\n' ends a line.

    `str.splitlines` would also split on \\x0b, \\x1c or U+2028 inside a string.
    """
    return text.split("\n")


class ValueProblemError(ValueError):
    """A value that is well-formed text but not acceptable for its field."""

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint


def read_scalar(tokenizer: text_format.Tokenizer, field: _schema.Field) -> object:
    """Consumes one value of a scalar field. Raises ParseError or ValueProblemError."""
    kind = _schema.kind_of(field)
    if kind is Kind.INT:
        value = tokenizer.ConsumeInteger()
        if not _schema.INT64_MIN <= value <= _schema.INT64_MAX:
            raise ValueProblemError("int-out-of-range", f"{value} does not fit in a 64-bit integer")
        return value
    if kind is Kind.FLOAT:
        return tokenizer.ConsumeFloat()
    if kind is Kind.BOOL:
        return tokenizer.ConsumeBool()
    if kind is Kind.STRING:
        return tokenizer.ConsumeString()
    return _read_enum(tokenizer, field)


def _read_enum(tokenizer: text_format.Tokenizer, field: _schema.Field) -> int:
    if tokenizer.token[:1].isdigit() or tokenizer.token.startswith("-"):
        number = int(tokenizer.ConsumeInteger())
        if not _schema.INT32_MIN <= number <= _schema.INT32_MAX:
            raise ValueProblemError("invalid-enum", f"{number} is not a valid value")
        return number
    name = tokenizer.ConsumeIdentifier()
    value = _schema.enum_type_of(field).values_by_name.get(name)
    if value is None:
        spellings = _schema.hparam_values(_schema.enum_type_of(field))
        hint = _schema.did_you_mean(name, spellings) or "expected one of " + ", ".join(spellings)
        raise ValueProblemError("invalid-enum", f"{name} is not a valid value", hint)
    return int(value.number)


def unencodable_offset(text: str) -> int | None:
    """Where `text` holds a lone surrogate (not UTF-8 encodable), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None


def parse_textproto(
    text: str, source: str = "<string>", *, keep_layout: bool = False
) -> ParsedSource:
    """Parses a `PruningSpec` in text format, collecting every diagnostic.

    With `keep_layout`, the result's `layout` also holds every field and comment in
    source order, with positions.
    """
    offset = unencodable_offset(text)
    if offset is not None:
        line, column = line_and_column(text, offset)
        result = ParsedSource(pruning_pb2.PruningSpec())
        result.diagnostics.append(invalid_text(Span(source, line, column)))
        return result
    return _TextParser(text, source, keep_layout=keep_layout).parse()


def invalid_text(span: Span) -> Diagnostic:
    return Diagnostic(
        "invalid-text",
        "holds a lone surrogate, which is not valid Unicode text",
        span=span,
        hint="was the text decoded with errors='surrogateescape'?",
    )


_STRUCTURE = re.compile(r"[{}\[\]<>\"'#]")


def _skip_plain_rest_of_line(tokenizer: text_format.Tokenizer) -> None:
    """Jumps over the rest of the current line when it holds no bracket, quote or comment.

    Recovery skips such tokens one at a time; a 4 MiB line of garbage would take seconds.
    Like `token_position`, this reads and sets the tokenizer's own fields.
    """
    line: str = tokenizer._current_line  # type: ignore[attr-defined]
    column: int = tokenizer._column  # type: ignore[attr-defined]
    if column < len(line) and _STRUCTURE.search(line, column) is None:
        tokenizer._column = len(line)  # type: ignore[attr-defined]
        tokenizer.NextToken()


def token_position(tokenizer: text_format.Tokenizer) -> tuple[int, int]:
    """The 1-based line and column of the tokenizer's current token.

    Read from its fields: its public way, `ParseError("")`, copies the whole current
    line, which made locating every token of a one-line file quadratic.
    """
    return tokenizer._line + 1, tokenizer._column + 1  # type: ignore[attr-defined]


class _CommentKeepingTokenizer(text_format.Tokenizer):
    """Skips comments as the default tokenizer does, keeping each with its position."""

    def __init__(self, lines: list[str]) -> None:
        self.comments: list[Comment] = []  # before the base class reads the first token
        super().__init__(lines, skip_comments=False)

    def NextToken(self) -> None:  # noqa: N802 - overrides protobuf's name
        super().NextToken()
        while self.token.startswith("#"):
            line, column = token_position(self)
            self.comments.append(Comment(line, column, self.token.rstrip()))
            super().NextToken()


class _TextParser:
    def __init__(self, text: str, source: str, *, keep_layout: bool = False) -> None:
        self._source = source
        self._result = ParsedSource(pruning_pb2.PruningSpec(), source=source)
        self._layout: list[LayoutItem] | None = None
        self._field_start = (0, 0)  # where the field being parsed starts, for the layout
        if keep_layout:
            tokenizer = _CommentKeepingTokenizer(text_lines(text))
            self._result.layout = Layout(comments=tokenizer.comments)
            self._layout = self._result.layout.items
            self._tokenizer: text_format.Tokenizer = tokenizer
        else:
            self._tokenizer = text_format.Tokenizer(text_lines(text))

    def parse(self) -> ParsedSource:
        with contextlib.suppress(TooManyProblemsError):
            self._parse_fields(self._result.message, "", closing=None)
        return self._result

    # Positions and diagnostics.

    def _position(self) -> tuple[int, int]:
        return token_position(self._tokenizer)

    def _record(self, item: LayoutItem) -> None:
        if self._layout is not None:
            self._layout.append(item)

    def _here(self, length: int = 1) -> Span:
        line, column = token_position(self._tokenizer)
        return Span(self._source, line, column, length=length)

    def _report(self, code: str, message: str, span: Span, path: str = "", hint: str = "") -> None:
        stop_if_too_many(self._result.diagnostics, self._source)
        self._result.diagnostics.append(Diagnostic(code, message, path, span=span, hint=hint))

    def _report_syntax(self, error: text_format.ParseError, path: str) -> None:
        span = Span(self._source, error.GetLine(), error.GetColumn())
        message = _QUOTED_LINE.sub("", str(error).split(" : ", 1)[-1])
        self._report("syntax", message, span, path)
        if path:
            self._result.failed_paths.add(path)

    # Grammar.

    def _parse_fields(self, message: Message, prefix: str, closing: str | None) -> None:
        seen: dict[str, Span] = {}
        while True:
            if self._tokenizer.AtEnd():
                if closing is not None:
                    self._report(
                        "syntax",
                        f"expected '{closing}' before the end of the file",
                        self._here(),
                        prefix.rstrip("."),
                    )
                    self._result.failed_paths.add(prefix.rstrip("."))
                return
            position = self._position()
            if closing is not None and self._tokenizer.TryConsume(closing):
                self._record(LayoutItem(Step.CLOSE, position, position))
                return
            try:
                self._parse_field(message, prefix, seen)
            except _FieldError as failure:
                self._report_syntax(failure.error, failure.path)
                self._recover(closing, failure.error.GetLine())
            except text_format.ParseError as error:
                self._report_syntax(error, "")
                self._recover(closing, error.GetLine())

    def _parse_field(self, message: Message, prefix: str, seen: dict[str, Span]) -> None:
        span = self._here()
        self._field_start = self._position()
        if self._tokenizer.TryConsume("["):
            self._report(
                "unknown-field", "extensions and Any fields are not part of a pruning spec", span
            )
            self._skip_until("]")
            self._skip_value()
            return
        name = self._tokenizer.ConsumeIdentifier()
        span = Span(self._source, span.line, span.column, length=len(name))
        field = message.DESCRIPTOR.fields_by_name.get(name)
        if field is None:
            self._report_unknown_field(message, name, prefix, span)
            self._skip_value()
            return
        path = prefix + name
        try:
            self._parse_field_value(message, field, path, span, seen)
        except text_format.ParseError as error:
            raise _FieldError(error, path) from None
        if not self._tokenizer.TryConsume(","):
            self._tokenizer.TryConsume(";")

    def _parse_field_value(
        self, message: Message, field: _schema.Field, path: str, span: Span, seen: dict[str, Span]
    ) -> None:
        name = field.name
        if not field.is_repeated and name in seen:
            first = seen[name]
            self._report(
                "duplicate-field",
                "is set more than once",
                span,
                path,
                hint=f"first set at line {first.line}",
            )
            self._skip_value()
        elif _schema.kind_of(field) is Kind.MESSAGE:
            self._tokenizer.TryConsume(":")
            self._parse_message_values(message, field, path, span)
        else:
            self._result.positions.setdefault(path, span)
            seen[name] = span
            self._tokenizer.Consume(":")
            self._parse_scalar_value(message, field, path)

    def _report_unknown_field(self, message: Message, name: str, prefix: str, span: Span) -> None:
        candidates = message.DESCRIPTOR.fields_by_name.keys()
        where = prefix.rstrip(".") or message.DESCRIPTOR.name
        self._report(
            "unknown-field",
            f"{where} has no field named '{name}'",
            span,
            hint=_schema.did_you_mean(name, candidates),
        )

    def _parse_message_values(
        self, message: Message, field: _schema.Field, path: str, span: Span
    ) -> None:
        container = getattr(message, field.name)
        start = self._field_start
        if field.is_repeated and self._tokenizer.TryConsume("["):
            end = self._position()
            if self._tokenizer.TryConsume("]"):
                self._record(LayoutItem(Step.EMPTY_LIST, start, end, field.name, field))
                return
            while True:
                self._parse_one_message(container, field, path, self._here(), self._position())
                if self._tokenizer.TryConsume("]"):
                    return
                self._tokenizer.Consume(",")
        self._parse_one_message(container, field, path, span, start)

    def _parse_one_message(
        self,
        container: list[Message],
        field: _schema.Field,
        path: str,
        span: Span,
        start: tuple[int, int],
    ) -> None:
        opening = self._tokenizer.token
        if opening not in ("{", "<"):
            here = self._here()
            message = f"expected '{{' to start {path}, got '{opening}'"
            raise text_format.ParseError(message, here.line, here.column)
        opening_at = self._position()
        self._tokenizer.NextToken()
        self._record(LayoutItem(Step.OPEN, start, opening_at, field.name, field))
        element = container.add()  # type: ignore[attr-defined]
        element_path = f"{path}[{len(container) - 1}]"
        self._result.positions[element_path] = span
        self._parse_fields(element, element_path + ".", _CLOSING[opening])

    def _parse_scalar_value(self, message: Message, field: _schema.Field, path: str) -> None:
        start, end = self._field_start, self._position()
        value = self._consume_scalar(field, path)
        if value is not None:
            setattr(message, field.name, value)
            self._record(LayoutItem(Step.SCALAR, start, end, field.name, field, value))

    def _consume_scalar(self, field: _schema.Field, path: str) -> object:
        span = self._here(len(self._tokenizer.token))
        try:
            return read_scalar(self._tokenizer, field)
        except ValueProblemError as problem:
            self._report(problem.code, str(problem), span, path, hint=problem.hint)
            self._result.failed_paths.add(path)
            return None
        except text_format.ParseError as error:  # point at the value, in plain words
            message = _QUOTED_LINE.sub("", str(error).split(" : ", 1)[-1])
            if "codec" in message:
                message = "invalid escape sequence in string"
            raise text_format.ParseError(message, span.line, span.column) from None

    # Skipping and recovery.

    def _skip_value(self) -> None:
        tokenizer = self._tokenizer
        tokenizer.TryConsume(":")
        if tokenizer.token in _CLOSING:
            opening = tokenizer.token
            tokenizer.NextToken()
            self._skip_until(_CLOSING[opening])
        elif not tokenizer.AtEnd():
            tokenizer.NextToken()
        if not tokenizer.TryConsume(","):
            tokenizer.TryConsume(";")

    def _skip_until(self, closing: str) -> None:
        """Skips a balanced group whose opening token was just consumed."""
        depth = 1
        while not self._tokenizer.AtEnd():
            token = self._tokenizer.token
            self._tokenizer.NextToken()
            if token in _CLOSING:
                depth += 1
            elif token in _CLOSING.values():
                depth -= 1
                if depth == 0 and token == closing:
                    return

    def _recover(self, closing: str | None, line: int | None) -> None:
        """After an error on `line`, skips to the next line's field (or the enclosing close)."""
        depth = 0
        tokenizer = self._tokenizer
        while not tokenizer.AtEnd():
            if depth == 0 and self._here().line == line:
                _skip_plain_rest_of_line(tokenizer)
            token = tokenizer.token
            if depth == 0 and token == closing:
                return
            if depth == 0 and self._here().line != line and token[:1].isalpha():
                return
            if token in _CLOSING:
                depth += 1
            elif token in _CLOSING.values():
                depth = max(0, depth - 1)
            tokenizer.NextToken()
