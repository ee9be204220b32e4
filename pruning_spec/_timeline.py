"""The schedule compiler: the exact steps at which masks update, and the sparsities they reach.

It uses the backends' own predicate and float32 schedule (`_schedule`), so what it
prints is what training will do.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Iterator

from pruning_spec import _schema
from pruning_spec._schedule import polynomial_sparsity
from pruning_spec._spec import NormalizedSpec
from pruning_spec._validate import GLOBAL_GROUP
from pruning_spec.v1 import pruning_pb2


@dataclasses.dataclass(frozen=True)
class UpdatePoint:
    """One mask update: its step, the global sparsity, each weight_sparsity_map rule's,
    each global group's (as a whole), in `schedule_groups` order, and each n_m_map
    rule's (1 - n/m: its weights have no schedule)."""

    step: int
    sparsity: float
    rule_sparsities: tuple[float, ...]
    group_sparsities: tuple[float, ...] = ()
    n_m_sparsities: tuple[float, ...] = ()


@dataclasses.dataclass(frozen=True)
class ScheduledGroup:
    """A global group the spec declares: its name, pattern and target sparsity."""

    name: str
    pattern: str | None  # None: pruning_scope GLOBAL's group, the weights no rule claims
    target: float
    dense: bool  # a global_group rule of sparsity 0 keeps its weights dense


@dataclasses.dataclass(frozen=True)
class ScheduledNM:
    """An n_m_map rule: its weights keep n of every m values from the first mask update on.

    They follow no schedule: their sparsity is 0 before the first update and the
    pattern's from it on, the same at every later update (each re-masks them).
    """

    pattern: str
    n: int
    m: int
    axis: int | None  # None: the default, -2 (0 for a rank-1 weight)
    remainder: str  # REJECT, DENSE or KEEP_N

    @property
    def sparsity(self) -> float:
        """1 - n/m: a weight's sparsity when m divides its axis (else a little lower)."""
        return 1.0 - self.n / self.m

    @property
    def label(self) -> str:
        """Its column's name: `2:4 <pattern>`."""
        return f"{self.n}:{self.m} {self.pattern}"


_NM_REMAINDER = pruning_pb2.NMSparsityRule.DESCRIPTOR.fields_by_name["remainder"]


def schedule_n_m(spec: NormalizedSpec) -> list[ScheduledNM]:
    """The spec's n_m_map rules, in order."""
    return [
        ScheduledNM(
            rule.pattern,
            rule.n,
            rule.m,
            rule.axis if rule.HasField("axis") else None,
            _schema.enum_spelling(_NM_REMAINDER, rule.remainder),
        )
        for rule in spec.n_m_map
    ]


def schedule_groups(spec: NormalizedSpec) -> list[ScheduledGroup]:
    """The groups of the spec: each global_group rule's, then `global` under GLOBAL scope.

    Which weights belong to which is `NormalizedSpec.group_for`'s to say; a weight list
    can leave a group empty.
    """
    groups = [
        ScheduledGroup(
            rule.name,
            rule.pattern,
            spec.group_target(rule.name),
            # NormalizedSpec.keeps_dense: an explicit 0 keeps the members dense.
            rule.HasField("sparsity") and rule.sparsity == 0,
        )
        for rule in spec.global_group
    ]
    if spec.pruning_scope == "GLOBAL":
        groups.append(ScheduledGroup(GLOBAL_GROUP, None, spec.group_target(GLOBAL_GROUP), False))
    return groups


def update_steps(spec: NormalizedSpec, total_steps: int) -> range:
    """The global steps in [0, total_steps) at which the conditional mask update runs.

    The predicate is r1.15's with `last_mask_update_step` starting at 0, so the first
    update is at max(begin_pruning_step, pruning_frequency), then every
    `pruning_frequency` steps while the step is within the pruning window.
    """
    last = total_steps - 1
    if spec.end_pruning_step >= 0:
        last = min(last, spec.end_pruning_step)
    frequency = spec.pruning_frequency  # >= 1, validated
    return range(max(spec.begin_pruning_step, frequency), last + 1, frequency)


def compile_schedule(
    spec: NormalizedSpec, total_steps: int, steps: Iterable[int] | None = None
) -> Iterator[UpdatePoint]:
    """Every mask update of a run of `total_steps` steps (or those at `steps`), one at a time.

    A generator: a run of 10^9 steps is printed as it is computed, never held whole.
    """
    curve = functools.partial(
        polynomial_sparsity,
        begin_step=spec.sparsity_function_begin_step,
        end_step=spec.sparsity_function_end_step,
        initial_sparsity=spec.initial_sparsity,
        exponent=spec.sparsity_function_exponent,
    )
    targets = [rule.sparsity for rule in spec.weight_sparsity_map]
    groups = schedule_groups(spec)
    n_m = tuple(rule.sparsity for rule in schedule_n_m(spec))
    for step in update_steps(spec, total_steps) if steps is None else steps:
        yield UpdatePoint(
            step,
            curve(step, target_sparsity=spec.target_sparsity),
            # A rule of sparsity 0 keeps its weights dense (NormalizedSpec.keeps_dense).
            tuple(curve(step, target_sparsity=target) if target else 0.0 for target in targets),
            tuple(0.0 if g.dense else spec.group_sparsity_at(step, g.name) for g in groups),
            n_m,  # every update re-masks N:M weights to their pattern
        )
