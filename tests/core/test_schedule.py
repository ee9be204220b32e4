"""The schedule and update predicate reproduce r1.15's [run] values exactly."""

from __future__ import annotations

import numpy as np
import pytest

from pruning_spec import parse_hparams
from pruning_spec._schedule import float32, mask_update_due, polynomial_sparsity

# docs/semantics.md §b: the default schedule, as r1.15 evaluated it in graph mode.
DEFAULT_SCHEDULE = [
    (0, 0.0),
    (10, 0.135500044),
    (25, 0.2890625),
    (50, 0.4375),
    (75, 0.4921875),
    (99, 0.499999493),
    (100, 0.5),
    (10_000, 0.5),
]


@pytest.mark.parametrize(("step", "expected"), DEFAULT_SCHEDULE)
def test_default_schedule_matches_r115_to_the_float32_bit(step: int, expected: float) -> None:
    assert parse_hparams("").sparsity_at(step) == float32(expected)


def test_step_one_differs_from_r115_only_by_r115s_pow_rounding() -> None:
    # r1.15's float32 pow gave 0.99**3 = 0.97029907, one ulp above the correctly rounded
    # 0.970299 used here; everything else in the formula is the same.
    ours = parse_hparams("").sparsity_at(1)
    assert ours == float32(float32(-0.5 * float32(0.970299)) + 0.5) == float32(0.014850497)
    r115 = float32(float32(-0.5 * float32(0.97029907)) + 0.5)
    assert r115 == float32(0.014850467)


def test_division_is_by_the_float32_reciprocal_as_in_graph_mode() -> None:
    # Graph mode turned (t - t0) / 100 into (t - t0) * float32(0.01): at step 9 that gives
    # 0.09 * ... rounded differently from a true division.
    spec = parse_hparams("")
    progress = float32(9 * float32(1 / 100))
    assert progress != float32(9 / 100)
    decay = float32(float32(1 - progress) ** 3)
    assert spec.sparsity_at(9) == float32(float32(-0.5 * decay) + 0.5)


def test_float32_artefacts_of_a_decreasing_exponent_two_schedule() -> None:
    spec = parse_hparams(
        "initial_sparsity=0.1,target_sparsity=0.9,sparsity_function_end_step=4,"
        "sparsity_function_exponent=2"
    )
    assert spec.sparsity_at(0) == float32(0.099999964)
    assert spec.sparsity_at(4) == float32(0.899999976)


def test_cifar10_readme_schedule() -> None:
    spec = parse_hparams(
        "name=cifar10_pruning,begin_pruning_step=10000,end_pruning_step=100000,"
        "target_sparsity=0.9,sparsity_function_begin_step=10000,sparsity_function_end_step=100000"
    )
    values = [spec.sparsity_at(t) for t in (10_000, 32_500, 55_000, 77_500, 100_000)]
    # The reference prints these to 7 significant digits.
    assert values == pytest.approx([0.0, 0.5203125, 0.7875, 0.8859375, 0.9], abs=1e-7)
    assert values[2] == float32(0.78749996)  # -0.9f * 0.125 + 0.9f, rounded to float32


def test_schedule_is_clamped_before_and_after_its_window() -> None:
    kwargs = dict(
        begin_step=10, end_step=20, initial_sparsity=0.2, target_sparsity=0.8, exponent=3.0
    )
    before = polynomial_sparsity(0, **kwargs)  # type: ignore[arg-type]
    assert before == polynomial_sparsity(10, **kwargs)  # type: ignore[arg-type]
    assert before == float32(float32(0.2 - 0.8) + float32(0.8))  # s_i up to float32 rounding
    assert polynomial_sparsity(1_000_000, **kwargs) == float32(0.8)  # type: ignore[arg-type]


UPDATES = [
    ("defaults", "", 40, [10, 20, 30, 40]),
    ("begin 25 end 60", "begin_pruning_step=25,end_pruning_step=60", 80, [25, 35, 45, 55]),
    ("r1.15 test", "begin_pruning_step=1,end_pruning_step=6,pruning_frequency=2", 10, [2, 4, 6]),
]


@pytest.mark.parametrize(
    ("hparams", "last_step", "expected"), [u[1:] for u in UPDATES], ids=[u[0] for u in UPDATES]
)
def test_update_steps_follow_the_r115_predicate(
    hparams: str, last_step: int, expected: list[int]
) -> None:
    spec = parse_hparams(hparams)
    last_update, updates = 0, []
    for step in range(last_step + 1):
        if spec.mask_update_due(step, last_update):
            updates.append(step)
            last_update = step
    assert updates == expected


def test_zero_frequency_updates_every_step_in_window() -> None:
    assert all(
        mask_update_due(step, last_update_step=step - 1, begin_step=0, end_step=-1, frequency=0)
        for step in range(1, 5)
    )


def test_only_a_negative_end_step_leaves_the_window_open() -> None:
    # end_step 0 is the window [begin, 0], not an open one (r1.15: `end_pruning_step < 0`).
    window = {"last_update_step": 0, "begin_step": 0, "frequency": 10}
    assert not mask_update_due(20, end_step=0, **window)
    assert mask_update_due(20, end_step=-1, **window)


# An independent reference of the documented formula, in numpy float32 arithmetic:
#   p = clamp(float32(t - t0) * float32(1 / (t1 - t0)), 0, 1)
#   s = float32(s_i - s_f) * float32((1 - p) ** e) + s_f
# with the power taken in float64 and rounded once to float32.
def reference_sparsity(
    step: int, begin: int, end: int, initial: float, target: float, exponent: float
) -> float:
    f32 = np.float32
    recip = f32(1) / f32(end - begin)  # float32 division: the float32 reciprocal
    progress = f32(step - begin) * recip  # a float32 product, not a division
    progress = min(f32(1), max(f32(0), progress))
    remaining = f32(1) - progress
    decay = f32(float(remaining) ** float(f32(exponent)))  # float64 power, rounded once
    scale = f32(initial - target)
    return float(scale * decay + f32(target))


REFERENCE_SPECS = [
    # (begin, end, initial, target, exponent)
    (0, 100, 0.0, 0.5, 3.0),
    (0, 100, 0.0, 0.9, 1.0),
    (10, 1_010, 0.05, 0.95, 2.0),
    (0, 7_919, 0.2, 0.8, 3.0),
    (250, 3_250, 0.1, 0.75, 0.5),
    (1_000, 91_000, 0.3, 0.9, 7.3),
    (5, 22, 0.9, 0.1, 3.0),  # decreasing
]


def reference_steps(begin: int, end: int) -> list[int]:
    extent = end - begin
    stride = max(1, extent // 2_000)
    return [*range(begin - 3, end + 4, stride), *range(end - 50, end + 1), end + 1_000]


@pytest.mark.parametrize(
    ("begin", "end", "initial", "target", "exponent"),
    REFERENCE_SPECS,
    ids=[f"{s[0]}-{s[1]}-{s[2]}-{s[3]}-e{s[4]}" for s in REFERENCE_SPECS],
)
def test_schedule_equals_a_numpy_float32_reference_bit_for_bit(
    begin: int, end: int, initial: float, target: float, exponent: float
) -> None:
    mismatches = [
        step
        for step in reference_steps(begin, end)
        if polynomial_sparsity(
            step,
            begin_step=begin,
            end_step=end,
            initial_sparsity=initial,
            target_sparsity=target,
            exponent=exponent,
        )
        != reference_sparsity(step, begin, end, initial, target, exponent)
    ]
    assert mismatches == []


@pytest.mark.parametrize(
    "hparams",
    [
        "",
        "initial_sparsity=0.1,target_sparsity=0.85,sparsity_function_begin_step=100,"
        "sparsity_function_end_step=1100,sparsity_function_exponent=7.3",
        "initial_sparsity=0.25,target_sparsity=0.6,sparsity_function_end_step=333,"
        "sparsity_function_exponent=0.5",
    ],
    ids=["defaults", "exponent-7.3", "exponent-0.5"],
)
def test_spec_sparsity_at_equals_the_reference_at_every_step_of_its_window(hparams: str) -> None:
    spec = parse_hparams(hparams)
    begin, end = spec.sparsity_function_begin_step, spec.sparsity_function_end_step
    args = (begin, end, spec.initial_sparsity, spec.target_sparsity)
    exponent = spec.sparsity_function_exponent
    mismatches = [
        step
        for step in range(begin - 2, end + 3)
        if spec.sparsity_at(step) != reference_sparsity(step, *args, exponent)
    ]
    assert mismatches == []


def test_reference_grid_exercises_both_float32_roundings() -> None:
    # The reference itself must tell the float32 power and the reciprocal apart from their
    # sloppier forms, or the tests above would prove nothing.
    f32 = np.float32
    begin, end, initial, target, exponent = 1_000, 91_000, 0.3, 0.9, 7.3
    unrounded_power = divided = 0
    for step in reference_steps(begin, end):
        exact = reference_sparsity(step, begin, end, initial, target, exponent)
        progress = min(f32(1), max(f32(0), f32(step - begin) * (f32(1) / f32(end - begin))))
        power = float(f32(1) - progress) ** float(f32(exponent))
        scaled = f32(float(f32(initial - target)) * power)
        unrounded_power += exact != float(scaled + f32(target))
        quotient = min(f32(1), max(f32(0), f32(step - begin) / f32(end - begin)))
        decay = f32(float(f32(1) - quotient) ** float(f32(exponent)))
        divided += exact != float(f32(initial - target) * decay + f32(target))
    assert unrounded_power > 0
    assert divided > 0
