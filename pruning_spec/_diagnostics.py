"""The diagnostic data model shared by every parser, the validator and the CLI.

A diagnostic says what is wrong (a stable `code` and a `message`), where (the
`field_path` inside the spec and a source `span`), how bad (`severity`) and,
when there is one, how to fix it (`hint`). `SpecError` carries all of them.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable


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
        """The input and a caret line under the span (hparam strings only)."""
        if self.text is None or self.offset is None:
            return ""
        shown = self.text.replace("\n", " ").replace("\t", " ")
        marker = "^" * max(1, min(self.length, len(shown) - self.offset))
        return f"  {shown}\n  {' ' * self.offset}{marker}"


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
        return "\n".join(d.format() for d in self.diagnostics) or "invalid pruning spec"
