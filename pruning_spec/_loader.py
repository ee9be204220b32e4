"""From sources to a `NormalizedSpec`: read, parse, merge overrides, validate.

    file (textproto / JSON / binary) ─┐
                                      ├─> merge ─> validate ─> NormalizedSpec
    hparam string (a flag) ───────────┘

Every step collects diagnostics; one `SpecError` carries all of them, each
located in the source it came from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

from google.protobuf import unknown_fields
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from google.protobuf.message import DecodeError, Message

from pruning_spec import _entries, _hparams, _scalars, _schema
from pruning_spec._diagnostics import (
    Diagnostic,
    LineIndex,
    Severity,
    Span,
    SpecError,
    TooManyProblemsError,
    decode_utf8,
    line_and_column,
    shorten,
    sort_key,
    stop_if_too_many,
)
from pruning_spec._files import FileError, read_bounded
from pruning_spec._schema import Kind
from pruning_spec._spec import NormalizedSpec
from pruning_spec._textproto import ParsedSource, parse_textproto, unencodable_offset
from pruning_spec._validate import Validator
from pruning_spec.v1 import pruning_pb2

TEXT_SUFFIXES = (".txtpb", ".textproto", ".pbtxt", ".textpb")
JSON_SUFFIXES = (".json",)
BINARY_SUFFIXES = (".pb", ".binpb")
SUFFIXES = TEXT_SUFFIXES + JSON_SUFFIXES + BINARY_SUFFIXES
MAX_FILE_BYTES = 4 * 1024 * 1024
PathLike = str | os.PathLike[str]


def load_spec(
    path: PathLike, overrides: str | None = None, *, external_sparsity: bool = False
) -> NormalizedSpec:
    """Loads a spec file, applies an hparam override string, validates and normalizes.

    The format follows the suffix: .txtpb/.textproto/.pbtxt (text format),
    .json (r1.15's `to_json()` form) or .pb/.binpb (binary). Raises `SpecError`
    with every problem of the file and of the overrides.
    """
    return build_spec(read_source(path), overrides, external_sparsity=external_sparsity)


def parse_spec_text(
    text: str,
    source: str = "<string>",
    *,
    overrides: str | None = None,
    external_sparsity: bool = False,
) -> NormalizedSpec:
    """Parses a spec in text format (see `load_spec`)."""
    parsed = parse_textproto(text, source)
    return build_spec(parsed, overrides, external_sparsity=external_sparsity)


def parse_hparams(
    hparams: str,
    base: NormalizedSpec | pruning_pb2.PruningSpec | None = None,
    *,
    external_sparsity: bool = False,
) -> NormalizedSpec:
    """Applies an hparam string (r1.15 `HParams.parse` syntax) to `base` (default: the defaults)."""
    if base is None:
        return build_spec(
            _hparams.parse_hparams_source(hparams), external_sparsity=external_sparsity
        )
    if isinstance(base, NormalizedSpec):
        base = base.proto
    return build_spec(ParsedSource(base), hparams, external_sparsity=external_sparsity)


def build_spec(
    parsed: ParsedSource, overrides: str | None = None, *, external_sparsity: bool = False
) -> NormalizedSpec:
    merged = apply_overrides(parsed, overrides)
    diagnostics = _diagnose(merged, external_sparsity)
    if any(d.is_error for d in diagnostics):
        raise SpecError(diagnostics)
    return NormalizedSpec._from_validated(merged.message, diagnostics)


def apply_values(
    base: NormalizedSpec, values: Mapping[str, object], source: str = "<values>"
) -> NormalizedSpec:
    """`values` (names to r1.15-typed values, as `HParams.values()` holds them) over `base`.

    Typed as r1.15's JSON is (`parse_json`); the result is validated as a whole, so
    `SpecError` leaves nothing half-applied.
    """
    return apply_source(base, parse_values(values, source))


def apply_source(base: NormalizedSpec, parsed: ParsedSource) -> NormalizedSpec:
    """What `parsed` sets, over `base`, validated as a whole (`SpecError` if not valid)."""
    return build_spec(merge(ParsedSource(base.proto), parsed))


def parse_values(values: Mapping[str, object], source: str = "<values>") -> ParsedSource:
    """The fields a mapping of hparam names to r1.15-typed values assigns (see `parse_json`)."""
    return _JsonReader("", source).read(dict(values))


def check_source(
    parsed: ParsedSource, overrides: str | None = None, *, external_sparsity: bool = False
) -> list[Diagnostic]:
    """Every diagnostic of a parsed source with overrides applied, sorted by location."""
    return _diagnose(apply_overrides(parsed, overrides), external_sparsity)


def apply_overrides(parsed: ParsedSource, overrides: str | None) -> ParsedSource:
    return merge(parsed, _hparams.parse_hparams_source(overrides)) if overrides else parsed


def _diagnose(parsed: ParsedSource, external_sparsity: bool) -> list[Diagnostic]:
    found = list(parsed.diagnostics)
    found += Validator(external_sparsity=external_sparsity).collect(
        parsed.message,
        locate=parsed.locate,
        skip_paths=parsed.failed_paths,
        default_span=Span(parsed.source) if parsed.source else None,
    )
    return sorted(found, key=sort_key)


def merge(base: ParsedSource, override: ParsedSource) -> ParsedSource:
    """`override` on top of `base`: scalars it sets replace, lists it assigns replace wholesale."""
    spec = pruning_pb2.PruningSpec()
    spec.CopyFrom(base.message)
    message: Message = spec
    overriding: Message = override.message
    replaced = set(override.assigned_lists)
    for field in message.DESCRIPTOR.fields:
        if field.is_repeated and field.name in replaced:
            message.ClearField(field.name)
            getattr(message, field.name).extend(getattr(overriding, field.name))
        elif not field.is_repeated and overriding.HasField(field.name):
            setattr(message, field.name, getattr(overriding, field.name))
            replaced.add(field.name)

    # Offsets index one hparam string; those of an earlier, different string cannot be kept.
    same_text = base.hparams_text in ("", override.hparams_text)
    base_offsets = base.offsets if same_text else {}

    def kept(path: str) -> bool:
        return _top_field(path) not in replaced

    return ParsedSource(
        spec,
        positions={p: s for p, s in base.positions.items() if kept(p)},
        diagnostics=base.diagnostics + override.diagnostics,
        failed_paths={p for p in base.failed_paths if kept(p)} | override.failed_paths,
        assigned_lists=base.assigned_lists | override.assigned_lists,
        offsets={**{p: o for p, o in base_offsets.items() if kept(p)}, **override.offsets},
        rule_entries={
            **{p: e for p, e in base.rule_entries.items() if same_text and kept(p)},
            **override.rule_entries,
        },
        hparams_source=override.hparams_source or base.hparams_source,
        hparams_text=override.hparams_text or base.hparams_text,
        source=base.source or override.source,
    )


def _top_field(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


# Reading files.


def read_source(path: PathLike) -> ParsedSource:
    """Reads and parses one spec file; problems become diagnostics, never exceptions."""
    return read_spec_bytes(path)[1]


def read_spec_bytes(path: PathLike) -> tuple[bytes | None, ParsedSource]:
    """The bytes of a spec file (None when unreadable) and what they parse to.

    Only a regular file of at most MAX_FILE_BYTES is read: a FIFO, a device or a
    file that grows while it is read is refused without blocking or filling memory.
    """
    name = os.fspath(path)
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        problem = failed_source(
            name,
            "unknown-format",
            f"unknown spec file suffix {shorten(suffix) if suffix else '(none)'}",
            "use one of " + ", ".join(SUFFIXES),
        )
        return None, problem
    try:
        data = read_bounded(name, MAX_FILE_BYTES, what="spec file")
    except FileError as error:
        return None, ParsedSource(
            pruning_pb2.PruningSpec(), diagnostics=[error.to_diagnostic()], source=name
        )
    return data, parse_bytes(data, name, suffix)


def parse_bytes(data: bytes, source: str, suffix: str) -> ParsedSource:
    """Parses a spec file's bytes in the format its suffix names."""
    if suffix in BINARY_SUFFIXES:
        return parse_binary(data, source)
    text = decode_utf8(data, source)
    if isinstance(text, Diagnostic):
        return ParsedSource(pruning_pb2.PruningSpec(), diagnostics=[text], source=source)
    if suffix in JSON_SUFFIXES:
        return parse_json(text, source)
    return parse_textproto(text, source)


def failed_source(
    source: str, code: str, message: str, hint: str = "", span: Span | None = None
) -> ParsedSource:
    diagnostic = Diagnostic(code, message, span=span or Span(source), hint=hint)
    return ParsedSource(pruning_pb2.PruningSpec(), diagnostics=[diagnostic], source=source)


def parse_binary(data: bytes, source: str = "<binary>") -> ParsedSource:
    message = pruning_pb2.PruningSpec()
    try:
        message.ParseFromString(data)
    except DecodeError as error:
        return failed_source(source, "decode-error", f"not a binary PruningSpec: {error}")
    parsed = ParsedSource(message, source=source)
    with contextlib.suppress(TooManyProblemsError):
        _report_unknown_binary_fields(message, "", parsed, source)
    return parsed


def _report_unknown_binary_fields(
    message: Message, prefix: str, parsed: ParsedSource, source: str
) -> None:
    unknown_set = unknown_fields.UnknownFieldSet(message)
    for unknown in (unknown_set[i] for i in range(len(unknown_set))):
        stop_if_too_many(parsed.diagnostics, source)
        parsed.diagnostics.append(
            Diagnostic(
                "unknown-field",
                f"{prefix or 'PruningSpec'} has no field number {unknown.field_number}",
                span=Span(source),
                hint="was the file written with a newer schema?",
            )
        )
    for field in message.DESCRIPTOR.fields:
        if _schema.is_rule_list(field):
            for index, rule in enumerate(getattr(message, field.name)):
                _report_unknown_binary_fields(rule, f"{field.name}[{index}]", parsed, source)


def read_spec_file(path: str) -> ParsedSource:
    """`read_source` for tools: an empty file is worth a warning."""
    data, parsed = read_spec_bytes(path)
    if data == b"" and not parsed.diagnostics:
        parsed.diagnostics.append(
            Diagnostic(
                "empty-file",
                "is empty, so every field takes its default",
                severity=Severity.WARNING,
                span=Span(path),
                hint="delete the file or set the fields you mean",
            )
        )
    return parsed


# JSON: the r1.15 `to_json()` form (rules as "pattern:value" strings) or rule objects.


# A spec nests three deep ({"map": [{...}]}); far deeper input is refused before
# Python's json module recurses into it.
MAX_JSON_DEPTH = 32
# Every string is matched whole (the unrolled loop of `"(?:[^"\\]|\\.)*"`), so no match
# ever starts inside one.
_JSON_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_JSON_TOKEN = re.compile(_JSON_STRING + r"|[\[\]{}]")
_JSON_STRING_OR_KEY = re.compile(_JSON_STRING + r"(\s*:)?")


def parse_json(text: str, source: str = "<json>") -> ParsedSource:
    too_deep = _too_deep_offset(text)
    if too_deep is not None:
        line, column = line_and_column(text, too_deep)
        return failed_source(
            source,
            "syntax",
            f"nested more than {MAX_JSON_DEPTH} deep; a spec is an object of values and lists",
            span=Span(source, line, column),
        )
    try:
        document = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as error:
        return failed_source(
            source, "syntax", error.msg, span=Span(source, error.lineno, error.colno)
        )
    except _DuplicateKeyError as error:
        return failed_source(
            source, "duplicate-field", f"key {shorten(error.key)} appears more than once"
        )
    except ValueError as error:  # e.g. an integer with more digits than Python converts
        return failed_source(source, "syntax", f"not a valid JSON document: {error}")
    if not isinstance(document, dict):
        return failed_source(source, "syntax", "expected a JSON object of hyperparameters")
    if unencodable_offset(json.dumps(document, ensure_ascii=False)) is not None:
        return failed_source(
            source,
            "invalid-text",
            "holds a \\ud800-\\udfff escape that is not "
            "part of a surrogate pair, which is not valid Unicode text",
        )
    return _JsonReader(text, source).read(document)


def _too_deep_offset(text: str) -> int | None:
    """Where brackets outside strings first nest deeper than MAX_JSON_DEPTH, if they do."""
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return token.start()
        elif bracket in "]}":
            depth -= 1
    return None


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


@dataclasses.dataclass
class _JsonReader:
    text: str
    source: str

    def __post_init__(self) -> None:
        self.parsed = ParsedSource(pruning_pb2.PruningSpec(), source=self.source)
        self._key_offsets: dict[str, int] | None = None
        self._lines = LineIndex(self.text)

    def read(self, document: dict[str, object]) -> ParsedSource:
        with contextlib.suppress(TooManyProblemsError):
            self._read_fields(document)
        return self.parsed

    def _read_fields(self, document: dict[str, object]) -> None:
        fields = _schema.SPEC.fields_by_name
        for key, value in document.items():
            span = self._key_span(key)
            field = fields.get(key)
            if field is None:
                self._report(
                    "unknown-field",
                    f"PruningSpec has no field named {shorten(key)}",
                    span,
                    hint=_schema.did_you_mean(key, fields),
                )
                continue
            self.parsed.positions[key] = span
            if field.is_repeated:
                self._read_list(field, value, span)
            else:
                self._set(self.parsed.message, field, value, key, span)

    def _key_span(self, key: str) -> Span:
        offset = self._first_key_offsets().get(key)
        if offset is None:
            return Span(self.source)
        line, column = self._lines.locate(offset)
        return Span(self.source, line, column, length=len(json.dumps(key)))

    def _first_key_offsets(self) -> dict[str, int]:
        """Where each key is first written (a string followed by ':'), found in one pass."""
        if self._key_offsets is None:
            self._key_offsets = {}
            for written in _JSON_STRING_OR_KEY.finditer(self.text):
                if written.group(1):
                    key = json.loads(written.group()[: written.start(1) - written.start()])
                    self._key_offsets.setdefault(key, written.start())
        return self._key_offsets

    def _report(self, code: str, message: str, span: Span, path: str = "", hint: str = "") -> None:
        stop_if_too_many(self.parsed.diagnostics, self.source)
        self.parsed.diagnostics.append(Diagnostic(code, message, path, span=span, hint=hint))
        if path:
            self.parsed.failed_paths.add(path)

    def _read_list(self, field: _schema.Field, value: object, span: Span) -> None:
        if not isinstance(value, list):
            self._report("expected-list", "must be a JSON list", span, field.name)
            return
        self.parsed.assigned_lists.add(field.name)
        container = getattr(self.parsed.message, field.name)
        for item in value:
            path = f"{field.name}[{len(container)}]"
            if isinstance(item, str):  # r1.15's "pattern:value"; [""] is its empty map
                self._read_entry(field, container, item, path, span)
            elif isinstance(item, dict):
                rule = container.add()
                for key, rule_value in item.items():
                    rule_field = rule.DESCRIPTOR.fields_by_name.get(key)
                    if rule_field is None:
                        self._report(
                            "unknown-field",
                            f"{field.name} rules have no field {shorten(key)}",
                            span,
                            path,
                            _schema.did_you_mean(key, rule.DESCRIPTOR.fields_by_name),
                        )
                    else:
                        self._set(rule, rule_field, rule_value, f"{path}.{key}", span)
            else:
                self._report(
                    "invalid-value",
                    f"entries must be strings or objects, got {shorten(json.dumps(item))}",
                    span,
                    path,
                )

    def _read_entry(
        self,
        field: _schema.Field,
        container: RepeatedCompositeFieldContainer[Message],
        entry: str,
        path: str,
        span: Span,
    ) -> None:
        reading = _entries.read_entry(_schema.rule_shape(field), entry, quoting=False)
        if reading.colon >= 0:
            _entries.fill_rule(_schema.rule_shape(field), container.add(), reading)
        for problem in reading.problems:
            where = f"{path}.{problem.field}" if problem.field else path
            self._report(problem.code, problem.message, span, where, problem.hint)

    def _set(
        self, message: Message, field: _schema.Field, value: object, path: str, span: Span
    ) -> None:
        if _schema.kind_of(field) is Kind.ENUM and isinstance(value, str):
            try:  # the hparam spelling, with its did-you-mean
                setattr(message, field.name, _scalars.convert_scalar(field, value))
            except _scalars.ConversionError as error:
                self._report(error.code, str(error), span, path, error.hint)
            return
        converted = self._convert(field, value)
        if converted is None:
            expected = _schema.kind_of(field).value
            self._report(
                "invalid-value", f"expects {expected}, got {shorten(json.dumps(value))}", span, path
            )
            return
        setattr(message, field.name, converted)

    @staticmethod
    def _convert(field: _schema.Field, value: object) -> object:
        kind = _schema.kind_of(field)
        if kind is Kind.BOOL:
            return value if isinstance(value, bool) else None
        if isinstance(value, bool):
            return None
        if kind is Kind.INT:
            ok = isinstance(value, int) and _schema.INT64_MIN <= value <= _schema.INT64_MAX
            return value if ok else None
        if kind is Kind.FLOAT:
            if not isinstance(value, int | float):
                return None
            try:
                return float(value)
            except OverflowError:
                return None
        if kind is Kind.STRING:
            return value if isinstance(value, str) else None
        return None
