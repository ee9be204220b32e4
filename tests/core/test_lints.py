"""Lints: each names its numbers, points at the field or weight, and is a warning."""

from __future__ import annotations

from pruning_spec import Severity, parse_hparams
from pruning_spec._inventory import Weight, WeightPlan, parse_inventory, plan_weights
from pruning_spec._lints import inventory_lints, schedule_lints


def _codes(hparams: str, total_steps: int | None = None) -> list[tuple[str, str]]:
    found = schedule_lints(parse_hparams(hparams), total_steps)
    assert all(d.severity is Severity.WARNING for d in found)
    return [(d.code, d.field_path) for d in found]


def test_a_sound_spec_has_no_lints() -> None:
    assert _codes("end_pruning_step=200", 1000) == []


def test_no_update_within_the_run() -> None:
    spec = parse_hparams(
        "begin_pruning_step=10000,sparsity_function_begin_step=10000,"
        "sparsity_function_end_step=20000"
    )
    [lint] = schedule_lints(spec, 5000)
    assert lint.code == "no-update"
    assert "within 5,000 steps (the first would be at step 10,000)" in lint.message


def test_target_not_reached() -> None:
    [lint] = schedule_lints(
        parse_hparams("sparsity_function_end_step=1000,target_sparsity=0.9"), 500
    )
    assert lint.code == "target-not-reached"
    assert "step 490" in lint.message and "not 0.9" in lint.message


def test_frequency_larger_than_the_window() -> None:
    assert ("frequency-exceeds-window", "pruning_frequency") in _codes(
        "begin_pruning_step=100,end_pruning_step=150,pruning_frequency=100,sparsity_function_end_step=150"
    )


def test_windows_that_disagree() -> None:
    assert _codes("end_pruning_step=50") == [("updates-stop-early", "end_pruning_step")]
    assert _codes("begin_pruning_step=50,sparsity_function_end_step=200") == [
        ("updates-start-late", "begin_pruning_step")
    ]


def test_threshold_decay_without_a_second_update() -> None:
    codes = _codes(
        "threshold_decay=0.5,begin_pruning_step=0,end_pruning_step=15,sparsity_function_end_step=15"
    )
    assert ("no-effect", "threshold_decay") in codes


def _inventory_lints(hparams: str, inventory: str) -> list[tuple[str, str, int]]:
    spec = parse_hparams(hparams)
    weights, _ = parse_inventory(inventory, "inv.txt")
    plans, _ = plan_weights(spec, weights)
    return [
        (d.code, d.field_path, d.span.line if d.span else 0)
        for d in inventory_lints(spec, weights, plans)
    ]


def test_rule_matching_nothing() -> None:
    lints = _inventory_lints(
        'weight_sparsity_map=["dense[0-9]+/kernel":0.5]', "dense_1/kernel 8,8\n"
    )
    assert lints == [("rule-matches-nothing", "weight_sparsity_map[0]", 0)]


def test_exclusion_matching_nothing() -> None:
    lints = _inventory_lints("exclude=[logits,emb]", "dense_1/kernel 8,8\nlogits/kernel 8,2\n")
    assert lints == [("rule-matches-nothing", "exclude[1]", 0)]


def test_excluded_weights_are_planned_dense() -> None:
    spec = parse_hparams("target_sparsity=0.9,exclude=[logits]")
    weights, _ = parse_inventory("dense_1/kernel 8,8\nlogits/kernel 8,2\n", "inv.txt")
    plans, _ = plan_weights(spec, weights)
    assert [(p.weight.name, round(p.final_sparsity, 6)) for p in plans] == [
        ("dense_1/kernel", 0.9),
        ("logits/kernel", 0.0),
    ]


def test_block_rule_on_a_weight_that_is_not_rank_2() -> None:
    lints = _inventory_lints("block_dims_map=[conv:2x2]", "conv/kernel 3,3,4,8\n")
    assert lints == [("block-not-rank2", "block_dims_map[0]", 1)]


def test_weight_too_small_to_reach_its_target() -> None:
    assert _inventory_lints("target_sparsity=0.99,sparsity_function_end_step=1", "w 40\n") == [
        ("weight-too-small", "target_sparsity", 1)
    ]
    off_by_rounding = _inventory_lints("weight_sparsity_map=[w:0.7]", "w 5\n")
    assert off_by_rounding == [("weight-too-small", "weight_sparsity_map[0]", 1)]


def test_group_matching_nothing() -> None:
    lints = _inventory_lints(
        "global_group=[^enc/:encoder,^dec/:decoder]", "enc/q 8,8\nlogits/kernel 8,2\n"
    )
    assert lints == [("rule-matches-nothing", "global_group[1]", 0)]
    [lint] = inventory_lints(
        parse_hparams("global_group=[^dec/:decoder]"),
        *_planned("global_group=[^dec/:decoder]", "enc/q 8,8\n"),
    )
    assert lint.message == "group 'decoder': pattern '^dec/' matches none of the 1 weights"


def _planned(hparams: str, inventory: str) -> tuple[list[Weight], list[WeightPlan]]:
    weights, _ = parse_inventory(inventory, "inv.txt")
    return weights, plan_weights(parse_hparams(hparams), weights)[0]


def test_a_group_of_sparsity_zero_matches_the_weights_it_keeps_dense() -> None:
    # Its weights are in no group (dense), but the rule does match them.
    assert (
        _inventory_lints("initial_sparsity=0.5,global_group=[^enc/:encoder@0]", "enc/q 8,8\n") == []
    )


def test_floors_that_keep_more_than_the_groups_target() -> None:
    hparams = "pruning_scope=GLOBAL,target_sparsity=0.9,min_weight_density=0.25"
    inventory = "a 100\nb 60\nc 3\n"
    [lint] = inventory_lints(parse_hparams(hparams), *_planned(hparams, inventory))
    assert (lint.code, lint.field_path) == ("floor-exceeds-target", "min_weight_density")
    assert lint.severity is Severity.WARNING
    # floors 25 + 15 + 1 = 41 of 163 values; K = round(163 * 0.1) = 16.
    assert lint.message == (
        "is 0.25: the 3 members of group 'global' keep at least 41 of its 163 values, more than "
        "the 16 its sparsity 0.9 keeps, so the group ends at sparsity 0.7485"
    )
    # ceil(n * d) <= n * d + 1: d <= (16 - 3) / 163 = 0.0797... keeps the floors within K.
    assert lint.hint == "set min_weight_density to at most 0.0797, or lower the group's sparsity"
    fixed = "pruning_scope=GLOBAL,target_sparsity=0.9,min_weight_density=0.0797"
    assert inventory_lints(parse_hparams(fixed), *_planned(fixed, inventory)) == []


def test_floors_that_fit_the_target_exactly_are_no_lint() -> None:
    # 10 values at 0.7 keep 3, and the floor ceil(10 * 0.3) = 3 is within them.
    assert (
        _inventory_lints(
            "pruning_scope=GLOBAL,target_sparsity=0.7,min_weight_density=0.3", "a 10\n"
        )
        == []
    )
    lints = _inventory_lints(
        "pruning_scope=GLOBAL,target_sparsity=0.7,min_weight_density=0.31", "a 10\n"
    )
    assert lints == [("floor-exceeds-target", "min_weight_density", 0)]


def test_global_scope_with_every_weight_claimed_has_no_effect() -> None:
    hparams = "pruning_scope=GLOBAL,weight_sparsity_map=[dense:0.5],global_group=[enc:encoder]"
    assert _inventory_lints(hparams, "dense/kernel 8,8\nenc/q 8,8\n") == [
        ("no-effect", "pruning_scope", 0)
    ]
    assert _inventory_lints(hparams, "dense/kernel 8,8\nenc/q 8,8\nother 8\n") == []


def test_a_small_group_member_is_not_too_small_by_itself() -> None:
    # Alone, 5 values at 0.7 would keep 2 (sparsity 0.6): in a group, its values decide.
    assert _inventory_lints("pruning_scope=GLOBAL,target_sparsity=0.7", "w 5\nv 1000\n") == []
    assert _inventory_lints("target_sparsity=0.7", "w 5\n") == [
        ("weight-too-small", "target_sparsity", 1)
    ]


# N:M weights: no schedule, no blocks.


def test_an_n_m_rule_matching_nothing() -> None:
    lints = _inventory_lints("n_m_map=[^dense/:2/4,^dec/:2/4]", "dense/kernel 8,8\n")
    assert lints == [("rule-matches-nothing", "n_m_map[1]", 0)]
    [lint] = inventory_lints(
        parse_hparams("n_m_map=[^dec/:2/4]"), *_planned("n_m_map=[^dec/:2/4]", "enc/q 8,8\n")
    )
    assert lint.message == "N:M pattern '^dec/' matches none of the 1 weights"


def test_an_n_m_rule_that_does_not_fit_its_weight_still_matches_it() -> None:
    # 6 rows are no multiple of 4: an n-m-remainder error (no plan), not a rule matching nothing.
    spec = parse_hparams("n_m_map=[dense:2/4],target_sparsity=0.5")
    weights, _ = parse_inventory("dense/kernel 6,8\nother 8\n", "inv.txt")
    plans, [problem] = plan_weights(spec, weights)
    assert (problem.code, problem.field_path) == ("n-m-remainder", "n_m_map[0].m")
    assert inventory_lints(spec, weights, plans) == []


def test_schedule_fields_that_no_weight_follows() -> None:
    hparams = (
        "target_sparsity=0.9,sparsity_function_end_step=1000,initial_sparsity=0.1,"
        "n_m_map=[dense:2/4,conv:1/2/KEEP_N],exclude=[bias]"
    )
    inventory = "dense/kernel 8,8\nconv/kernel 3,3,3,8\nconv/bias 8\n"
    [lint] = inventory_lints(parse_hparams(hparams), *_planned(hparams, inventory))
    assert (lint.code, lint.field_path, lint.severity) == (
        "no-effect", "initial_sparsity", Severity.WARNING
    )  # fmt: skip
    assert lint.message == (
        "initial_sparsity=0.1, target_sparsity=0.9, sparsity_function_end_step=1000 shape the "
        "sparsity schedule, but each of the 2 weights the spec prunes has an N:M pattern, which "
        "follows no schedule: they have no effect"
    )
    # One weight that follows the schedule is enough for the fields to matter.
    assert _inventory_lints(hparams, inventory + "logits/kernel 10,10\n") == []
    # At their defaults they say nothing, whatever the weights.
    assert _inventory_lints("n_m_map=[dense:2/4]", "dense/kernel 8,8\n") == []
    [lint] = inventory_lints(
        parse_hparams("sparsity_function_exponent=1,n_m_map=[w:1/2]"),
        *_planned("sparsity_function_exponent=1,n_m_map=[w:1/2]", "w 8\n"),
    )
    assert (lint.field_path, lint.hint) == (
        "sparsity_function_exponent",
        "remove it: an N:M weight is at its pattern's sparsity from its first mask update on",
    )
    assert "the one weight the spec prunes" in lint.message and "it has no effect" in lint.message
    # Nor does a threshold's decay: an N:M mask has no threshold.
    [lint] = inventory_lints(
        parse_hparams("threshold_decay=0.5,n_m_map=[w:1/2]"),
        *_planned("threshold_decay=0.5,n_m_map=[w:1/2]", "w 8\n"),
    )
    assert (lint.code, lint.field_path) == ("no-effect", "threshold_decay")


def test_curve_lints_leave_out_a_model_whose_pruned_weights_are_all_n_m() -> None:
    # The curve ends at step 100 and updates stop at 50: it never reaches target_sparsity,
    # which prunes nothing when every pruned weight is N:M.
    spec = parse_hparams("end_pruning_step=50,n_m_map=[dense:2/4]")
    n_m_only, _ = plan_weights(spec, parse_inventory("dense/kernel 8,8\n")[0])
    mixed, _ = plan_weights(spec, parse_inventory("dense/kernel 8,8\nlogits 8,2\n")[0])
    stopped = ["updates-stop-early", "target-not-reached"]
    assert [d.code for d in schedule_lints(spec, 1000)] == stopped
    assert [d.code for d in schedule_lints(spec, 1000, mixed)] == stopped
    assert schedule_lints(spec, 1000, n_m_only) == []
    # When masks update still matters to N:M weights.
    assert [d.code for d in schedule_lints(spec, 5, n_m_only)] == ["no-update"]


def test_the_global_block_shape_does_not_apply_to_n_m_weights() -> None:
    hparams = "block_height=2,block_width=2,n_m_map=[^nm/:2/4]"
    inventory = "nm/dense 8,8\nnm/conv 3,3,4,8\nother/dense 8,8\nother/conv 3,3,4,8\n"
    # Neither N:M weight gets block-not-rank2 or weight-too-small; the block shape is
    # reported once, at block_height; other/conv is not rank 2 as before.
    assert _inventory_lints(hparams, inventory) == [
        ("n-m-ignores-block", "block_height", 0),
        ("block-not-rank2", "block_height", 4),
    ]
    [lint, _] = inventory_lints(parse_hparams(hparams), *_planned(hparams, inventory))
    assert lint.message == (
        "2x2 blocks (block_height x block_width) do not apply to N:M weights, which their "
        "pattern prunes value by value: 'nm/dense', 'nm/conv'"
    )
    assert _inventory_lints("block_width=4,n_m_map=[w:1/4]", "w 8,8\n") == [
        ("n-m-ignores-block", "block_width", 0)
    ]


def test_an_n_m_weight_is_never_too_small_for_its_pattern() -> None:
    # 5 values, 1:4 KEEP_N: a group of 4 keeps 1 and the last value its own, 2 of 5 (0.6,
    # not 1 - 1/4): that is the pattern, not a missed target. Alone at 0.75, w would be.
    assert _inventory_lints("n_m_map=[w:1/4/KEEP_N]", "w 5\n") == []
    assert _inventory_lints("target_sparsity=0.75", "w 5\n") == [
        ("weight-too-small", "target_sparsity", 1)
    ]
