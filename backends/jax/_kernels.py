"""The mask-update arithmetic in JAX, bit-identical to the TensorFlow backend's kernels.

Each function mirrors its namesake in `pruning_spec.backends.tensorflow._kernels` (same
arguments, same results to the bit: thresholds and masks) and is meant to run inside
`jax.jit`: shapes, block dims, floors and decay are static Python values; sparsities,
counts and old thresholds may be traced scalars. Semantics (docs/semantics.md §b-§c):
`k = round_half_even(float32(n) * (1 - s))`, the threshold is the k-th largest
magnitude, smoothed as `T = current * (1 - d) + T_old * d`, `mask = |w| >= T`.

How the results come out identical:

- Selection is exact. A magnitude's bit pattern (sign cleared) orders like its value;
  `_keys` adds the gap between inf's pattern and the largest, modulo 2^(width - 1), so
  that every NaN ranks below every number (TensorFlow's rule: a NaN is never kept, and k
  beyond the count of numbers gives threshold 0). The k-th largest key is found by radix
  select over 16-bit digits (two histogram passes for float32, one for float16 and
  bfloat16, four for float64); each histogram is a scatter-add over chunks of
  `CHUNK` values in a `lax.fori_loop`, so no full-size temporary is ever made (on XLA's
  CPU a fresh 64 MiB buffer costs more than the pass that fills it). Halves are
  selected on their own 16-bit patterns: the k-th largest magnitude is the same value
  whichever exact method finds it.
- TensorFlow's CPU kernels run with denormals-are-zero and flush-to-zero, and so do
  their comparisons. `element_mask`'s and `block_mask`'s `|w| >= T` read float32,
  float64 and bfloat16 subnormals as 0, on both sides (so a subnormal threshold keeps
  every zero: TensorFlow's quirk, reproduced); float16's are float32 normals when
  TensorFlow compares them, so they compare exactly. Here the comparisons are made on
  the bit patterns with that rule written out (`_at_least`), so they do not depend on
  the platform's float mode. The same goes for the few float operations: the smoothing
  (`_arith`: subnormal operands read as 0, subnormal results flushed; halves computed
  in float32 and rounded after each operation, as Eigen's `half` and `bfloat16` do),
  the casts between dtypes (`_tf_cast`) and the AVG pooling's sums, which add in Eigen's
  order (`_tf_sums`). Group masks compare keys, exactly, as TensorFlow's do.
- The schedule is the core's float32 `pruning_spec._schedule.polynomial_sparsity`,
  evaluated on the host (a traced step goes through `jax.pure_callback`). TensorFlow's
  kernel takes the power of float64 scalars, with the C library's pow, as Python's `**`
  does; XLA's float32 `pow` is neither that nor Eigen's (it differs from TensorFlow's
  vectorized float32 pow on a quarter of random (base, exponent) pairs, and the schedule
  written with it from TensorFlow's at a fifth of the steps of a grid of exponents), and
  float64 is not available without x64. `keep_count` is float32 arithmetic, exactly
  TensorFlow's; `group_keep_count` float64, on the host unless x64 is enabled.

float64 needs `jax_enable_x64` (without it JAX has no float64): a float64 weight then
raises TypeError. Inside `jax.jit`, with x64 off, JAX has already turned a float64 input
into float32 before these functions see it; callers must check what they pass. Counts are
int32: a weight or a group holds fewer than 2^31 values.

Where the results may differ, precisely:
- a bfloat16 block whose values are all zero or subnormal has a MAX pooled value of 0
  here, while TensorFlow's reduce_max returns one of its subnormals, which one depending
  on Eigen's evaluation order. When such a block holds the k-th largest pooled value and
  threshold_decay is 0, the thresholds differ (that subnormal against 0); the masks do
  not, as TensorFlow compares the subnormal as 0 (and with decay the smoothing flushes it);
- a weight that is one AVG block is summed by TensorFlow's full reduction, which splits
  the work between threads above some size; measured identical up to 2^23 values;
- the AVG sums follow TensorFlow's x86-64 build (AVX: 8-float packets), the one the
  `tensorflow` extra installs; a TensorFlow built for other packets (aarch64, AVX-512)
  adds in another order, and its averages may differ in the last bit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from jax import lax

from pruning_spec import _groups, _schedule

from . import _tf_sums

Array = jax.Array

_DIGIT_BITS = 16
_DIGITS = 1 << _DIGIT_BITS
_BLOCK = 256  # bins per block when a digit is selected
# Values per scatter-add of a histogram pass: small enough that the loop's temporaries
# (digits, their updates) stay in cache and are reused, large enough that the loop's
# fixed cost per step does not count (4096x4096 float32 on a 2-core CPU: 9-12 ms a pass,
# against 25 ms for one element-wise pass that writes a new float32 array).
CHUNK = 1 << 16
# Below this many values a sort of the keys (`sorted_kth_largest`) beats radix select's
# fixed cost (its 2^16-bin histograms): on a 2-core CPU, 1K values 0.05 ms against 0.14,
# 4K 0.15 against 0.13, 16K 0.54 against 0.21.
SORT_BELOW = 1 << 12
_MAX_SIZE = 2**31 - 2**8  # float32(size) stays below 2^31: counts are int32
_F16: np.dtype[Any] = np.dtype(np.float16)
_BF16: np.dtype[Any] = np.dtype(ml_dtypes.bfloat16)
_F32: np.dtype[Any] = np.dtype(np.float32)
_F64: np.dtype[Any] = np.dtype(np.float64)
_FLOATS = (_F16, _BF16, _F32, _F64)
_MANTISSA_BITS = {_F16: 10, _BF16: 7, _F32: 23, _F64: 52}  # stored bits, the leading 1 implicit


# ---------------------------------------------------------------------------------------
# The schedule and the keep counts.


def polynomial_sparsity(
    step: Any,
    *,
    begin_step: int,
    end_step: int,
    initial_sparsity: float,
    target_sparsity: float,
    exponent: float,
) -> Array:
    """r1.15's schedule at `step`, in float32, bit-identical to the TensorFlow kernel's.

    The core's `_schedule.polynomial_sparsity`, which equals TensorFlow's kernel (both
    take the power in float64 with the C library's pow), evaluated on the host: at once
    for a concrete step, through `jax.pure_callback` for a traced one (inside `jax.jit`:
    the callback runs when the computation reaches it, once per call). `step` may be an
    array of steps (each is evaluated as TensorFlow evaluates a scalar step).
    """
    schedule = functools.partial(
        _schedule.polynomial_sparsity,
        begin_step=int(begin_step),
        end_step=int(end_step),
        initial_sparsity=float(initial_sparsity),
        target_sparsity=float(target_sparsity),
        exponent=float(exponent),
    )

    def on_host(steps: Any) -> np.ndarray[Any, Any]:
        steps = np.asarray(steps)
        values = [schedule(int(value)) for value in steps.reshape(-1)]
        return np.asarray(values, np.float32).reshape(steps.shape)

    if isinstance(step, jax.core.Tracer):
        result_shape = jax.ShapeDtypeStruct(step.shape, jnp.float32)  # type: ignore[no-untyped-call]
        traced: Array = jax.pure_callback(on_host, result_shape, step, vmap_method="expand_dims")
        return traced
    return jnp.asarray(on_host(step))


def keep_count(size: int, sparsity: Any) -> Array:
    """k = round_half_even(float32(n) * (1 - s)), clamped to [0, n], as int32."""
    _check_size(size)
    n = np.float32(size)
    product = n * (np.float32(1.0) - jnp.asarray(sparsity).astype(jnp.float32))
    k = jnp.clip(jnp.round(product), 0, n).astype(jnp.int32)
    return jnp.clip(k, 0, size)


def group_keep_count(size: int, sparsity: Any) -> Array:
    """A group's K = round_half_even(N * (1 - s)) in float64, as int32 (`_groups.keep_count`).

    float64 as TensorFlow's kernel (s rounded to float32, 1 - s, times N, rounded). A
    concrete sparsity is counted on the host; a traced one in float64 when x64 is
    enabled, else on the host through `jax.pure_callback`.
    """
    _check_size(size)

    def on_host(value: Any) -> np.ndarray[Any, Any]:
        return np.asarray(_groups.keep_count(size, float(value)), np.int32)

    if not isinstance(sparsity, jax.core.Tracer):
        return jnp.asarray(on_host(np.asarray(sparsity)))
    if _x64():
        remaining = 1.0 - sparsity.astype(jnp.float32).astype(jnp.float64)
        k = jnp.round(np.float64(size) * remaining)
        return jnp.clip(k, 0, size).astype(jnp.int32)
    result_shape = jax.ShapeDtypeStruct((), jnp.int32)  # type: ignore[no-untyped-call]
    traced: Array = jax.pure_callback(on_host, result_shape, sparsity)
    return traced


def _x64() -> bool:
    """Whether 64-bit JAX (float64, int64) is enabled, here and now."""
    return bool(jax.config.read("jax_enable_x64"))  # type: ignore[no-untyped-call]


def _check_size(size: int) -> None:
    if not 0 <= size <= _MAX_SIZE:
        raise ValueError(f"the JAX kernels count in int32: {size} values are too many")


# ---------------------------------------------------------------------------------------
# Bit patterns.


class _Format(NamedTuple):
    """A float dtype's bit layout."""

    dtype: np.dtype[Any]
    unsigned: np.dtype[Any]
    signed: np.dtype[Any]
    width: int
    mantissa_bits: int

    @property
    def largest_pattern(self) -> int:
        """The largest magnitude pattern: every bit but the sign's."""
        return (1 << (self.width - 1)) - 1

    @property
    def inf_pattern(self) -> int:
        """The magnitude pattern of inf; every larger one is a NaN's."""
        return self.largest_pattern >> self.mantissa_bits << self.mantissa_bits

    @property
    def nan_gap(self) -> int:
        """How many patterns lie above inf's: the NaNs'."""
        return self.largest_pattern - self.inf_pattern

    @property
    def smallest_normal(self) -> int:
        """The pattern of the smallest normal number; every smaller non-zero one is subnormal."""
        return 1 << self.mantissa_bits

    def constant(self, value: int) -> Array:
        """An unsigned constant of the format's width."""
        return jnp.asarray(value, self.unsigned)


@functools.cache
def _format_of(dtype: np.dtype[Any]) -> _Format:
    width = dtype.itemsize * 8
    unsigned = np.dtype(f"uint{width}")
    signed = np.dtype(f"int{width}")
    return _Format(dtype, unsigned, signed, width, _MANTISSA_BITS[dtype])


def _format(dtype: Any) -> _Format:
    """The format of a float dtype; TypeError for other dtypes and for float64 without x64."""
    dtype = np.dtype(dtype)
    if dtype not in _FLOATS:
        names = ", ".join(d.name for d in _FLOATS)
        raise TypeError(f"the JAX kernels take floats ({names}), not {dtype.name}")
    if dtype == _F64 and not _x64():
        raise TypeError(
            "float64 weights need 64-bit JAX: set jax.config.update('jax_enable_x64', True) "
            "(or JAX_ENABLE_X64=1) before creating them, or use float32"
        )
    return _format_of(dtype)


def _checked(values: Any) -> Array:
    """`values` as a JAX array, its dtype checked (before JAX narrows a float64)."""
    _format(_dtype_of(values))
    return jnp.asarray(values)


def _dtype_of(values: Any) -> np.dtype[Any]:
    return np.dtype(values.dtype if hasattr(values, "dtype") else np.asarray(values).dtype)


def _bits(values: Array) -> Array:
    return lax.bitcast_convert_type(values, _format(values.dtype).unsigned)


def _patterns(values: Array) -> Array:
    """The bit patterns of |x| read as unsigned integers: the sign bit cleared."""
    fmt = _format(values.dtype)
    return _bits(values) & fmt.constant(fmt.largest_pattern)


def _keys(values: Array) -> Array:
    """Unsigned keys ordered like the magnitudes, every NaN's below every number's.

    A magnitude pattern plus the gap between inf's pattern and the largest, modulo
    2^(width - 1): the numbers keep their order and the NaNs wrap around below 0's key.
    """
    fmt = _format(values.dtype)
    rotated = _bits(values) + fmt.constant(fmt.nan_gap)
    return rotated & fmt.constant(fmt.largest_pattern)


def _value_of_key(key: Array, fmt: _Format) -> Array:
    """The magnitude a key of `_keys` stands for: 0 for a NaN's."""
    gap = fmt.constant(fmt.nan_gap)
    pattern = jnp.where(key >= gap, key - gap, fmt.constant(0))
    return lax.bitcast_convert_type(pattern, fmt.dtype)


def _flushes(dtype: np.dtype[Any]) -> bool:
    """Whether TensorFlow's CPU reads this dtype's subnormals as 0 when it computes with it.

    float32, float64 and bfloat16 (computed as float32): yes. float16's subnormals are
    float32 normals: no.
    """
    return bool(dtype != _F16)


def _compared_patterns(values: Array) -> Array:
    """Magnitude patterns as TensorFlow's CPU compares them: subnormals as 0 if it flushes."""
    fmt = _format(values.dtype)
    patterns = _patterns(values)
    if not _flushes(fmt.dtype):
        return patterns
    return jnp.where(patterns < fmt.constant(fmt.smallest_normal), fmt.constant(0), patterns)


def _at_least(values: Array, threshold: Array) -> Array:
    """`|values| >= threshold` (same dtype) as TensorFlow's CPU evaluates it, exactly.

    NaN on either side: False. A negative threshold that is not 0 once flushed: True.
    """
    fmt = _format(values.dtype)
    inf = fmt.constant(fmt.inf_pattern)
    # The least magnitude pattern kept, from the scalar threshold: 0 for a threshold that
    # is 0 once flushed, or negative; above inf's (nothing kept) for NaN. Then a pattern
    # is kept when it is at least that and not a NaN's; the values' subnormals need no
    # flushing, as a limit above 0 is normal.
    limit = _compared_patterns(threshold)
    negative = (_bits(threshold) >> fmt.constant(fmt.width - 1)) == fmt.constant(1)
    limit = jnp.where(negative & (limit <= inf), fmt.constant(0), limit)
    magnitudes = _patterns(values)
    return (magnitudes >= limit) & (magnitudes <= inf)


def _flush(values: Array) -> Array:
    """Subnormals replaced by a zero of their sign (flush-to-zero, denormals-are-zero)."""
    fmt = _format(values.dtype)
    bits = _bits(values)
    subnormal = (bits & fmt.constant(fmt.largest_pattern)) < fmt.constant(fmt.smallest_normal)
    signed_zero = lax.bitcast_convert_type(bits & fmt.constant(1 << (fmt.width - 1)), fmt.dtype)
    return jnp.where(subnormal, signed_zero, values)


def _widen_bfloat16(values: Array) -> Array:
    """bfloat16 values as float32, exactly (subnormals kept): a float32's upper half."""
    bits = lax.bitcast_convert_type(values, jnp.uint16).astype(jnp.uint32) << 16
    return lax.bitcast_convert_type(bits, jnp.float32)


def _arith(operation: Callable[[Array, Array], Array], a: Array, b: Array) -> Array:
    """`a op b` in their dtype as TensorFlow's CPU computes it (a multiply, add or divide).

    float32 and float64: subnormal operands read as 0, a subnormal result flushed to 0.
    float16: in float32, rounded to float16 (float16 operands are float32 normals).
    bfloat16: in float32 with the float32 rule, rounded to bfloat16.
    """
    dtype = np.dtype(a.dtype)
    if dtype == _F16:
        return operation(a.astype(jnp.float32), b.astype(jnp.float32)).astype(jnp.float16)
    if dtype == _BF16:
        wide = _arith(operation, _widen_bfloat16(a), _widen_bfloat16(b))
        return wide.astype(jnp.bfloat16)
    return _flush(operation(_flush(a), _flush(b)))


def _tf_cast(values: Array, dtype: np.dtype[Any]) -> Array:
    """`tf.cast(values, dtype)` between float dtypes as TensorFlow's CPU does it.

    Widening a half to float32 is exact (bfloat16 subnormals kept); widening to float64
    goes through float32 and reads float32 subnormals as 0; narrowing rounds to nearest
    even, from float64 through float32, whose subnormal results are flushed.
    """
    source = np.dtype(values.dtype)
    dtype = np.dtype(dtype)
    if source == dtype:
        return values
    if source == _F64:
        narrowed = _flush(values.astype(jnp.float32))
        return narrowed if dtype == _F32 else _tf_cast(narrowed, dtype)
    if source == _BF16:
        values, source = _widen_bfloat16(values), _F32
    elif source == _F16:
        values, source = values.astype(jnp.float32), _F32
    if dtype == _F32:
        return values
    if dtype == _F64:
        return _flush(values).astype(jnp.float64)
    return values.astype(dtype)


# ---------------------------------------------------------------------------------------
# The k-th largest magnitude: radix select on keys.

# A source of values to rank: the values, flat, and how to read their keys (unsigned
# integers of the ranking format's width, NaNs and values left out below every number's).
_Source = tuple[Array, Callable[[Array], Array]]


def _histogram(values: Array, digits_of: Callable[[Array], Array]) -> Array:
    """Counts (int32) of the digits `digits_of` gives for chunks of flat `values`.

    A digit of `_DIGITS` or more is not counted (the scatter drops it).
    """
    size = values.shape[0]
    counts = jnp.zeros(_DIGITS, jnp.int32)

    def add(counts: Array, chunk: Array) -> Array:
        return counts.at[digits_of(chunk)].add(1, mode="drop")

    whole = size // CHUNK
    if whole == 1:
        counts = add(counts, values[:CHUNK])
    elif whole > 1:

        def step(index: Array, counts: Array) -> Array:
            return add(counts, lax.dynamic_slice_in_dim(values, index * CHUNK, CHUNK))

        counts = lax.fori_loop(0, whole, step, counts)
    if size % CHUNK:
        counts = add(counts, values[whole * CHUNK :])
    return counts


def _highest_reaching(counts: Array, rank: Array) -> tuple[Array, Array]:
    """The highest bin i with count(bins >= i) >= rank, and count(bins > i)."""
    at_or_above = jnp.cumsum(counts[::-1])[::-1]
    index = jnp.sum(at_or_above >= rank, dtype=jnp.int32) - 1
    return index, at_or_above[index] - counts[index]


def _select_digit(counts: Array, rank: Array) -> tuple[Array, Array]:
    """The bin holding the rank-th largest value, and the rank left within it.

    In two levels of 256 bins: a cumulative sum over 2^16 bins costs more than a pass.
    """
    blocks = counts.reshape(_BLOCK, _BLOCK)
    block, above_block = _highest_reaching(jnp.sum(blocks, axis=1), rank)
    within, above_within = _highest_reaching(blocks[block], rank - above_block)
    return block * _BLOCK + within, rank - above_block - above_within


def _kth_key(sources: Sequence[_Source], rank: Array, fmt: _Format) -> Array:
    """The rank-th largest key (1 <= rank <= the count of keys) over the sources.

    Digits of 16 bits from the top of the (width - 1)-bit keys; each pass counts the next
    digit among the keys whose higher digits are the ones selected so far.
    """
    key_bits = fmt.width - 1
    top = (key_bits - 1) // _DIGIT_BITS * _DIGIT_BITS
    prefix = fmt.constant(0)
    remaining = rank
    for shift in range(top, -1, -_DIGIT_BITS):

        def digits_of(
            values: Array,
            key_of: Callable[[Array], Array],
            shift: int = shift,
            prefix: Array = prefix,
        ) -> Array:
            keys = key_of(values)
            digits = ((keys >> fmt.constant(shift)) & fmt.constant(_DIGITS - 1)).astype(jnp.int32)
            if shift == top:
                return digits
            above = keys >> fmt.constant(shift + _DIGIT_BITS)
            return jnp.where(above == prefix, digits, _DIGITS)

        counts = sum(
            (
                _histogram(values, functools.partial(digits_of, key_of=key_of))
                for values, key_of in sources
            ),
            start=jnp.zeros(_DIGITS, jnp.int32),
        )
        digit, remaining = _select_digit(counts, remaining)
        prefix = (prefix << fmt.constant(_DIGIT_BITS)) | digit.astype(fmt.unsigned)
    return prefix


def kth_largest(values: Any, k: Any) -> Array:
    """The k-th largest (1-based) magnitude |x| of `values`, exactly; k must be >= 1.

    In the values' dtype; 0 when k exceeds the count of numbers (NaNs rank below them).
    Radix select in general; a sort of the keys for fewer than `SORT_BELOW` values.
    """
    values = _checked(values)
    if values.size < SORT_BELOW:
        return sorted_kth_largest(values, k)
    return radix_kth_largest(values, k)


def radix_kth_largest(values: Any, k: Any) -> Array:
    """The k-th largest magnitude by radix select: O(n), no full-size temporary."""
    values = _checked(values).reshape(-1)
    fmt = _format(values.dtype)
    size = values.shape[0]
    rank = jnp.clip(jnp.asarray(k, jnp.int32), 1, size)
    value = _value_of_key(_kth_key([(values, _keys)], rank, fmt), fmt)
    return jnp.where(jnp.asarray(k) > size, jnp.zeros_like(value), value)


def sorted_kth_largest(values: Any, k: Any) -> Array:
    """The k-th largest magnitude from a sort of the keys (so that NaNs sort last)."""
    values = _checked(values).reshape(-1)
    fmt = _format(values.dtype)
    size = values.shape[0]
    rank = jnp.clip(jnp.asarray(k, jnp.int32), 1, size)
    value = _value_of_key(jnp.sort(_keys(values))[size - rank], fmt)
    return jnp.where(jnp.asarray(k) > size, jnp.zeros_like(value), value)


# ---------------------------------------------------------------------------------------
# Thresholds and masks of one weight.


def smoothed_threshold(values: Any, sparsity: Any, old_threshold: Any, decay: float) -> Array:
    """The new threshold: the k-th largest |value|, or just above the largest when k = 0."""
    values = _checked(values).reshape(-1)
    old_threshold = _checked(old_threshold)
    k = keep_count(values.shape[0], sparsity)
    current = lax.cond(
        k > 0,
        lambda: kth_largest(values, jnp.maximum(k, 1)),
        lambda: _above_every_number(values),
    )
    return smooth(_tf_cast(current, old_threshold.dtype), old_threshold, decay)


def smooth(current: Any, old_threshold: Any, decay: float) -> Array:
    """`current * (1 - d) + old * d`, in the old threshold's dtype (current already in it).

    A factor that is 0 in that dtype drops its term, as TensorFlow's kernel does (0 * inf
    is NaN, and an infinite threshold is legitimate).
    """
    old_threshold = _checked(old_threshold)
    current = _checked(current)
    dtype = np.dtype(old_threshold.dtype)
    keep_old = np.asarray(decay, dtype)
    keep_current = np.asarray(1.0 - decay, dtype)
    if keep_old == 0:
        return jnp.asarray(current)
    if keep_current == 0:
        return _arith(jnp.multiply, old_threshold, jnp.asarray(keep_old))
    return _arith(
        jnp.add,
        _arith(jnp.multiply, current, jnp.asarray(keep_current)),
        _arith(jnp.multiply, old_threshold, jnp.asarray(keep_old)),
    )


def _above_every_number(values: Array) -> Array:
    """Just above the largest non-NaN magnitude, and normal; inf when that is inf.

    Normal because TensorFlow compares subnormals as 0, which would keep zeros. The step
    up is taken on the bit pattern.
    """
    return _just_above(jnp.max(_keys(values)), _format(values.dtype))


def _just_above(largest_key: Array, fmt: _Format) -> Array:
    """The number just above the magnitude of a key, and normal; inf for inf's key."""
    largest = _value_of_key(largest_key, fmt)
    patterns = lax.bitcast_convert_type(largest, fmt.signed)
    one, normal = jnp.asarray(1, fmt.signed), jnp.asarray(fmt.smallest_normal, fmt.signed)
    above = lax.bitcast_convert_type(jnp.maximum(patterns + one, normal), fmt.dtype)
    return jnp.where(largest_key == fmt.constant(fmt.largest_pattern), largest, above)


def element_mask(
    weights: Any, sparsity: Any, old_threshold: Any, decay: float
) -> tuple[Array, Array]:
    """(new threshold, mask) of the element-wise path; the mask has the weight's dtype."""
    weights = _checked(weights)
    threshold = smoothed_threshold(weights, sparsity, old_threshold, decay)
    limit = _tf_cast(threshold, np.dtype(weights.dtype))
    return threshold, _at_least(weights, limit).astype(weights.dtype)


def block_mask(
    weights: Any,
    sparsity: Any,
    old_threshold: Any,
    decay: float,
    block: Sequence[int],
    pooling: str,
) -> tuple[Array, Array]:
    """(new threshold, mask) of the block path for a weight that squeezes to rank 2.

    Blocks start at row and column 0; the last block of an axis may be partial. AVG
    averages only the real cells of a partial block; the threshold lives in the pooled
    domain. `block` is resolved (no -1), as `NormalizedSpec.block_dims_for` gives it.
    """
    weights = _checked(weights)
    dtype = np.dtype(weights.dtype)
    squeezed = jnp.squeeze(weights)
    if squeezed.ndim != 2:
        raise ValueError(f"block masks need a weight of rank 2 once squeezed, not {weights.shape}")
    height, width = squeezed.shape
    block_height, block_width = (int(d) for d in block)
    rows, cols = -(-height // block_height), -(-width // block_width)
    magnitudes = jnp.abs(squeezed)
    padded = jnp.pad(
        magnitudes, ((0, rows * block_height - height), (0, cols * block_width - width))
    )
    blocks = padded.reshape(rows, block_height, cols, block_width)
    if pooling == "MAX":
        fmt = _format(dtype)
        largest = jnp.max(_compared_patterns(blocks), axis=(1, 3))
        pooled = lax.bitcast_convert_type(largest, fmt.dtype)
    elif pooling == "AVG":
        cells = np.multiply.outer(
            _cells_per_block(height, block_height), _cells_per_block(width, block_width)
        )
        # Through a barrier: XLA would make the division by a constant a multiplication by
        # its rounded reciprocal, as Grappler does to TensorFlow's (which divides with
        # DivNoNan for that reason).
        divisor: Array = lax.optimization_barrier(jnp.asarray(cells.astype(dtype)))  # type: ignore[no-untyped-call]
        pooled = _arith(jnp.divide, _tf_sums.block_sums(blocks), divisor)
    else:
        raise ValueError(f"pooling must be AVG or MAX, not {pooling!r}")
    threshold = smoothed_threshold(pooled, sparsity, old_threshold, decay)
    pooled_mask = _at_least(pooled, _tf_cast(threshold, dtype)).astype(dtype)
    expanded = jnp.repeat(jnp.repeat(pooled_mask, block_height, axis=0), block_width, axis=1)
    return threshold, expanded[:height, :width].reshape(weights.shape)


def _cells_per_block(extent: int, block: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    sizes = [block] * (extent // block) + ([extent % block] if extent % block else [])
    return np.asarray(sizes, np.float32)


# ---------------------------------------------------------------------------------------
# Groups: one exact threshold over many weights (global pruning), never concatenated.
#
# Radix select needs only each digit's histogram over the values, and histograms add: the
# group's histogram is the sum of its members'. Every value is ranked in the group's
# common dtype, widened exactly.


class GroupThresholds(NamedTuple):
    """A group's thresholds, all in the group's common dtype (`common_dtype`).

    Member i keeps `|w| >= threshold or |w| >= floor_thresholds[i]`; a member without a
    floor has floor threshold +inf, which keeps nothing `threshold` does not keep already.
    """

    threshold: Array
    floor_thresholds: tuple[Array, ...]


def common_dtype(members: Sequence[Any]) -> np.dtype[Any]:
    """The dtype a group ranks and compares in: float64 if a member has it, else float32."""
    if not members:
        raise ValueError("a group needs at least one member")
    dtypes = {_dtype_of(member) for member in members}
    unknown = dtypes - set(_FLOATS)
    if unknown:
        raise TypeError(f"group members must be floats, not {sorted(d.name for d in unknown)}")
    for dtype in dtypes:
        _format(dtype)
    return _F64 if _F64 in dtypes else _F32


def _widen(values: Array, dtype: np.dtype[Any]) -> Array:
    """`values` flat and in `dtype` (float32 or float64), every magnitude exact.

    A float32 subnormal is rebuilt in float64 as m * 2^-149 from its integer mantissa m
    (every operand a float64 normal): a cast could read it as 0. The subnormals' sign is
    dropped, as every reader of `_widen` reads magnitudes only.
    """
    flat = values.reshape(-1)
    source = np.dtype(flat.dtype)
    if source == dtype:
        return flat
    if source == _BF16:
        flat, source = _widen_bfloat16(flat), _F32
    elif source == _F16:
        flat, source = flat.astype(jnp.float32), _F32  # float16 subnormals: float32 normals
    if dtype == _F32:
        return flat
    magnitude = _patterns(flat)
    smallest_normal = jnp.asarray(_format(_F32).smallest_normal, jnp.uint32)
    rebuilt = magnitude.astype(jnp.float64) * np.float64(2.0**-149)
    return jnp.where(magnitude < smallest_normal, rebuilt, flat.astype(jnp.float64))


def _ranked_keys(dtype: np.dtype[Any], limit: Array | None) -> Callable[[Array], Array]:
    """Keys of a member's values widened to `dtype`; at or above `limit` (a pattern): NaN's."""

    def keys(values: Array) -> Array:
        widened = _widen(values, dtype)
        ranked = _keys(widened)
        if limit is None:
            return ranked
        return jnp.where(_patterns(widened) < limit, ranked, jnp.zeros_like(ranked))

    return keys


def _select_in_members(
    members: Sequence[Array], dtype: np.dtype[Any], limits: Sequence[Array | None], k: Array
) -> Array:
    """The k-th largest (k >= 1) magnitude over the members' values ranked, in `dtype`."""
    fmt = _format(dtype)
    total = sum(int(member.size) for member in members)
    _check_size(total)
    rank = jnp.clip(jnp.asarray(k, jnp.int32), 1, total)
    sources = [
        (member.reshape(-1), _ranked_keys(dtype, limit))
        for member, limit in zip(members, limits, strict=True)
    ]
    value = _value_of_key(_kth_key(sources, rank, fmt), fmt)
    return jnp.where(jnp.asarray(k) > total, jnp.zeros_like(value), value)


def group_kth_largest(members: Sequence[Any], k: Any) -> Array:
    """The k-th largest (1-based, k >= 1) magnitude over all members' values, exactly.

    As if the members were one tensor, with `kth_largest`'s rules, in `common_dtype`.
    """
    dtype = common_dtype(members)
    arrays = [jnp.asarray(member) for member in members]
    return _select_in_members(arrays, dtype, [None] * len(arrays), jnp.asarray(k))


def group_thresholds(
    members: Sequence[Any], keep: Any, floors: Sequence[int] | None = None
) -> GroupThresholds:
    """The thresholds that keep `keep` of the group's values, and each member its floor.

    As TensorFlow's `group_thresholds`: a member with floor f_i > 0 gets floor threshold
    t_i = its own min(f_i, size)-th largest magnitude; the group threshold T is the
    (K - sum f_i)-th largest over the values no floor keeps (those at or above t_i are
    ranked as NaN); when K - sum f_i <= 0, T is just above every number of the group.
    """
    dtype = common_dtype(members)
    arrays = [jnp.asarray(member) for member in members]
    floors = [0] * len(arrays) if floors is None else [int(floor) for floor in floors]
    if len(floors) != len(arrays):
        raise ValueError(f"{len(floors)} floors for {len(arrays)} members")
    if any(floor < 0 for floor in floors):
        raise ValueError(f"floors must be >= 0, not {floors}")
    no_floor = jnp.asarray(np.inf, dtype)
    floor_thresholds: list[Array] = []
    floor_total = 0
    for member, floor in zip(arrays, floors, strict=True):
        if floor == 0:
            floor_thresholds.append(no_floor)
            continue
        count = min(floor, int(member.size))
        floor_thresholds.append(_widen(kth_largest(member, count), dtype).reshape(()))
        floor_total += count
    limits = [
        None if floor == 0 else _patterns(threshold)
        for floor, threshold in zip(floors, floor_thresholds, strict=True)
    ]
    rank = jnp.asarray(keep, jnp.int32) - floor_total
    threshold = lax.cond(
        rank > 0,
        lambda: _select_in_members(arrays, dtype, limits, rank),
        lambda: _group_above_every_number(arrays, dtype),
    )
    return GroupThresholds(threshold, tuple(floor_thresholds))


def _group_above_every_number(members: Sequence[Array], dtype: np.dtype[Any]) -> Array:
    """`_above_every_number` over the whole group, in its common dtype."""
    largest_key = functools.reduce(
        jnp.maximum, [jnp.max(_keys(_widen(member, dtype))) for member in members]
    )
    return _just_above(largest_key, _format(dtype))


def group_masks(members: Sequence[Any], thresholds: GroupThresholds) -> list[Array]:
    """Each member's mask `|w| >= T or |w| >= t_i`, in the member's dtype and shape.

    Compared exactly in the group's common dtype, on keys (integers): as T and t_i are
    numbers, `|w| >= T or |w| >= t_i` is `key(|w|) >= key(min(T, t_i))`.
    """
    dtype = common_dtype(members)
    fmt = _format(dtype)
    if len(thresholds.floor_thresholds) != len(members):
        raise ValueError(
            f"{len(thresholds.floor_thresholds)} floor thresholds for {len(members)} members"
        )
    group = _patterns(jnp.asarray(thresholds.threshold, dtype))
    masks: list[Array] = []
    for values, floor_threshold in zip(members, thresholds.floor_thresholds, strict=True):
        member = jnp.asarray(values)
        floor = _patterns(jnp.asarray(floor_threshold, dtype))
        # A number's key is its pattern plus the NaN gap (no wrap-around up to inf's).
        limit = jnp.minimum(group, floor) + fmt.constant(fmt.nan_gap)
        keys = _keys(_widen(member, dtype))
        masks.append((keys >= limit).astype(member.dtype).reshape(member.shape))
    return masks
