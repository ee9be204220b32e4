"""Read-only access to what `pruning.proto` declares about each field.

Everything the parsers, the validator, the printers and the docs need to know
about a field (its kind, default, bounds, help, deprecation, hparam spelling)
comes from the descriptors and the custom options declared in `options.proto`.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeAlias

from google.protobuf import descriptor
from google.protobuf.descriptor import FieldDescriptor

from pruning_spec.v1 import options_pb2, pruning_pb2

if TYPE_CHECKING:
    from google._upb import _message as _upb

# A generated message class declares the classes of `google.protobuf.descriptor`, but
# types-protobuf types the `DESCRIPTOR` of a plain `Message` as that class or the upb
# one, which share no base class. Both declare everything the helpers here read.
Field: TypeAlias = "descriptor.FieldDescriptor | _upb.FieldDescriptor"
MessageType: TypeAlias = "descriptor.Descriptor | _upb.Descriptor"
EnumType: TypeAlias = "descriptor.EnumDescriptor | _upb.EnumDescriptor"
EnumValue: TypeAlias = "descriptor.EnumValueDescriptor | _upb.EnumValueDescriptor"

# A value of r1.15's `HParams.values()`: a scalar, or a rule list as "pattern:value" strings.
HParamValue: TypeAlias = int | float | bool | str | list[str]

SPEC: MessageType = pruning_pb2.PruningSpec.DESCRIPTOR
# A plain dict: descriptor lookups build a view object on every access.
FIELDS: dict[str, Field] = dict(SPEC.fields_by_name)
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


class Kind(enum.Enum):
    """What a field holds, as the hparam language and the printers see it."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STRING = "string"
    ENUM = "enum"
    MESSAGE = "message"


_KIND_BY_TYPE = {
    FieldDescriptor.TYPE_INT64: Kind.INT,
    FieldDescriptor.TYPE_INT32: Kind.INT,
    FieldDescriptor.TYPE_SINT64: Kind.INT,
    FieldDescriptor.TYPE_SINT32: Kind.INT,
    FieldDescriptor.TYPE_DOUBLE: Kind.FLOAT,
    FieldDescriptor.TYPE_FLOAT: Kind.FLOAT,
    FieldDescriptor.TYPE_BOOL: Kind.BOOL,
    FieldDescriptor.TYPE_STRING: Kind.STRING,
    FieldDescriptor.TYPE_ENUM: Kind.ENUM,
    FieldDescriptor.TYPE_MESSAGE: Kind.MESSAGE,
}


def kind_of(field: Field) -> Kind:
    try:
        return _KIND_BY_TYPE[field.type]
    except KeyError:  # pragma: no cover - a new field type in pruning.proto
        raise TypeError(f"pruning.proto field {field.full_name} has an unsupported type") from None


@functools.cache
def rules_of(field: Field) -> options_pb2.FieldRules:
    """The `(pruning_spec.v1.field)` option of a field (empty when absent)."""
    rules: options_pb2.FieldRules = field.GetOptions().Extensions[options_pb2.field]
    return rules


@functools.cache
def is_extension(field: Field) -> bool:
    """A field r1.15 did not have: written by the r1.15-style printers only when set."""
    return bool(rules_of(field).extension)


def left_out_of_r115_output(field: Field, value: object) -> bool:
    """Whether r1.15-style output (`print_hparams`, `to_json()`) omits this value."""
    if not is_extension(field):
        return False
    if field.is_repeated:
        return len(value) == 0  # type: ignore[arg-type]
    # Not -0.0 for a 0.0 default: it would read back as another spec.
    return bool(value == field.default_value) and repr(value) == repr(field.default_value)


# The singular fields r1.15 did not have: a normalized spec sets them only off their default.
EXTENSION_SCALARS = tuple(f for f in FIELDS.values() if is_extension(f) and not f.is_repeated)


@functools.cache
def is_deprecated(field: Field) -> bool:
    return bool(field.GetOptions().deprecated)


@functools.cache
def is_rule_list(field: Field) -> bool:
    """A repeated rule message written `pattern:value` in the hparam language."""
    return field.is_repeated and kind_of(field) is Kind.MESSAGE


@functools.cache
def key_field(rule: MessageType) -> Field:
    """The pattern field of a rule message (its first field)."""
    return rule.fields[0]


@functools.cache
def value_fields(rule: MessageType) -> tuple[Field, ...]:
    """The value fields of a rule message, in order (all but the pattern)."""
    return tuple(rule.fields[1:])


@dataclasses.dataclass(frozen=True)
class RuleShape:
    """How one entry of a rule list is written: `key:value` or `key:v1<sep>v2`."""

    name: str  # the list field
    key: str  # the pattern field of the rule message
    values: tuple[tuple[str, Field], ...]  # the value fields, by name
    separator: str
    syntax: str  # e.g. `pattern:HxW`, for messages


@functools.cache
def rule_shape(field: Field) -> RuleShape:
    rule = message_type_of(field)
    return RuleShape(
        field.name,
        key_field(rule).name,
        tuple((f.name, f) for f in value_fields(rule)),
        value_separator(field),
        rules_of(field).hparam_entry_syntax,
    )


def message_type_of(field: Field) -> MessageType:
    """The message type of a message field."""
    message_type = field.message_type
    if message_type is None:
        raise TypeError(f"pruning.proto field {field.full_name} is not a message field")
    return message_type


def enum_type_of(field: Field) -> EnumType:
    """The enum type of an enum field."""
    enum_type = field.enum_type
    if enum_type is None:
        raise TypeError(f"pruning.proto field {field.full_name} is not an enum field")
    return enum_type


def value_separator(field: Field) -> str:
    return rules_of(field).hparam_value_separator


def hparam_name(value: EnumValue) -> str:
    """How an enum value is spelled in the hparam language and in `to_json()`."""
    rules: options_pb2.ValueRules = value.GetOptions().Extensions[options_pb2.value]
    return rules.hparam_name


def hparam_values(enum_type: EnumType) -> dict[str, int]:
    """The hparam spellings of an enum, mapped to their numbers (only spelled values)."""
    return {hparam_name(v): v.number for v in enum_type.values if hparam_name(v)}


def enum_spelling(field: Field, number: int) -> str:
    value = enum_type_of(field).values_by_number.get(number)
    if value is None:
        return str(number)
    return hparam_name(value) or value.name


def describe_bounds(field: Field) -> str:
    """The accepted range in words, e.g. `in [0, 1)` or `>= 1 or -1`."""
    rules = rules_of(field)
    low = _bound(rules, "gte", "[") or _bound(rules, "gt", "(")
    high = _bound(rules, "lte", "]") or _bound(rules, "lt", ")")
    if low and high:
        text = f"in {low[0]}{low[1]}, {high[1]}{high[0]}"
    elif low:
        text = f"{'>=' if low[0] == '[' else '>'} {low[1]}"
    elif high:
        text = f"{'<=' if high[0] == ']' else '<'} {high[1]}"
    else:
        return ""
    if rules.also_allowed:
        text += " or " + " or ".join(str(v) for v in rules.also_allowed)
    return text


def _bound(rules: options_pb2.FieldRules, name: str, bracket: str) -> tuple[str, str] | None:
    if not rules.HasField(name):  # type: ignore[arg-type]
        return None
    value: float = getattr(rules, name)
    return (bracket, format_number(value))


def format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A hint naming the closest candidate, or an empty string."""
    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    if name.lower() in lowered:
        return f"did you mean '{lowered[name.lower()]}'?"
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def _declared_defaults(field: Field) -> tuple[str, ...]:
    rule = message_type_of(field)
    return tuple(f.name for f in value_fields(rule) if f.has_default_value)


# The rule lists whose rules have optional fields with a declared default (an N:M rule's
# remainder): a normalized spec leaves such a field unset at its default, whether or not
# a source wrote it (`2/4/REJECT/1` and the text form without `remainder` are one spec).
RULE_DEFAULTS = tuple(
    (f, _declared_defaults(f))
    for f in FIELDS.values()
    if f.is_repeated and kind_of(f) is Kind.MESSAGE and _declared_defaults(f)
)
