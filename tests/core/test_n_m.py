"""N:M selection's numpy reference (`pruning_spec._n_m`): hand-checked cases, then properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pruning_spec import _n_m
from pruning_spec._n_m import broken_groups, group_count, keep_mask, kept_count, magnitude_keys

NAN, INF = float("nan"), float("inf")
TINY = float(np.finfo(np.float32).smallest_subnormal)


def _ints(mask: np.ndarray) -> list[list[int]]:
    return np.asarray(mask).astype(int).tolist()


# --- hand-checked cases


def test_two_of_four_along_axis_0_of_an_8x3_weight() -> None:
    weights = np.array(
        [
            [1, -5, 3],
            [2, 2, -2],
            [0, 1, 4],
            [-4, 2, 0.5],
            [1, 0, 1],
            [0, -7, 0],
            [3, 2, 1],
            [1, 2, 3],
        ],
        np.float32,
    )
    # Column 0: |1 2 0 -4| keeps 2 and -4; |1 0 3 1| keeps 3 and the first 1.
    # Column 1: |-5 2 1 2| keeps -5 and the first 2; |0 -7 2 2| keeps -7 and the first 2.
    # Column 2: |3 -2 4 .5| keeps 3 and 4; |1 0 1 3| keeps the first 1 and 3.
    assert _ints(keep_mask(weights, 2, 4, 0, "REJECT")) == [
        [0, 1, 1],
        [1, 1, 0],
        [0, 0, 1],
        [1, 0, 0],
        [1, 0, 1],
        [0, 1, 0],
        [1, 1, 0],
        [0, 0, 1],
    ]


@pytest.mark.parametrize(
    ("group", "n", "kept"),
    [
        ([5, 5, 5, 5], 2, [1, 1, 0, 0]),  # all equal: the first n
        ([1, 3, 3, 2], 1, [0, 1, 0, 0]),  # a tie for the largest: the earlier
        ([-2, 1, 2, -1], 2, [1, 0, 1, 0]),  # signs do not matter
        ([4, 1, 2, 2], 2, [1, 0, 1, 0]),  # a tie for the last place: the earlier
        ([2, 2, 1, 2], 3, [1, 1, 0, 1]),
        ([-0.0, 0.0, 0.0, -0.0], 1, [1, 0, 0, 0]),  # -0 == 0
        ([0.0, -0.0, 0.0, 1.0], 2, [1, 0, 0, 1]),
        ([NAN, 0.0, NAN, -0.0], 2, [0, 1, 0, 1]),  # NaN below 0
        ([NAN, NAN, NAN, 1.0], 2, [1, 0, 0, 1]),  # then the first NaN: NaNs tie
        ([-NAN, NAN, 7.0, NAN], 3, [1, 1, 1, 0]),
        ([1e38, -INF, 3.0, INF], 2, [0, 1, 0, 1]),  # inf above every finite value
        ([3.0, INF, -INF, 1e38], 2, [0, 1, 1, 0]),
        ([TINY, 0.0, 2 * TINY, -0.0], 2, [1, 0, 1, 0]),  # subnormals are not zero
        ([-TINY, 0.0, TINY, 0.0], 1, [1, 0, 0, 0]),
    ],
)
def test_one_group(group: list[float], n: int, kept: list[int]) -> None:
    values = np.array(group, np.float32)
    assert _ints(keep_mask(values, n, 4, 0, "REJECT")) == kept


def test_nan_payloads_do_not_order_nans() -> None:
    """Every NaN has the same key: the lower index wins, whatever the payload or sign."""
    patterns = np.array([0x7FC00001, 0xFFFFFFFF, 0x7F800001, 0x7FC00000], np.uint32)
    nans = patterns.view(np.float32)
    assert np.isnan(nans).all()
    assert len(set(magnitude_keys(nans).tolist())) == 1
    assert _ints(keep_mask(nans, 2, 4, 0, "REJECT")) == [1, 1, 0, 0]
    assert _ints(keep_mask(nans[::-1].copy(), 1, 4, 0, "REJECT")) == [1, 0, 0, 0]


def test_remainder_reject_raises_with_the_extent_m_and_axis() -> None:
    weights = np.ones((3, 6))
    with pytest.raises(ValueError, match=r"axis 1 has extent 6, not a multiple of m=4"):
        keep_mask(weights, 2, 4, 1, "REJECT")
    for call in (
        lambda: broken_groups(weights, 2, 4, 1, "REJECT"),
        lambda: group_count(weights.shape, 4, 1, "REJECT"),
        lambda: kept_count(weights.shape, 2, 4, 1, "REJECT"),
    ):
        with pytest.raises(ValueError, match="extent 6"):
            call()
    assert _ints(keep_mask(weights, 2, 3, 1, "REJECT")) == [[1, 1, 0, 1, 1, 0]] * 3


def test_remainder_dense_keeps_the_partial_group() -> None:
    values = np.array([1, 4, 3, 2, 0, -1, 0.5], np.float32)  # 2:4 then a partial group of 3
    assert _ints(keep_mask(values, 2, 4, 0, "DENSE")) == [0, 1, 1, 0, 1, 1, 1]
    assert kept_count(values.shape, 2, 4, 0, "DENSE") == 5
    assert group_count(values.shape, 4, 0, "DENSE") == 1  # the partial group is unconstrained


def test_remainder_keep_n_keeps_the_partial_groups_n_largest() -> None:
    values = np.array([1, 4, 3, 2, 0, -1, 0.5], np.float32)
    assert _ints(keep_mask(values, 2, 4, 0, "KEEP_N")) == [0, 1, 1, 0, 0, 1, 1]
    assert kept_count(values.shape, 2, 4, 0, "KEEP_N") == 4
    assert group_count(values.shape, 4, 0, "KEEP_N") == 2
    # A partial group smaller than n keeps all of its r values: min(n, r).
    assert _ints(keep_mask(values[:5], 3, 4, 0, "KEEP_N")) == [0, 1, 1, 1, 1]
    assert kept_count((5,), 3, 4, 0, "KEEP_N") == 4
    # Ties in the partial group: the earlier.
    assert _ints(keep_mask(np.array([1.0, 1, 1, 1, 2, 2, 2]), 2, 4, 0, "KEEP_N")) == [
        1, 1, 0, 0, 1, 1, 0,
    ]  # fmt: skip


def test_axis_1() -> None:
    weights = np.array([[1, 2, 3, 4, 8, 7, 6, 5], [0, 0, 0, 0, -1, 1, -1, 1]], np.float64)
    assert _ints(keep_mask(weights, 2, 4, 1, "REJECT")) == [
        [0, 0, 1, 1, 1, 1, 0, 0],
        [1, 1, 0, 0, 1, 1, 0, 0],
    ]


def test_the_input_channel_axis_of_a_conv_kernel() -> None:
    """A [h, w, in, out] kernel along `in` (axis 2): groups per (h, w, out) position."""
    rng = np.random.default_rng(5)
    kernel = rng.standard_normal((3, 3, 8, 2)).astype(np.float32)
    mask = keep_mask(kernel, 2, 4, 2, "REJECT")
    assert mask.shape == kernel.shape
    for h in range(3):
        for w in range(3):
            for out in range(2):
                for start in (0, 4):
                    group = np.abs(kernel[h, w, start : start + 4, out])
                    largest = set(np.argsort(-group)[:2].tolist())
                    assert set(np.flatnonzero(mask[h, w, start : start + 4, out])) == largest
    assert kept_count(kernel.shape, 2, 4, 2, "REJECT") == int(mask.sum()) == 72
    assert group_count(kernel.shape, 4, 2, "REJECT") == 36


def test_half_floats_are_compared_exactly() -> None:
    tiny = np.finfo(np.float16).smallest_subnormal
    values = np.array([tiny, 0, 3 * tiny, 2 * tiny, 1, 1, 2, np.nan], np.float16)
    assert _ints(keep_mask(values, 2, 4, 0, "REJECT")) == [0, 0, 1, 1, 1, 0, 1, 0]
    assert magnitude_keys(values).dtype == np.uint32
    ml_dtypes = pytest.importorskip("ml_dtypes")
    halves = values.astype(np.float32).astype(ml_dtypes.bfloat16)  # subnormals in bfloat16
    bfloat_tiny = np.array(1e-40, np.float32).astype(ml_dtypes.bfloat16)
    halves[:4] = [bfloat_tiny, 0, 3 * bfloat_tiny, 2 * bfloat_tiny]
    assert _ints(keep_mask(halves, 2, 4, 0, "REJECT")) == [0, 0, 1, 1, 1, 0, 1, 0]


def test_float64_keys_are_64_bits() -> None:
    values = np.array([1.0, 1.0 + 2**-52, 1.0 + 2**-51, 1.0], np.float64)  # float32 ties
    assert magnitude_keys(values).dtype == np.uint64
    assert _ints(keep_mask(values, 2, 4, 0, "REJECT")) == [0, 1, 1, 0]


def test_keys_order_like_the_magnitudes_with_nans_lowest() -> None:
    """Independent of bit patterns: float64 magnitudes, NaN as -1 (numpy does not flush)."""
    rng = np.random.default_rng(9)
    for dtype in (np.float16, np.float32, np.float64):
        finfo = np.finfo(dtype)
        special = [0, -0.0, NAN, -NAN, INF, -INF, finfo.max, finfo.tiny, finfo.smallest_subnormal]
        scaled = rng.standard_normal(200) * 10.0 ** rng.integers(-8, 8, 200)
        with np.errstate(over="ignore"):
            values = np.concatenate([np.array(special, dtype), scaled.astype(dtype)])
        magnitudes = np.abs(values.astype(np.float64))
        magnitudes[np.isnan(magnitudes)] = -1.0
        keys = magnitude_keys(values)
        for i in range(values.size):
            np.testing.assert_array_equal(keys[i] < keys, magnitudes[i] < magnitudes)
            np.testing.assert_array_equal(keys[i] == keys, magnitudes[i] == magnitudes)


def test_broken_groups_counts_groups_over_their_allowance() -> None:
    kept = np.array([1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1], bool)  # 2:4: fine, broken, partial 3
    assert broken_groups(kept, 2, 4, 0, "DENSE") == 1
    assert broken_groups(kept, 2, 4, 0, "KEEP_N") == 2
    assert broken_groups(kept, 3, 4, 0, "KEEP_N") == 0
    # Values rather than flags: non-zero is kept.
    assert broken_groups(np.array([[0.5, 0, -2, 0], [0, 0, 0, 3]]), 1, 4, 1, "REJECT") == 1
    assert broken_groups(np.zeros((4, 4)), 1, 2, 0, "REJECT") == 0


def test_counts_of_shapes() -> None:
    assert group_count((8, 3), 4, 0, "REJECT") == 6
    assert kept_count((8, 3), 2, 4, 0, "REJECT") == 12
    assert group_count((3, 3, 10, 5), 4, 2, "KEEP_N") == 9 * 5 * 3
    assert kept_count((3, 3, 10, 5), 3, 4, 2, "KEEP_N") == 9 * 5 * (2 * 3 + 2)
    assert kept_count((3, 3, 10, 5), 3, 4, 2, "DENSE") == 9 * 5 * (2 * 3 + 2)
    assert kept_count((3, 3, 9, 5), 3, 4, 2, "DENSE") == 9 * 5 * (2 * 3 + 1)
    assert kept_count((0, 4), 1, 2, 1, "REJECT") == group_count((0, 4), 2, 1, "REJECT") == 0
    assert kept_count((7,), 16, 64, 0, "KEEP_N") == 7


def test_empty_weights() -> None:
    assert keep_mask(np.zeros((0, 4), np.float32), 1, 2, 1, "REJECT").shape == (0, 4)
    assert keep_mask(np.zeros((3, 0), np.float32), 1, 2, 1, "REJECT").shape == (3, 0)
    assert broken_groups(np.zeros((3, 0)), 1, 2, 1, "REJECT") == 0


@pytest.mark.parametrize(
    ("shape", "n", "m", "axis", "remainder", "message"),
    [
        ((8,), 0, 4, 0, "REJECT", "1 <= n < m <= 64"),
        ((8,), 4, 4, 0, "REJECT", "1 <= n < m"),
        ((128,), 2, 128, 0, "REJECT", "not n=2, m=128"),
        ((8,), 2.0, 4, 0, "REJECT", "integers"),
        ((8,), True, 4, 0, "REJECT", "integers"),
        ((8,), 2, 4, 1, "REJECT", "axis 1 is not an axis of a rank-1 weight"),
        ((8,), 2, 4, -1, "REJECT", "axis -1"),
        ((), 1, 2, 0, "REJECT", "rank-0"),
        ((8,), 2, 4, 0, "PAD", "one of REJECT, DENSE, KEEP_N"),
    ],
)
def test_bad_arguments(
    shape: tuple[int, ...], n: int, m: int, axis: int, remainder: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        keep_mask(np.zeros(shape, np.float32), n, m, axis, remainder)
    with pytest.raises(ValueError, match=message):
        kept_count(shape, n, m, axis, remainder)


def test_numpy_integers_are_integers() -> None:
    mask = keep_mask(np.arange(8.0), np.int64(1), np.int32(4), np.int8(0), "REJECT")
    assert _ints(mask) == [0, 0, 0, 1, 0, 0, 0, 1]


def test_non_floats_are_rejected() -> None:
    with pytest.raises(TypeError, match="not int64"):
        keep_mask(np.arange(8), 2, 4, 0, "REJECT")


# --- properties

DTYPES = (np.float16, np.float32, np.float64)


def _palette(dtype: type, seed: int) -> np.ndarray:
    """Values to draw weights from: every special one, and a few of each sign and scale."""
    rng = np.random.default_rng(seed)
    finfo = np.finfo(dtype)
    special = [0.0, -0.0, 1.0, -1.0, 2.0, NAN, -NAN, INF, -INF, finfo.tiny, finfo.max]
    subnormals = [finfo.smallest_subnormal, -2 * finfo.smallest_subnormal]
    scaled = rng.standard_normal(20) * 10.0 ** rng.integers(-4, 5, size=20)
    with np.errstate(over="ignore"):
        return np.concatenate([np.array(special + subnormals, dtype), scaled.astype(dtype)])


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, int, int, int, str]:
    """Weights of rank 1-4 (few distinct values: ties) and an N:M rule for them."""
    m = draw(st.sampled_from([2, 3, 4, 5, 8, 16, 64]))
    n = draw(st.integers(1, m - 1))
    rank = draw(st.integers(1, 4))
    axis = draw(st.integers(0, rank - 1))
    shape = [draw(st.integers(1, 3)) for _ in range(rank)]
    shape[axis] = draw(st.integers(0, 3 * m + 2) if m <= 8 else st.integers(0, 2 * m + 2))
    palette = _palette(draw(st.sampled_from(DTYPES)), draw(st.integers(0, 2**32 - 1)))
    choices = draw(st.integers(1, palette.size))
    size = math.prod(shape)
    picks = draw(st.lists(st.integers(0, choices - 1), min_size=size, max_size=size))
    values = palette[np.array(picks, int)].reshape(shape)
    return values, n, m, axis, draw(st.sampled_from(_n_m.REMAINDERS))


def _groups(array: np.ndarray, m: int, axis: int) -> list[tuple[np.ndarray, bool]]:
    """Every group along the axis as a 1-D array, each with whether it is partial."""
    moved = np.moveaxis(array, axis, -1)
    moved = moved.reshape(math.prod(moved.shape[:-1]), moved.shape[-1])
    return [
        (row[start : start + m], start + m > row.size)
        for row in moved
        for start in range(0, row.size, m)
    ]


def _ordered(values: np.ndarray) -> np.ndarray:
    """Magnitudes as float64 (exact), NaN below every number."""
    magnitudes = np.abs(values.astype(np.float64))
    magnitudes[np.isnan(magnitudes)] = -1.0
    return magnitudes


@settings(max_examples=250, deadline=None)
@given(case=cases())
def test_each_group_keeps_its_largest(case: tuple[np.ndarray, int, int, int, str]) -> None:
    values, n, m, axis, remainder = case
    partial = values.shape[axis] % m
    if partial and remainder == "REJECT":
        with pytest.raises(ValueError, match="not a multiple"):
            keep_mask(values, n, m, axis, remainder)
        return
    mask = keep_mask(values, n, m, axis, remainder)
    assert mask.shape == values.shape and mask.dtype == bool
    for group, kept in zip(_groups(values, m, axis), _groups(mask, m, axis), strict=True):
        group_values, is_partial = group
        flags = kept[0]
        if is_partial and remainder == "DENSE":
            assert flags.all()
            continue
        assert flags.sum() == min(n, flags.size)
        magnitudes = _ordered(group_values)
        if flags.all():
            continue
        # Kept at least as large as dropped; among equals, the kept come first.
        assert magnitudes[flags].min() >= magnitudes[~flags].max()
        tied = magnitudes[flags].min()
        kept_tied = np.flatnonzero(flags & (magnitudes == tied))
        dropped_tied = np.flatnonzero(~flags & (magnitudes == tied))
        if dropped_tied.size:
            assert kept_tied.max() < dropped_tied.min()
    assert int(mask.sum()) == kept_count(values.shape, n, m, axis, remainder)
    assert broken_groups(mask, n, m, axis, remainder) == 0


@settings(max_examples=150, deadline=None)
@given(case=cases(), data=st.data())
def test_broken_groups_and_group_count(
    case: tuple[np.ndarray, int, int, int, str], data: st.DataObject
) -> None:
    values, n, m, axis, remainder = case
    shape = values.shape
    partial = shape[axis] % m
    if partial and remainder == "REJECT":
        with pytest.raises(ValueError, match="not a multiple"):
            broken_groups(np.ones(shape, bool), n, m, axis, remainder)
        return
    groups = group_count(shape, m, axis, remainder)
    positions = math.prod(d for i, d in enumerate(shape) if i != axis)
    full = positions * (shape[axis] // m)
    assert groups == full + (groups - full if remainder == "KEEP_N" and partial else 0)
    # Every value kept breaks every constrained group but a KEEP_N partial one of r <= n.
    unbroken_partials = groups - full if partial and partial <= n else 0
    assert broken_groups(np.ones(shape, bool), n, m, axis, remainder) == groups - unbroken_partials
    # One more value kept in a full group breaks exactly that group.
    mask = keep_mask(values, n, m, axis, remainder)
    dropped = np.argwhere(~mask)
    dropped = dropped[dropped[:, axis] < shape[axis] - partial]
    if dropped.size:
        index = tuple(dropped[data.draw(st.integers(0, len(dropped) - 1))])
        mask[index] = True
        assert broken_groups(mask, n, m, axis, remainder) == 1
        assert broken_groups(mask.astype(np.float32) * 3.0, n, m, axis, remainder) == 1
