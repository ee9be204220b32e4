"""Weights a spec will meet, and what it will do to each: rule resolution against real shapes.

An inventory is a text file of `name shape` lines, e.g. `dense_1/kernel 784,256`
(`#` starts a comment); checkpoints give the same list (`_checkpoints`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from pathlib import Path

from pruning_spec._diagnostics import Diagnostic, Span, SpecError
from pruning_spec._schedule import float32
from pruning_spec._spec import NormalizedSpec
from pruning_spec._timeline import update_steps

_LINE = re.compile(r"\s*(?P<name>\S+)\s+(?P<shape>[\[(]?[\d\s,x]*[\])]?)\s*(?:#.*)?$")


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
    weights, problems = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        span = Span(source, number, len(line) - len(line.lstrip()) + 1)
        match = _LINE.fullmatch(line)
        dims = re.split(r"[\s,x]+", match["shape"].strip("[]() ")) if match else []
        if match is None or not all(d.isdigit() and int(d) > 0 for d in dims):
            problems.append(
                Diagnostic(
                    "bad-inventory-line",
                    f"expected 'name shape', e.g. 'dense_1/kernel 784,256', got {line.strip()!r}",
                    span=span,
                )
            )
            continue
        weights.append(Weight(match["name"], tuple(int(d) for d in dims), span))
    return weights, problems


def read_inventory(path: str) -> tuple[list[Weight], list[Diagnostic]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return [], [Diagnostic("io-error", f"cannot read the inventory: {error}", span=Span(path))]
    return parse_inventory(text, path)


@dataclasses.dataclass(frozen=True)
class WeightPlan:
    """What the spec does to one weight by the end of the run."""

    weight: Weight
    sparsity_rule: int | None  # index in weight_sparsity_map
    block_rule: int | None  # index in block_dims_map
    final_sparsity: float  # the schedule's value at the last mask update
    block: tuple[int, int]  # (1, 1): element-wise
    units: int  # elements, or blocks, ranked by magnitude
    kept_units: int  # k
    padding: tuple[int, int]  # cells that complete the last partial block of each axis

    @property
    def achieved_sparsity(self) -> float:
        return 1.0 - self.kept_units / self.units if self.units else 0.0


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
    """What happens to each weight, and the weights two rules claim (errors)."""
    final_step = last_update_step(spec, total_steps)
    plans, problems = [], []
    for weight in weights:
        try:
            sparsity_rule = spec.rule_index("weight_sparsity_map", weight.name)
            block_rule = spec.rule_index("block_dims_map", weight.name)
        except SpecError as error:
            problems += [dataclasses.replace(d, span=weight.span) for d in error.diagnostics]
            continue
        final = 0.0 if final_step is None else spec.sparsity_at(final_step, weight.name)
        plans.append(_plan(spec, weight, sparsity_rule, block_rule, final))
    return plans, problems


def _plan(
    spec: NormalizedSpec,
    weight: Weight,
    sparsity_rule: int | None,
    block_rule: int | None,
    final: float,
) -> WeightPlan:
    block = spec.block_dims_for(weight.name, weight.shape)
    squeezed = [d for d in weight.shape if d != 1]
    if block == (1, 1):
        units, padding = weight.size, (0, 0)
    else:
        rows, cols = (-(-extent // size) for extent, size in zip(squeezed, block, strict=True))
        units = rows * cols
        padding = (rows * block[0] - squeezed[0], cols * block[1] - squeezed[1])
    return WeightPlan(
        weight, sparsity_rule, block_rule, final, block, units, keep_count(units, final), padding
    )


def keep_count(units: int, sparsity: float) -> int:
    """k = round_half_even(float32(n) * (1 - s)) in float32, as the backends compute it."""
    kept = round(float32(float32(units) * float32(1.0 - float32(sparsity))))
    return max(0, min(units, kept))
