"""Canonical text format and contrib-style JSON for a spec.

Both follow the schema's field order. JSON is r1.15's `HParams.to_json()`:
the same keys in the same order with the same types, map rules written as
`"pattern:value"` strings and an empty map as `[""]`.
"""

from __future__ import annotations

import json
import re
from typing import cast

from google.protobuf.message import Message

from pruning_spec import _schema
from pruning_spec._schema import Kind
from pruning_spec.v1 import pruning_pb2

TEXTPROTO_HEADER = (
    "# proto-file: pruning_spec/v1/pruning.proto\n# proto-message: pruning_spec.v1.PruningSpec\n"
)


_TEXT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NEEDS_ESCAPE = re.compile(r'[\\"\x00-\x1f\x7f]')


def text_format_string(text: str) -> str:
    """A double-quoted text-format string literal; control characters as octal escapes."""
    body = _NEEDS_ESCAPE.sub(lambda m: _TEXT_ESCAPES.get(m[0]) or f"\\{ord(m[0]):03o}", text)
    return f'"{body}"'


def text_value(field: _schema.Field, value: object) -> str:
    kind = _schema.kind_of(field)
    if kind is Kind.STRING:
        return text_format_string(str(value))
    if kind is Kind.FLOAT:
        return repr(float(value))  # type: ignore[arg-type]
    if kind is Kind.BOOL:
        return "true" if value else "false"
    if kind is Kind.ENUM:
        return str(_schema.enum_type_of(field).values_by_number[cast(int, value)].name)
    return str(value)


def _text_fields(message: Message, indent: str) -> list[str]:
    lines = []
    for field in message.DESCRIPTOR.fields:
        if not field.is_repeated and not message.HasField(field.name):
            continue
        values = (
            getattr(message, field.name) if field.is_repeated else [getattr(message, field.name)]
        )
        for value in values:
            if _schema.kind_of(field) is Kind.MESSAGE:
                lines.append(f"{indent}{field.name} {{")
                lines += _text_fields(value, indent + "  ")
                lines.append(f"{indent}}}")
            else:
                lines.append(f"{indent}{field.name}: {text_value(field, value)}")
    return lines


def render_textproto(spec: pruning_pb2.PruningSpec) -> str:
    """Text format with the `proto-file`/`proto-message` header; set fields only."""
    return TEXTPROTO_HEADER + "".join(line + "\n" for line in _text_fields(spec, ""))


def rule_to_entry(field: _schema.Field, rule: Message) -> str:
    """A rule as r1.15 wrote it in a map list: `pattern:value` or `pattern:HxW`."""
    shape = _schema.rule_shape(field)
    values = [str(getattr(rule, name)) for name, _ in shape.values]
    return f"{getattr(rule, shape.key)}:{shape.separator.join(values)}"


def hparam_values(spec: pruning_pb2.PruningSpec) -> dict[str, _schema.HParamValue]:
    """r1.15's `HParams.values()`: every field, in schema order, with contrib's types."""
    values: dict[str, _schema.HParamValue] = {}
    for field in spec.DESCRIPTOR.fields:
        value = getattr(spec, field.name)
        if field.is_repeated:  # a rule list: r1.15's ["pattern:value", ...], [""] when empty
            values[field.name] = [rule_to_entry(field, rule) for rule in value] or [""]
        elif _schema.kind_of(field) is Kind.ENUM:
            values[field.name] = _schema.enum_spelling(field, value)
        else:
            values[field.name] = value
    return values


def render_json(spec: pruning_pb2.PruningSpec, *, indent: int | None = None) -> str:
    return json.dumps(hparam_values(spec), indent=indent)
