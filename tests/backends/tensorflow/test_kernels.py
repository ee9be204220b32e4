"""The mask-update arithmetic: exact radix select, element and block masks, the schedule.

Expected numbers are r1.15's [run] results (docs/semantics.md §b-§c); the masks are
compared with a full-sort `tf.math.top_k` implementation of r1.15's algorithm.
Everything runs in graph mode with a `tf.compat.v1.Session`, but the group thresholds
(global pruning, at the end), which run eagerly and in `tf.function` against a numpy
sort of all the members' magnitudes.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

import pruning_spec
from pruning_spec.backends.tensorflow import _kernels

v1 = tf.compat.v1
FLOAT_DTYPES = (np.float32, np.float64, np.float16)


def _run(fetches, feed_dict=None):
    with v1.Session() as session:
        return session.run(fetches, feed_dict)


def _element_mask(weights, sparsity, old_threshold=0.0, decay=0.0):
    """Runs the backend's element-wise path on numpy data in the current graph."""
    weights = np.asarray(weights)
    return _run(
        _kernels.element_mask(
            tf.constant(weights),
            tf.constant(sparsity, tf.float32),
            tf.constant(old_threshold, weights.dtype),
            decay,
        )
    )


def _block_mask(weights, sparsity, block, pooling="AVG", old_threshold=0.0, decay=0.0):
    weights = np.asarray(weights)
    return _run(
        _kernels.block_mask(
            tf.constant(weights),
            tf.constant(sparsity, tf.float32),
            tf.constant(old_threshold, weights.dtype),
            decay,
            block,
            pooling,
        )
    )


def _keep_count(n: int, sparsity: float) -> int:
    """r1.15's k = round_half_even(float32(n) * (1 - float32(s))), in numpy float32."""
    one = np.float32(1.0)
    return int(np.round(np.float32(n) * (one - np.float32(sparsity))))


# ---------------------------------------------------------------------------------------
# kth_largest: exact, against a numpy sort.


def _kth_cases(dtype, rng):
    normal = np.abs(rng.standard_normal(1000)).astype(dtype)
    ties = np.abs(rng.integers(-6, 7, size=777)).astype(dtype)
    equal = np.full(300, 0.375, dtype)
    zeros = np.zeros(50, dtype)
    mixed = np.concatenate([normal[:200], ties[:200], zeros[:10]])
    wide = (np.abs(rng.standard_normal(500)) * 10.0 ** rng.integers(-4, 4, size=500)).astype(dtype)
    finfo = np.finfo(dtype)
    extremes = np.array(
        [0.0, finfo.smallest_subnormal, finfo.tiny, 1.0, finfo.max, finfo.max, 2.0], dtype
    )
    single = np.array([0.5], dtype)
    cases = []
    for values in (normal, ties, equal, zeros, mixed, wide, extremes, single):
        n = values.size
        ks = {1, n, max(1, n // 2), max(1, n // 3), int(rng.integers(1, n + 1))}
        cases.extend((values, k) for k in sorted(ks))
    return cases


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_kth_largest_is_exact_against_a_numpy_sort(tf2_graph, dtype) -> None:
    rng = np.random.default_rng(20191015)
    values = v1.placeholder(dtype, [None])
    k = v1.placeholder(tf.int32, [])
    kth = _kernels.kth_largest(values, k)
    wrong = []
    with v1.Session() as session:
        for data, rank in _kth_cases(dtype, rng):
            got = session.run(kth, {values: data, k: rank})
            expected = np.sort(data)[::-1][rank - 1]
            if float(got) != float(expected):
                wrong.append((data.size, rank, float(expected), float(got)))
    assert not wrong, f"(n, k, expected, got): {wrong[:5]}"


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_the_sort_for_small_tensors_and_radix_select_agree(tf2_graph, dtype) -> None:
    rng = np.random.default_rng(7)
    wrong = []
    with v1.Session() as session:
        for data, rank in _kth_cases(dtype, rng):
            values = tf.constant(data)  # a known size: kth_largest takes the sort
            assert data.size < _kernels.SORT_BELOW
            got = session.run(
                [
                    _kernels.kth_largest(values, rank),
                    _kernels.radix_kth_largest(values, rank),
                ]
            )
            expected = np.sort(data)[::-1][rank - 1]
            if {float(g) for g in got} != {float(expected)}:
                wrong.append((data.size, rank, float(expected), [float(g) for g in got]))
    assert not wrong, f"(n, k, expected, [sort, radix]): {wrong[:5]}"


def test_kth_largest_of_a_2d_tensor_reads_it_flattened(tf2_graph) -> None:
    data = np.array([[3.0, 1.0, 4.0], [1.0, 5.0, 9.0]], np.float32)
    got = _run([_kernels.kth_largest(tf.constant(data), k) for k in range(1, 7)])
    assert [float(v) for v in got] == [9.0, 5.0, 4.0, 3.0, 1.0, 1.0]


# ---------------------------------------------------------------------------------------
# Element-wise masks: identical to r1.15's full-sort algorithm.


def _r115_element_mask(weights, sparsity, old_threshold, decay):
    """r1.15's `_update_mask` (full `top_k` sort), with the mask in the weight's dtype."""
    abs_weights = tf.abs(weights)
    size = tf.size(abs_weights)
    k = tf.cast(tf.round(tf.cast(size, tf.float32) * (1 - sparsity)), tf.int32)
    sorted_weights, _ = tf.math.top_k(tf.reshape(abs_weights, [-1]), k=size)
    current = tf.gather(sorted_weights, k - 1)
    smoothed = tf.math.add_n([current * (1 - decay), old_threshold * decay])
    mask = tf.cast(tf.greater_equal(abs_weights, smoothed), weights.dtype)
    return smoothed, mask


def _random_weights(rng, dtype):
    shapes = [(1,), (7,), (13, 17), (3, 5, 8), (2, 1, 3), (64, 64)]
    for shape in shapes:
        yield "normal", rng.standard_normal(shape).astype(dtype)
        yield "ties", rng.integers(-4, 5, size=shape).astype(dtype)
        yield "equal", (0.25 * rng.choice([-1.0, 1.0], size=shape)).astype(dtype)
        yield "uniform", rng.uniform(-1e-3, 1e-3, size=shape).astype(dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("decay", "old_threshold"), [(0.0, 0.0), (0.3, 0.7)])
def test_masks_equal_the_full_sort_reference_on_random_weights(
    tf2_graph, dtype, decay, old_threshold
) -> None:
    rng = np.random.default_rng(1115)
    weights = v1.placeholder(dtype, None)
    sparsity = v1.placeholder(tf.float32, [])
    old = v1.placeholder(dtype, [])
    ours = _kernels.element_mask(weights, sparsity, old, decay)
    reference = _r115_element_mask(weights, sparsity, old, decay)
    checked, wrong = 0, []
    with v1.Session() as session:
        for (kind, data), s in itertools.product(
            _random_weights(rng, dtype), (0.0, 0.1, 0.5, 0.73, 0.9, 0.99)
        ):
            if _keep_count(data.size, s) == 0:
                continue  # r1.15 crashed there; see test_k_zero_prunes_everything
            feed = {weights: data, sparsity: s, old: old_threshold}
            (threshold, mask), (ref_threshold, ref_mask) = session.run([ours, reference], feed)
            checked += 1
            assert mask.dtype == dtype and mask.shape == data.shape
            if threshold != ref_threshold or not np.array_equal(mask, ref_mask):
                wrong.append(
                    (kind, data.shape, s, float(ref_threshold), float(threshold),
                     int(ref_mask.sum()), int(mask.sum()))
                )  # fmt: skip
    assert checked > 100
    masks_differ = [case for case in wrong if case[-1] != case[-2]]
    assert not wrong, (
        f"{len(wrong)}/{checked} thresholds and {len(masks_differ)}/{checked} mask counts "
        f"differ; (kind, shape, s, ref threshold, threshold, ref non-zeros, non-zeros): "
        f"{(masks_differ or wrong)[:3]}"
    )


# ---------------------------------------------------------------------------------------
# Element-wise masks: r1.15's [run] numbers (docs/semantics.md §c.1).


@pytest.mark.parametrize(("sparsity", "threshold", "nonzeros"), [(0.95, 96.0, 5), (0.5, 51.0, 50)])
def test_linspace_mask(tf2_graph, sparsity, threshold, nonzeros) -> None:
    weights = np.linspace(1, 100, 100).astype(np.float32)
    got_threshold, mask = _element_mask(weights, sparsity)
    assert got_threshold == threshold
    assert mask.sum() == nonzeros
    np.testing.assert_array_equal(mask, (weights >= threshold).astype(np.float32))


def test_mixed_signs_at_0_4(tf2_graph) -> None:
    threshold, mask = _element_mask(np.array([0.5, -2, 1, -1, 0], np.float32), 0.4)
    assert threshold == 1.0
    np.testing.assert_array_equal(mask, [0, 1, 1, 1, 0])


@pytest.mark.parametrize(("old_threshold", "smoothed", "nonzeros"), [(0.0, 3.0, 8), (8.0, 7.0, 4)])
def test_threshold_decay(tf2_graph, old_threshold, smoothed, nonzeros) -> None:
    weights = np.arange(1, 11, dtype=np.float32)
    threshold, mask = _element_mask(weights, 0.5, old_threshold=old_threshold, decay=0.5)
    assert threshold == smoothed
    assert mask.sum() == nonzeros
    np.testing.assert_array_equal(mask, (weights >= smoothed).astype(np.float32))


def test_ties_at_the_threshold_are_all_kept(tf2_graph) -> None:
    threshold, mask = _element_mask(np.ones(4, np.float32), 0.5)
    assert threshold == 1.0
    np.testing.assert_array_equal(mask, np.ones(4))


def test_zero_sparsity_keeps_everything_at_the_smallest_magnitude(tf2_graph) -> None:
    threshold, mask = _element_mask(np.array([3.0, -0.25, 2.0, 7.0], np.float32), 0.0)
    assert threshold == 0.25
    np.testing.assert_array_equal(mask, np.ones(4))
    threshold, mask = _element_mask(np.array([3.0, 0.0, -2.0], np.float32), 0.0)
    assert threshold == 0.0
    np.testing.assert_array_equal(mask, np.ones(3))


@pytest.mark.parametrize(
    ("n", "sparsity", "k"),
    [(5, 0.5, 2), (7, 0.5, 4), (15, 0.5, 8), (4, 0.875, 0), (4, 0.9, 0), (100, 0.95, 5)],
)
def test_keep_count_rounds_half_to_even(tf2_graph, n, sparsity, k) -> None:
    assert _run(_kernels.keep_count(n, tf.constant(sparsity, tf.float32))) == k
    weights = np.arange(1, n + 1, dtype=np.float32)
    _, mask = _element_mask(weights, sparsity)
    assert mask.sum() == k


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("sparsity", [0.875, 0.9])
def test_k_zero_prunes_everything(tf2_graph, dtype, sparsity) -> None:
    """r1.15 raised InvalidArgumentError (out-of-range gather); the fix prunes all."""
    weights = np.array([0.5, -2.0, 1.0, -1.0], dtype)
    threshold, mask = _element_mask(weights, sparsity)
    assert mask.dtype == dtype
    np.testing.assert_array_equal(mask, np.zeros(4))
    assert np.isfinite(threshold)
    assert threshold > 2.0


def test_k_zero_with_decay_still_prunes_everything(tf2_graph) -> None:
    weights = np.array([0.5, -2.0, 1.0, -1.0], np.float32)
    threshold, mask = _element_mask(weights, 0.9, old_threshold=4.0, decay=0.5)
    np.testing.assert_array_equal(mask, np.zeros(4))
    assert np.isfinite(threshold) and threshold > 2.0


@pytest.mark.parametrize("dtype", [np.float64, np.float16], ids=lambda d: np.dtype(d).name)
def test_masks_keep_the_weight_dtype(tf2_graph, dtype) -> None:
    """r1.15 supported float32 only (TypeError from Assign); masks now follow the weight."""
    weights = np.linspace(1, 100, 100).astype(dtype)
    threshold, mask = _element_mask(weights, 0.95)
    assert mask.dtype == dtype
    assert threshold.dtype == dtype
    assert threshold == 96.0
    np.testing.assert_array_equal(mask, (weights >= 96).astype(dtype))


def test_float64_threshold_is_the_exact_kth_magnitude(tf2_graph) -> None:
    """The k-th largest float64 magnitude is kept even when float32 would round it up."""
    largest = np.nextafter(np.float64(np.float32(0.7)), 0.0)
    assert np.float64(np.float32(largest)) > largest  # float32 rounds it up
    weights = np.array([largest, 0.1, -0.2, 0.3], np.float64)
    threshold, mask = _element_mask(weights, 0.75)  # k = 1: keep the largest
    assert threshold == weights[0]
    np.testing.assert_array_equal(mask, [1.0, 0.0, 0.0, 0.0])


# ---------------------------------------------------------------------------------------
# Block masks (docs/semantics.md §c.2, with the alignment fix).


def test_block_avg_3x4_keeps_only_the_last_row(tf2_graph) -> None:
    weights = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    threshold, mask = _block_mask(weights, 0.5, (2, 2), "AVG")
    # Pooled [[3.5, 5.5], [9.5, 11.5]]: the partial last row block averages its real cells.
    assert threshold == 9.5
    np.testing.assert_array_equal(mask, [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])


def test_block_max_pooling_scores_blocks_by_their_largest_magnitude(tf2_graph) -> None:
    weights = np.array(
        [[10, 0, 3, 3], [0, 0, 3, 3], [-4, 0, 2, 2], [0, 0, 2, -2]], np.float32
    )  # blocks: avg [[2.5, 3], [1, 2]], max [[10, 3], [4, 2]]
    threshold, mask = _block_mask(weights, 0.5, (2, 2), "AVG")
    assert threshold == 2.5
    np.testing.assert_array_equal(mask, [[1, 1, 1, 1], [1, 1, 1, 1], [0] * 4, [0] * 4])
    threshold, mask = _block_mask(weights, 0.5, (2, 2), "MAX")
    assert threshold == 4.0
    np.testing.assert_array_equal(mask, [[1, 1, 0, 0]] * 4)


@pytest.mark.parametrize(("pooling", "threshold"), [("AVG", 7.0), ("MAX", 9.0)])
def test_blocks_align_at_index_zero(tf2_graph, pooling, threshold) -> None:
    """6x2, rows 9,9,9,1,1,1, 4x1 blocks: the scored blocks are rows 0-3 and 4-5.

    r1.15 scored rows 0-2 and 3-5 (SAME padding put a pad row first) but masked
    rows 0-3: row 3 was kept although its scored block was pruned.
    """
    weights = np.repeat(np.array([9, 9, 9, 1, 1, 1], np.float32)[:, None], 2, axis=1)
    got_threshold, mask = _block_mask(weights, 0.5, (4, 1), pooling)
    assert got_threshold == threshold
    np.testing.assert_array_equal(mask, [[1, 1]] * 4 + [[0, 0]] * 2)


def _aligned_pool(magnitudes, block, pooling):
    height, width = magnitudes.shape
    bh, bw = block
    rows, cols = -(-height // bh), -(-width // bw)
    pooled = np.empty((rows, cols))
    for i, j in itertools.product(range(rows), range(cols)):
        cell = magnitudes[i * bh : (i + 1) * bh, j * bw : (j + 1) * bw].astype(np.float64)
        pooled[i, j] = cell.max() if pooling == "MAX" else cell.mean()
    return pooled


@pytest.mark.parametrize("pooling", ["AVG", "MAX"])
def test_scored_blocks_equal_masked_blocks(tf2_graph, pooling) -> None:
    """The kept blocks are exactly the top-k blocks aligned at 0 (partial blocks last)."""
    rng = np.random.default_rng(7)
    cases = []
    for shape, block in [
        ((6, 5), (4, 4)),
        ((6, 2), (4, 1)),
        ((7, 3), (3, 2)),
        ((10, 10), (4, 3)),
        ((5, 9), (1, 4)),
        ((9, 9), (5, 5)),
        ((8, 6), (2, 2)),
        ((3, 11), (3, 11)),
    ]:
        for s in (0.3, 0.5, 0.8):
            data = rng.standard_normal(shape).astype(np.float32)
            placeholder = v1.placeholder(tf.float32, shape)
            op = _kernels.block_mask(
                placeholder, tf.constant(s), tf.constant(0.0), 0.0, block, pooling
            )
            cases.append((data, block, s, placeholder, op))
    with v1.Session() as session:
        for data, block, s, placeholder, op in cases:
            threshold, mask = session.run(op, {placeholder: data})
            pooled = _aligned_pool(np.abs(data), block, pooling)
            k = _keep_count(pooled.size, s)
            top = np.sort(pooled, axis=None)[::-1]
            kept_blocks = pooled >= top[k - 1] if k else np.zeros_like(pooled, bool)
            expected = np.kron(kept_blocks, np.ones(block))[: data.shape[0], : data.shape[1]]
            np.testing.assert_array_equal(mask, expected, err_msg=f"{data.shape} {block} {s}")
            if k:
                assert threshold == pytest.approx(top[k - 1], rel=1e-6)


def test_block_mask_of_a_weight_that_squeezes_to_rank_2_keeps_its_shape(tf2_graph) -> None:
    weights = np.arange(1, 13, dtype=np.float32).reshape(1, 3, 4)
    threshold, mask = _block_mask(weights, 0.5, (2, 2), "AVG")
    assert threshold == 9.5
    assert mask.shape == (1, 3, 4)
    np.testing.assert_array_equal(mask[0], [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])


@pytest.mark.parametrize("dtype", [np.float64, np.float16], ids=lambda d: np.dtype(d).name)
def test_block_masks_keep_the_weight_dtype(tf2_graph, dtype) -> None:
    weights = np.arange(1, 13, dtype=dtype).reshape(3, 4)
    threshold, mask = _block_mask(weights, 0.5, (2, 2), "AVG")
    assert mask.dtype == dtype
    assert threshold == 9.5
    np.testing.assert_array_equal(mask, [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])


def test_block_k_zero_prunes_every_block(tf2_graph) -> None:
    weights = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    threshold, mask = _block_mask(weights, 0.9, (2, 2), "AVG")  # 4 blocks: k = 0
    np.testing.assert_array_equal(mask, np.zeros((3, 4)))
    assert np.isfinite(threshold)


# ---------------------------------------------------------------------------------------
# The float32 schedule: bit for bit what the spec core computes.

EXPONENTS = [1.0, 2.0, 2.5, 3.0, 0.5]


def _spec(exponent: float, **fields) -> pruning_spec.NormalizedSpec:
    return pruning_spec.NormalizedSpec(
        pruning_spec.PruningSpec(sparsity_function_exponent=exponent, **fields)
    )


SCHEDULES = {
    "defaults": ({}, range(0, 131)),
    "decreasing": (
        {
            "initial_sparsity": 0.1,
            "target_sparsity": 0.9,
            "sparsity_function_begin_step": 3,
            "sparsity_function_end_step": 1003,
        },
        range(-5, 1020, 3),
    ),
    "cifar10": (
        {
            "target_sparsity": 0.9,
            "sparsity_function_begin_step": 10000,
            "sparsity_function_end_step": 100000,
        },
        range(9_000, 101_000, 997),
    ),
}


def _schedule_tensor(spec, step):
    return _kernels.polynomial_sparsity(
        step,
        begin_step=spec.sparsity_function_begin_step,
        end_step=spec.sparsity_function_end_step,
        initial_sparsity=spec.initial_sparsity,
        target_sparsity=spec.target_sparsity,
        exponent=spec.sparsity_function_exponent,
    )


def _float32_bits(values) -> np.ndarray:
    return np.asarray(values, np.float32).view(np.int32)


@pytest.mark.parametrize("exponent", EXPONENTS)
@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_schedule_tensor_equals_sparsity_at_bit_for_bit(tf2_graph, schedule, exponent) -> None:
    fields, steps = SCHEDULES[schedule]
    spec = _spec(exponent, **fields)
    step = v1.placeholder(tf.int32, [])
    sparsity = _schedule_tensor(spec, step)
    assert sparsity.dtype == tf.float32
    with v1.Session() as session:
        got = [session.run(sparsity, {step: t}) for t in steps]
    expected = [spec.sparsity_at(t) for t in steps]
    differ = [
        (t, float(g), e)
        for t, g, e in zip(steps, got, expected, strict=True)
        if _float32_bits(g) != _float32_bits(e)
    ]
    assert not differ, f"{len(differ)}/{len(steps)} steps differ (step, tensor, core): {differ[:4]}"


def _r115_schedule(spec, global_step):
    """r1.15's `_setup_sparsity`, literally (docs/semantics.md §b)."""
    t0, t1 = spec.sparsity_function_begin_step, spec.sparsity_function_end_step
    p = tf.minimum(
        1.0, tf.maximum(0.0, tf.math.truediv(tf.cast(global_step - t0, np.float32), t1 - t0))
    )
    return tf.add(
        tf.multiply(
            spec.initial_sparsity - spec.target_sparsity,
            tf.pow(1 - p, spec.sparsity_function_exponent),
        ),
        spec.target_sparsity,
    )


@pytest.mark.parametrize("exponent", EXPONENTS)
@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_schedule_tensor_equals_r115_graph_up_to_its_pow_rounding(
    tf2_graph, schedule, exponent
) -> None:
    # Identical to r1.15's own formula in graph mode but for r1.15's float32 pow, which
    # may be one ulp off the correctly rounded power used here (pruning_spec._schedule).
    fields, steps = SCHEDULES[schedule]
    spec = _spec(exponent, **fields)
    step = v1.placeholder(tf.int32, [])
    ours, reference = _schedule_tensor(spec, step), _r115_schedule(spec, step)
    with v1.Session() as session:
        pairs = [session.run([ours, reference], {step: t}) for t in steps]
    scale = abs(spec.initial_sparsity - spec.target_sparsity)
    bound = scale * 2.0**-24 + float(np.spacing(np.float32(1.0)))
    far = [(t, float(g), float(r)) for t, (g, r) in zip(steps, pairs, strict=True)
           if abs(float(g) - float(r)) > bound]  # fmt: skip
    assert not far, f"(step, tensor, r1.15): {far[:4]}"
    if exponent in (1.0, 2.0, 0.5):  # powers float32 gets exactly right
        assert all(_float32_bits(g) == _float32_bits(r) for g, r in pairs)


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, 0.0), (1, 0.014850497), (10, 0.135500044), (25, 0.2890625), (50, 0.4375),
     (75, 0.4921875), (99, 0.499999493), (100, 0.5), (10_000, 0.5)],
)  # fmt: skip
def test_default_schedule_matches_r115_run_values(tf2_graph, step, expected) -> None:
    # r1.15 printed 0.014850467 at step 1: its float32 pow rounded 0.99**3 one ulp up.
    spec = pruning_spec.NormalizedSpec()
    assert _run(_schedule_tensor(spec, tf.constant(step))) == np.float32(expected)


def test_float32_artefacts_of_a_decreasing_schedule(tf2_graph) -> None:
    spec = _spec(2.0, initial_sparsity=0.1, target_sparsity=0.9, sparsity_function_end_step=4)
    step = v1.placeholder(tf.int32, [])
    sparsity = _schedule_tensor(spec, step)
    with v1.Session() as session:
        assert session.run(sparsity, {step: 0}) == np.float32(0.099999964)
        assert session.run(sparsity, {step: 4}) == np.float32(0.899999976)


# ---------------------------------------------------------------------------------------
# Group thresholds (global pruning): exact, against a numpy sort of the concatenation of
# every member's magnitudes. Eagerly, unless said otherwise.

BFLOAT16 = tf.bfloat16.as_numpy_dtype
GROUP_DTYPES = (np.float16, BFLOAT16, np.float32, np.float64)


def _group_dtype(members) -> type:
    """The reference's common dtype: float64 if any member has it, else float32."""
    return np.float64 if any(m.dtype == np.float64 for m in members) else np.float32


def _magnitudes(member) -> np.ndarray:
    return np.abs(np.asarray(member).astype(np.float64)).ravel()  # exact for every dtype


def _reference_kth(magnitudes, k: int) -> float:
    """The k-th largest number (NaNs rank below every number), 0 past the numbers."""
    numbers = np.sort(magnitudes[~np.isnan(magnitudes)])[::-1]
    return float(numbers[k - 1]) if k <= numbers.size else 0.0


def _reference_group(members, keep: int, floors):
    """(T, [t_i], [mask_i]) as `group_thresholds` documents them, by sorting."""
    dtype = _group_dtype(members)
    magnitudes = [_magnitudes(m) for m in members]
    floor_thresholds, unkept, floor_total = [], [], 0
    for values, floor in zip(magnitudes, floors, strict=True):
        if floor == 0:
            floor_thresholds.append(np.inf)
            unkept.append(values)
            continue
        count = min(floor, values.size)
        floor_total += count
        floor_thresholds.append(_reference_kth(values, count))
        unkept.append(values[values < floor_thresholds[-1]])
    rank = keep - floor_total
    if rank > 0:
        threshold = _reference_kth(np.concatenate(unkept), rank)
    else:  # just above every number of the group, and normal
        every = np.concatenate(magnitudes)
        largest = dtype(every[~np.isnan(every)].max(initial=0.0))
        above = max(np.nextafter(largest, dtype(np.inf)), np.finfo(dtype).tiny)
        threshold = float(largest if np.isinf(largest) else above)
    masks = [
        (values >= threshold) | (values >= floor)
        for values, floor in zip(magnitudes, floor_thresholds, strict=True)
    ]
    return threshold, floor_thresholds, masks


@contextlib.contextmanager
def _batching(batched: bool) -> Iterator[None]:
    """Small members batched (the default), or every member a source of its own.

    Small groups are one batch, which would hide a histogram not summed over sources.
    """
    saved = _kernels.BATCH_BELOW
    _kernels.BATCH_BELOW = saved if batched else 0
    try:
        yield
    finally:
        _kernels.BATCH_BELOW = saved


def _palette(dtype, rng) -> np.ndarray:
    """Values to draw a member from: every special one, a few of each sign and scale."""
    finfo = np.finfo(dtype)
    special = [0.0, -0.0, 1.0, -1.0, 0.5, 3.0, -3.0, np.inf, -np.inf, np.nan]
    tiny = [finfo.smallest_subnormal, -3 * finfo.smallest_subnormal, finfo.tiny, finfo.max]
    scaled = rng.standard_normal(24) * 10.0 ** rng.integers(-3, 4, size=24)
    with np.errstate(over="ignore"):
        return np.concatenate([np.array(special + tiny, dtype), scaled.astype(dtype)])


@st.composite
def _members(draw, max_members: int = 5, max_size: int = 300) -> list[np.ndarray]:
    """1-5 members of mixed dtypes, drawn from small value sets (ties) or wide ones."""
    members = []
    for _ in range(draw(st.integers(1, max_members))):
        dtype = draw(st.sampled_from(GROUP_DTYPES))
        palette = _palette(dtype, np.random.default_rng(draw(st.integers(0, 2**32 - 1))))
        # A few entries of the palette (many ties), or all of it.
        choices = draw(st.integers(1, palette.size))
        size = draw(st.integers(1, max_size))
        picks = draw(st.lists(st.integers(0, choices - 1), min_size=size, max_size=size))
        members.append(palette[np.array(picks)])
    return members


def _same(got, expected) -> bool:
    return float(got) == float(expected) or (np.isnan(got) and np.isnan(expected))


def _ranks(total: int, data) -> list[int]:
    """k from 1 to beyond the count: the ends, around the middle, and a few drawn."""
    drawn = data.draw(st.lists(st.integers(1, total + 3), max_size=4), label="k")
    return sorted({1, 2, total // 2 + 1, total - 1, total, total + 1, total + 3, *drawn} - {0})


@settings(max_examples=30, deadline=None)
@given(members=_members(), batched=st.booleans(), data=st.data())
def test_group_kth_largest_equals_a_sort_of_the_concatenation(members, batched, data) -> None:
    total = sum(m.size for m in members)
    every = np.concatenate([_magnitudes(m) for m in members])
    tensors = [tf.constant(m) for m in members]
    with _batching(batched):
        for k in _ranks(total, data):
            got = _kernels.group_kth_largest(tensors, tf.constant(k, tf.int64))
            assert got.dtype == _group_dtype(members)
            assert float(got) == _reference_kth(every, k), f"k={k}"


@st.composite
def _floors(draw, members) -> list[int]:
    """No floor, or a floor from 0 to past the member's size, for each member."""
    if draw(st.booleans()):
        return [0] * len(members)
    return [draw(st.integers(0, m.size + 2)) for m in members]


def _check_group(members, keep, floors, thresholds, masks) -> None:
    threshold, floor_thresholds, expected = _reference_group(members, keep, floors)
    case = f"keep={keep} floors={floors} T={threshold!r} t={floor_thresholds}"
    assert float(thresholds.threshold) == threshold, case
    assert [float(t) for t in thresholds.floor_thresholds] == floor_thresholds, case
    for member, got, want in zip(members, masks, expected, strict=True):
        mask = np.asarray(got)
        assert mask.dtype == member.dtype and mask.shape == member.shape, case
        np.testing.assert_array_equal(mask.ravel(), want.astype(member.dtype), err_msg=case)


@settings(max_examples=60, deadline=None)
@given(members=_members(), batched=st.booleans(), data=st.data())
def test_group_masks_equal_the_reference(members, batched, data) -> None:
    total = sum(m.size for m in members)
    keep = data.draw(st.integers(0, total + 2), label="keep")
    floors = data.draw(_floors(members), label="floors")
    tensors = [tf.constant(m) for m in members]
    with _batching(batched):
        thresholds = _kernels.group_thresholds(tensors, tf.constant(keep, tf.int64), floors)
        masks = _kernels.group_masks(tensors, thresholds)
    _check_group(members, keep, floors, thresholds, masks)


# Magnitudes exact in every dtype (8 significant bits: bfloat16's) and all distinct.
DISTINCT = np.array(sorted({m * 2.0**e for m in range(1, 256, 2) for e in range(-8, 7)}))


@settings(max_examples=40, deadline=None)
@given(
    dtypes=st.lists(st.sampled_from(GROUP_DTYPES), min_size=1, max_size=5),
    seed=st.integers(0, 2**32 - 1),
    batched=st.booleans(),
    data=st.data(),
)
def test_distinct_values_keep_exactly_the_larger_of_keep_and_the_floors(
    dtypes, seed, batched, data
) -> None:
    rng = np.random.default_rng(seed)
    sizes = [data.draw(st.integers(1, 200), label="size") for _ in dtypes]
    values = rng.permutation(DISTINCT)[: sum(sizes)] * rng.choice([-1.0, 1.0], sum(sizes))
    bounds = np.cumsum([0, *sizes])
    members = [
        values[start:end].astype(dtype)
        for start, end, dtype in zip(bounds[:-1], bounds[1:], dtypes, strict=True)
    ]
    keep = data.draw(st.integers(0, sum(sizes)), label="keep")
    floors = [data.draw(st.integers(0, size), label="floor") for size in sizes]
    tensors = [tf.constant(m) for m in members]
    with _batching(batched):
        thresholds = _kernels.group_thresholds(tensors, tf.constant(keep, tf.int64), floors)
        masks = [np.asarray(m) for m in _kernels.group_masks(tensors, thresholds)]
    kept = [int(np.count_nonzero(mask)) for mask in masks]
    assert sum(kept) == max(keep, sum(floors))
    assert all(k >= floor for k, floor in zip(kept, floors, strict=True))
    _check_group(members, keep, floors, thresholds, masks)


@settings(max_examples=6, deadline=None)  # each example traces twice (~1 s each)
@given(members=_members(max_members=4, max_size=120), batched=st.booleans(), data=st.data())
def test_group_results_are_the_same_eager_and_in_tf_function(members, batched, data) -> None:
    total = sum(m.size for m in members)
    keep = data.draw(st.integers(0, total + 1), label="keep")
    floors = data.draw(_floors(members), label="floors")
    tensors = [tf.constant(m) for m in members]
    keep_tensor = tf.constant(keep, tf.int64)

    def update(keep, *members):
        thresholds = _kernels.group_thresholds(members, keep, floors)
        return (
            thresholds,
            _kernels.group_masks(members, thresholds),
            (_kernels.group_kth_largest(members, tf.maximum(keep, 1))),
        )

    # Static shapes (batching, histograms chosen when tracing) and unknown ones.
    unknown = [tf.TensorSpec([], tf.int64)] + [tf.TensorSpec(None, t.dtype) for t in tensors]
    with _batching(batched):
        results = [
            update(keep_tensor, *tensors),
            tf.function(update)(keep_tensor, *tensors),
            tf.function(update, input_signature=unknown)(keep_tensor, *tensors),
        ]
    flat = [[np.asarray(t) for t in tf.nest.flatten(result)] for result in results]
    for other in flat[1:]:
        assert len(other) == len(flat[0])
        for got, eager in zip(other, flat[0], strict=True):
            assert got.dtype == eager.dtype
            np.testing.assert_array_equal(got, eager)
    thresholds, masks, _ = results[0]
    _check_group(members, keep, floors, thresholds, masks)


def _large_members(rng) -> list[np.ndarray]:
    """Members past the sort's and the scatter's sizes, one past the batching limit.

    Values drawn from 40 levels, so that the compacted buckets of the later digits are
    large too (histogrammed by DenseBincount, not the scatter-add).
    """
    levels = rng.standard_normal(40)
    normal = rng.standard_normal(1 << 18).astype(np.float32)
    normal[::5000] = np.inf
    normal[7::3001] = np.nan
    ties = levels[rng.integers(0, 40, 40_000)].astype(np.float16)
    ties[::97] = 0.0
    wide = (rng.standard_normal(70_000) * 10.0 ** rng.integers(-30, 30, 70_000)).astype(np.float32)
    wide[:100] = np.finfo(np.float32).smallest_subnormal * rng.integers(1, 50, 100)
    return [normal, ties, wide, levels[rng.integers(0, 40, 33_000)].astype(np.float64)]


@pytest.mark.parametrize("with_float64", [False, True], ids=["float32", "float64"])
def test_large_members_take_the_histogram_path(with_float64) -> None:
    members = _large_members(np.random.default_rng(1))
    if not with_float64:
        members = members[:3]
    assert all(m.size > _kernels.SORT_BELOW for m in members)
    assert any(m.size >= _kernels.BATCH_BELOW for m in members)
    total = sum(m.size for m in members)
    every = np.concatenate([_magnitudes(m) for m in members])
    tensors = [tf.constant(m) for m in members]
    kth = tf.function(lambda k: _kernels.group_kth_largest(tensors, k))
    numbers = int(np.count_nonzero(~np.isnan(every)))
    for k in (1, 2, 100, 5000, total // 10, total // 2, 300_000, numbers, numbers + 1):
        assert float(kth(tf.constant(k, tf.int64))) == _reference_kth(every, k), f"k={k}"
    keep = total // 10
    for floors in ([0] * len(members), [0, 30_000, 7, 0][: len(members)]):
        thresholds = _kernels.group_thresholds(tensors, tf.constant(keep, tf.int64), floors)
        _check_group(members, keep, floors, thresholds, _kernels.group_masks(tensors, thresholds))


def test_the_histograms_are_summed_over_every_member() -> None:
    """Each member holds the k-th largest for some k, in the same first-digit bucket.

    A selection that ranked one member only, or summed one pass's histograms but not
    another's, returns a value of the wrong member for some k.
    """
    base = np.float32(1.5)
    steps = np.arange(1, 301, dtype=np.float32) * np.finfo(np.float32).eps  # 1.5 + j ulps
    values = base + steps
    members = [values[j::3].copy() for j in range(3)]  # interleaved: every member ranks
    members.append(np.array([2.0**-140, 3.0], np.float32))  # the largest, and a subnormal
    every = np.concatenate([_magnitudes(m) for m in members])
    tensors = [tf.constant(m) for m in members]
    for batched in (False, True):
        with _batching(batched):
            kth = tf.function(lambda k: _kernels.group_kth_largest(tensors, k))
            got = [float(kth(tf.constant(k, tf.int64))) for k in range(1, every.size + 2)]
        expected = [_reference_kth(every, k) for k in range(1, every.size + 2)]
        assert got == expected, f"batched={batched}"


def test_group_k_zero_prunes_every_number_but_keeps_inf() -> None:
    members = [
        np.array([0.5, -2.0, np.nan], np.float16),
        np.array([1.0, -np.inf, 3.0], np.float32),
    ]
    tensors = [tf.constant(m) for m in members]
    thresholds = _kernels.group_thresholds(tensors, tf.constant(0, tf.int64))
    assert np.isinf(thresholds.threshold)
    masks = _kernels.group_masks(tensors, thresholds)
    np.testing.assert_array_equal(masks[0], [0, 0, 0])
    np.testing.assert_array_equal(masks[1], [0, 1, 0])
    finite = [np.array([0.5, -2.0], np.float16), np.array([1.0, 3.0], np.float32)]
    thresholds = _kernels.group_thresholds([tf.constant(m) for m in finite], 0)
    assert float(thresholds.threshold) == float(np.nextafter(np.float32(3), np.float32(4)))


def test_group_with_only_floors_keeps_each_members_floor() -> None:
    members = [np.arange(1, 11, dtype=np.float32), np.arange(1, 5, dtype=np.float64) / 8]
    tensors = [tf.constant(m) for m in members]
    thresholds = _kernels.group_thresholds(tensors, tf.constant(3, tf.int64), [2, 9])
    assert thresholds.threshold.dtype == tf.float64
    assert [float(t) for t in thresholds.floor_thresholds] == [9.0, 0.125]  # 9 > 4 values
    masks = _kernels.group_masks(tensors, thresholds)  # K - (2 + 4) < 0: floors alone
    np.testing.assert_array_equal(masks[0], [0] * 8 + [1, 1])
    np.testing.assert_array_equal(masks[1], [1, 1, 1, 1])


def test_a_float16_member_is_compared_exactly_against_a_float32_threshold() -> None:
    """T lies between two float16 values: float16 arithmetic would round it onto one."""
    just_above_one = np.nextafter(np.float32(1.0), np.float32(2.0))
    members = [np.array([1.0, 1.0009765625, 0.5], np.float16), np.array([just_above_one])]
    tensors = [tf.constant(m) for m in members]
    thresholds = _kernels.group_thresholds(tensors, tf.constant(2, tf.int64))
    assert float(thresholds.threshold) == float(just_above_one)
    masks = _kernels.group_masks(tensors, thresholds)
    np.testing.assert_array_equal(masks[0], [0, 1, 0])
    np.testing.assert_array_equal(masks[1], [1])


def test_float32_subnormals_rank_exactly_in_a_float64_group() -> None:
    """The CPU casts a float32 subnormal to float64 as 0 (denormals-are-zero)."""
    smallest = np.finfo(np.float32).smallest_subnormal
    members = [np.array([3 * smallest, -smallest, 0.0], np.float32), np.array([2e-50, 0.0])]
    tensors = [tf.constant(m) for m in members]
    got = [float(_kernels.group_kth_largest(tensors, k)) for k in range(1, 6)]
    assert got == [3 * float(smallest), float(smallest), 2e-50, 0.0, 0.0]
    thresholds = _kernels.group_thresholds(tensors, tf.constant(2, tf.int64))
    masks = _kernels.group_masks(tensors, thresholds)  # T subnormal: 0 >= T must not hold
    np.testing.assert_array_equal(masks[0], [1, 1, 0])
    np.testing.assert_array_equal(masks[1], [0, 0])


def test_a_subnormal_group_threshold_does_not_keep_zeros() -> None:
    """The CPU compares floats with denormals-are-zero: `0 >= T` holds for a subnormal T."""
    smallest = np.finfo(np.float32).smallest_subnormal
    members = [np.array([3 * smallest, 0.0, -smallest], np.float32), np.array([0.0], np.float16)]
    tensors = [tf.constant(m) for m in members]
    thresholds = _kernels.group_thresholds(tensors, tf.constant(2, tf.int64))
    assert float(thresholds.threshold) == float(smallest)
    masks = _kernels.group_masks(tensors, thresholds)
    np.testing.assert_array_equal(masks[0], [1, 0, 1])
    np.testing.assert_array_equal(masks[1], [0])


def test_group_thresholds_in_a_v1_session_equal_eager(tf2_graph) -> None:
    members = _large_members(np.random.default_rng(3))[1:3]
    keep, floors = 11_000, [500, 0]
    with tf.Graph().as_default():
        placeholders = [v1.placeholder(m.dtype, [None]) for m in members]
        thresholds = _kernels.group_thresholds(placeholders, tf.constant(keep, tf.int64), floors)
        graph_result = _run(
            (thresholds, _kernels.group_masks(placeholders, thresholds)),
            dict(zip(placeholders, members, strict=True)),
        )
    threshold, floor_thresholds, expected = _reference_group(members, keep, floors)
    (got_threshold, got_floors), masks = graph_result
    assert float(got_threshold) == threshold
    assert [float(t) for t in got_floors] == floor_thresholds
    for mask, want in zip(masks, expected, strict=True):
        np.testing.assert_array_equal(mask, want.astype(mask.dtype))


def test_group_arguments_are_checked() -> None:
    member = tf.constant([1.0, 2.0])
    with pytest.raises(ValueError, match="at least one member"):
        _kernels.group_kth_largest([], 1)
    with pytest.raises(TypeError, match="floats"):
        _kernels.group_kth_largest([member, tf.constant([1, 2])], 1)
    with pytest.raises(ValueError, match="2 floors for 1 members"):
        _kernels.group_thresholds([member], 1, [0, 0])
    with pytest.raises(ValueError, match=">= 0"):
        _kernels.group_thresholds([member], 1, [-1])
