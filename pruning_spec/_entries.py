"""Map entries: one rule written as a string, `pattern:value`, `pattern:HxW` or `pattern`.

Values whose field is not `required`, at the end, may be left out
(`pattern:name[@sparsity]`): such a field stays unset. An optional value written
before a set one is written at its default (`dense:2/4/REJECT/1`).

The hparam language (`weight_sparsity_map=[conv1:0.8]`) and r1.15's JSON
(`"weight_sparsity_map": ["conv1:0.8"]`) both write rules this way. An entry
splits on its last colon (outside quotes, in hparams), so a pattern may hold
colons; the values after it are typed by the rule message's fields. A rule with
no value fields (`exclude`) is the pattern alone, colons included. Offsets in
problems are relative to the entry, for the caller to place.
"""

from __future__ import annotations

import dataclasses
import re

from google.protobuf.message import Message

from pruning_spec import _scalars, _schema

# Keys written bare in hparams: they may hold colons (an entry splits on its last one) but
# nothing that ends or quotes a list element.
_BARE_KEY = re.compile(r"[^\s,\]\"'\x00-\x1f]+")


@dataclasses.dataclass(frozen=True)
class EntryProblem:
    code: str
    message: str
    offset: int  # in the entry
    length: int
    field: str  # the rule field it concerns, or "" for the whole entry
    hint: str = ""


@dataclasses.dataclass
class EntryReading:
    """What an entry says: `colon` is -1 when it has none (and `key` is then meaningless)."""

    key: str
    colon: int
    values: dict[str, object] = dataclasses.field(default_factory=dict)
    problems: list[EntryProblem] = dataclasses.field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """r1.15 drops empty entries: `[""]` is its spelling of the empty map."""
        return self.colon < 0 and self.key == ""


def entry_colon(raw: str, *, quoting: bool) -> int:
    """Where the entry splits: its last colon (outside quotes when `quoting`); -1 if none."""
    return _scalars.last_unquoted(raw, ":") if quoting else raw.rfind(":")


def value_parts(shape: _schema.RuleShape, raw: str, colon: int) -> list[tuple[str, int]] | None:
    """Each value's text and offset in the entry, or None when their number is wrong."""
    if not shape.values:
        return []
    rest = raw[colon + 1 :]
    texts = rest.split(shape.separator) if shape.separator else [rest]
    if not _required_count(shape) <= len(texts) <= len(shape.values):
        return None
    parts = []
    offset = colon + 1
    for text in texts:
        parts.append((text, offset))
        offset += len(text) + len(shape.separator)
    return parts


def _required_count(shape: _schema.RuleShape) -> int:
    """How many values an entry must write: all but the optional ones at the end."""
    required = [_schema.rules_of(field).required for _, field in shape.values]
    while required and not required[-1]:
        required.pop()
    return len(required)


def read_entry(shape: _schema.RuleShape, raw: str, *, quoting: bool) -> EntryReading:
    """Reads one entry of the rule list `shape` describes; `quoting` reads hparam quotes."""
    decode = _scalars.decode_pieces if quoting else str
    if not shape.values:  # a pattern alone (`exclude`): colons are part of it
        key = decode(raw)
        return EntryReading(key, len(raw) if key else -1)
    colon = entry_colon(raw, quoting=quoting)
    if colon < 0:
        reading = EntryReading(decode(raw), colon)
        if not reading.is_empty:
            reading.problems.append(
                EntryProblem(
                    "bad-map-entry",
                    f"map entry {raw!r} has no ':'",
                    0,
                    len(raw),
                    "",
                    f"write {shape.syntax}",
                )
            )
        return reading
    reading = EntryReading(decode(raw[:colon]), colon)
    parts = value_parts(shape, raw, colon)
    if parts is None:
        rest = raw[colon + 1 :]
        reading.problems.append(
            EntryProblem(
                "bad-map-entry",
                f"expected {shape.syntax.partition(':')[2]} after ':', got {rest!r}",
                colon + 1,
                len(rest),
                "",
                f"write {shape.syntax}",
            )
        )
        return reading
    for (name, field), (text, offset) in zip(shape.values, parts, strict=False):
        try:
            reading.values[name] = _scalars.convert_scalar(field, text)
        except _scalars.ConversionError as error:
            reading.problems.append(
                EntryProblem(error.code, str(error), offset, len(text), name, error.hint)
            )
    return reading


def fill_rule(shape: _schema.RuleShape, rule: Message, reading: EntryReading) -> None:
    """Sets a new rule's key and every value the entry typed."""
    setattr(rule, shape.key, reading.key)
    for name, value in reading.values.items():
        setattr(rule, name, value)


def format_entry(field: _schema.Field, rule: Message, *, quoting: bool) -> str:
    """A rule as an entry: for hparams (`quoting`, the key quoted when it must be) or as
    r1.15's `to_json()` wrote it (the key verbatim)."""
    shape = _schema.rule_shape(field)
    key: str = getattr(rule, shape.key)
    if quoting and not _BARE_KEY.fullmatch(key):
        key = _scalars.quote(key)
    if not shape.values:
        return key
    # Up to the last value set: an unset one before it is written as its default.
    count = _required_count(shape)
    for index in range(count, len(shape.values)):
        if rule.HasField(shape.values[index][0]):
            count = index + 1
    written = shape.values[:count]
    values = [
        _scalars.format_scalar(f, getattr(rule, name), _scalars.Syntax.HPARAMS)
        for name, f in written
    ]
    return f"{key}:{shape.separator.join(values)}"
