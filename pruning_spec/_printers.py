"""A spec written out: canonical text format, hparam string and contrib-style JSON.

All follow the schema's field order and spell values through `_scalars`, map
entries through `_entries`. JSON is r1.15's `HParams.to_json()`: the same keys
in the same order with the same types, map rules written as `"pattern:value"`
strings and an empty map as `[""]`.
"""

from __future__ import annotations

import json

from google.protobuf.message import Message

from pruning_spec import _schema
from pruning_spec._entries import format_entry
from pruning_spec._scalars import Syntax, format_scalar
from pruning_spec._schema import Kind
from pruning_spec.v1 import pruning_pb2

TEXTPROTO_HEADER = (
    "# proto-file: pruning_spec/v1/pruning.proto\n# proto-message: pruning_spec.v1.PruningSpec\n"
)


def text_value(field: _schema.Field, value: object) -> str:
    return format_scalar(field, value, Syntax.TEXT)


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


def hparam_values(spec: pruning_pb2.PruningSpec) -> dict[str, _schema.HParamValue]:
    """r1.15's `HParams.values()`: every field, in schema order, with contrib's types."""
    values: dict[str, _schema.HParamValue] = {}
    for field in spec.DESCRIPTOR.fields:
        value = getattr(spec, field.name)
        if not _schema.left_out_of_r115_output(field, value):
            values[field.name] = hparam_value(field, value)
    return values


def hparam_value(field: _schema.Field, value: object) -> _schema.HParamValue:
    """One field's value with contrib's types (also a field `values()` leaves out)."""
    if field.is_repeated:  # a rule list: r1.15's ["pattern:value", ...], [""] when empty
        entries = [format_entry(field, rule, quoting=False) for rule in value]  # type: ignore[attr-defined]
        return entries or [""]
    if _schema.kind_of(field) is Kind.ENUM:
        return _schema.enum_spelling(field, value)  # type: ignore[arg-type]
    return value  # type: ignore[return-value]


def render_json(spec: pruning_pb2.PruningSpec, *, indent: int | None = None) -> str:
    return json.dumps(hparam_values(spec), indent=indent)


def render_hparams(spec: pruning_pb2.PruningSpec, *, include_defaults: bool = True) -> str:
    """The canonical hparam string of a spec, in schema order.

    With `include_defaults=False` only the fields that differ from their
    default are written; either form parses back to the same spec.
    """
    clauses = []
    for field in spec.DESCRIPTOR.fields:
        value = getattr(spec, field.name)
        if _schema.left_out_of_r115_output(field, value):
            continue
        if field.is_repeated:
            if not value and not include_defaults:
                continue
            body = ",".join(format_entry(field, rule, quoting=True) for rule in value)
            clauses.append(f"{field.name}=[{body}]")
            continue
        # repr tells -0.0 from the default 0.0, which == does not.
        if not include_defaults and repr(value) == repr(field.default_value):
            continue
        clauses.append(f"{field.name}={format_scalar(field, value, Syntax.HPARAMS)}")
    return ",".join(clauses)
