"""The schedule compiler: the exact steps at which masks update, and the sparsities they reach.

It uses the backends' own predicate and float32 schedule (`_schedule`), so what it
prints is what training will do.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Iterator

from pruning_spec._schedule import polynomial_sparsity
from pruning_spec._spec import NormalizedSpec


@dataclasses.dataclass(frozen=True)
class UpdatePoint:
    """One mask update: its step, the global sparsity and each weight_sparsity_map rule's."""

    step: int
    sparsity: float
    rule_sparsities: tuple[float, ...]


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
    for step in update_steps(spec, total_steps) if steps is None else steps:
        yield UpdatePoint(
            step,
            curve(step, target_sparsity=spec.target_sparsity),
            # A rule of sparsity 0 keeps its weights dense (NormalizedSpec.keeps_dense).
            tuple(curve(step, target_sparsity=target) if target else 0.0 for target in targets),
        )
