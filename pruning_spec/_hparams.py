"""The hparam language: `tf.contrib.training.HParams.parse` syntax, typed by the schema.

    name=cifar10,target_sparsity=0.9,weight_sparsity_map=[conv1:0.8,"a,b:c":0.5]

A strict superset of r1.15's grammar for the pruning hparams: the same clause
syntax, list splitting and type coercions, plus quoted strings (single or
double, backslash escapes) wherever a string or a map pattern goes. Map entries
split on the last colon outside quotes. Names, types, list-ness and the entry
syntax of each map come from the descriptors of `pruning.proto`.

The grammar is written once, as the named pieces below; a clause is read by
the one regex they compose. When that regex does not match, `_explain` walks
the same pieces to say where and why. Every problem is reported with its
character offset; after a malformed clause parsing resumes at the next clause
so one run reports them all.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import NamedTuple

from google.protobuf.message import Message

from pruning_spec import _entries, _schema
from pruning_spec._diagnostics import Diagnostic, Span
from pruning_spec._scalars import QUOTED_STRING, ConversionError, convert_scalar, unescape
from pruning_spec._textproto import ParsedSource, invalid_text, unencodable_offset
from pruning_spec.v1 import pruning_pb2

SOURCE = "<hparams>"

# The grammar. A clause is `name = value` and then ',' or the end; a value is a list,
# a quoted string or a bare scalar. List bodies are unrolled loops like QUOTED_STRING.
_NAME = r"[A-Za-z][\w.]*"
_INDEX = r"\[\s*\d+\s*\]"
_LIST_PREFIX = rf"""\[[^\]"']*(?:(?:{QUOTED_STRING})[^\]"']*)*"""
_LIST = rf"{_LIST_PREFIX}\]"
_SCALAR = r"""(?![\s"'])[^,\[]*"""
_CLAUSE_END = r"(?:,\s*|\Z)"
_CLAUSE = re.compile(
    rf"""(?P<name>{_NAME})\s*=\s*
    (?:(?P<list>{_LIST})|(?P<quoted>{QUOTED_STRING})\s*|(?P<scalar>{_SCALAR}))
    {_CLAUSE_END}""",
    re.VERBOSE | re.DOTALL,
)
# One list element: bare runs and quoted strings glued together, up to a space, ',' or ']'.
_ELEMENT = re.compile(rf"""(?=[^\s,\]])[^\s,\]"']*(?:(?:{QUOTED_STRING})[^\s,\]"']*)*""", re.DOTALL)
# Where recovery resumes after a malformed clause: the start of something clause-like.
_NEXT_CLAUSE = re.compile(rf",\s*{_NAME}\s*(?:{_INDEX})?\s*=")

_NAME_RE = re.compile(_NAME)
_INDEX_RE = re.compile(_INDEX)
_LIST_PREFIX_RE = re.compile(_LIST_PREFIX, re.DOTALL)
_QUOTED_RE = re.compile(QUOTED_STRING, re.DOTALL)
_SCALAR_RE = re.compile(r"[^,\[]*")
_SPACE = re.compile(r"\s*")


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


# A NamedTuple's own constructor is a Python-level __new__; parsing builds many of them.
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
        self, code: str, message: str, offset: int, length: int, path: str = "", hint: str = ""
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
        match = _CLAUSE.match(self._text, start)
        if match is None or self._text.startswith(",", match.end()):
            raise self._explain(start)
        return self._clause_from_match(match), match.end()

    def _clause_from_match(self, match: re.Match[str]) -> _Clause:
        name, as_list, quoted, scalar = match.groups()
        name_text = _new_text((name, match.start(), len(name), False))
        if as_list is not None:
            begin, end = match.span("list")
            items = [
                _new_text((e.group(), e.start(), e.end() - e.start(), False))
                for e in _ELEMENT.finditer(self._text, begin + 1, end - 1)
            ]
            return _new_clause((name_text, items, _new_text(("", begin, end - begin, False))))
        if quoted is not None:
            begin = match.start("quoted")
            value = _new_text((unescape(quoted[1:-1]), begin, len(quoted), True))
            return _new_clause((name_text, value, _new_text(("", begin, len(quoted), False))))
        value = _new_text((scalar, match.start("scalar"), len(scalar), False))
        return _new_clause((name_text, value, value))

    # Explaining: the clause at `start` does not match; walk the grammar's pieces in turn
    # and report the first that fails.

    def _explain(self, start: int) -> _MalformedError:
        text = self._text
        name = _NAME_RE.match(text, start)
        if name is None:
            return _MalformedError(
                "malformed",
                "expected a hyperparameter name",
                start,
                hint="clauses look like name=value, separated by commas",
            )
        position = name.end()
        index = _INDEX_RE.match(text, position)
        if index is not None:
            return _MalformedError(
                "index-assignment",
                f"index assignment to '{name.group()}' is not supported",
                position,
                index.end() - position,
                hint="assign the whole list: name=[a,b]",
            )
        position = self._skip_space(position)
        if not text.startswith("=", position):
            return _MalformedError("malformed", f"expected '=' after '{name.group()}'", position)
        position = self._skip_space(position + 1)
        try:
            end = self._value_end(position)
        except _MalformedError as malformed:
            return malformed
        return self._explain_end(end, text[start:])

    def _value_end(self, start: int) -> int:
        """Where the value at `start` ends; raises `_MalformedError` where it breaks."""
        text = self._text
        if text.startswith("[", start):
            prefix_end = _LIST_PREFIX_RE.match(text, start).end()  # type: ignore[union-attr]
            if prefix_end >= len(text):
                raise _MalformedError(
                    "malformed", "unterminated list: missing ']'", start, len(text) - start
                )
            if text[prefix_end] != "]":  # a quote that is never closed
                self._quoted_end(prefix_end)
            return prefix_end + 1
        if text.startswith(('"', "'"), start):
            return self._skip_space(self._quoted_end(start))
        end = _SCALAR_RE.match(text, start).end()  # type: ignore[union-attr]
        if text.startswith("[", end):
            raise _MalformedError(
                "malformed", "'[' inside a value", end, hint='quote the value: name="..."'
            )
        return end

    def _quoted_end(self, start: int) -> int:
        quoted = _QUOTED_RE.match(self._text, start)
        if quoted is None:
            raise _MalformedError(
                "unterminated-quote",
                f"unterminated string: missing closing {self._text[start]}",
                start,
                len(self._text) - start,
            )
        return quoted.end()

    def _explain_end(self, position: int, clause: str) -> _MalformedError:
        text = self._text
        if position < len(text) and text[position] != ",":
            return _MalformedError(
                "malformed",
                f"unexpected {text[position]!r} after the value",
                position,
                hint="separate clauses with ',' and quote values containing ',' or '['",
            )
        position = self._skip_space(position + 1)
        if text.startswith(",", position):
            return _MalformedError("malformed", "empty clause", position)
        # Every piece matched, so _CLAUSE must have: the two disagree.
        raise AssertionError(f"the hparam grammar and its explanation disagree on {clause!r}")

    def _skip_space(self, position: int) -> int:
        return _SPACE.match(self._text, position).end()  # type: ignore[union-attr]

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
        reading = _entries.read_entry(shape, item.value, quoting=True)
        if reading.is_empty:
            return  # r1.15: empty entries ('' in ['']) are dropped
        path = shape.name
        if reading.colon >= 0:
            path = f"{shape.name}[{len(container)}]"
            _entries.fill_rule(shape, container.add(), reading)  # type: ignore[attr-defined]
            self._result.offsets[path] = (item.offset, item.length)
            # Where each of the rule's fields is written is worked out only when asked.
            self._result.rule_entries[path] = (item.offset, item.value, reading.colon)
        for problem in reading.problems:
            self._report(
                problem.code,
                problem.message,
                item.offset + problem.offset,
                problem.length,
                f"{path}.{problem.field}" if problem.field else path,
                problem.hint,
            )

    def _convert(self, field: _schema.Field, text: _Text, path: str) -> object:
        try:
            return convert_scalar(field, text.value, quoted=text.quoted)
        except ConversionError as error:
            self._report(error.code, str(error), text.offset, text.length, path, error.hint)
            return None
