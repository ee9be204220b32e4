"""`pruning-spec fmt`: the canonical layout of a spec file, comments included.

Fields keep the order the author gave them; layout is normalized: one field per
line, two-space indentation, `name: value`, rules as `name { ... }` blocks,
values in canonical spelling, at most one blank line in a row. Every comment is
kept, attached to the field it precedes or follows. The result is checked
before anything is written: it must parse to the same spec and hold the same
comments, otherwise the file is left alone.
"""

from __future__ import annotations

import dataclasses

from google.protobuf import text_format

from pruning_spec import _schema
from pruning_spec._printers import text_value
from pruning_spec._schema import Kind
from pruning_spec._textproto import (
    MESSAGE_CLOSING,
    parse_textproto,
    read_scalar,
    text_lines,
    token_position,
)
from pruning_spec.v1 import pruning_pb2


class UnsafeToFormatError(ValueError):
    """The file's layout cannot be normalized without risk of changing it."""


@dataclasses.dataclass
class _Comment:
    text: str
    blank_before: bool


@dataclasses.dataclass
class _Node:
    name: str
    blank_before: bool  # before the node's leading comments, or the node when it has none
    leading: list[_Comment]  # each comment's blank_before is relative to what precedes it
    value: str | None = None  # a scalar, rendered canonically
    children: list[_Node] = dataclasses.field(default_factory=list)
    inner_comments: list[_Comment] = dataclasses.field(default_factory=list)  # before '}'
    trailing: str | None = None
    closing_trailing: str | None = None


def format_text(text: str) -> str:
    """The canonical layout of a valid spec text. Raises `UnsafeToFormatError`."""
    original = parse_textproto(text)
    if original.diagnostics:
        raise UnsafeToFormatError("the file has syntax errors; fix them first")
    try:
        nodes, tail = _Walker(text).walk()
    except (text_format.ParseError, KeyError, ValueError) as error:
        raise UnsafeToFormatError(f"unusual layout: {error}") from None
    formatted = "".join(line + "\n" for line in _render(nodes, tail, ""))
    _check_same(text, formatted, original.message)
    return formatted


def _check_same(text: str, formatted: str, message: pruning_pb2.PruningSpec) -> None:
    reparsed = parse_textproto(formatted)
    same_spec = not reparsed.diagnostics and reparsed.message.SerializeToString(
        deterministic=True
    ) == message.SerializeToString(deterministic=True)
    if not same_spec or sorted(_comments(text)) != sorted(_comments(formatted)):
        raise UnsafeToFormatError("formatting would change the content")


def _comments(text: str) -> list[str]:
    tokenizer = text_format.Tokenizer(text_lines(text), skip_comments=False)
    found = []
    while not tokenizer.AtEnd():
        if tokenizer.token.startswith("#"):
            found.append(tokenizer.token.rstrip())
        tokenizer.NextToken()
    return found


class _Walker:
    def __init__(self, text: str) -> None:
        self._tokenizer = text_format.Tokenizer(text_lines(text), skip_comments=False)
        self._previous_line = 0  # the line where the previous token ended

    def walk(self) -> tuple[list[_Node], list[_Comment]]:
        return self._block(pruning_pb2.PruningSpec.DESCRIPTOR, None)

    def _line(self) -> int:
        return token_position(self._tokenizer)[0]

    def _next(self) -> str:
        token = self._tokenizer.token
        self._previous_line = self._line()
        self._tokenizer.NextToken()
        return token

    def _blank_before(self) -> bool:
        return self._previous_line > 0 and self._line() > self._previous_line + 1

    def _comment_here(self) -> str | None:
        """A comment on the line of the previous token, consumed."""
        token = self._tokenizer.token
        if token.startswith("#") and self._line() == self._previous_line:
            return self._next().rstrip()
        return None

    def _block(
        self, descriptor: _schema.MessageType, closing: str | None
    ) -> tuple[list[_Node], list[_Comment]]:
        nodes: list[_Node] = []
        pending: list[_Comment] = []
        tokenizer = self._tokenizer
        while not tokenizer.AtEnd():
            token = tokenizer.token
            if token.startswith("#"):
                pending.append(_Comment(token.rstrip(), self._blank_before()))
                self._next()
            elif token == closing:
                return nodes, pending
            else:
                if pending:
                    blank = pending[0].blank_before
                    pending[0].blank_before = False
                    # A blank line between the comments and the field stays.
                    pending.append(_Comment("", self._blank_before()))
                else:
                    blank = self._blank_before()
                nodes += self._field(descriptor, blank, pending)
                pending = []
        if closing is not None:
            raise ValueError(f"missing '{closing}'")
        return nodes, pending

    def _field(
        self, descriptor: _schema.MessageType, blank: bool, leading: list[_Comment]
    ) -> list[_Node]:
        name = self._next()
        field = descriptor.fields_by_name[name]
        tokenizer = self._tokenizer
        if _schema.kind_of(field) is Kind.MESSAGE:
            tokenizer.TryConsume(":")
            if tokenizer.TryConsume("["):
                if tokenizer.TryConsume("]"):  # an explicitly empty list
                    return [self._empty_list(name, blank, leading)]
                nodes = [self._message(field, blank, leading)]
                while tokenizer.TryConsume(","):
                    nodes.append(self._message(field, False, []))
                self._expect("]")
            else:
                nodes = [self._message(field, blank, leading)]
        else:
            self._expect(":")
            node = _Node(name, blank, leading, value=self._scalar(field))
            nodes = [node]
        if not tokenizer.TryConsume(","):
            tokenizer.TryConsume(";")
        nodes[-1].trailing = nodes[-1].trailing or self._comment_here()
        return nodes

    def _empty_list(self, name: str, blank: bool, leading: list[_Comment]) -> _Node:
        if not self._tokenizer.TryConsume(","):
            self._tokenizer.TryConsume(";")
        return _Node(name, blank, leading, value="[]", trailing=self._comment_here())

    def _message(self, field: _schema.Field, blank: bool, leading: list[_Comment]) -> _Node:
        opening = self._next()
        if opening not in MESSAGE_CLOSING:
            raise ValueError(f"expected '{{', got {opening!r}")
        node = _Node(field.name, blank, leading, trailing=self._comment_here())
        node.children, node.inner_comments = self._block(
            _schema.message_type_of(field), MESSAGE_CLOSING[opening]
        )
        self._next()
        node.closing_trailing = self._comment_here()
        return node

    def _expect(self, token: str) -> None:
        if self._tokenizer.token != token:
            raise ValueError(f"expected {token!r}")
        self._next()

    def _scalar(self, field: _schema.Field) -> str:
        self._previous_line = self._line()
        return text_value(field, read_scalar(self._tokenizer, field))


def _render(nodes: list[_Node], tail: list[_Comment], indent: str) -> list[str]:
    lines: list[str] = []
    for node in nodes:
        if node.blank_before and lines:
            lines.append("")
        lines += _render_comments(node.leading, indent, first=not lines)
        trailing = f"  {node.trailing}" if node.trailing else ""
        if node.value is not None:
            lines.append(f"{indent}{node.name}: {node.value}{trailing}")
            continue
        lines.append(f"{indent}{node.name} {{{trailing}")
        lines += _render(node.children, node.inner_comments, indent + "  ")
        closing = f"  {node.closing_trailing}" if node.closing_trailing else ""
        lines.append(f"{indent}}}{closing}")
    if tail and tail[0].blank_before and lines:
        lines.append("")
    lines += _render_comments(tail, indent, first=True)
    return lines


def _render_comments(comments: list[_Comment], indent: str, first: bool) -> list[str]:
    lines = []
    for index, comment in enumerate(comments):
        if comment.blank_before and (index > 0 or not first):
            lines.append("")
        if comment.text:  # an empty comment only carries a blank line
            lines.append(f"{indent}{comment.text}")
    return lines
