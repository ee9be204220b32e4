"""Weights a spec will meet, and what it will do to each: rule resolution against real shapes.

An inventory is a text file of `name shape` lines, e.g. `dense_1/kernel 784,256`
(`#` starts a comment); checkpoints give the same list (`_checkpoints`).

The plan: `plan_weights` decides what the spec does to each weight (`WeightPlan`),
`plan_groups` what it does to each global group those plans name (`GroupPlan`). A
group member's own sparsity depends on the values its group ranks together, so its
plan holds the group's sparsity and no kept count of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import operator
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pruning_spec._diagnostics import (
    Diagnostic,
    Severity,
    Span,
    SpecError,
    TooManyProblemsError,
    decode_utf8,
    shorten,
    stop_if_too_many,
)
from pruning_spec._files import FileError, read_bounded
from pruning_spec._groups import Group, Selection, groups_of, select
from pruning_spec._schedule import float32
from pruning_spec._spec import NMPattern, NormalizedSpec
from pruning_spec._timeline import update_steps

if TYPE_CHECKING:
    import numpy.typing as npt

MAX_INVENTORY_BYTES = 16 * 1024 * 1024
_DIMENSION_SEPARATORS = re.compile(r"[\s,x]+")
_LARGEST_SIZE = 2**63 - 1  # a weight larger than any framework's int64 size


@dataclasses.dataclass(frozen=True)
class Weight:
    name: str
    shape: tuple[int, ...]
    span: Span | None = None  # where the inventory lists it

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def parse_inventory(
    text: str, source: str = "<inventory>"
) -> tuple[list[Weight], list[Diagnostic]]:
    """The weights of an inventory text, and a diagnostic for each line that is not `name shape`."""
    weights: list[Weight] = []
    problems: list[Diagnostic] = []
    shapes: dict[str, tuple[int, ...] | None] = {}  # see _parse_line
    with contextlib.suppress(TooManyProblemsError):
        for number, line in enumerate(text.split("\n"), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            span = Span(source, number, len(line) - len(line.lstrip()) + 1)
            weight = _parse_line(stripped, span, shapes)
            if isinstance(weight, Weight):
                weights.append(weight)
            else:
                stop_if_too_many(problems, source)
                problems.append(Diagnostic("bad-inventory-line", weight, span=span))
    return weights, problems


def _parse_line(line: str, span: Span, shapes: dict[str, tuple[int, ...] | None]) -> Weight | str:
    """The weight a stripped line lists, or what is wrong with the line.

    String methods only, each a single pass, so a line costs time linear in its length.
    `shapes` holds the shapes read so far by their text: a model has a few shapes, each
    on many lines, and reading one is most of a line's cost.
    """
    name, *rest = line.split(None, 1)
    text = rest[0].split("#", 1)[0].strip() if rest else ""  # a comment may follow the shape
    shape = shapes[text] if text in shapes else shapes.setdefault(text, _parse_shape(text))
    if shape is None:
        return f"expected 'name shape', e.g. 'dense_1/kernel 784,256', got {shorten(line)}"
    weight = Weight(name, shape, span)
    if weight.size > _LARGEST_SIZE:
        return f"weight {shorten(name)} has {weight.size:.3g} values, more than any tensor can hold"
    return weight


def _parse_shape(text: str) -> tuple[int, ...] | None:
    """The dimensions of a shape's text (`784,256`, `[256x10]`, `(10)`); None: not a shape."""
    if text[:1] in ("[", "("):
        text = text[1:]
    if text[-1:] in ("]", ")"):
        text = text[:-1]
    dims = _DIMENSION_SEPARATORS.split(text.strip())
    # At most 19 digits: int64's range, and far below int()'s limit on digit strings.
    if not all(d.isascii() and d.isdigit() and len(d) <= 19 and int(d) > 0 for d in dims):
        return None
    return tuple(int(d) for d in dims)


def read_inventory(path: str) -> tuple[list[Weight], list[Diagnostic]]:
    try:
        data = read_bounded(path, MAX_INVENTORY_BYTES, what="inventory")
    except FileError as error:
        return [], [error.to_diagnostic()]
    text = decode_utf8(data, path)
    if isinstance(text, Diagnostic):
        return [], [text]
    return parse_inventory(text, path)


@dataclasses.dataclass(frozen=True)
class WeightPlan:
    """What the spec does to one weight by the end of the run.

    A member of a global group (`group`) is ranked with the other members: its
    `final_sparsity` is the group's, reached by the group as a whole, and how many of
    its own values it keeps depends on the values (`kept_units` is None). An N:M
    weight (`n_m`) has no schedule: its `final_sparsity` is what its pattern keeps.
    """

    weight: Weight
    sparsity_rule: int | None  # index in weight_sparsity_map
    block_rule: int | None  # index in block_dims_map
    final_sparsity: float  # the schedule's value at the last mask update (the group's)
    block: tuple[int, int]  # (1, 1): element-wise
    units: int  # elements, or blocks, ranked by magnitude
    kept_units: int | None  # k; None for a group member
    padding: tuple[int, int]  # cells that complete the last partial block of each axis
    group: str | None = None  # the global group ranking it; None: ranked alone
    group_rule: int | None = None  # index in global_group (of a matching rule)
    n_m: NMPattern | None = None  # its N:M pattern; None: ranked by the schedule

    @property
    def achieved_sparsity(self) -> float | None:
        """1 - k/n; None for a group member, whose sparsity depends on the values."""
        if self.kept_units is None:
            return None
        return 1.0 - self.kept_units / self.units if self.units else 0.0


@dataclasses.dataclass(frozen=True)
class GroupPlan:
    """What the spec does to one global group by the end of the run."""

    group: Group  # its members (name, size, floor), in the weights' order
    target: float  # the group's target sparsity
    final_sparsity: float  # the group's scheduled sparsity at the last mask update

    @property
    def name(self) -> str:
        return self.group.name

    @property
    def size(self) -> int:
        """N: the values of all its members."""
        return self.group.size

    @property
    def floors(self) -> int:
        """The sum of the members' floors (min_weight_density)."""
        return self.group.floors

    @property
    def kept_units(self) -> int:
        """K = round_half_even(N * (1 - s)) at the final sparsity, floors not included."""
        return self.group.keep_count(self.final_sparsity)

    @property
    def kept_at_least(self) -> int:
        """What the group keeps, floors included, when no values tie: max(K, sum of floors)."""
        return self.group.kept_at_least(self.final_sparsity)

    @property
    def achieved_sparsity(self) -> float:
        """The group's overall sparsity without ties: 1 - max(K, floors) / N."""
        return 1.0 - self.kept_at_least / self.size if self.size else 0.0

    def select(self, values: Sequence[npt.ArrayLike]) -> Selection:
        """What each member keeps of these values (one array a member, in order)."""
        return select(values, self.kept_units, [m.floor for m in self.group.members])


def last_update_step(spec: NormalizedSpec, total_steps: int | None) -> int | None:
    """The step of the last mask update; without a run length, that of an unbounded run."""
    if total_steps is None and spec.end_pruning_step < 0:
        return int(
            max(spec.sparsity_function_end_step, spec.begin_pruning_step, spec.pruning_frequency)
        )
    horizon = total_steps if total_steps is not None else spec.end_pruning_step + 1
    steps = update_steps(spec, horizon)
    return steps[-1] if len(steps) else None


def plan_weights(
    spec: NormalizedSpec, weights: Sequence[Weight], total_steps: int | None = None
) -> tuple[list[WeightPlan], list[Diagnostic]]:
    """What happens to each weight, the weights two rules claim (errors) and empty weights.

    A weight with no values (a 0 in its shape) has nothing to rank: the backends refuse
    it, and here it gets a warning and no plan.
    """
    final_step = last_update_step(spec, total_steps)
    # What the spec does to a weight depends on its name and shape only, and resolving
    # the rules is most of the cost: an inventory that lists one name and shape many
    # times (a 4 MiB inventory of one line repeated) resolves it once.
    decided: dict[tuple[str, tuple[int, ...]], _Decision] = {}
    plans, problems = [], []
    for weight in weights:
        if weight.size == 0:
            problems.append(
                Diagnostic(
                    "empty-weight",
                    f"weight {shorten(weight.name)} of shape {list(weight.shape)} has no values, "
                    "so there is nothing to prune",
                    severity=Severity.WARNING,
                    span=weight.span,
                )
            )
            continue
        key = (weight.name, weight.shape)
        decision = decided.get(key)
        if decision is None:
            decision = decided[key] = _decide(spec, weight, final_step)
        if isinstance(decision, WeightPlan):
            plans.append(decision if decision.weight is weight else _replan(decision, weight))
        else:
            problems += [dataclasses.replace(d, span=weight.span) for d in decision]
    return plans, problems


# A weight's plan, or the diagnostics (without a span) of why it has none.
_Decision = WeightPlan | list[Diagnostic]

# The fields of a plan after its weight: the same for every weight of one name and shape.
_DECIDED_FIELDS = operator.attrgetter(*[f.name for f in dataclasses.fields(WeightPlan)][1:])


def _replan(plan: WeightPlan, weight: Weight) -> WeightPlan:
    """`plan` for another weight of the same name and shape (its own span).

    Built directly, not with dataclasses.replace, which costs twice as much.
    """
    return WeightPlan(weight, *_DECIDED_FIELDS(plan))


def _decide(spec: NormalizedSpec, weight: Weight, final_step: int | None) -> _Decision:
    """The plan of a weight with values, or the conflicts that leave it without one."""
    try:
        sparsity_rule = spec.rule_index("weight_sparsity_map", weight.name)
        block_rule = spec.rule_index("block_dims_map", weight.name)
        group_rule = spec.rule_index("global_group", weight.name)
        group = spec.group_for(weight.name)
        n_m = spec.n_m_for(weight.name, weight.shape)
    except SpecError as error:
        return list(error.diagnostics)
    if n_m is not None:
        return _n_m_plan(weight, n_m, updated=final_step is not None)
    if final_step is None:
        final = 0.0
    elif group is not None:
        final = spec.group_sparsity_at(final_step, group)
    else:
        final = spec.sparsity_at(final_step, weight.name)
    return _plan(spec, weight, (sparsity_rule, block_rule, group_rule), final, group)


def plan_groups(spec: NormalizedSpec, plans: Sequence[WeightPlan]) -> dict[str, GroupPlan]:
    """The global groups the planned weights form, by name, in first-seen order.

    Each group's final sparsity is its members' (`plan_weights` put the group's there).
    """
    members = [plan for plan in plans if plan.group is not None]
    final = {plan.group: plan.final_sparsity for plan in members}
    groups = groups_of(spec, [(plan.weight.name, plan.units) for plan in members])
    return {
        name: GroupPlan(group, spec.group_target(name), final[name])
        for name, group in groups.items()
    }


def _n_m_plan(weight: Weight, n_m: NMPattern, *, updated: bool) -> WeightPlan:
    """An N:M weight keeps its pattern's count from its first update on (none: all)."""
    kept = n_m.kept_count(weight.shape) if updated else weight.size
    final = 1.0 - kept / weight.size
    return WeightPlan(weight, None, None, final, (1, 1), weight.size, kept, (0, 0), n_m=n_m)


def _plan(
    spec: NormalizedSpec,
    weight: Weight,
    rules: tuple[int | None, int | None, int | None],
    final: float,
    group: str | None,
) -> WeightPlan:
    """The plan of a weight that follows the schedule; `rules`: its map, block and group rules."""
    sparsity_rule, block_rule, group_rule = rules
    block = spec.block_dims_for(weight.name, weight.shape)
    squeezed = [d for d in weight.shape if d != 1]
    if block == (1, 1):
        units, padding = weight.size, (0, 0)
    else:
        rows, cols = (-(-extent // size) for extent, size in zip(squeezed, block, strict=True))
        units = rows * cols
        padding = (rows * block[0] - squeezed[0], cols * block[1] - squeezed[1])
    # A member is element-wise (group_for refuses blocks); what it keeps depends on values.
    kept = keep_count(units, final) if group is None else None
    return WeightPlan(
        weight, sparsity_rule, block_rule, final, block, units, kept, padding, group, group_rule
    )


def keep_count(units: int, sparsity: float) -> int:
    """k = round_half_even(float32(n) * (1 - s)) in float32, as the backends compute it."""
    kept = round(float32(float32(units) * float32(1.0 - float32(sparsity))))
    return max(0, min(units, kept))
