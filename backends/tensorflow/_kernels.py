"""The mask-update arithmetic as plain TensorFlow functions (graph, eager and tf.function).

Semantics are r1.15's where they are sound (docs/semantics.md §b-§c):
`k = round_half_even(float32(n) * (1 - s))`, the threshold is the k-th largest
magnitude, smoothed as `T = current * (1 - d) + T_old * d`, and `mask = |w| >= T`.
Fixed: k = 0 prunes everything (r1.15 crashed), blocks align at index 0 with a
partial block at the end, masks keep the weight's dtype.

The k-th largest magnitude is exact and O(n): a non-negative float's bit pattern,
read as an integer, orders like its value, so two (float64: four) histogram
passes over 16-bit digits find it without sorting (radix select).

NaN and infinity: a NaN magnitude ranks below every number, zero included, so a NaN
is never kept (`NaN >= T` is false); when k exceeds the count of numbers the
threshold is 0 and every number is kept. +-inf has magnitude +inf, above every
finite value. A NaN's pattern reads as an integer above inf's, so both selections
count NaNs out explicitly rather than read them as the largest magnitudes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from pruning_spec import _schedule

_DIGIT_BITS = 16
_DIGITS = 1 << _DIGIT_BITS
_BLOCK = 256  # bins per block when a digit is selected


def polynomial_sparsity(
    step: tf.Tensor,
    *,
    begin_step: int,
    end_step: int,
    initial_sparsity: float,
    target_sparsity: float,
    exponent: float,
) -> tf.Tensor:
    """r1.15's schedule in float32, bit-identical to `pruning_spec._schedule` (see there).

    Written so graph optimizers have nothing to rewrite: the reciprocal is a constant,
    and the power is taken in float64 so its rounding to float32 is the correct one.
    """
    elapsed = tf.cast(tf.cast(step, tf.int64) - begin_step, tf.float32)
    recip = tf.constant(_schedule.reciprocal(end_step - begin_step), tf.float32)
    progress = tf.minimum(1.0, tf.maximum(0.0, elapsed * recip))
    remaining = tf.cast(1.0 - progress, tf.float64)
    power = tf.constant(_schedule.float32(exponent), tf.float64)
    decay = tf.cast(tf.pow(remaining, power), tf.float32)
    scale = tf.constant(_schedule.float32(initial_sparsity - target_sparsity), tf.float32)
    return scale * decay + tf.constant(_schedule.float32(target_sparsity), tf.float32)


def keep_count(size: int | tf.Tensor, sparsity: tf.Tensor) -> tf.Tensor:
    """k = round_half_even(float32(n) * (1 - s)), clamped to [0, n], as int64."""
    n = tf.cast(size, tf.float32)
    k = tf.cast(tf.round(n * (1.0 - tf.cast(sparsity, tf.float32))), tf.int64)
    return tf.clip_by_value(k, 0, tf.cast(size, tf.int64))


# Below this many values (known when tracing), a sort beats radix select's fixed cost of
# about 0.5 ms on a 2-core CPU (its 2^16-bin histograms and compaction); ResNet-50 has many
# kernels this small (`benchmarks/bench_model_update.py`).
SORT_BELOW = 1 << 15


def kth_largest(values: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
    """The k-th largest (1-based) magnitude |x| of `values`, exactly; k must be >= 1.

    Radix select (O(n)) in general; a `top_k` sort for small tensors of known size.
    Both return the same value: the k-th largest is one of the magnitudes, or 0 when
    k exceeds the count of numbers (NaNs rank below them).
    """
    values = tf.reshape(values, [-1])
    size = values.shape[0]
    if size is not None and size < SORT_BELOW:
        return sorted_kth_largest(values, k)
    return radix_kth_largest(values, k)


class _BitView(NamedTuple):
    """A tensor flattened for selection on its bit patterns, half floats widened exactly."""

    values: tf.Tensor
    dtype: tf.DType  # the caller's, which the selected value is returned in
    int_dtype: tf.DType  # signed integers as wide as `values`
    unsigned: tf.DType
    width: int

    @property
    def largest_pattern(self) -> int:
        """The largest magnitude pattern: every bit but the sign's."""
        return (1 << (self.width - 1)) - 1

    @property
    def inf_pattern(self) -> int:
        """The magnitude pattern of inf; every larger one is a NaN's."""
        mantissa_bits = _mantissa_bits(self.values.dtype)
        return self.largest_pattern >> mantissa_bits << mantissa_bits

    @property
    def nan_gap(self) -> int:
        """How many patterns lie above inf's: the NaNs'."""
        return self.largest_pattern - self.inf_pattern

    def magnitudes(self, values: tf.Tensor | None = None) -> tf.Tensor:
        """The bit patterns of |x| read as integers: the sign bit cleared."""
        patterns = tf.bitcast(self.values if values is None else values, self.int_dtype)
        return tf.bitwise.bitwise_and(patterns, tf.constant(self.largest_pattern, self.int_dtype))

    def value_of(self, pattern: tf.Tensor) -> tf.Tensor:
        """The float whose magnitude pattern this is, in the caller's dtype (exact)."""
        return tf.cast(tf.bitcast(pattern, self.values.dtype), self.dtype)

    def keys(self) -> tf.Tensor:
        """Unsigned keys ordered like the magnitudes, every NaN's below every number's.

        A magnitude pattern plus the gap between inf's pattern and the largest, modulo
        2^(width - 1): the numbers keep their order, and the NaNs, whose patterns lie in
        that gap, wrap around below 0's key. One addition more than `magnitudes`, and
        no comparison.
        """
        unsigned = tf.bitcast(self.values, self.unsigned)
        rotated = unsigned + tf.constant(self.nan_gap, self.unsigned)
        return tf.bitwise.bitwise_and(rotated, tf.constant(self.largest_pattern, self.unsigned))

    def value_of_key(self, key: tf.Tensor) -> tf.Tensor:
        """The magnitude a key of `keys` stands for: 0 for a NaN's, as the rule says."""
        gap = tf.constant(self.nan_gap, self.unsigned)
        pattern = tf.where(key >= gap, key - gap, tf.zeros_like(key))
        return self.value_of(tf.bitcast(pattern, self.int_dtype))


def _mantissa_bits(dtype: tf.DType) -> int:
    """The stored mantissa bits of a float dtype: 1 << it is the smallest normal's pattern."""
    return int(np.finfo(dtype.as_numpy_dtype).nmant)


def _bit_view(values: tf.Tensor) -> _BitView:
    flat = tf.reshape(values, [-1])
    dtype = flat.dtype
    if dtype in (tf.float16, tf.bfloat16):
        flat = tf.cast(flat, tf.float32)  # exact: every half value is a float32
    if flat.dtype == tf.float64:
        return _BitView(flat, dtype, tf.int64, tf.uint64, 64)
    return _BitView(flat, dtype, tf.int32, tf.uint32, 32)


def sorted_kth_largest(values: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
    """The k-th largest magnitude by a partial `top_k` sort, O(n log k).

    It sorts the bit patterns with the sign cleared, as integers, like radix select:
    a float sort on the CPU treats subnormals as zero and could return either. Their
    `keys` rather than the patterns themselves, so that NaNs sort last.
    """
    view = _bit_view(values)
    rank = tf.cast(k, tf.int32)
    top = tf.math.top_k(view.keys(), k=rank, sorted=True)
    return view.value_of_key(top.values[rank - 1])


def radix_kth_largest(values: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
    """The k-th largest (1-based) magnitude |x| of `values`, exactly, in O(n); k must be >= 1.

    Radix select over the bit pattern with the sign cleared (|x| is never materialised).
    The first 16-bit digit is read with one logical shift of the unsigned pattern (the
    sign lands in the digit's top bit; the two halves of the histogram are added). Then
    only the values in the selected bucket are kept (compaction), so the later digits
    cost almost nothing. NaNs are taken out of the first histogram (`_count_out_nans`),
    which costs no pass over the values unless some value has inf's first digit.
    """
    view = _bit_view(values)
    int_dtype, total_bits = view.int_dtype, view.width
    wide = total_bits == 64
    half = _DIGITS // 2
    inf_digit = view.inf_pattern >> (total_bits - _DIGIT_BITS)
    no_weights = tf.zeros([0], int_dtype)
    rank = tf.cast(k, int_dtype)
    top = tf.bitwise.right_shift(tf.bitcast(view.values, view.unsigned), total_bits - _DIGIT_BITS)
    top = tf.bitcast(top, tf.int32) if not wide else tf.cast(top, tf.int32)
    both_signs = tf.raw_ops.DenseBincount(input=top, size=_DIGITS, weights=no_weights)
    counts, numbers = _count_out_nans(both_signs[:half] + both_signs[half:], view, inf_digit)
    # Past the numbers the answer is 0 (set below); selecting a rank among them meanwhile
    # keeps every bin index in range.
    remaining = tf.minimum(rank, numbers)

    def select(counts: tf.Tensor) -> tf.Tensor:
        """The digit holding the remaining-th largest value; counts what lies above it.

        In two levels of 256 bins, as a cumulative sum over all 2^16 bins costs more than
        the histogram itself.
        """
        nonlocal remaining
        blocks = tf.reshape(counts, [-1, _BLOCK])
        block_counts = tf.reduce_sum(blocks, axis=1)
        block, above_block = _highest_reaching(block_counts, remaining, int_dtype)
        within, above_within = _highest_reaching(blocks[block], remaining - above_block, int_dtype)
        remaining -= above_block + above_within
        return block * _BLOCK + within

    digit = select(counts)
    first_digit = prefix = digit
    with tf.control_dependencies([digit]):  # after the histogram: the AND reuses top's buffer
        top = tf.bitwise.bitwise_and(top, half - 1)
    in_bucket = tf.equal(top, tf.cast(digit, tf.int32))
    bits = view.magnitudes(tf.boolean_mask(view.values, in_bucket))
    for shift in range(total_bits - 2 * _DIGIT_BITS, -1, -_DIGIT_BITS):
        key = tf.cast(
            tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, shift), _DIGITS - 1), tf.int32
        )
        digit = select(tf.raw_ops.DenseBincount(input=key, size=_DIGITS, weights=no_weights))
        prefix = prefix * _DIGITS + digit
        if shift:
            bits = tf.boolean_mask(bits, tf.equal(key, tf.cast(digit, tf.int32)))
    value = view.value_of(prefix)  # exact, as the value is one of them
    # inf's bucket may also hold NaNs, which the later digits do not tell apart; but the
    # only number in it is inf.
    infinite = tf.constant(float("inf"), value.dtype)
    value = tf.where(tf.equal(first_digit, inf_digit), infinite, value)
    return tf.where(rank > numbers, tf.zeros_like(value), value)


def _count_out_nans(
    counts: tf.Tensor, view: _BitView, inf_digit: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """The first digit's histogram without NaNs, and how many numbers there are.

    Bins above inf's first digit hold only NaNs. Inf's own bin also holds the NaNs whose
    payload lies in the lower digits alone; no arithmetic makes those, so that bin is
    recounted exactly (one pass over the values) only when it is not empty.
    """
    in_inf_bin = counts[inf_digit]
    infs = tf.cond(
        in_inf_bin > 0,
        lambda: tf.reduce_sum(tf.cast(tf.math.is_inf(view.values), counts.dtype)),
        lambda: tf.zeros([], counts.dtype),
    )
    below = counts[:inf_digit]
    numbers = tf.reduce_sum(below) + infs
    nan_bins = tf.zeros([counts.shape[0] - inf_digit - 1], counts.dtype)
    return tf.concat([below, tf.reshape(infs, [1]), nan_bins], 0), numbers


def _highest_reaching(
    counts: tf.Tensor, rank: tf.Tensor, int_dtype: tf.DType
) -> tuple[tf.Tensor, tf.Tensor]:
    """The highest bin i with count(bins >= i) >= rank, and count(bins > i)."""
    at_or_above = tf.cumsum(counts, reverse=True)
    index = tf.reduce_sum(tf.cast(at_or_above >= rank, int_dtype)) - 1
    return index, at_or_above[index] - counts[index]


def smoothed_threshold(
    values: tf.Tensor, sparsity: tf.Tensor, old_threshold: tf.Tensor, decay: float
) -> tf.Tensor:
    """The new threshold: the k-th largest |value|, or just above the largest when k = 0."""
    k = keep_count(tf.size(values), sparsity)
    flat = tf.reshape(values, [-1])
    current = tf.cond(
        k > 0,
        lambda: kth_largest(flat, tf.maximum(k, 1)),
        lambda: _above_every_number(flat),
    )
    current = tf.cast(current, old_threshold.dtype)
    # A factor that is 0 in the threshold's dtype (d = 0; 1 - d in float16 when d is
    # within 3e-8 of 1) drops its term: 0 * inf is NaN, and an infinite threshold is
    # legitimate. For finite thresholds the dropped term added exactly 0. Without decay
    # there is no multiplication by 1 either, which would flush a subnormal to 0.
    as_dtype = tf.as_dtype(old_threshold.dtype).base_dtype.as_numpy_dtype
    if as_dtype(decay) == 0:
        return current
    if as_dtype(1.0 - decay) == 0:
        return old_threshold * decay
    return current * (1.0 - decay) + old_threshold * decay


def _above_every_number(values: tf.Tensor) -> tf.Tensor:
    """Just above the largest non-NaN magnitude, and normal; inf when that is inf.

    Normal because CPUs may compare subnormals as 0 (TensorFlow sets denormals-are-zero),
    which would keep zeros. Nothing is above inf: an infinite value stays kept at k = 0.
    The step up is taken on the bit pattern, as float arithmetic could flush it to 0.
    """
    view = _bit_view(values)
    largest = view.value_of_key(tf.reduce_max(view.keys()))
    int_dtype = {2: tf.int16, 4: tf.int32, 8: tf.int64}[view.dtype.size]
    smallest_normal = 1 << _mantissa_bits(view.dtype)
    above = tf.maximum(tf.bitcast(largest, int_dtype) + 1, smallest_normal)
    return tf.where(tf.math.is_inf(largest), largest, tf.bitcast(above, view.dtype))


def element_mask(
    weights: tf.Tensor, sparsity: tf.Tensor, old_threshold: tf.Tensor, decay: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """(new threshold, mask) of the element-wise path; the mask has the weight's dtype."""
    threshold = smoothed_threshold(weights, sparsity, old_threshold, decay)
    # |w| only once the threshold is known, so it is never alive beside the selection's key.
    with tf.control_dependencies([threshold]):
        magnitudes = tf.abs(weights)
    mask = tf.cast(magnitudes >= tf.cast(threshold, magnitudes.dtype), weights.dtype)
    return threshold, mask


def block_mask(
    weights: tf.Tensor,
    sparsity: tf.Tensor,
    old_threshold: tf.Tensor,
    decay: float,
    block: Sequence[int],
    pooling: str,
) -> tuple[tf.Tensor, tf.Tensor]:
    """(new threshold, mask) of the block path for a weight that squeezes to rank 2.

    Blocks start at row and column 0; the last block of an axis may be partial.
    AVG averages only the real cells of a partial block (as r1.15's SAME pooling
    did); the threshold lives in the pooled domain.
    """
    squeezed = tf.squeeze(weights)
    height, width = (int(d) for d in squeezed.shape)
    block_height, block_width = block
    rows, cols = -(-height // block_height), -(-width // block_width)
    magnitudes = tf.abs(squeezed)
    padded = tf.pad(
        magnitudes, [[0, rows * block_height - height], [0, cols * block_width - width]]
    )
    blocks = tf.reshape(padded, [rows, block_height, cols, block_width])
    if pooling == "MAX":
        pooled = tf.reduce_max(blocks, axis=[1, 3])
    else:
        cells = tf.tensordot(
            _cells_per_block(height, block_height), _cells_per_block(width, block_width), axes=0
        )
        # Not `sum / cells`: Grappler's constant folding turns a division by a constant into
        # a multiplication by its reciprocal, computed inexactly (1/4 -> 0.24999999), so
        # graph mode and tf.function would score blocks an ulp below eager mode. Cells are
        # never 0, so DivNoNan is the exact division, which no pass rewrites.
        pooled = tf.math.divide_no_nan(
            tf.reduce_sum(blocks, axis=[1, 3]), tf.cast(cells, blocks.dtype)
        )
    threshold = smoothed_threshold(pooled, sparsity, old_threshold, decay)
    pooled_mask = tf.cast(pooled >= tf.cast(threshold, pooled.dtype), weights.dtype)
    expanded = tf.repeat(tf.repeat(pooled_mask, block_height, axis=0), block_width, axis=1)
    return threshold, tf.reshape(expanded[:height, :width], tf.shape(weights))


def _cells_per_block(extent: int, block: int) -> tf.Tensor:
    sizes = [block] * (extent // block) + ([extent % block] if extent % block else [])
    return tf.constant(sizes, tf.float32)
