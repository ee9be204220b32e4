"""The schedule compiler: update steps from r1.15's predicate, sparsities from the one schedule."""

from __future__ import annotations

import pytest

from pruning_spec import parse_hparams
from pruning_spec._timeline import compile_schedule, schedule_groups, schedule_n_m, update_steps


@pytest.mark.parametrize(
    ("hparams", "total", "expected"),
    [
        ("", 41, [10, 20, 30, 40]),  # defaults: nothing at step 0
        ("begin_pruning_step=25,end_pruning_step=60", 100, [25, 35, 45, 55]),
        ("begin_pruning_step=1,end_pruning_step=6,pruning_frequency=2", 10, [2, 4, 6]),
        ("begin_pruning_step=5,end_pruning_step=8,pruning_frequency=1", 100, [5, 6, 7, 8]),
        ("begin_pruning_step=500", 100, []),
    ],
)
def test_update_steps_follow_the_predicate(hparams: str, total: int, expected: list[int]) -> None:
    spec = parse_hparams(hparams)
    assert list(update_steps(spec, total)) == expected
    simulated, last = [], 0
    for step in range(total):  # the predicate itself, step by step
        if spec.mask_update_due(step, last):
            simulated.append(step)
            last = step
    assert simulated == expected


def test_compiled_sparsities_are_the_schedules() -> None:
    spec = parse_hparams(
        "begin_pruning_step=25,end_pruning_step=60,weight_sparsity_map=[a:0.8,b:0.2]"
    )
    points = list(compile_schedule(spec, 100))
    assert [p.step for p in points] == [25, 35, 45, 55]
    for point in points:
        assert point.sparsity == spec.sparsity_at(point.step)
        assert point.rule_sparsities == (
            spec.sparsity_at(point.step, "a"),
            spec.sparsity_at(point.step, "b"),
        )


def test_a_rule_of_sparsity_zero_is_a_flat_zero_curve() -> None:
    spec = parse_hparams(
        "initial_sparsity=0.5,target_sparsity=0.8,sparsity_function_end_step=40,"
        "weight_sparsity_map=[logits:0,conv:0.9]"
    )
    points = list(compile_schedule(spec, 41))
    assert [point.rule_sparsities[0] for point in points] == [0.0] * len(points)
    assert [point.rule_sparsities[1] for point in points] == [
        spec.sparsity_at(point.step, "conv/kernel") for point in points
    ]
    assert points[-1].rule_sparsities[1] == pytest.approx(0.9)


def test_each_group_has_its_curve_as_a_whole() -> None:
    spec = parse_hparams(
        "pruning_scope=GLOBAL,initial_sparsity=0.1,target_sparsity=0.9,"
        "sparsity_function_end_step=40,global_group=[^enc/:encoder@0.6,emb:frozen@0,^dec/:decoder]"
    )
    assert [(g.name, g.pattern, g.target, g.dense) for g in schedule_groups(spec)] == [
        ("encoder", "^enc/", 0.6, False),
        ("frozen", "emb", 0.0, True),
        ("decoder", "^dec/", 0.9, False),  # no sparsity of its own: target_sparsity
        ("global", None, 0.9, False),  # pruning_scope GLOBAL's group comes last
    ]
    points = list(compile_schedule(spec, 41))
    for point in points:
        assert point.group_sparsities == (
            spec.group_sparsity_at(point.step, "encoder"),
            0.0,  # kept dense, even with initial_sparsity 0.1
            spec.group_sparsity_at(point.step, "decoder"),
            spec.group_sparsity_at(point.step, "global"),
        )
    assert points[0].group_sparsities[0] > 0.1 and points[-1].group_sparsities[0] == pytest.approx(
        0.6
    )


def test_per_weight_scope_has_no_global_group() -> None:
    spec = parse_hparams("global_group=[^enc/:encoder]")
    assert [g.name for g in schedule_groups(spec)] == ["encoder"]
    assert [g.name for g in schedule_groups(parse_hparams(""))] == []
    assert next(iter(compile_schedule(parse_hparams(""), 41))).group_sparsities == ()


def test_n_m_rules_have_no_schedule_only_their_patterns_sparsity() -> None:
    spec = parse_hparams(
        "initial_sparsity=0.2,target_sparsity=0.9,sparsity_function_end_step=40,"
        "n_m_map=[^dense/:2/4,conv:1/3/KEEP_N/0]"
    )
    assert [(r.pattern, r.n, r.m, r.axis, r.remainder) for r in schedule_n_m(spec)] == [
        ("^dense/", 2, 4, None, "REJECT"),  # axis unset: the default, -2 (0 for rank 1)
        ("conv", 1, 3, 0, "KEEP_N"),
    ]
    assert [r.label for r in schedule_n_m(spec)] == ["2:4 ^dense/", "1:3 conv"]
    points = list(compile_schedule(spec, 41))
    assert [p.step for p in points] == [10, 20, 30, 40]
    # From the first update on, not following the curve (0.2 -> 0.9) at all.
    assert [p.n_m_sparsities for p in points] == [(0.5, 1 - 1 / 3)] * 4
    assert points[0].sparsity != 0.5
    assert next(iter(compile_schedule(parse_hparams(""), 41))).n_m_sparsities == ()
