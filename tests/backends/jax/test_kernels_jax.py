"""The JAX kernels against the TensorFlow kernels, in one process: identical to the bit.

Every case runs the TensorFlow kernel (eagerly) and the JAX kernel (jitted, as the Keras
backend will run it) on the same inputs and compares thresholds and masks bit for bit:
the schedule and keep counts, the k-th largest magnitude, element masks (every dtype,
NaN, +-inf, -0, subnormals, ties, k = 0 and k = n, threshold decay), block masks (AVG's
summation order in every layout TensorFlow reduces, MAX, padding, -1 dims), group
thresholds and masks with floors, and N:M masks. float64 runs under `jax.enable_x64`.
Each shape is an XLA compilation, so hypothesis draws from a few shapes and modest
numbers of examples.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

import pruning_spec
from pruning_spec import _n_m as n_m_reference
from pruning_spec import _schedule
from pruning_spec.backends.jax import _kernels as jk
from pruning_spec.backends.jax import _n_m as jn
from pruning_spec.backends.jax import _tf_sums
from pruning_spec.backends.tensorflow import _kernels as tk
from pruning_spec.backends.tensorflow import _n_m as tn

BFLOAT16 = tf.bfloat16.as_numpy_dtype
DTYPES = (np.float32, np.float16, BFLOAT16, np.float64)
NAN, INF = float("nan"), float("inf")

_element = jax.jit(jk.element_mask, static_argnums=(3,))
_block = jax.jit(jk.block_mask, static_argnums=(3, 4, 5))
_n_m = jax.jit(jn.n_m_mask, static_argnums=(1, 2, 3, 4))
_block_sums = jax.jit(_tf_sums.block_sums)


@jax.jit
def _kth(values: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jk.radix_kth_largest(values, k), jk.sorted_kth_largest(values, k)


@contextlib.contextmanager
def _x64_for(dtype: Any) -> Iterator[None]:
    """64-bit JAX while a float64 case runs (JAX has no float64 otherwise)."""
    if np.dtype(dtype) == np.float64:
        with jax.enable_x64(True):
            yield
    else:
        yield


def _assert_same(got: Any, expected: Any, what: str) -> None:
    """Same dtype, shape and bits (a NaN's payload aside)."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.dtype == expected.dtype and got.shape == expected.shape, (
        f"{what}: {got.dtype}{got.shape} vs TensorFlow's {expected.dtype}{expected.shape}"
    )
    nan = np.isnan(expected.astype(np.float64))
    same = (got.view(f"u{got.itemsize}") == expected.view(f"u{got.itemsize}")) | (
        nan & np.isnan(got.astype(np.float64))
    )
    if not same.all():
        first = np.argwhere(~same)[0].tolist()
        raise AssertionError(
            f"{what}: {np.count_nonzero(~same)} of {same.size} differ; first at {first}: "
            f"{got[~same][0]!r} vs TensorFlow's {expected[~same][0]!r}"
        )


def _palette(dtype: Any, rng: np.random.Generator) -> np.ndarray:
    """Values to draw a weight from: every special one, and a few of each sign and scale."""
    finfo = jnp.finfo(dtype)
    tiny = float(finfo.smallest_subnormal)
    special = [0.0, -0.0, 1.0, -1.0, 0.5, 3.0, -3.0, INF, -INF, NAN]
    small = [tiny, -3 * tiny, 7 * tiny, float(finfo.tiny), -float(finfo.tiny), float(finfo.max)]
    scaled = rng.standard_normal(24) * 10.0 ** rng.integers(-3, 4, size=24)
    with np.errstate(over="ignore"):
        return np.concatenate([np.array(special + small, dtype), scaled.astype(dtype)])


@st.composite
def _weights(draw: st.DrawFn, dtype: Any, shapes: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """A weight of one of `shapes` drawn from a palette: a few entries (ties) or all."""
    palette = _palette(dtype, np.random.default_rng(draw(st.integers(0, 2**32 - 1))))
    shape = draw(st.sampled_from(shapes))
    choices = draw(st.sampled_from([1, 2, 5, palette.size]))
    seed = draw(st.integers(0, 2**32 - 1))
    picks = np.random.default_rng(seed).integers(0, choices, size=shape)
    weights: np.ndarray = palette[picks]
    return weights


# ---------------------------------------------------------------------------------------
# The schedule and the keep counts.

SCHEDULES = [
    # begin, end, initial, target, exponent
    (0, 100, 0.0, 0.5, 3.0),
    (0, 100, 0.0, 0.9, 3.0),
    (10, 1000, 0.1, 0.95, 1.0),
    (5, 37, 0.3, 0.8, 2.5),
    (0, 7, 0.0, 0.75, 0.5),
    (100, 3000, 0.05, 0.99, 6.0),
    (0, 64, 0.0, 1.0, 10.0),
    (20, 23, 0.5, 0.1, 1.7),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=str)
def test_the_schedule_equals_tensorflows_at_every_step(schedule) -> None:
    begin, end, initial, target, exponent = schedule
    arguments = {
        "begin_step": begin,
        "end_step": end,
        "initial_sparsity": initial,
        "target_sparsity": target,
        "exponent": exponent,
    }
    steps = sorted({*range(begin - 3, end + 4, max(1, (end - begin) // 150)), begin, end, end + 50})
    expected = np.array(
        [tk.polynomial_sparsity(tf.constant(step, tf.int64), **arguments).numpy() for step in steps]
    )
    traced = jax.jit(lambda s: jk.polynomial_sparsity(s, **arguments))(np.array(steps, np.int32))
    concrete = np.array([jk.polynomial_sparsity(step, **arguments) for step in steps])
    core = np.array(
        [_schedule.polynomial_sparsity(step, **arguments) for step in steps], np.float32
    )
    _assert_same(traced, expected, f"traced schedule {schedule}")
    _assert_same(concrete, expected, f"concrete schedule {schedule}")
    _assert_same(core, expected, f"the core's schedule {schedule}")


KEEP_CASES = [
    (n, s)
    for n in (1, 2, 3, 10, 999, 1000, 2**20 + 1, 2**24 + 3)
    for s in (0.0, 1e-8, 0.05, 0.25, 0.5, 0.75, 0.9, 0.95, 0.999, 1.0, 0.3)
]


def test_keep_counts_equal_tensorflows() -> None:
    sizes = np.array([n for n, _ in KEEP_CASES], np.int64)
    sparsities = np.array([s for _, s in KEEP_CASES], np.float32)
    element = jax.jit(jk.keep_count, static_argnums=0)
    group = jax.jit(jk.group_keep_count, static_argnums=0)
    for n, s in zip(sizes.tolist(), sparsities, strict=True):
        expected = int(tk.keep_count(n, tf.constant(s)).numpy())
        assert int(element(n, s)) == expected == int(jk.keep_count(n, s)), (n, s)
        expected_group = int(tk.group_keep_count(n, tf.constant(s)).numpy())
        assert int(group(n, s)) == expected_group == int(jk.group_keep_count(n, s)), (n, s)
        with jax.enable_x64(True):
            assert int(jax.jit(jk.group_keep_count, static_argnums=0)(n, s)) == expected_group


def test_halves_round_half_to_even() -> None:
    assert int(jk.keep_count(5, 0.5)) == 2  # 2.5 -> 2
    assert int(jk.keep_count(7, 0.5)) == 4  # 3.5 -> 4
    assert int(jk.group_keep_count(5, 0.5)) == 2


# ---------------------------------------------------------------------------------------
# The k-th largest magnitude.


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_radix_select_and_the_sort_equal_tensorflows(dtype) -> None:
    rng = np.random.default_rng(11)
    palette = _palette(dtype, rng)
    cases = [
        palette,
        palette[rng.integers(0, 3, 5000)],  # ties, few numbers
        np.abs(rng.standard_normal(2 * jk.CHUNK + 77)).astype(dtype),  # the chunk loop and its rest
        np.full(300, NAN, dtype),
    ]
    with _x64_for(dtype):
        for values in cases:
            n = values.size
            for k in sorted({1, 2, n // 3, n // 2, n - 1, n, n + 1}):
                expected = tk.radix_kth_largest(tf.constant(values), tf.constant(k)).numpy()
                radix, by_sort = _kth(values, np.int32(k))
                _assert_same(radix, expected, f"radix n={n} k={k}")
                _assert_same(by_sort, expected, f"sort n={n} k={k}")


# ---------------------------------------------------------------------------------------
# Element masks.


def _tf_element(weights, sparsity, old, decay):
    threshold, mask = tk.element_mask(
        tf.constant(weights), tf.constant(sparsity, tf.float32), tf.constant(old), decay
    )
    return threshold.numpy(), mask.numpy()


def _check_element(weights, sparsity, old, decay) -> None:
    weights = np.asarray(weights)
    old = np.asarray(old, weights.dtype)
    expected = _tf_element(weights, sparsity, old, decay)
    with _x64_for(weights.dtype):
        got = _element(weights, np.float32(sparsity), old, decay)
    case = f"{weights.dtype} s={sparsity} old={old!r} decay={decay}"
    _assert_same(got[0], expected[0], f"threshold, {case}")
    _assert_same(got[1], expected[1], f"mask, {case}")


SPARSITIES = (0.0, 0.25, 0.5, 0.9, 1.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_element_masks_of_special_values(dtype) -> None:
    """NaN, +-inf, -0, subnormals and ties, from k = n to k = 0, with and without decay."""
    finfo = jnp.finfo(dtype)
    tiny = float(finfo.smallest_subnormal)
    small = [tiny, -2 * tiny, 5 * tiny, float(finfo.tiny), 3 * tiny, 3 * tiny]
    special = np.array(
        [NAN, INF, -INF, -0.0, 0.0, *small, 1.0, -1.0, 1.0, 0.5, 0.5, -0.5, 2.0, NAN, 0.0], dtype
    )
    subnormal_only = np.array([0.0, tiny, -2 * tiny, 0.0, 3 * tiny, -0.0, 0.0, tiny], dtype)
    for weights in (special, subnormal_only, special.reshape(4, 5)):
        for sparsity, decay, old in itertools.product(
            SPARSITIES, (0.0, 0.5), (0.0, 2 * tiny, 1.5, INF)
        ):
            _check_element(weights, sparsity, old, decay)


def test_a_subnormal_threshold_keeps_zeros_as_tensorflow_does() -> None:
    """TensorFlow's float compare reads a subnormal threshold as 0: `0 >= T` holds."""
    tiny = float(np.finfo(np.float32).smallest_subnormal)
    weights = np.array([0.0, 0.0, tiny, 2 * tiny, 3 * tiny, -0.0], np.float32)
    threshold, mask = _element(weights, np.float32(0.5), np.float32(0.0), 0.0)
    assert float(threshold) == tiny  # the 3rd largest of 3t, 2t, t, 0, 0, 0
    assert np.asarray(mask).tolist() == [1.0] * 6
    _check_element(weights, 0.5, 0.0, 0.0)


@settings(max_examples=20, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    sparsity=st.one_of(st.sampled_from(SPARSITIES), st.floats(0.0, 1.0, width=32)),
    decay=st.sampled_from([0.0, 0.0, 0.25, 0.9, 0.999]),
    old=st.sampled_from([0.0, 1e-3, 2.0, INF]),
)
def test_element_masks_equal_tensorflows(data, dtype, sparsity, decay, old) -> None:
    weights = data.draw(_weights(dtype, ((1,), (7,), (6, 9), (70, 80))), label="weights")
    _check_element(weights, sparsity, old, decay)


def test_a_large_element_mask_takes_the_chunk_loop() -> None:
    weights = np.random.default_rng(3).standard_normal((300, 500)).astype(np.float32)
    weights[0, :40] = [NAN, INF, -INF, 0.0, 1e-42, -1e-40] * 6 + [0.0] * 4
    for sparsity in (0.1, 0.5, 0.97):
        _check_element(weights, sparsity, 0.2, 0.3)


def test_smoothing_equals_tensorflows_arithmetic() -> None:
    """current * (1 - d) + old * d, elementwise over many pairs, subnormal results included."""
    rng = np.random.default_rng(5)
    for dtype in DTYPES:
        finfo = jnp.finfo(dtype)
        scale = np.concatenate([10.0 ** rng.integers(-4, 4, 3000), [float(finfo.tiny)] * 500])
        with np.errstate(over="ignore"):
            current = (np.abs(rng.standard_normal(3500)) * scale).astype(dtype)
            old = (np.abs(rng.standard_normal(3500)) * scale[::-1]).astype(dtype)
        current[:8] = [0.0, INF, float(finfo.smallest_subnormal), 1.0, INF, NAN, 3.0, 0.0]
        old[:8] = [INF, 0.0, 1.0, float(finfo.smallest_subnormal), INF, 1.0, NAN, 0.0]
        for decay in (0.0, 0.1, 0.5, 0.999, 1.0 - 1e-9):
            expected = tk.smooth(tf.constant(current), tf.constant(old), decay).numpy()
            with _x64_for(dtype):
                got = jax.jit(jk.smooth, static_argnums=2)(current, old, decay)
            _assert_same(got, expected, f"smooth {np.dtype(dtype).name} d={decay}")


def test_casts_between_dtypes_equal_tensorflows() -> None:
    for source, target in itertools.permutations(DTYPES, 2):
        finfo = jnp.finfo(source)
        tiny = float(finfo.smallest_subnormal)
        small = [0.0, -0.0, tiny, -tiny, 3 * tiny, float(finfo.tiny), 1e-40, 1e-45]
        values = np.array(
            [*small, 0.1, 1.0 / 3, 65519.0, 65520.0, 3.4e38, 1e300, INF, -INF, NAN], np.float64
        )
        with np.errstate(over="ignore"):
            values = values.astype(source)
        expected = tf.cast(tf.constant(values), tf.as_dtype(target)).numpy()
        with jax.enable_x64(True):
            got = jax.jit(jk._tf_cast, static_argnums=1)(values, np.dtype(target))
        _assert_same(got, expected, f"cast {np.dtype(source).name} -> {np.dtype(target).name}")


def test_mixed_dtype_thresholds_cast_as_tensorflow_casts() -> None:
    """A float32 threshold variable for a float16 weight, and the other way round."""
    rng = np.random.default_rng(8)
    weights = (rng.standard_normal((9, 7)) * 1e-4).astype(np.float16)
    for old in (np.float32(3e-5), np.float32(0.0)):
        expected = tk.element_mask(tf.constant(weights), tf.constant(0.6), tf.constant(old), 0.5)
        got = _element(weights, np.float32(0.6), old, 0.5)
        _assert_same(got[0], expected[0].numpy(), "threshold")
        _assert_same(got[1], expected[1].numpy(), "mask")


def test_float64_needs_x64() -> None:
    with jax.enable_x64(False), pytest.raises(TypeError, match="jax_enable_x64"):
        jk.element_mask(np.zeros(4), 0.5, np.float64(0.0), 0.0)
    with pytest.raises(TypeError, match="floats"):
        jk.kth_largest(np.zeros(4, np.int32), 1)


# ---------------------------------------------------------------------------------------
# Block masks. First the AVG pooling's sums, in every layout TensorFlow reduces.

# [rows, bh, cols, bw] shapes, one or more for each layout after TensorFlow drops the
# size-1 dimensions (K kept, R reduced): K R K R, K R (bh = 1, cols = 1), K R K and R K
# (bw = 1, the preserver, with columns deep enough for four accumulators and rows of
# outputs that straddle packets), R K R (one row of blocks), R (one block), and rows
# long enough to split (above 8192 float32 values, 4096 float64 ones, 1600 float16 ones),
# rows starting at flat indices of different residues mod the packet size.
LAYOUTS = [
    (3, 2, 5, 3),
    (2, 5, 3, 17),
    (4, 1, 9, 37),
    (5, 3, 1, 11),
    (3, 17, 10, 1),
    (2, 40, 9, 1),
    (1, 20, 13, 1),
    (1, 6, 5, 7),
    (1, 9, 1, 7),
    (2, 91, 1, 91),
    (1, 45, 1, 40),
    (3, 41, 2, 41),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_block_sums_add_in_tensorflows_order(dtype) -> None:
    """Wide-ranging magnitudes, so that any other order of additions rounds differently."""
    rng = np.random.default_rng(13)
    for shape in LAYOUTS:
        magnitudes = np.abs(rng.standard_normal(shape)) * 2.0 ** rng.integers(-12, 12, shape)
        with np.errstate(over="ignore"):
            blocks = magnitudes.astype(dtype)
        expected = tf.reduce_sum(tf.constant(blocks), axis=[1, 3]).numpy()
        with _x64_for(dtype):
            _assert_same(_block_sums(blocks), expected, f"{np.dtype(dtype).name} {shape}")


def _check_block(weights, sparsity, block, pooling, old=0.0, decay=0.0, threshold=True) -> None:
    weights = np.asarray(weights)
    old = np.asarray(old, weights.dtype)
    inputs = (tf.constant(weights), tf.constant(sparsity, tf.float32), tf.constant(old))
    expected = tk.block_mask(*inputs, decay, block, pooling)
    with _x64_for(weights.dtype):
        got = _block(weights, np.float32(sparsity), old, decay, tuple(block), pooling)
    case = f"{weights.dtype}{weights.shape} {block} {pooling} s={sparsity} decay={decay}"
    if threshold:
        _assert_same(got[0], expected[0].numpy(), f"threshold, {case}")
    _assert_same(got[1], expected[1].numpy(), f"mask, {case}")


BLOCK_CASES = [
    # shape, block: partial blocks at both ends, blocks larger than the weight, rank 3
    # squeezing to rank 2, and the layouts above.
    ((7, 10), (2, 3)),
    ((5, 9), (1, 4)),
    ((9, 5), (4, 1)),
    ((3, 4), (8, 8)),
    ((5, 1, 6), (2, 2)),
    ((40, 18), (17, 1)),
    ((6, 70), (6, 8)),
    ((200, 90), (100, 90)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_block_masks_of_wide_ranging_weights(dtype) -> None:
    rng = np.random.default_rng(17)
    # Every case in float32 and float16 (a tree split at 9000 values), a few in the others
    # (their sums are checked in every layout above).
    cases = BLOCK_CASES if np.dtype(dtype) in (np.float32, np.float16) else BLOCK_CASES[::3]
    for (shape, block), pooling in itertools.product(cases, ("AVG", "MAX")):
        if pooling == "MAX" and (shape, block) not in BLOCK_CASES[:4]:
            continue  # MAX is order-free: the other cases are there for AVG's layouts
        with np.errstate(over="ignore"):
            weights = (rng.standard_normal(shape) * 2.0 ** rng.integers(-10, 10, shape)).astype(
                dtype
            )
        for sparsity in (0.0, 0.6, 1.0):
            _check_block(weights, sparsity, block, pooling, old=0.25, decay=0.5)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_block_masks_of_special_values(dtype) -> None:
    tiny = float(jnp.finfo(dtype).smallest_subnormal)
    weights = np.zeros((6, 8), dtype)
    weights[0, :4] = [NAN, 1.0, -2.0, 0.5]  # a NaN block
    weights[2, 2:6] = [INF, -INF, 1.0, 3.0]  # inf, inf + inf
    weights[4, :] = [tiny, -tiny, 3 * tiny, 0.0, 1.0, 1.0, -1.0, 1.0]  # subnormals, ties
    weights[5, 4:] = [-0.0, 2 * tiny, 0.0, tiny]
    for pooling, sparsity, block in itertools.product(("AVG", "MAX"), SPARSITIES, ((2, 2), (3, 4))):
        _check_block(weights, sparsity, block, pooling)


def test_the_documented_bfloat16_max_difference() -> None:
    """A bfloat16 block of zeros and subnormals: TensorFlow pools one of the subnormals.

    Here it pools 0 (the kernels' docstring). Selected without decay, the thresholds
    differ (3 * the smallest subnormal against 0); the masks do not, as TensorFlow
    compares that subnormal as 0; with decay the smoothing flushes it, and they agree.
    """
    tiny = float(jnp.finfo(BFLOAT16).smallest_subnormal)
    weights = np.array([[0, tiny, 1, 1], [0, 3 * tiny, 1, 1]], BFLOAT16)
    _check_block(weights, 0.0, (2, 2), "MAX", threshold=False)
    _check_block(weights, 0.0, (2, 2), "MAX", old=1.0, decay=0.5)
    got, _ = _block(weights, np.float32(0.0), BFLOAT16(0), 0.0, (2, 2), "MAX")
    old = tf.constant(BFLOAT16(0))
    expected, _ = tk.block_mask(tf.constant(weights), tf.constant(0.0), old, 0.0, (2, 2), "MAX")
    assert (float(got), float(expected.numpy())) == (0.0, 3 * tiny)


def test_minus_one_block_dims_resolve_per_weight() -> None:
    spec = pruning_spec.parse_hparams("block_height=-1,block_width=4,block_pooling_function=MAX")
    rng = np.random.default_rng(19)
    for shape in ((6, 10), (3, 16)):
        block = spec.block_dims_for("w", shape)
        assert block == (shape[0], 4)
        _check_block(rng.standard_normal(shape).astype(np.float32), 0.5, block, "MAX")


@settings(max_examples=15, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    block=st.sampled_from([(2, 2), (1, 3), (3, 1), (4, 5), (16, 2)]),
    pooling=st.sampled_from(["AVG", "MAX"]),
    sparsity=st.sampled_from([0.0, 0.3, 0.5, 0.9, 1.0]),
    decay=st.sampled_from([0.0, 0.5]),
)
def test_block_masks_equal_tensorflows(data, dtype, block, pooling, sparsity, decay) -> None:
    weights = data.draw(_weights(dtype, ((9, 11), (32, 20))), label="weights")
    if np.dtype(dtype) == np.dtype(BFLOAT16) and pooling == "MAX":
        weights = _without_subnormal_blocks(weights, block)
    _check_block(weights, sparsity, block, pooling, old=0.5, decay=decay)


def _without_subnormal_blocks(weights: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """bfloat16 weights whose blocks of only zeros and subnormals are all zeros.

    TensorFlow's bfloat16 MAX over such a block is one of its subnormals, which one
    depending on Eigen's evaluation order (the documented difference).
    """
    weights = weights.copy()
    tiny = float(np.finfo(np.float32).tiny)
    height, width = weights.shape
    for row, col in itertools.product(range(0, height, block[0]), range(0, width, block[1])):
        cells = weights[row : row + block[0], col : col + block[1]]
        magnitudes = np.abs(cells.astype(np.float32))
        if not (magnitudes >= tiny).any() and not np.isnan(magnitudes).any():
            cells[...] = 0.0
    return weights


# ---------------------------------------------------------------------------------------
# Groups.

GROUP_DTYPES = (np.float16, BFLOAT16, np.float32)


@functools.partial(jax.jit, static_argnames=("floors",))
def _jax_group(members, keep, floors):
    thresholds = jk.group_thresholds(members, keep, floors)
    return thresholds, jk.group_masks(members, thresholds)


def _check_group(members, keep, floors) -> None:
    tensors = [tf.constant(member) for member in members]
    expected = tk.group_thresholds(tensors, tf.constant(keep, tf.int64), floors)
    expected_masks = tk.group_masks(tensors, expected)
    x64 = any(np.dtype(member.dtype) == np.float64 for member in members)
    with _x64_for(np.float64 if x64 else np.float32):
        thresholds, masks = _jax_group(
            members, np.int32(keep), None if floors is None else tuple(floors)
        )
    case = f"keep={keep} floors={floors} dtypes={[m.dtype.name for m in members]}"
    _assert_same(thresholds.threshold, expected.threshold.numpy(), f"threshold, {case}")
    for got, want in zip(thresholds.floor_thresholds, expected.floor_thresholds, strict=True):
        _assert_same(got, want.numpy(), f"floor threshold, {case}")
    for got, want in zip(masks, expected_masks, strict=True):
        _assert_same(got, want.numpy(), f"mask, {case}")


@settings(max_examples=8, deadline=None)
@given(data=st.data(), count=st.integers(1, 3))
def test_group_thresholds_and_masks_equal_tensorflows(data, count) -> None:
    members = [
        data.draw(_weights(dtype, ((5,), (4, 6))), label="member")
        for dtype in data.draw(
            st.lists(st.sampled_from(GROUP_DTYPES), min_size=count, max_size=count)
        )
    ]
    total = sum(member.size for member in members)
    keep = data.draw(
        st.sampled_from([0, 1, total // 3, total // 2, total - 1, total]), label="keep"
    )
    floors = data.draw(
        st.one_of(st.none(), st.tuples(*[st.integers(0, m.size + 2) for m in members])),
        label="floors",
    )
    _check_group(members, keep, None if floors is None else list(floors))


def test_groups_of_float64_rank_float32_subnormals_exactly() -> None:
    """A float64 group widens float32 subnormals exactly (a cast would read them as 0)."""
    smallest = float(np.finfo(np.float32).smallest_subnormal)
    members = [
        np.array([smallest, 3 * smallest, 0.0, 2.0, NAN], np.float32),
        np.array([1e-310, 5e-324, 0.0, 1.0, INF, -3.0], np.float64),
        np.array([0.5, -(2.0**-20)], np.float16),
    ]
    total = sum(member.size for member in members)
    keeps = (0, 1, 2, 5, 8, total - 1, total)
    # Floors: none, within the sizes, one above its member's size (it counts as the size)
    # while K still ranks values, all above.
    for keep, floors in itertools.product(keeps, (None, [2, 0, 1], [0, 1, 4], [9, 9, 9])):
        _check_group(members, keep, floors)


# ---------------------------------------------------------------------------------------
# N:M masks.


def _check_n_m(weights, n, m, axis, remainder) -> None:
    weights = np.asarray(weights)
    expected = tn.n_m_mask(tf.constant(weights), n, m, axis, remainder).numpy()
    with _x64_for(weights.dtype):
        got = _n_m(weights, n, m, axis, remainder)
    _assert_same(got, expected, f"{n}:{m} axis {axis} {remainder} {weights.dtype}{weights.shape}")
    reference = n_m_reference.keep_mask(weights, n, m, axis, remainder)
    np.testing.assert_array_equal(np.asarray(got).astype(bool), reference)


N_M_CASES = [
    # shape, n, m, axis: every method (broadcast, columns, roll), partial groups, m = 64
    ((8, 12), 2, 4, 0),
    ((12, 8), 2, 4, 1),
    ((10, 3), 2, 4, 0),
    ((3, 10), 1, 4, 1),
    ((4, 3, 20), 4, 8, 2),
    ((70, 5), 16, 64, 0),
    ((3, 130), 32, 64, 1),
    ((20, 6), 5, 16, 0),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_n_m_masks_of_special_values_equal_tensorflows(dtype) -> None:
    rng = np.random.default_rng(23)
    palette = _palette(dtype, rng)
    cases = N_M_CASES if np.dtype(dtype) == np.float32 else N_M_CASES[2::3]
    for index, (shape, n, m, axis) in enumerate(cases):
        remainder = ("DENSE", "KEEP_N")[index % 2]
        weights = palette[rng.integers(0, rng.choice([3, palette.size]), shape)]
        _check_n_m(weights, n, m, axis, remainder)


@settings(max_examples=8, deadline=None)
@given(
    data=st.data(),
    rule=st.sampled_from([(2, 4), (1, 2), (3, 8), (4, 16), (16, 64)]),
    remainder=st.sampled_from(["REJECT", "DENSE", "KEEP_N"]),
    dtype=st.sampled_from((np.float32, np.float16)),
)
def test_n_m_masks_equal_tensorflows(data, rule, remainder, dtype) -> None:
    n, m = rule
    weights = data.draw(_weights(dtype, ((64, 6), (9, 64))), label="weights")
    axis = data.draw(st.sampled_from([0, 1]), label="axis")
    if remainder == "REJECT" and weights.shape[axis] % m:
        with pytest.raises(ValueError, match="REJECT"):
            jn.n_m_mask(weights, n, m, axis, remainder)
        return
    _check_n_m(weights, n, m, axis, remainder)


def test_n_m_refuses_what_tensorflow_refuses() -> None:
    with pytest.raises(ValueError, match="n < m"):
        jn.n_m_mask(np.zeros((4, 4), np.float32), 4, 4, 0, "DENSE")
    with pytest.raises(TypeError, match="floats"):
        jn.n_m_mask(np.zeros((4, 4), np.int32), 2, 4, 0, "DENSE")
    assert jn.n_m_mask(np.zeros((0, 4), np.float32), 2, 4, 1, "DENSE").shape == (0, 4)
