"""The diagnostic data model shared by every parser, the validator and the CLI.

A diagnostic says what is wrong (a stable `code` and a `message`), where (the
`field_path` inside the spec and a source `span`), how bad (`severity`) and,
when there is one, how to fix it (`hint`). `SpecError` carries all of them.
"""

from __future__ import annotations

import bisect
import codecs
import dataclasses
import enum
import re
from collections.abc import Iterable, Sequence

# Output stays proportional to what is worth reading: a hostile input can hold tens
# of thousands of problems, each of which would otherwise echo the whole input.
MAX_SHOWN = 100  # diagnostics printed per source; a summary line counts the rest
MAX_PROBLEMS = 10_000  # a parser stops at this many, as compilers do (-fmax-errors)
TOO_MANY = "too-many-problems"
CARET_WIDTH = 100  # characters of the input shown above a caret


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclasses.dataclass(frozen=True)
class Span:
    """Where a diagnostic points in its source.

    Files are located by 1-based `line` and `column`; hparam strings by the
    0-based character `offset`, and keep the whole `text` so the location can be
    drawn with a caret.
    """

    source: str
    line: int | None = None
    column: int | None = None
    offset: int | None = None
    length: int = 1
    text: str | None = None

    def location(self) -> str:
        if self.line is not None:
            return f"{self.source}:{self.line}:{self.column or 1}"
        if self.offset is not None:
            return f"{self.source}:{self.offset}"
        return self.source

    def caret(self) -> str:
        """The input and a caret line under the span (hparam strings only).

        A long input is shown as a window of at most CARET_WIDTH characters around
        the span, so that each diagnostic costs the same whatever the input's length.
        """
        if self.text is None or self.offset is None:
            return ""
        start = max(0, min(self.offset - CARET_WIDTH // 3, len(self.text) - CARET_WIDTH))
        end = min(len(self.text), start + CARET_WIDTH)
        shown = self.text[start:end].replace("\n", " ").replace("\t", " ")
        before = "..." if start > 0 else ""
        after = "..." if end < len(self.text) else ""
        marker = "^" * max(1, min(self.length, end - self.offset))
        return f"  {before}{shown}{after}\n  {' ' * (len(before) + self.offset - start)}{marker}"


@dataclasses.dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    field_path: str = ""
    severity: Severity = Severity.ERROR
    span: Span | None = None
    hint: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def format(self, *, caret: bool = True, hint: bool = True) -> str:
        """GCC style: `location: severity[code]: path: message (hint)`."""
        location = self.span.location() if self.span else "<spec>"
        subject = f"{self.field_path}: " if self.field_path else ""
        line = f"{location}: {self.severity.value}[{self.code}]: {subject}{self.message}"
        if hint and self.hint:
            line += f" ({self.hint})"
        if caret and self.span is not None and self.span.caret():
            line += "\n" + self.span.caret()
        return line

    def with_span(self, span: Span | None) -> Diagnostic:
        return dataclasses.replace(self, span=span)


def shorten(text: str, limit: int = 80) -> str:
    """`repr(text)`, its middle elided when long: messages echo input, never all of it."""
    if len(text) <= limit:
        return repr(text)
    half = limit // 2
    return f"{text[:half]!r}...{text[-half:]!r} ({len(text):,} characters)"


class LineIndex:
    """Lines and columns of many offsets in one text, each found by bisection.

    `line_and_column` scans the text up to the offset; locating thousands of
    diagnostics that way is quadratic.
    """

    def __init__(self, text: str) -> None:
        self._starts = [0] + [match.end() for match in re.finditer("\n", text)]

    def locate(self, offset: int) -> tuple[int, int]:
        """The 1-based line and column of `offset`."""
        line = bisect.bisect_right(self._starts, offset)
        return line, offset - self._starts[line - 1] + 1


def printable(text: str) -> str:
    """`text` with control characters escaped: names read from files go to terminals."""
    return text if text.isprintable() else repr(text)[1:-1]


def split_bom(data: bytes) -> tuple[bytes, bytes]:
    """(the UTF-8 byte order mark some editors write first, or b""; the rest)."""
    return (codecs.BOM_UTF8, data[3:]) if data.startswith(codecs.BOM_UTF8) else (b"", data)


def decode_utf8(data: bytes, source: str) -> str | Diagnostic:
    """The text of a file's bytes (after a UTF-8 byte order mark), or where it is not UTF-8.

    Offsets of later diagnostics are in the text after the mark, as editors show it.
    """
    body = split_bom(data)[1]
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        offset = error.start + len(data) - len(body)
        line, column = line_and_column(data, offset)
        return Diagnostic(
            "invalid-utf8",
            f"byte 0x{data[offset]:02x} is not valid UTF-8",
            span=Span(source, line, column),
            hint="spec files, inventories and flags are UTF-8 text",
        )


def line_and_column(text: str | bytes, offset: int) -> tuple[int, int]:
    """The 1-based line and column of `offset`; lines end at '\\n' only, as in text format."""
    newline = "\n" if isinstance(text, str) else b"\n"
    line = text.count(newline, 0, offset) + 1  # type: ignore[arg-type]
    return line, offset - (text.rfind(newline, 0, offset) + 1) + 1  # type: ignore[arg-type]


def sort_key(diagnostic: Diagnostic) -> tuple[str, int, int, int]:
    span = diagnostic.span
    if span is None:
        return ("", 0, 0, 0)
    return (span.source, span.line or 0, span.column or 0, span.offset or 0)


class SpecError(ValueError):
    """A spec could not be loaded: carries every diagnostic found, errors and warnings."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__(self._render())

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if not d.is_error)

    def _render(self) -> str:
        shown, hidden = capped(self.diagnostics)
        lines = [d.format() for d in shown]
        if hidden:
            lines.append(hidden_line(hidden))
        return "\n".join(lines) or "invalid pruning spec"


class TooManyProblemsError(Exception):
    """Raised by a parser's report once MAX_PROBLEMS are collected: the rest is not read."""


def stop_if_too_many(
    diagnostics: list[Diagnostic], source: str, severity: Severity = Severity.ERROR
) -> None:
    """Ends parsing with a last diagnostic once a source has MAX_PROBLEMS of them.

    The notice is as severe as what it stops: lints stop with a warning.
    """
    if len(diagnostics) >= MAX_PROBLEMS:
        message = f"stopped after {MAX_PROBLEMS:,} problems; the rest of the input is not read"
        notice = Diagnostic(TOO_MANY, message, "", severity, Span(source), "fix these first")
        diagnostics.append(notice)
        raise TooManyProblemsError


def capped(diagnostics: Sequence[Diagnostic]) -> tuple[Sequence[Diagnostic], int]:
    """The first MAX_SHOWN diagnostics (and a stop notice), and how many more there are."""
    shown = list(diagnostics[:MAX_SHOWN])
    shown += [d for d in diagnostics[MAX_SHOWN:] if d.code == TOO_MANY]
    return shown, len(diagnostics) - len(shown)


def hidden_line(hidden: int) -> str:
    return f"... and {hidden:,} more diagnostic{'' if hidden == 1 else 's'} not shown"
