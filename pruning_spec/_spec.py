"""`NormalizedSpec`: an immutable, validated, fully-populated pruning spec.

Every field holds its effective value (defaults filled in), so what a backend
reads is exactly what the printers write. Each field is a typed read-only
property: `spec.target_sparsity`, `spec.weight_sparsity_map`, ...
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, NoReturn, TypeVar

from google.protobuf.message import Message

from pruning_spec import _n_m, _printers, _schedule, _schema
from pruning_spec._diagnostics import Diagnostic, SpecError
from pruning_spec._regex import RuleMatcher
from pruning_spec._schema import HParamValue
from pruning_spec._validate import GLOBAL_GROUP, Validator
from pruning_spec.v1 import pruning_pb2

_LOG = logging.getLogger("pruning_spec")
_M = TypeVar("_M", bound=Message)


def fill_defaults(spec: pruning_pb2.PruningSpec) -> pruning_pb2.PruningSpec:
    """A copy of `spec` with every singular field of r1.15 explicitly set to its effective
    value, and each of the others set only when it is not at its default.

    So the canonical form of a spec that does not use a field added since is the same
    bytes as before it was added: fingerprints do not change with new fields.
    """
    full = pruning_pb2.PruningSpec()
    full.CopyFrom(_all_defaults())
    full.MergeFrom(spec)  # set scalars replace the defaults; the defaults have no rules
    for field in _schema.EXTENSION_SCALARS:
        if _schema.left_out_of_r115_output(field, getattr(full, field.name)):
            full.ClearField(field.name)  # type: ignore[arg-type]
    for field, names in _schema.RULE_DEFAULTS:
        for rule in getattr(full, field.name):
            _clear_defaults(rule, names)
    return full


def _clear_defaults(rule: Message, names: tuple[str, ...]) -> None:
    """Unsets each of these fields that holds its declared default: one meaning, one form."""
    for name in names:
        field = rule.DESCRIPTOR.fields_by_name[name]
        value = getattr(rule, name)
        if rule.HasField(name) and value == field.default_value:
            rule.ClearField(name)


@functools.cache
def _all_defaults() -> pruning_pb2.PruningSpec:
    defaults = pruning_pb2.PruningSpec()
    for field in defaults.DESCRIPTOR.fields:
        if not field.is_repeated and not _schema.is_extension(field):
            setattr(defaults, field.name, field.default_value)
    return defaults


_NM_REMAINDER = pruning_pb2.NMSparsityRule.DESCRIPTOR.fields_by_name["remainder"]


@dataclasses.dataclass(frozen=True)
class NMPattern:
    """An N:M rule resolved against a weight's shape: n kept of every m along `axis`."""

    n: int
    m: int
    axis: int  # in [0, rank)
    remainder: Literal["REJECT", "DENSE", "KEEP_N"]
    rule: int  # index in n_m_map

    @property
    def nominal_sparsity(self) -> float:
        """1 - n/m: the sparsity of every full group."""
        return 1.0 - self.n / self.m

    def kept_count(self, shape: Sequence[int]) -> int:
        """The values a weight of this shape keeps."""
        return _n_m.kept_count(shape, self.n, self.m, self.axis, self.remainder)

    def describe(self) -> str:
        """`2:4 along axis 0`, with the remainder when it is not REJECT."""
        text = f"{self.n}:{self.m} along axis {self.axis}"
        return text if self.remainder == "REJECT" else f"{text}, remainder {self.remainder}"


class NormalizedSpec:
    """A validated pruning spec with every field at its effective value.

    Construct it from a `PruningSpec` message (it is validated here and
    `SpecError` lists every problem), or get one from `load_spec`,
    `parse_spec_text` or `parse_hparams`. Instances are immutable and hashable;
    two specs are equal when their canonical forms are.
    """

    __slots__ = ("_canonical", "_proto", "_warnings")
    _proto: pruning_pb2.PruningSpec
    _canonical: bytes
    _warnings: tuple[Diagnostic, ...]

    def __init__(
        self, spec: pruning_pb2.PruningSpec | None = None, *, external_sparsity: bool = False
    ) -> None:
        message = spec if spec is not None else pruning_pb2.PruningSpec()
        found = Validator(external_sparsity=external_sparsity).collect(message)
        if any(d.is_error for d in found):
            raise SpecError(found)
        self._init(message, found)

    @classmethod
    def _from_validated(
        cls, spec: pruning_pb2.PruningSpec, warnings: Sequence[Diagnostic]
    ) -> NormalizedSpec:
        self = cls.__new__(cls)
        self._init(spec, warnings)
        return self

    def _init(self, spec: pruning_pb2.PruningSpec, warnings: Sequence[Diagnostic]) -> None:
        object.__setattr__(self, "_proto", fill_defaults(spec))
        object.__setattr__(self, "_canonical", self._proto.SerializeToString(deterministic=True))
        object.__setattr__(self, "_warnings", tuple(warnings))
        for warning in self._warnings:
            _LOG.warning("%s", warning.format(caret=False))

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """Warnings found when the spec was loaded (e.g. deprecated fields that are set)."""
        return self._warnings

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(
            f"NormalizedSpec is immutable: cannot set {name!r}; derive a new spec with "
            "parse_hparams(overrides, base=spec) or NormalizedSpec(modified spec.proto)"
        )

    if not TYPE_CHECKING:
        # Only reached for a name that is not an attribute: it names the closest field.
        # Hidden from type checkers, for which a __getattr__ would make every name valid.
        def __getattr__(self, name: str) -> NoReturn:
            hint = _schema.did_you_mean(name, _schema.FIELDS)
            raise AttributeError(
                f"pruning spec has no field {name!r}" + (f"; {hint}" if hint else "")
            )

    # One read-only property per field of `PruningSpec`, in field order. Enums read as
    # their hparam spelling, rule lists as tuples of copies (tests check the set and types).

    @property
    def name(self) -> str:
        """TensorFlow name scope of the pruning ops and variables."""
        return self._proto.name

    @property
    def begin_pruning_step(self) -> int:
        """First global step at which a mask update may run (inclusive)."""
        return self._proto.begin_pruning_step

    @property
    def end_pruning_step(self) -> int:
        """Last global step at which a mask update may run (inclusive); -1: never stop."""
        return self._proto.end_pruning_step

    @property
    def weight_sparsity_map(self) -> tuple[pruning_pb2.WeightSparsityRule, ...]:
        """Per-weight target sparsity rules (copies); at most one matches a weight."""
        return tuple(_copy(rule) for rule in self._proto.weight_sparsity_map)

    @property
    def block_dims_map(self) -> tuple[pruning_pb2.BlockDimsRule, ...]:
        """Per-weight block shape rules (copies); at most one matches a weight."""
        return tuple(_copy(rule) for rule in self._proto.block_dims_map)

    @property
    def exclude(self) -> tuple[pruning_pb2.ExcludeRule, ...]:
        """Weights left dense for the whole run: an exclusion wins over the maps."""
        return tuple(_copy(rule) for rule in self._proto.exclude)

    @property
    def threshold_decay(self) -> float:
        """Exponential moving average factor of the threshold."""
        return self._proto.threshold_decay

    @property
    def pruning_frequency(self) -> int:
        """Minimum number of global steps between two mask updates."""
        return self._proto.pruning_frequency

    @property
    def nbins(self) -> int:
        """Deprecated, no effect: histogram bins of the pre-2019 threshold algorithm."""
        return self._proto.nbins

    @property
    def block_height(self) -> int:
        """Rows per block for weights without a block_dims_map rule; -1: all rows."""
        return self._proto.block_height

    @property
    def block_width(self) -> int:
        """Columns per block for weights without a block_dims_map rule; -1: all columns."""
        return self._proto.block_width

    @property
    def block_pooling_function(self) -> str:
        """How the magnitudes of a block are reduced before thresholding: AVG or MAX."""
        field = _schema.FIELDS["block_pooling_function"]
        return _schema.enum_spelling(field, self._proto.block_pooling_function)

    @property
    def initial_sparsity(self) -> float:
        """Sparsity of the schedule at or before sparsity_function_begin_step."""
        return self._proto.initial_sparsity

    @property
    def target_sparsity(self) -> float:
        """Sparsity of the schedule at or after sparsity_function_end_step."""
        return self._proto.target_sparsity

    @property
    def sparsity_function_begin_step(self) -> int:
        """Step t0 at which the polynomial schedule starts."""
        return self._proto.sparsity_function_begin_step

    @property
    def sparsity_function_end_step(self) -> int:
        """Step t1 at which the polynomial schedule reaches its target."""
        return self._proto.sparsity_function_end_step

    @property
    def sparsity_function_exponent(self) -> float:
        """Exponent of the polynomial sparsity schedule."""
        return self._proto.sparsity_function_exponent

    @property
    def use_tpu(self) -> bool:
        """Deprecated, no effect: selected TPU-friendly ops in r1.15."""
        return self._proto.use_tpu

    @property
    def pruning_scope(self) -> str:
        """PER_WEIGHT (r1.15) or GLOBAL: the weights no rule claims share one threshold."""
        field = _schema.FIELDS["pruning_scope"]
        return _schema.enum_spelling(field, self._proto.pruning_scope)

    @property
    def global_group(self) -> tuple[pruning_pb2.GlobalGroup, ...]:
        """Named groups, each pruned with one threshold (copies); at most one claims a weight."""
        return tuple(_copy(rule) for rule in self._proto.global_group)

    @property
    def min_weight_density(self) -> float:
        """Floor of every group member: it keeps at least ceil(n * d) of its n values."""
        return self._proto.min_weight_density

    @property
    def n_m_map(self) -> tuple[pruning_pb2.NMSparsityRule, ...]:
        """Per-weight N:M rules (copies): n kept of every m values along an axis."""
        return tuple(_copy(rule) for rule in self._proto.n_m_map)

    # The whole message.

    @property
    def proto(self) -> pruning_pb2.PruningSpec:
        """A copy of the fully-populated `PruningSpec` message."""
        return _copy(self._proto)

    # Identity.

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NormalizedSpec):
            return NotImplemented
        return self._canonical == other._canonical

    def __hash__(self) -> int:
        return hash(self._canonical)

    def __repr__(self) -> str:
        return f"NormalizedSpec({self.to_hparams(include_defaults=False)!r})"

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the canonical binary form, as hex.

        The form has every field set, in field-number order, and no maps or unknown
        fields, so its bytes are fixed by the wire format, not by a protobuf release.
        """
        return hashlib.sha256(self._canonical).hexdigest()

    def to_binary(self) -> bytes:
        return self._canonical

    # Printers.

    def to_hparams(self, *, include_defaults: bool = True) -> str:
        """The canonical hparam string (what `print_hparams` renders); parses back to `self`."""
        return _printers.render_hparams(self._proto, include_defaults=include_defaults)

    def to_textproto(self) -> str:
        return _printers.render_textproto(self._proto)

    def to_json(self, *, indent: int | None = None) -> str:
        """r1.15's `HParams.to_json()`: contrib's key order and value types."""
        return _printers.render_json(self._proto, indent=indent)

    def values(self) -> dict[str, HParamValue]:
        """r1.15's `HParams.values()`."""
        return _printers.hparam_values(self._proto)

    # What backends need.

    def rule_for(self, weight_name: str) -> pruning_pb2.WeightSparsityRule | None:
        """The `weight_sparsity_map` rule found in `weight_name` (as `re.search` finds), if any."""
        index = self.rule_index("weight_sparsity_map", weight_name)
        return None if index is None else _copy(self._proto.weight_sparsity_map[index])

    def block_rule_for(self, weight_name: str) -> pruning_pb2.BlockDimsRule | None:
        """The `block_dims_map` rule found in `weight_name` (as `re.search` finds), if any."""
        index = self.rule_index("block_dims_map", weight_name)
        return None if index is None else _copy(self._proto.block_dims_map[index])

    def target_sparsity_for(self, weight_name: str | None = None) -> float:
        """A weight's target: its map rule's, else its named group's, else target_sparsity.

        An N:M weight's is 1 - n/m, which it has from its first mask update on.
        """
        if weight_name is None:
            return self._proto.target_sparsity
        n_m = self.n_m_rule_for(weight_name)
        if n_m is not None:
            return 1.0 - n_m.n / n_m.m
        rule = self.rule_for(weight_name)
        if rule is not None:
            return rule.sparsity
        group = self._group_rule(weight_name)
        return self.group_target(group.name) if group is not None else self._proto.target_sparsity

    def n_m_rule_for(self, weight_name: str) -> pruning_pb2.NMSparsityRule | None:
        """The `n_m_map` rule found in `weight_name`, if any and the weight is not excluded.

        Raises `SpecError` (`ambiguous-rule`) when two N:M rules match the weight, or an
        N:M rule and a `weight_sparsity_map`, `block_dims_map` or `global_group` rule
        both claim it: an N:M weight has no schedule, block shape or group.
        """
        if not self._proto.n_m_map or self.is_excluded(weight_name):
            return None
        index = self.rule_index("n_m_map", weight_name)
        if index is None:
            return None
        for other in ("weight_sparsity_map", "block_dims_map", "global_group"):
            claimed = self.rule_index(other, weight_name) if getattr(self._proto, other) else None
            if claimed is not None:
                pattern = _patterns(self, other)[0][claimed]
                self._ambiguous(weight_name, "n_m_map", index, f"{other}[{claimed}] ({pattern!r})")
        return _copy(self._proto.n_m_map[index])

    def n_m_for(self, weight_name: str, shape: Sequence[int | None]) -> NMPattern | None:
        """The N:M pattern of a weight of this shape, its axis resolved; None: not N:M.

        Raises `SpecError` when the rule does not fit the shape: an axis out of range
        (`n-m-axis`), a scalar (`n-m-axis`), or an axis extent m does not divide under
        the remainder REJECT (`n-m-remainder`), each located at the rule; `ValueError`
        for a shape with an unknown dimension (None).
        """
        rule = self.n_m_rule_for(weight_name)
        if rule is None:
            return None
        index = self.rule_index("n_m_map", weight_name)
        path = f"n_m_map[{index}]"
        dims = [int(d) for d in shape if d is not None]
        if len(dims) < len(shape):
            raise ValueError(
                f"N:M needs the whole shape of weight {weight_name!r}, not {list(shape)}"
            )
        default_axis = -2 if len(dims) >= 2 else 0
        axis = rule.axis if rule.HasField("axis") else default_axis
        if not -len(dims) <= axis < len(dims):
            problem = (
                f"axis {axis} is out of range for weight {weight_name!r} of shape {dims}"
                if dims
                else f"weight {weight_name!r} is a scalar: it has no axis to group along"
            )
            raise SpecError(
                [
                    Diagnostic(
                        "n-m-axis",
                        problem,
                        path + (".axis" if rule.HasField("axis") else ""),
                        hint="give an axis in [-rank, rank)" if dims else "exclude it",
                    )
                ]
            )
        axis %= len(dims)
        remainder = _schema.enum_spelling(_NM_REMAINDER, rule.remainder)
        if dims[axis] % rule.m and remainder == "REJECT":
            raise SpecError(
                [
                    Diagnostic(
                        "n-m-remainder",
                        f"weight {weight_name!r} of shape {dims} has {dims[axis]} values along "
                        f"axis {axis}, not a multiple of m = {rule.m}",
                        path + ".m",
                        hint="set remainder DENSE (the last group stays dense) or KEEP_N "
                        f"(it keeps its {rule.n} largest), or choose another axis",
                    )
                ]
            )
        return NMPattern(rule.n, rule.m, axis, remainder, index)  # type: ignore[arg-type]

    def group_for(self, weight_name: str) -> str | None:
        """The global group that ranks this weight, or None when it is ranked alone.

        A `global_group` rule claims the weights it matches; under pruning_scope GLOBAL
        the weights no `weight_sparsity_map` or group rule claims form the group
        `global`. Weights the spec keeps dense belong to none. Raises `SpecError`
        (`ambiguous-rule`) when a group rule and a map or block rule both claim the
        weight, or two group rules do, and (`block-in-group`) when a member would be
        block-pruned: a group ranks single values.
        """
        if self.keeps_dense(weight_name) or self.n_m_rule_for(weight_name) is not None:
            return None
        group = self._group_rule(weight_name)
        claimed = self.rule_index("weight_sparsity_map", weight_name)
        if group is not None and claimed is not None:
            self._ambiguous(weight_name, "weight_sparsity_map", claimed, "global_group")
        if group is None and (claimed is not None or self.pruning_scope != "GLOBAL"):
            return None
        name = GLOBAL_GROUP if group is None else group.name
        self._check_element_wise(weight_name, name)
        return name

    def group_target(self, group: str) -> float:
        """A group's target sparsity: its rule's, or target_sparsity."""
        for rule in self._proto.global_group:
            if rule.name == group and rule.HasField("sparsity"):
                return rule.sparsity
        return self._proto.target_sparsity

    def group_sparsity_at(self, step: int, group: str) -> float:
        """The scheduled sparsity of a group as a whole at `step` (float32, as r1.15)."""
        return self.schedule_at(step, self.group_target(group))

    def schedule_at(self, step: int, target: float) -> float:
        """r1.15's polynomial schedule of this spec at `step`, ending at `target` (float32)."""
        spec = self._proto
        return _schedule.polynomial_sparsity(
            step,
            begin_step=spec.sparsity_function_begin_step,
            end_step=spec.sparsity_function_end_step,
            initial_sparsity=spec.initial_sparsity,
            target_sparsity=target,
            exponent=spec.sparsity_function_exponent,
        )

    def _group_rule(self, weight_name: str) -> pruning_pb2.GlobalGroup | None:
        if not self._proto.global_group:
            return None
        index = self.rule_index("global_group", weight_name)
        return None if index is None else self._proto.global_group[index]

    def _check_element_wise(self, weight_name: str, group: str) -> None:
        block_rule = self.rule_index("block_dims_map", weight_name)
        if block_rule is not None:
            self._ambiguous(weight_name, "block_dims_map", block_rule, f"group {group!r}")
        dims = self.configured_block_dims(weight_name)
        if dims != (1, 1):
            raise SpecError(
                [
                    Diagnostic(
                        "block-in-group",
                        f"weight {weight_name!r} of group {group!r} would be pruned in blocks "
                        f"of {dims[0]}x{dims[1]} (block_height, block_width), but a group ranks "
                        "single values",
                        "block_height",
                        hint="set block_height and block_width to 1, or give the weight a "
                        "weight_sparsity_map rule",
                    )
                ]
            )

    def _ambiguous(self, weight_name: str, map_name: str, index: int, other: str) -> NoReturn:
        pattern = _patterns(self, map_name)[0][index]
        group = self._group_rule(weight_name)
        claim = (
            f"global_group {group.name!r} ({group.pattern!r})"
            if group is not None and other == "global_group"
            else other
        )
        raise SpecError(
            [
                Diagnostic(
                    "ambiguous-rule",
                    f"weight {weight_name!r} is claimed by both {map_name}[{index}] "
                    f"({pattern!r}) and {claim}",
                    map_name,
                    hint="make the patterns disjoint",
                )
            ]
        )

    def is_excluded(self, weight_name: str) -> bool:
        """Whether an `exclude` pattern is found in `weight_name` (any number may be)."""
        if not self._proto.exclude:
            return False
        _, matcher = _patterns(self, "exclude")
        return bool(matcher.matching(weight_name))

    def keeps_dense(self, weight_name: str) -> bool:
        """Whether the spec leaves this weight dense for the whole run.

        An `exclude` pattern keeps a weight dense, and so does a `weight_sparsity_map`
        rule or a named `global_group` of sparsity 0, even when `initial_sparsity` is
        above 0 (r1.15 pruned such weights at first, then let them grow back); without
        either, only a run whose initial and target sparsity are both 0.
        """
        if self.is_excluded(weight_name):
            return True
        if self.n_m_rule_for(weight_name) is not None:
            return False  # n < m: an N:M rule always prunes
        rule = self.rule_for(weight_name)
        if rule is not None:
            return rule.sparsity == 0
        group = self._group_rule(weight_name)
        if group is not None and group.HasField("sparsity"):
            return group.sparsity == 0
        return self._proto.initial_sparsity == 0 and self._proto.target_sparsity == 0

    def sparsity_at(self, step: int, weight_name: str | None = None) -> float:
        """The scheduled sparsity at `step` (float32, as r1.15) for a weight or globally.

        A weight with a `weight_sparsity_map` rule follows the same polynomial
        with the rule's sparsity as its target; one the spec keeps dense is at 0. An
        N:M weight has no schedule: its sparsity is 1 - n/m from its first update on.
        """
        if weight_name is not None and self.keeps_dense(weight_name):
            return 0.0
        n_m = self.n_m_rule_for(weight_name) if weight_name is not None else None
        if n_m is not None:
            return _schedule.float32(1.0 - n_m.n / n_m.m)
        return self.schedule_at(step, self.target_sparsity_for(weight_name))

    def mask_update_due(self, step: int, last_update_step: int = 0) -> bool:
        """Whether r1.15's conditional mask update runs at `step`."""
        spec = self._proto
        return _schedule.mask_update_due(
            step,
            last_update_step=last_update_step,
            begin_step=spec.begin_pruning_step,
            end_step=spec.end_pruning_step,
            frequency=spec.pruning_frequency,
        )

    def block_dims_for(self, weight_name: str, shape: Sequence[int]) -> tuple[int, int]:
        """The block shape used for a weight, with -1 resolved against its own shape.

        Only weights that are rank 2 after removing size-1 dimensions are
        block-pruned; any other weight gets (1, 1), element-wise.
        """
        squeezed = [int(d) for d in shape if int(d) != 1]
        if len(squeezed) != 2:
            return (1, 1)
        dims = self.configured_block_dims(weight_name)
        height, width = (
            extent if dim == -1 else dim for dim, extent in zip(dims, squeezed, strict=True)
        )
        return (int(height), int(width))

    def configured_block_dims(self, weight_name: str) -> tuple[int, int]:
        """The block shape the spec asks for a weight (its rule's, or the global one), -1 kept."""
        rule = self.block_rule_for(weight_name)
        if rule is not None:
            return (int(rule.block_height), int(rule.block_width))
        return (int(self._proto.block_height), int(self._proto.block_width))

    def rule_index(self, map_name: str, weight_name: str) -> int | None:
        """The index of the rule of `map_name` matching `weight_name`, if any.

        Raises `SpecError` (`ambiguous-rule`) when two rules match.
        """
        patterns, matcher = _patterns(self, map_name)
        matches = matcher.matching(weight_name)
        if len(matches) > 1:
            first, second = matches[:2]
            raise SpecError(
                [
                    Diagnostic(
                        "ambiguous-rule",
                        f"weight {weight_name!r} matches both {map_name}[{first}] "
                        f"({patterns[first]!r}) and {map_name}[{second}] ({patterns[second]!r})",
                        map_name,
                        hint="make the patterns disjoint",
                    )
                ]
            )
        return matches[0] if matches else None


@functools.lru_cache(maxsize=256)
def _patterns(spec: NormalizedSpec, map_name: str) -> tuple[tuple[str, ...], RuleMatcher]:
    """The patterns of a map's rules, and RE2 matching them all in one pass over a name."""
    key = _schema.rule_shape(_schema.FIELDS[map_name]).key
    patterns = tuple(getattr(rule, key) for rule in getattr(spec._proto, map_name))
    return patterns, RuleMatcher(patterns)


def _copy(message: _M) -> _M:
    duplicate = type(message)()
    duplicate.CopyFrom(message)
    return duplicate
