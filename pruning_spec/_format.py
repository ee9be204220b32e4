"""`pruning-spec fmt`: the canonical layout of a spec file, comments included.

Fields keep the order the author gave them; layout is normalized: one field per
line, two-space indentation, `name: value`, rules as `name { ... }` blocks,
values in canonical spelling, at most one blank line in a row. Every comment is
kept, attached to the field it precedes or follows. The text is walked once, by
the parser (`parse_textproto(keep_layout=True)`), which also hands over every
item and comment with its position; this module only arranges them. The result is checked
before anything is written: it must parse to the same spec and hold the same
comments, otherwise the file is left alone.
"""

from __future__ import annotations

import dataclasses

from pruning_spec._scalars import Syntax, format_scalar
from pruning_spec._textproto import Comment, Layout, LayoutItem, Step, parse_textproto
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
    original = parse_textproto(text, keep_layout=True)
    if original.diagnostics or original.layout is None:
        raise UnsafeToFormatError("the file has syntax errors; fix them first")
    nodes, tail = _Arranger(original.layout).arrange()
    formatted = "".join(line + "\n" for line in _render(nodes, tail, ""))
    _check_same(original.layout, formatted, original.message)
    return formatted


def _check_same(layout: Layout, formatted: str, message: pruning_pb2.PruningSpec) -> None:
    reparsed = parse_textproto(formatted, keep_layout=True)
    same_spec = not reparsed.diagnostics and reparsed.message.SerializeToString(
        deterministic=True
    ) == message.SerializeToString(deterministic=True)
    if not same_spec or reparsed.layout is None or _texts(layout) != _texts(reparsed.layout):
        raise UnsafeToFormatError("formatting would change the content")


def _texts(layout: Layout) -> list[str]:
    return sorted(comment.text for comment in layout.comments)


class _Arranger:
    """Builds the tree `_render` lays out from the parser's items and comments.

    Comments attach as the old layout suggests: one on the line where an item ends
    trails it; others lead the next item, or stay at the end of their block.
    """

    def __init__(self, layout: Layout) -> None:
        self._stream: list[LayoutItem | Comment] = sorted(
            [*layout.items, *layout.comments], key=_position
        )
        self._next = 0
        self._previous_line = 0  # the line where the previous item or comment ended

    def arrange(self) -> tuple[list[_Node], list[_Comment]]:
        return self._block(closing=False)

    def _peek(self) -> LayoutItem | Comment | None:
        return self._stream[self._next] if self._next < len(self._stream) else None

    def _take(self) -> LayoutItem | Comment:
        taken = self._stream[self._next]
        self._next += 1
        self._previous_line = taken.line if isinstance(taken, Comment) else taken.end[0]
        return taken

    def _blank_before(self, line: int) -> bool:
        return self._previous_line > 0 and line > self._previous_line + 1

    def _comment_here(self) -> str | None:
        """A comment on the line where the previous item ended, consumed."""
        upcoming = self._peek()
        if isinstance(upcoming, Comment) and upcoming.line == self._previous_line:
            self._take()
            return upcoming.text
        return None

    def _block(self, closing: bool) -> tuple[list[_Node], list[_Comment]]:
        nodes: list[_Node] = []
        pending: list[_Comment] = []
        while (upcoming := self._peek()) is not None:
            if isinstance(upcoming, Comment):
                pending.append(_Comment(upcoming.text, self._blank_before(upcoming.line)))
                self._take()
                continue
            if upcoming.step is Step.CLOSE:
                if not closing:  # pragma: no cover - the parser reported it
                    raise UnsafeToFormatError("unbalanced '}'")
                return nodes, pending
            if pending:
                blank = pending[0].blank_before
                pending[0].blank_before = False
                # A blank line between the comments and the field stays.
                pending.append(_Comment("", self._blank_before(upcoming.start[0])))
            else:
                blank = self._blank_before(upcoming.start[0])
            nodes.append(self._node(blank, pending))
            pending = []
        return nodes, pending

    def _node(self, blank: bool, leading: list[_Comment]) -> _Node:
        item = self._take()
        assert isinstance(item, LayoutItem)
        self._refuse_comments_inside(item)
        node = _Node(item.name, blank, leading)
        if item.step is Step.SCALAR and item.field is not None:
            node.value = format_scalar(item.field, item.value, Syntax.TEXT)
        elif item.step is Step.EMPTY_LIST:
            node.value = "[]"
        node.trailing = self._comment_here()
        if item.step is Step.OPEN:
            node.children, node.inner_comments = self._block(closing=True)
            self._take()  # the closing brace
            node.closing_trailing = self._comment_here()
        return node

    def _refuse_comments_inside(self, item: LayoutItem) -> None:
        """A comment between a field's first and last token has no place in the layout."""
        upcoming = self._peek()
        if isinstance(upcoming, Comment) and _position(upcoming) < item.end:
            raise UnsafeToFormatError(
                f"a comment inside the field '{item.name}' (line {upcoming.line}); "
                "move it before or after the field"
            )


def _position(entry: LayoutItem | Comment) -> tuple[int, int]:
    return (entry.line, entry.column) if isinstance(entry, Comment) else entry.start


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
