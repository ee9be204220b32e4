"""Lints: each names its numbers, points at the field or weight, and is a warning."""

from __future__ import annotations

from pruning_spec import Severity, parse_hparams
from pruning_spec._inventory import parse_inventory, plan_weights
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
