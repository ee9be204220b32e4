"""Lints: settings that make a run prune nothing, the wrong weights, or less than it says.

Every lint is a warning (an error with --strict), except a weight two rules claim,
which is always an error. Each names the numbers involved.

N:M weights (`n_m_map`) follow no schedule and are never pruned in blocks: the lints
about the sparsity curve, a weight's kept count and its block shape leave them out, and
say when the schedule's fields or the global block shape apply to none of them.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Sequence

from pruning_spec._diagnostics import (
    Diagnostic,
    Severity,
    TooManyProblemsError,
    stop_if_too_many,
)
from pruning_spec._inventory import (
    GroupPlan,
    Weight,
    WeightPlan,
    last_update_step,
    plan_groups,
)
from pruning_spec._regex import RuleMatcher
from pruning_spec._spec import NormalizedSpec
from pruning_spec._timeline import update_steps
from pruning_spec._validate import GLOBAL_GROUP
from pruning_spec.v1 import pruning_pb2


def _warning(code: str, message: str, path: str = "", hint: str = "") -> Diagnostic:
    return Diagnostic(code, message, path, Severity.WARNING, hint=hint)


# The fields of the sparsity curve and its threshold: they decide nothing for an N:M weight.
SCHEDULE_FIELDS = (
    "initial_sparsity",
    "target_sparsity",
    "sparsity_function_begin_step",
    "sparsity_function_end_step",
    "sparsity_function_exponent",
    "threshold_decay",
)

# The schedule lints about where the curve gets to, not when masks update.
_CURVE_LINTS = frozenset({"updates-stop-early", "updates-start-late", "target-not-reached"})


def schedule_lints(
    spec: NormalizedSpec,
    total_steps: int | None = None,
    plans: Sequence[WeightPlan] | None = None,
) -> list[Diagnostic]:
    """Problems of the schedule and the update windows (for a run of `total_steps` if given).

    With the model's `plans`, where every pruned weight is N:M, the curve prunes none of
    them: the lints about how far it gets are left out (`inventory_lints` says the
    curve's fields have no effect).
    """
    found = _window_lints(spec)
    if total_steps is not None:
        found += _run_lints(spec, total_steps)
    if plans is not None and not scheduled_weights(spec, plans) and _n_m_plans(plans):
        found = [lint for lint in found if lint.code not in _CURVE_LINTS]
    return found


def scheduled_weights(spec: NormalizedSpec, plans: Sequence[WeightPlan]) -> list[WeightPlan]:
    """The plans of the weights the schedule prunes: neither N:M nor kept dense."""
    # Once a name: an inventory may list one name many times.
    keeps_dense = functools.cache(spec.keeps_dense)
    return [p for p in plans if p.n_m is None and not keeps_dense(p.weight.name)]


def _n_m_plans(plans: Sequence[WeightPlan]) -> list[WeightPlan]:
    return [p for p in plans if p.n_m is not None]


def _window_lints(spec: NormalizedSpec) -> list[Diagnostic]:
    found = []
    begin, end, frequency = spec.begin_pruning_step, spec.end_pruning_step, spec.pruning_frequency
    curve_begin, curve_end = spec.sparsity_function_begin_step, spec.sparsity_function_end_step
    if end >= 0 and frequency > end - begin:
        found.append(
            _warning(
                "frequency-exceeds-window",
                f"is {frequency}, more than the pruning window of {end - begin} steps "
                f"({begin} to {end}): masks update at most once",
                "pruning_frequency",
            )
        )
    if 0 <= end < curve_end:
        found.append(
            _warning(
                "updates-stop-early",
                f"is {end}, before sparsity_function_end_step={curve_end}: the last masks are "
                f"pruned to {spec.sparsity_at(_last_update(spec) or 0):.4g}, "
                f"not {spec.target_sparsity:g}",
                "end_pruning_step",
                hint="set end_pruning_step >= sparsity_function_end_step or -1",
            )
        )
    if begin > curve_begin:
        found.append(
            _warning(
                "updates-start-late",
                f"is {begin}, after sparsity_function_begin_step={curve_begin}: the first update "
                f"jumps to sparsity {spec.sparsity_at(max(begin, frequency)):.4g}",
                "begin_pruning_step",
                hint="start the curve where pruning starts",
            )
        )
    if spec.threshold_decay > 0 and len(update_steps(spec, _horizon(spec))) <= 1:
        found.append(
            _warning(
                "no-effect",
                f"is {spec.threshold_decay:g}, but masks update at most once, so there "
                "is no earlier threshold to smooth with",
                "threshold_decay",
            )
        )
    return found


def _horizon(spec: NormalizedSpec) -> int:
    end = spec.end_pruning_step if spec.end_pruning_step >= 0 else spec.sparsity_function_end_step
    return int(max(end, spec.begin_pruning_step, spec.pruning_frequency)) + 1


def _last_update(spec: NormalizedSpec) -> int | None:
    return last_update_step(spec, None)


def _run_lints(spec: NormalizedSpec, total_steps: int) -> list[Diagnostic]:
    steps = update_steps(spec, total_steps)
    if not len(steps):
        first = max(spec.begin_pruning_step, spec.pruning_frequency)
        return [
            _warning(
                "no-update",
                f"no mask update happens within {total_steps:,} steps (the first would "
                f"be at step {first:,}): nothing is pruned",
                "begin_pruning_step",
            )
        ]
    last = steps[-1]
    reached = spec.sparsity_at(last)
    # Near its end the curve is flat: a gap below 0.001 is not worth a warning.
    if last < spec.sparsity_function_end_step and spec.target_sparsity - reached > 1e-3:
        return [
            _warning(
                "target-not-reached",
                f"the last mask update of {total_steps:,} steps is at step {last:,}, before "
                f"sparsity_function_end_step={spec.sparsity_function_end_step:,}: sparsity reaches "
                f"{reached:.4g}, not {spec.target_sparsity:g}",
                "sparsity_function_end_step",
                hint="train longer or end the schedule earlier",
            )
        ]
    return []


def inventory_lints(
    spec: NormalizedSpec,
    weights: Sequence[Weight],
    plans: Sequence[WeightPlan],
    *,
    tolerance: float = 0.01,
) -> list[Diagnostic]:
    """Rules that match nothing, block rules on weights that cannot take them, tiny weights,
    floors that keep more than a group's target, a GLOBAL scope that groups nothing, and
    schedule fields or a global block shape that no weight follows because of N:M rules."""
    found = []
    for map_name, attribute in (
        ("weight_sparsity_map", "sparsity_rule"),
        ("block_dims_map", "block_rule"),
        ("global_group", "group_rule"),
    ):
        used = {getattr(plan, attribute) for plan in plans}
        for index, rule in enumerate(getattr(spec, map_name)):
            if index not in used:
                what = f"group {rule.name!r}: pattern" if map_name == "global_group" else "pattern"
                found.append(
                    _warning(
                        "rule-matches-nothing",
                        f"{what} {rule.pattern!r} matches none of the {len(weights)} weights",
                        f"{map_name}[{index}]",
                        hint="check the names with `pruning-spec explain`",
                    )
                )
    for index, rule in enumerate(spec.exclude):
        matcher = RuleMatcher((rule.pattern,))
        if not any(matcher.matching(weight.name) for weight in weights):
            found.append(
                _warning(
                    "rule-matches-nothing",
                    f"exclusion {rule.pattern!r} matches none of the {len(weights)} weights",
                    f"exclude[{index}]",
                    hint="check the names with `pruning-spec explain`",
                )
            )
    # By name, as exclusions: a weight whose N:M rule does not fit it (n-m-axis,
    # n-m-remainder) has no plan, but its rule does match it.
    n_m_rules = spec.n_m_map
    matcher = RuleMatcher(tuple(rule.pattern for rule in n_m_rules))
    matched = {index for weight in weights for index in matcher.matching(weight.name)}
    for index, rule in enumerate(n_m_rules):
        if index not in matched:
            found.append(
                _warning(
                    "rule-matches-nothing",
                    f"N:M pattern {rule.pattern!r} matches none of the {len(weights)} weights",
                    f"n_m_map[{index}]",
                    hint="check the names with `pruning-spec explain`",
                )
            )
    found += _n_m_lints(spec, plans)
    groups = plan_groups(spec, plans)
    found += [lint for group in groups.values() for lint in _group_lints(spec, group)]
    if spec.pruning_scope == "GLOBAL" and plans and GLOBAL_GROUP not in groups:
        found.append(
            _warning(
                "no-effect",
                f"is GLOBAL, but a rule claims or keeps dense each of the {len(plans)} "
                "weights: none is left for the group 'global'",
                "pruning_scope",
                hint="remove it, or narrow the rules",
            )
        )
    block_dims = functools.cache(spec.configured_block_dims)  # once a name, as above
    with contextlib.suppress(TooManyProblemsError):
        for plan in plans:
            span = plan.weight.span
            for lint in _weight_lints(plan, block_dims, tolerance):
                stop_if_too_many(found, span.source if span else "<weights>", Severity.WARNING)
                found.append(lint.with_span(span))
    return found


def _n_m_lints(spec: NormalizedSpec, plans: Sequence[WeightPlan]) -> list[Diagnostic]:
    """Settings that N:M weights ignore, when they are all there is, or always (blocks)."""
    n_m = _n_m_plans(plans)
    if not n_m:
        return []
    found = []
    defaults = pruning_pb2.PruningSpec()
    changed = [f for f in SCHEDULE_FIELDS if getattr(spec, f) != getattr(defaults, f)]
    if changed and not scheduled_weights(spec, plans):
        settings = ", ".join(f"{f}={getattr(spec, f):g}" for f in changed)
        several = len(changed) > 1
        count = f"each of the {len(n_m)} weights" if len(n_m) > 1 else "the one weight"
        found.append(
            _warning(
                "no-effect",
                f"{settings} {'shape' if several else 'shapes'} the sparsity schedule, but {count} "
                "the spec prunes has an N:M pattern, which follows no schedule: "
                f"{'they have' if several else 'it has'} no effect",
                changed[0],
                hint=f"remove {'them' if several else 'it'}: an N:M weight is at its "
                "pattern's sparsity from its first mask update on",
            )
        )
    block = (spec.block_height, spec.block_width)
    if block != (1, 1):
        names = ", ".join(repr(p.weight.name) for p in n_m[:3])
        more = f" and {len(n_m) - 3} more" if len(n_m) > 3 else ""
        found.append(
            _warning(
                "n-m-ignores-block",
                f"{block[0]}x{block[1]} blocks (block_height x block_width) do not apply to "
                f"N:M weights, which their pattern prunes value by value: {names}{more}",
                "block_height" if block[0] != 1 else "block_width",
                hint="an n_m_map rule wins over the global block shape; to prune only the "
                "other weights in blocks, give them block_dims_map rules instead",
            )
        )
    return found


def _weight_lints(
    plan: WeightPlan, block_dims: Callable[[str], tuple[int, int]], tolerance: float
) -> list[Diagnostic]:
    """Problems of one weight's plan; `block_dims`: the block shape the spec asks for a name."""
    weight = plan.weight
    found: list[Diagnostic] = []
    if plan.n_m is not None:  # no blocks, no schedule: what its pattern keeps is exact
        return found
    dims = block_dims(weight.name)
    if dims != (1, 1) and plan.block == (1, 1):
        found.append(
            _warning(
                "block-not-rank2",
                f"weight {weight.name!r} of shape {list(weight.shape)} is not "
                f"rank 2 after squeezing, so its {dims[0]}x{dims[1]} blocks do not apply: it is "
                "pruned element-wise",
                _rule_path("block_dims_map", plan.block_rule, "block_height"),
            )
        )
    achieved = plan.achieved_sparsity
    if achieved is None:  # a group member: its own sparsity depends on the values
        return found
    if plan.final_sparsity > 0 and plan.kept_units == 0:
        found.append(
            _warning(
                "weight-too-small",
                f"weight {weight.name!r} has {plan.units} "
                f"{'blocks' if plan.block != (1, 1) else 'values'}: at sparsity "
                f"{plan.final_sparsity:.4g} none is kept",
                _rule_path("weight_sparsity_map", plan.sparsity_rule, "target_sparsity"),
            )
        )
    elif abs(achieved - plan.final_sparsity) > tolerance:
        found.append(
            _warning(
                "weight-too-small",
                f"weight {weight.name!r} has {plan.units} units: keeping "
                f"{plan.kept_units} gives sparsity {achieved:.4g}, not "
                f"{plan.final_sparsity:.4g} (tolerance {tolerance:g})",
                _rule_path("weight_sparsity_map", plan.sparsity_rule, "target_sparsity"),
            )
        )
    return found


def _group_lints(spec: NormalizedSpec, group: GroupPlan) -> list[Diagnostic]:
    if group.floors <= group.kept_units:
        return []
    sparsity = group.final_sparsity
    # ceil(n * d) <= n * d + 1, so floors stay within K when d <= (K - members) / N.
    members = len(group.group.members)
    safe = math.floor(max(0, group.kept_units - members) / group.size * 10_000) / 10_000
    fix = f"set min_weight_density to at most {safe:g}" if safe else "set min_weight_density to 0"
    return [
        _warning(
            "floor-exceeds-target",
            f"is {spec.min_weight_density:g}: the {members} members of group "
            f"{group.name!r} keep at least {group.floors:,} of its {group.size:,} values, more "
            f"than the {group.kept_units:,} its sparsity {sparsity:.4g} keeps, so the group "
            f"ends at sparsity {group.achieved_sparsity:.4g}",
            "min_weight_density",
            hint=f"{fix}, or lower the group's sparsity",
        )
    ]


def _rule_path(map_name: str, index: int | None, global_field: str) -> str:
    return f"{map_name}[{index}]" if index is not None else global_field
