"""Semantic validation: every problem of a spec, each with its field path.

Field constraints come from the `(pruning_spec.v1.field)` options and
cross-field constraints from the `(pruning_spec.v1.message)` options of
`pruning.proto`; only rules about runtime semantics live here in code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import re
from collections.abc import Callable, Collection, Iterator

from google.protobuf.message import Message

from pruning_spec import _schema
from pruning_spec._diagnostics import (
    Diagnostic,
    Severity,
    Span,
    SpecError,
    TooManyProblemsError,
    stop_if_too_many,
)
from pruning_spec._regex import pattern_problem
from pruning_spec._schema import Kind
from pruning_spec.v1 import options_pb2, pruning_pb2

Locator = Callable[[str], "Span | None"]


# The group pruning_scope GLOBAL forms of the weights no rule claims.
GLOBAL_GROUP = "global"


def _no_location(_: str) -> Span | None:
    return None


def effective_value(message: Message, field: _schema.Field) -> object:
    """The value a field has once defaults are applied."""
    if field.is_repeated or message.HasField(field.name):
        return getattr(message, field.name)
    return field.default_value


class Validator:
    """Checks specs against the schema's rules; reusable across many specs.

    Args:
      external_sparsity: the backend is given its sparsity from outside the
        schedule, so `weight_sparsity_map` values are scaled by
        `m / target_sparsity` as in r1.15 and a zero target is an error.
    """

    def __init__(self, *, external_sparsity: bool = False) -> None:
        self.external_sparsity = external_sparsity

    def collect(
        self,
        spec: pruning_pb2.PruningSpec,
        *,
        locate: Locator = _no_location,
        skip_paths: Collection[str] = (),
        default_span: Span | None = None,
    ) -> list[Diagnostic]:
        """Every diagnostic of `spec`; fields in `skip_paths` failed to parse and are not judged.

        `locate` maps a field path to where the field was written; a diagnostic
        about a field no source wrote gets `default_span` (e.g. the file).
        """
        found: list[Diagnostic] = []
        with contextlib.suppress(TooManyProblemsError):
            _check_message(spec, "", skip_paths, found)
        found += _check_orderings(spec, skip_paths)
        found += self._check_semantics(spec)
        return [d.with_span(_locate(locate, d.field_path) or default_span) for d in found]

    def validate(self, spec: pruning_pb2.PruningSpec, *, locate: Locator = _no_location) -> None:
        """Raises `SpecError` carrying every diagnostic when any of them is an error."""
        found = self.collect(spec, locate=locate)
        if any(d.is_error for d in found):
            raise SpecError(found)

    def _check_semantics(self, spec: pruning_pb2.PruningSpec) -> Iterator[Diagnostic]:
        scaled = spec.weight_sparsity_map or any(g.HasField("sparsity") for g in spec.global_group)
        if self.external_sparsity and scaled and spec.target_sparsity == 0:
            yield Diagnostic(
                "zero-target-with-map",
                "is 0, but weight_sparsity_map and global_group sparsities scale an external "
                "sparsity by m / target_sparsity",
                "target_sparsity",
                hint="set target_sparsity > 0, or remove those rules' sparsities",
            )
        yield from _check_group_names(spec)


def _check_group_names(spec: pruning_pb2.PruningSpec) -> Iterator[Diagnostic]:
    first: dict[str, int] = {}
    for index, group in enumerate(spec.global_group):
        path = f"global_group[{index}].name"
        if group.name == GLOBAL_GROUP:
            yield Diagnostic(
                "reserved-group-name",
                f"{GLOBAL_GROUP!r} names the group of pruning_scope GLOBAL",
                path,
                hint="choose another name",
            )
        elif group.name in first:
            yield Diagnostic(
                "duplicate-group",
                f"group {group.name!r} is already global_group[{first[group.name]}]",
                path,
                hint="give each group one rule; join patterns with '|'",
            )
        first.setdefault(group.name, index)


_DEFAULT_VALIDATOR = Validator()


def collect_diagnostics(
    spec: pruning_pb2.PruningSpec, *, external_sparsity: bool = False
) -> list[Diagnostic]:
    """Every diagnostic (errors and warnings) of a `PruningSpec` message."""
    validator = Validator(external_sparsity=True) if external_sparsity else _DEFAULT_VALIDATOR
    return validator.collect(spec)


def validate(spec: pruning_pb2.PruningSpec, *, external_sparsity: bool = False) -> None:
    """Raises `SpecError` when a `PruningSpec` message has any error."""
    validator = Validator(external_sparsity=True) if external_sparsity else _DEFAULT_VALIDATOR
    validator.validate(spec)


def _locate(locate: Locator, path: str) -> Span | None:
    while path:
        span = locate(path)
        if span is not None:
            return span
        path = _parent_path(path)
    return None


def _parent_path(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path.rpartition(".")[0]


def _check_message(
    message: Message, prefix: str, skip: Collection[str], out: list[Diagnostic]
) -> None:
    # An unset field holds its default, and defaults are valid (test_validate proves it), so
    # only required fields and the fields a source set are looked at.
    listed = message.ListFields()
    if len(listed) < len(message.DESCRIPTOR.fields):  # else every required field is there
        for field in _required_fields(message.DESCRIPTOR):
            if not message.HasField(field.name) and prefix + field.name not in skip:
                out.append(Diagnostic("missing-field", "is required", prefix + field.name))
    for field, value in listed:
        if skip and prefix + field.name in skip:
            continue
        rule_list, accepts = _plan(field)
        if rule_list:
            _check_rules(value, _schema.rule_shape(field).key, prefix + field.name, skip, out)
        elif not accepts(value):
            out.extend(_check_scalar(field, value, prefix + field.name))


@functools.cache
def _plan(field: _schema.Field) -> tuple[bool, Callable[[object], bool]]:
    """(is a rule list, quick acceptance test); deprecated fields are never quickly accepted."""
    accepts = _accepts(field)
    if _schema.is_deprecated(field):
        default = field.default_value
        return False, lambda v: v == default and accepts(v)
    return _schema.is_rule_list(field), accepts


@functools.cache
def _required_fields(descriptor: _schema.MessageType) -> tuple[_schema.Field, ...]:
    return tuple(f for f in descriptor.fields if _schema.rules_of(f).required)


def _check_rules(
    rules: list[Message], key: str, path: str, skip: Collection[str], out: list[Diagnostic]
) -> None:
    first_index: dict[str, int] = {}
    for index, rule in enumerate(rules):
        rule_path = f"{path}[{index}]"
        if skip and rule_path in skip:
            continue
        _check_message(rule, rule_path + ".", skip, out)
        out.extend(_check_orderings(rule, skip, rule_path + "."))
        pattern = getattr(rule, key)
        if pattern not in first_index:
            first_index[pattern] = index
            continue
        stop_if_too_many(out, "<spec>")
        out.append(
            Diagnostic(
                "duplicate-pattern",
                f"pattern {pattern!r} is already used by {path}[{first_index[pattern]}]",
                rule_path,
                hint="r1.15 silently kept only the last one; merge the two rules",
            )
        )


def _check_scalar(field: _schema.Field, value: object, path: str) -> Iterator[Diagnostic]:
    """Checks a value a source set explicitly."""
    if _schema.is_deprecated(field) and value != field.default_value:
        yield Diagnostic(
            "deprecated-field",
            f"is deprecated: {_schema.rules_of(field).deprecation_note}",
            path,
            Severity.WARNING,
            hint="remove it",
        )
    if _accepts(field)(value):
        return
    rules = _schema.rules_of(field)
    kind = _schema.kind_of(field)
    if kind in (Kind.INT, Kind.FLOAT):
        assert isinstance(value, int | float)
        yield from _check_number(field, rules, value, path)
    elif kind is Kind.STRING:
        assert isinstance(value, str)
        yield from _check_string(rules, value, path)
    elif kind is Kind.ENUM:
        assert isinstance(value, int)
        spellings = _schema.hparam_values(_schema.enum_type_of(field))
        yield Diagnostic(
            "invalid-enum",
            f"{_schema.enum_spelling(field, value)} is not a valid value",
            path,
            hint="expected one of " + ", ".join(spellings),
        )


@functools.cache
def _accepts(field: _schema.Field) -> Callable[[object], bool]:
    """A quick yes for valid values; a no sends the value to the checks that explain why."""
    rules = _schema.rules_of(field)
    kind = _schema.kind_of(field)
    if kind in (Kind.INT, Kind.FLOAT):
        low = rules.gte if rules.HasField("gte") else -math.inf
        high = rules.lte if rules.HasField("lte") else math.inf
        above = rules.gt if rules.HasField("gt") else -math.inf
        below = rules.lt if rules.HasField("lt") else math.inf
        allowed = frozenset(rules.also_allowed)
        # v - v == 0 is False for NaN and the infinities.
        return lambda v: (
            v in allowed
            or (
                isinstance(v, int | float) and v - v == 0 and low <= v <= high and above < v < below
            )
        )
    if kind is Kind.STRING:
        pattern = re.compile(rules.pattern) if rules.pattern else None
        regex = rules.regex
        return lambda v: (
            isinstance(v, str)
            and (pattern is None or pattern.fullmatch(v) is not None)
            and (not regex or _usable_pattern(v))
        )
    if kind is Kind.ENUM:
        valid = frozenset(_schema.hparam_values(_schema.enum_type_of(field)).values())
        return lambda v: v in valid
    return lambda v: True


def _usable_pattern(pattern: str) -> bool:
    """Non-empty, and RE2 runs it with Python's meaning."""
    return bool(pattern) and pattern_problem(pattern) is None


def _check_number(
    field: _schema.Field, rules: options_pb2.FieldRules, value: float, path: str
) -> Iterator[Diagnostic]:
    if isinstance(value, float) and not math.isfinite(value):
        yield Diagnostic("not-finite", f"must be a finite number, got {value}", path)
        return
    if value in rules.also_allowed:
        return
    broken = (
        (rules.HasField("gte") and value < rules.gte)
        or (rules.HasField("gt") and value <= rules.gt)
        or (rules.HasField("lte") and value > rules.lte)
        or (rules.HasField("lt") and value >= rules.lt)
    )
    if broken:
        yield Diagnostic(
            "out-of-range",
            f"must be {_schema.describe_bounds(field)}, got {_schema.format_number(float(value))}",
            path,
        )


def _check_string(rules: options_pb2.FieldRules, value: str, path: str) -> Iterator[Diagnostic]:
    if rules.pattern and re.fullmatch(rules.pattern, value) is None:
        yield Diagnostic(
            "invalid-string",
            f"{value!r} is not {rules.pattern_description or 'accepted'}",
            path,
        )
    if not rules.regex:
        return
    if not value:
        yield Diagnostic(
            "empty-pattern",
            "is empty, so it would match every weight",
            path,
            hint="use '.*' if every weight is meant",
        )
        return
    problem = pattern_problem(value)
    if problem is not None:
        yield Diagnostic(problem.code, problem.message, path, hint=problem.hint)


def _check_orderings(
    spec: Message, skip: Collection[str], prefix: str = ""
) -> Iterator[Diagnostic]:
    """The `(message)` ordering rules of `spec`, a whole spec or one rule at `prefix`."""
    for rule in _orderings(spec.DESCRIPTOR):
        if prefix + rule.lower in skip or prefix + rule.upper in skip:
            continue
        if _missing(spec, rule.lower_field) or _missing(spec, rule.upper_field):
            continue  # reported as missing-field
        lower = effective_value(spec, rule.lower_field)
        upper = effective_value(spec, rule.upper_field)
        assert isinstance(lower, int) and isinstance(upper, int)
        if upper in rule.sentinels or upper > lower:
            continue
        if rule.sentinels and upper < 0:
            continue  # a negative non-sentinel is already out of range
        if spec.HasField(rule.upper) or not spec.HasField(rule.lower):
            message, path = f"must be greater than {rule.lower} ({lower}), got {upper}", rule.upper
        else:  # only the lower bound was written: that is where the mistake is
            message, path = f"must be less than {rule.upper} ({upper}), got {lower}", rule.lower
        yield Diagnostic(rule.code, message, prefix + path, hint=rule.explanation)


def _missing(message: Message, field: _schema.Field) -> bool:
    return _schema.rules_of(field).required and not message.HasField(field.name)


@dataclasses.dataclass(frozen=True)
class _Ordering:
    """An `OrderingRule` option, read once into plain Python values."""

    lower: str
    upper: str
    lower_field: _schema.Field
    upper_field: _schema.Field
    sentinels: frozenset[int]
    code: str
    explanation: str


@functools.cache
def _orderings(descriptor: _schema.MessageType) -> tuple[_Ordering, ...]:
    options = descriptor.GetOptions().Extensions[options_pb2.message]
    fields = descriptor.fields_by_name
    return tuple(
        _Ordering(
            rule.lower, rule.upper, fields[rule.lower], fields[rule.upper],
            frozenset(rule.upper_sentinels), rule.code, rule.explanation,
        )
        for rule in options.ordering
    )  # fmt: skip
