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

from collections.abc import Callable, Sequence
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


def group_keep_count(size: int, sparsity: tf.Tensor) -> tf.Tensor:
    """A group's K = round_half_even(N * (1 - s)) in float64, as int64 (`pruning_spec._groups`).

    float64, not r1.15's float32: a group may hold more than 2^24 values. The same IEEE
    operations as `_groups.keep_count`: s rounded to float32, 1 - s, times N, rounded.
    """
    remaining = 1.0 - tf.cast(tf.cast(sparsity, tf.float32), tf.float64)
    k = tf.cast(tf.round(tf.constant(float(size), tf.float64) * remaining), tf.int64)
    return tf.clip_by_value(k, 0, size)


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
    counts, numbers = _count_out_nans(
        both_signs[:half] + both_signs[half:], lambda: _count_infs(view.values), inf_digit
    )
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
    counts: tf.Tensor, count_infs: Callable[[], tf.Tensor], inf_digit: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """The first digit's histogram without NaNs, and how many numbers there are.

    Bins above inf's first digit hold only NaNs. Inf's own bin also holds the NaNs whose
    payload lies in the lower digits alone; no arithmetic makes those, so that bin is
    recounted exactly (`count_infs`: one pass over the values) only when it is not empty.
    """
    in_inf_bin = counts[inf_digit]
    infs = tf.cond(
        in_inf_bin > 0,
        lambda: tf.cast(count_infs(), counts.dtype),
        lambda: tf.zeros([], counts.dtype),
    )
    below = counts[:inf_digit]
    numbers = tf.reduce_sum(below) + infs
    nan_bins = tf.zeros([counts.shape[0] - inf_digit - 1], counts.dtype)
    return tf.concat([below, tf.reshape(infs, [1]), nan_bins], 0), numbers


def _count_infs(values: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(tf.math.is_inf(values), tf.int64))


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
    return smooth(tf.cast(current, old_threshold.dtype), old_threshold, decay)


def smooth(current: tf.Tensor, old_threshold: tf.Tensor, decay: float) -> tf.Tensor:
    """`current * (1 - d) + old * d`, in the old threshold's dtype (current already in it)."""
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


# ---------------------------------------------------------------------------------------
# Groups: one exact threshold over many weights (global pruning), never concatenated.
#
# Radix select needs only each digit's histogram over the values, and histograms add: the
# group's histogram is the sum of its members'. So every pass reads the members one after
# another, each compacted on its own, and only 2^16 counts go from one member to the next.
# A concatenation would hold a copy of every value (and its key) at once.


class GroupThresholds(NamedTuple):
    """A group's thresholds, all in the group's common dtype (`common_dtype`).

    Member i keeps `|w| >= threshold or |w| >= floor_thresholds[i]`; a member without a
    floor has floor threshold +inf, which keeps nothing `threshold` does not keep already.
    """

    threshold: tf.Tensor
    floor_thresholds: tuple[tf.Tensor, ...]


def common_dtype(members: Sequence[tf.Tensor]) -> tf.DType:
    """The dtype a group ranks and compares in: float64 if a member has it, else float32.

    Every float16, bfloat16 and float32 value is exactly a float32 (or float64) value, so
    ranking in it loses nothing and returns one of the members' magnitudes exactly.
    """
    if not members:
        raise ValueError("a group needs at least one member")
    dtypes = {tf.as_dtype(member.dtype).base_dtype for member in members}
    unknown = dtypes - {tf.float16, tf.bfloat16, tf.float32, tf.float64}
    if unknown:
        raise TypeError(f"group members must be floats, not {sorted(d.name for d in unknown)}")
    return tf.float64 if tf.float64 in dtypes else tf.float32


def _widen(values: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """`values` flattened and in `dtype` (float32 or float64), every magnitude exact.

    A cast widens halves and float32 normals exactly, but TensorFlow's CPU kernels treat
    subnormal inputs as 0 (denormals-are-zero): a float32 subnormal cast to float64 comes
    out 0. So a float32 with subnormals is widened by `_widen_subnormals`, which costs a
    few full-size float64 temporaries; finding out whether there are any costs a pass of
    one integer temporary (the magnitude's pattern minus 1, unsigned, is below the
    smallest normal's minus 1 only for a subnormal: 0's wraps around).
    """
    flat = tf.reshape(values, [-1])
    if flat.dtype == dtype:
        return flat
    if dtype == tf.float32 or flat.dtype == tf.float16:
        return tf.cast(flat, dtype)  # float16 subnormals are float32 normals
    if flat.dtype == tf.bfloat16:
        flat = tf.cast(flat, tf.float32)  # exact: a bfloat16 is a float32's upper half
    smallest_normal = 1 << _mantissa_bits(tf.float32)
    below = tf.bitwise.bitwise_and(tf.bitcast(flat, tf.uint32), (1 << 31) - 1) - 1
    return tf.cond(
        tf.reduce_min(below) < smallest_normal - 1,
        lambda: _widen_subnormals(flat),
        lambda: tf.cast(flat, tf.float64),
    )


def _widen_subnormals(values: tf.Tensor) -> tf.Tensor:
    """float32 values in float64, subnormals too: m * 2^-149 from their integer mantissa m.

    Every operand and result of that product is a float64 normal. The subnormals' sign
    is dropped, as every reader of `_widen` reads magnitudes only.
    """
    magnitude = tf.bitwise.bitwise_and(tf.bitcast(values, tf.int32), (1 << 31) - 1)
    rebuilt = tf.cast(magnitude, tf.float64) * tf.constant(2.0**-149, tf.float64)
    smallest_normal = 1 << _mantissa_bits(tf.float32)
    return tf.where(magnitude < smallest_normal, rebuilt, tf.cast(values, tf.float64))


def _group_view(values: tf.Tensor, dtype: tf.DType) -> _BitView:
    """The bit view of values already flat and in the group's common dtype."""
    if dtype == tf.float64:
        return _BitView(values, dtype, tf.int64, tf.uint64, 64)
    return _BitView(values, dtype, tf.int32, tf.uint32, 32)


def _pattern(value: tf.Tensor, view: _BitView) -> tf.Tensor:
    """The magnitude pattern of a scalar in the view's dtype."""
    return view.magnitudes(tf.reshape(value, [1]))[0]


# Members below this many values (known when tracing) are read in batches of up to
# max(the largest member, this) values: concatenated, only they. Every source costs every
# pass a fixed ~0.35 ms (its 2^16-bin histograms, a few dozen small ops), as much as
# ~100K values cost. Batching saves ~9% on ResNet-50 + BERT-base (126 kernels, 36 of them
# below 2^18), 3.5x on 64 kernels of 2^12 values, 2.7x on 64 of 2^16 (2-core CPU); a limit
# of 2^20 saved nothing more. A batch holds no more than the largest member, or 2^18 values
# (1 MiB of float32, about two histograms), so the peak memory bound still holds.
BATCH_BELOW = 1 << 18


def _after(value: tf.Tensor, after: Sequence[tf.Tensor]) -> tf.Tensor:
    """`value`, read once every tensor of `after` is computed (the members' chain).

    Only this read carries the control dependency; every op computed from it waits
    through it. Ops made inside a `tf.control_dependencies` block would all carry it,
    constants included, which then are no longer shared: the traced graph of ResNet-50
    + BERT-base's group had 3,500 constants of 7,700 nodes.
    """
    if not after or tf.executing_eagerly():
        return value
    with tf.control_dependencies(after):
        return tf.identity(value)


def _compacted(values: tf.Tensor, match: tf.Tensor) -> tf.Tensor:
    """`tf.boolean_mask` of flat values, in 3 ops rather than about 10 of shape handling."""
    return tf.gather(values, tf.reshape(tf.where(match), [-1]))


class _Source(NamedTuple):
    """A member, or a batch of small members, as the passes read it.

    Its methods build new ops on every call, so that no pass keeps them alive for the
    next one. A part's limit, when it has one, is the magnitude pattern from which its
    values are not ranked (they are a floor's).
    """

    parts: tuple[tuple[tf.Tensor, tf.Tensor | None], ...]
    dtype: tf.DType  # the group's common dtype

    def ranked(self, after: Sequence[tf.Tensor]) -> tf.Tensor:
        """The values, flat and in the common dtype; each value not ranked reads as NaN.

        Read once `after` is computed. NaN ranks below every number and is counted out by
        the selection, so excluding a value costs a comparison and a select, and nothing
        else changes.
        """
        values = [self._ranked(_after(member, after), limit) for member, limit in self.parts]
        return values[0] if len(values) == 1 else tf.concat(values, 0)

    def _ranked(self, member: tf.Tensor, limit: tf.Tensor | None) -> tf.Tensor:
        values = _widen(member, self.dtype)
        if limit is None:
            return values
        below = _group_view(values, self.dtype).magnitudes() < limit
        return tf.where(below, values, tf.constant(float("nan"), self.dtype))

    def selected(self, match: tf.Tensor) -> tf.Tensor:
        """The values where `match` (over `ranked`'s order) holds, in the common dtype.

        Compacted from the members themselves: only the selected values are widened or
        copied, so a pass never holds a second full-size copy of a member.
        """
        flat = [tf.reshape(member, [-1]) for member, _ in self.parts]
        if len(flat) == 1:
            return _widen(_compacted(flat[0], match), self.dtype)
        pieces = tf.split(match, [int(values.shape[0]) for values in flat])
        return tf.concat(
            [
                _widen(_compacted(values, piece), self.dtype)
                for values, piece in zip(flat, pieces, strict=True)
            ],
            0,
        )


def _sources(
    members: Sequence[tf.Tensor], dtype: tf.DType, limits: Sequence[tf.Tensor | None]
) -> list[_Source]:
    """The members as sources, each with its limit (None: every value is ranked).

    Members smaller than `BATCH_BELOW` are batched, in their order, while a batch holds
    no more values than the largest member, or `BATCH_BELOW`.
    """
    sizes = [member.shape.num_elements() for member in members]
    largest = max((size for size in sizes if size is not None), default=0)
    batch_limit = max(largest, BATCH_BELOW)
    sources: list[_Source] = []
    batch: list[tuple[tf.Tensor, tf.Tensor | None]] = []
    batch_size = 0
    for member, limit, size in zip(members, limits, sizes, strict=True):
        if size is None or size >= BATCH_BELOW:
            sources.append(_Source(((member, limit),), dtype))
            continue
        if batch and batch_size + size > batch_limit:
            sources.append(_Source(tuple(batch), dtype))
            batch, batch_size = [], 0
        batch.append((member, limit))
        batch_size += size
    if batch:
        sources.append(_Source(tuple(batch), dtype))
    return sources


# Below this many digits a scatter-add histograms them faster than DenseBincount: on a
# 2-core CPU, DenseBincount costs about 0.25 ms whatever its input, then 1 ns a value;
# `unsorted_segment_sum` 0.04 ms, then 28 ns a value. A compacted bucket is usually this
# small.
_SCATTER_BELOW = 1 << 13


def _histogram(digits: tf.Tensor) -> tf.Tensor:
    """Counts of 16-bit digits (int32) as int64: a group may hold more than 2^31 values."""

    def scatter() -> tf.Tensor:
        return tf.math.unsorted_segment_sum(tf.ones_like(digits, tf.int64), digits, _DIGITS)

    def bincount() -> tf.Tensor:
        no_weights = tf.zeros([0], tf.int64)
        return tf.raw_ops.DenseBincount(input=digits, size=_DIGITS, weights=no_weights)

    size = digits.shape[0]
    if size is not None:
        return scatter() if size < _SCATTER_BELOW else bincount()
    return tf.cond(tf.size(digits) < _SCATTER_BELOW, scatter, bincount)


def _select_digit(counts: tf.Tensor, rank: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The bin holding the rank-th largest value, and the rank left within it (int64).

    In two levels of 256 bins, as `radix_kth_largest`'s `select` does.
    """
    blocks = tf.reshape(counts, [-1, _BLOCK])
    block, above_block = _highest_reaching(tf.reduce_sum(blocks, axis=1), rank, tf.int64)
    within, above_within = _highest_reaching(blocks[block], rank - above_block, tf.int64)
    return block * _BLOCK + within, rank - above_block - above_within


def _first_digit_counts(
    sources: Sequence[_Source], dtype: tf.DType, inf_digit: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """The group's first-digit histogram without NaNs, and how many numbers it holds.

    Each source's ops run after the running total holds the previous source's histogram
    (control dependencies), so that TensorFlow's inter-op threads never hold two
    sources' temporaries at once. On the total, not on the histogram: Grappler would
    otherwise rewrite the chain of additions into one AddN, which holds every source's
    histogram at once (61 MiB instead of 12 for ResNet-50 + BERT-base's 126 kernels).
    The digit includes the sign bit, as in `radix_kth_largest`; the halves are added,
    and NaNs counted out, once for the group.
    """
    total = None
    after: list[tf.Tensor] = []
    for source in sources:
        view = _group_view(source.ranked(after), dtype)
        top = tf.bitwise.right_shift(
            tf.bitcast(view.values, view.unsigned), view.width - _DIGIT_BITS
        )
        # A 32-bit top digit is an int32 as it is (bitcast: no copy); a 64-bit one is cast.
        counts = _histogram(
            tf.bitcast(top, tf.int32) if view.width == 32 else tf.cast(top, tf.int32)
        )
        total = counts if total is None else total + counts
        after = [total]
    assert total is not None
    half = _DIGITS // 2
    return _count_out_nans(
        total[:half] + total[half:], lambda: _count_group_infs(sources, dtype), inf_digit
    )


def _count_group_infs(sources: Sequence[_Source], dtype: tf.DType) -> tf.Tensor:
    """How many infinities the sources hold: one more pass, one source at a time."""
    total = tf.zeros([], tf.int64)
    after: list[tf.Tensor] = []
    for source in sources:
        count = _count_infs(source.ranked(after))
        after = [count]
        total += count
    return total


def _digit_counts(
    sources: Sequence[_Source], dtype: tf.DType, prefix: tf.Tensor, shift: int, after: tf.Tensor
) -> tf.Tensor:
    """The group's histogram of the digit at `shift` among the values matching `prefix`.

    Each source is compacted to its values whose digits above `shift` are `prefix`, then
    histogrammed; the sources run one after another (each after the running total, as
    in `_first_digit_counts`), the first after `after`. As in
    `radix_kth_largest`, one full-size integer tensor at a time: the digits above
    `shift` with the sign still in (the AND that clears it reuses their buffer), then
    the comparison's booleans; the compaction reads the members themselves.
    """
    total = None
    previous = [after]
    for source in sources:
        view = _group_view(source.ranked(previous), dtype)
        above = tf.bitwise.right_shift(tf.bitcast(view.values, view.unsigned), shift + _DIGIT_BITS)
        above = tf.bitwise.bitwise_and(
            tf.bitcast(above, view.int_dtype), view.largest_pattern >> (shift + _DIGIT_BITS)
        )
        match = tf.equal(above, tf.cast(prefix, view.int_dtype))
        bits = view.magnitudes(source.selected(match))
        digits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, shift), _DIGITS - 1)
        counts = _histogram(tf.cast(digits, tf.int32))
        total = counts if total is None else total + counts
        previous = [total]
    assert total is not None
    return total


def _select_in_sources(sources: Sequence[_Source], dtype: tf.DType, k: tf.Tensor) -> tf.Tensor:
    """The k-th largest magnitude (k >= 1) over the sources' values, in `dtype`.

    `radix_kth_largest` with each histogram summed over the sources: the first digit
    counts NaNs out as there; each later digit re-reads every source and compacts it to
    the selected prefix, so no source's compacted values outlive its own histogram.
    """
    view = _group_view(tf.zeros([0], dtype), dtype)
    inf_digit = view.inf_pattern >> (view.width - _DIGIT_BITS)
    rank = tf.cast(k, tf.int64)
    counts, numbers = _first_digit_counts(sources, dtype, inf_digit)
    # Past the numbers the answer is 0 (set below); selecting a rank among them meanwhile
    # keeps every bin index in range.
    first_digit, remaining = _select_digit(counts, tf.minimum(rank, numbers))
    prefix = first_digit
    for shift in range(view.width - 2 * _DIGIT_BITS, -1, -_DIGIT_BITS):
        counts = _digit_counts(sources, dtype, prefix, shift, after=remaining)
        digit, remaining = _select_digit(counts, remaining)
        prefix = prefix * _DIGITS + digit
    value = view.value_of(tf.cast(prefix, view.int_dtype))
    # inf's bucket may also hold NaNs, which the later digits do not tell apart; but the
    # only number in it is inf.
    value = tf.where(tf.equal(first_digit, inf_digit), tf.constant(float("inf"), dtype), value)
    return tf.where(rank > numbers, tf.zeros_like(value), value)


def group_kth_largest(members: Sequence[tf.Tensor], k: tf.Tensor) -> tf.Tensor:
    """The k-th largest (1-based, k >= 1) magnitude over all members' values, exactly.

    As if the members were one tensor, with `radix_kth_largest`'s rules: NaN ranks below
    every number, k beyond the count of numbers gives 0, inf is above every finite value.
    The result is one of the magnitudes (or 0), in `common_dtype(members)`. The members
    are never concatenated (but small ones, `BATCH_BELOW`): each pass reads them one
    after another and sums their histograms, so the peak extra memory is about the
    largest member's in `radix_kth_largest`.
    """
    dtype = common_dtype(members)
    return _select_in_sources(_sources(members, dtype, [None] * len(members)), dtype, k)


def group_thresholds(
    members: Sequence[tf.Tensor], keep: tf.Tensor, floors: Sequence[int] | None = None
) -> GroupThresholds:
    """The thresholds that keep `keep` of the group's values, and each member its floor.

    `keep` is the group's kept count K, as the caller computes it (`keep_count(N, s)` over
    the group's N values); `floors[i]` = f_i >= 0 is the least count member i keeps (for
    min_weight_density; None: no floors). Then:

    - a member with f_i > 0 gets floor threshold t_i = its own f_i-th largest magnitude
      (`kth_largest`; an f_i above the member's size counts as its size); with f_i = 0,
      t_i = +inf and the member has no floor;
    - the group threshold T is the (K - sum f_i)-th largest magnitude over the values no
      floor keeps (all of a member without a floor, those strictly below t_i of a member
      with one), by `group_kth_largest`'s rules; when K - sum f_i <= 0, T is just above
      every number of the group, so that only floors keep values (`_above_every_number`
      over the group: normal, and inf when the largest magnitude is inf);
    - member i keeps `|w| >= T or |w| >= t_i` (`group_masks`).

    Without ties this keeps exactly max(K, sum f_i) values (when no member holds a NaN
    and each f_i is at most its member's size), and every member at least f_i; ties at a
    threshold keep all the tied values, as single-weight masks `|w| >= T` do. A member's
    values at or above t_i are kept out of the ranking by reading them as NaN: the
    members are still never concatenated. The floor selections, like every pass, run one
    member after another.
    """
    dtype = common_dtype(members)
    floors = [0] * len(members) if floors is None else list(floors)
    if len(floors) != len(members):
        raise ValueError(f"{len(floors)} floors for {len(members)} members")
    if any(floor < 0 for floor in floors):
        raise ValueError(f"floors must be >= 0, not {floors}")
    no_floor = tf.constant(float("inf"), dtype)
    floor_thresholds: list[tf.Tensor] = []
    floor_total = tf.zeros([], tf.int64)
    after: list[tf.Tensor] = []
    for member, floor in zip(members, floors, strict=True):
        if floor == 0:
            floor_thresholds.append(no_floor)
            continue
        count = tf.minimum(tf.constant(floor, tf.int64), tf.size(member, out_type=tf.int64))
        threshold = tf.reshape(_widen(kth_largest(_after(member, after), count), dtype), [])
        after = [threshold]
        floor_thresholds.append(threshold)
        floor_total += count
    view = _group_view(tf.zeros([0], dtype), dtype)
    limits = [
        None if floor == 0 else _pattern(threshold, view)
        for floor, threshold in zip(floors, floor_thresholds, strict=True)
    ]
    rank = tf.cast(keep, tf.int64) - floor_total
    with tf.control_dependencies(after):
        threshold = tf.cond(
            rank > 0,
            lambda: _select_in_sources(_sources(members, dtype, limits), dtype, rank),
            lambda: _group_above_every_number(members, dtype),
        )
    return GroupThresholds(threshold, tuple(floor_thresholds))


def _group_above_every_number(members: Sequence[tf.Tensor], dtype: tf.DType) -> tf.Tensor:
    """`_above_every_number` over the whole group, in its common dtype."""
    largest_key = None
    after: list[tf.Tensor] = []
    for member in members:
        key = tf.reduce_max(_group_view(_widen(_after(member, after), dtype), dtype).keys())
        after = [key]
        largest_key = key if largest_key is None else tf.maximum(largest_key, key)
    assert largest_key is not None
    view = _group_view(tf.zeros([0], dtype), dtype)
    largest = view.value_of_key(largest_key)
    smallest_normal = 1 << _mantissa_bits(dtype)
    above = tf.maximum(tf.bitcast(largest, view.int_dtype) + 1, smallest_normal)
    return tf.where(tf.math.is_inf(largest), largest, tf.bitcast(above, dtype))


def group_masks(members: Sequence[tf.Tensor], thresholds: GroupThresholds) -> list[tf.Tensor]:
    """Each member's mask `|w| >= T or |w| >= t_i`, in the member's dtype and shape.

    Compared in the group's common dtype, exactly: a float16 member against a float32
    threshold. The comparison is on keys (`_BitView.keys`), integers, because the CPU's
    float comparison reads subnormals as 0 (denormals-are-zero): `0 >= T` would hold for
    a subnormal T. As T and t_i are numbers, `|w| >= T or |w| >= t_i` is `|w| >= min(T,
    t_i)`, one comparison. Members run one after another, like the selection's passes.
    """
    dtype = common_dtype(members)
    if len(thresholds.floor_thresholds) != len(members):
        raise ValueError(
            f"{len(thresholds.floor_thresholds)} floor thresholds for {len(members)} members"
        )
    view = _group_view(tf.zeros([0], dtype), dtype)
    group = _pattern(tf.convert_to_tensor(thresholds.threshold, dtype), view)
    masks: list[tf.Tensor] = []
    after: list[tf.Tensor] = []
    for member, floor_threshold in zip(members, thresholds.floor_thresholds, strict=True):
        floor = _pattern(tf.convert_to_tensor(floor_threshold, dtype), view)
        # A number's key is its pattern plus the NaN gap (no wrap-around up to inf's).
        limit = tf.bitcast(tf.minimum(group, floor), view.unsigned) + view.nan_gap
        keys = _group_view(_widen(_after(member, after), dtype), dtype).keys()
        mask = tf.reshape(tf.cast(keys >= limit, member.dtype), tf.shape(member))
        after = [mask]
        masks.append(mask)
    return masks
