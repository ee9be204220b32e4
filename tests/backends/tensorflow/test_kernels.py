"""The mask-update arithmetic: exact radix select, element and block masks, the schedule.

Expected numbers are r1.15's [run] results (docs/semantics.md §b-§c); the masks are
compared with a full-sort `tf.math.top_k` implementation of r1.15's algorithm.
Everything runs in graph mode with a `tf.compat.v1.Session`.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import tensorflow as tf

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
