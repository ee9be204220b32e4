"""N:M semi-structured sparsity masks in TensorFlow: `n_m_mask`, exact and O(size).

The rule (`pruning_spec._n_m`, whose numpy `keep_mask` is the reference): along `axis`,
every `m` consecutive values starting at index 0 form a group, for every position of the
other axes; each group keeps its `n` values of largest magnitude, the lower index among
equal magnitudes. Magnitudes are compared on their bit patterns (`_kernels._BitView.keys`:
-0 equals 0, subnormals are not flushed to zero as the CPU's float comparisons would,
+-inf is above every finite value, NaN below every number), with every NaN's key made
equal so that NaNs tie. float16 and bfloat16 are widened to float32 first (exact). A
partial last group of r = extent % m values: "REJECT" raises ValueError, "DENSE" keeps it,
"KEEP_N" keeps its min(n, r) largest.

Algorithm: a rank count. Keys are reshaped to [before, groups, m, after] (no transpose:
for axis 0 of an [in, out] kernel that is [1, in/m, m, out]); value i of a group is kept
when fewer than n values j beat it, j beating i when `key_j > key_i`, or `key_j == key_i`
and j < i. For integers that is `key_j >= key_i + [j > i]`, one comparison; keys are at
most 2^(width-1) - 1, so the + 1 never overflows. That is m - 1 comparisons a value, all
fused by XLA (`tf.function(jit_compile=True)`) into one pass that reads the weight and
writes the mask. A partial group is padded with key 0, below every value's key, NaNs'
included, so the padding never outranks a value and is sliced off afterwards.

How the comparisons are written depends on the layout (`method`), measured on a 2-core
CPU with TF 2.21 at 4096x4096 float32, in multiples of one element-wise pass
(`cast(abs(w) >= c, w.dtype)`, the floor):

- "broadcast": every (i, j) pair in one broadcast comparison, summed over j. 2:4 along
  axis 0: 0.6-0.8x the floor (XLA fuses it into one loop); 4:8: 0.8-1.2x. With few
  values after the axis (< 16) the sum over j no longer vectorizes (2:4 along axis 1:
  2.2-3.7x), and past m = 8 XLA's compile time and run time jump (16:32: 23x; 16:64:
  32x and 5 s to compile).
- "columns": the group's m columns sliced, the m(m - 1) comparisons written out. Best
  with few values after the axis: 2:4 along axis 1, 1.4-1.7x; its compile time grows
  with m^2 (1.3 s at m = 32).
- "roll": for each shift s of 1..m-1, the group rolled by s against itself; m - 1
  full-size comparisons, compile time linear in m. For m > 8: 16:64 along axis 0,
  15x; along axis 1, 23x; a sort-based selection (`top_k` over the groups, or a
  per-group radix select of the n-th largest key) measured 22-50x.

Without XLA (the same ops in a plain `tf.function`, every op a pass over its tensors)
2:4 along axis 0 costs 4.5x the floor as "columns" (3.3-3.6x with uint8 counts), 6.5x
as "roll", 7.2x as "broadcast"; `top_k` over a transposed [..., m] view 27-40x.

XLA compiles once per weight shape, dtype and rule (40-130 ms on that CPU). The compiled
function runs eagerly, in a `tf.function`, in `tf.compat.v1` graphs and sessions (v1
behaviour too), and in `tf.distribute` replica contexts: it is one op, with no Python
side effect per call. Its peak memory is the mask's (benchmarks/bench_n_m.py).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from pruning_spec import _n_m

from ._kernels import _bit_view

METHODS = ("broadcast", "columns", "roll")
BROADCAST_UP_TO = 8  # m; beyond it, "roll"
COLUMNS_BELOW = 16  # values after the axis below which "columns" beats "broadcast"
_FLOATS = (tf.float16, tf.bfloat16, tf.float32, tf.float64)


def n_m_mask(weights: tf.Tensor, n: int, m: int, axis: int, remainder: str) -> tf.Tensor:
    """The N:M mask of `weights` (module docstring), in its dtype: 1 kept, 0 dropped.

    `axis` is resolved (0 <= axis < rank); 1 <= n < m <= 64; `remainder` is "REJECT",
    "DENSE" or "KEEP_N". The shape must be static. ValueError for a partial group
    under "REJECT", an unknown shape or arguments out of range; TypeError for a dtype
    that is not a float.
    """
    weights = tf.convert_to_tensor(weights)
    if not weights.shape.is_fully_defined():
        raise ValueError(f"N:M masks need a weight of static shape, not {weights.shape}")
    dtype = tf.as_dtype(weights.dtype).base_dtype
    if dtype not in _FLOATS:
        names = ", ".join(d.name for d in _FLOATS)
        raise TypeError(f"N:M masks need floats ({names}), not {dtype.name}")
    shape = tuple(int(d) for d in weights.shape)
    _n_m.check(shape, n, m, axis, remainder)
    if math.prod(shape) == 0:
        return tf.zeros(shape, dtype)
    after = math.prod(shape[int(axis) + 1 :])
    rule = {"n": int(n), "m": int(m), "axis": int(axis), "remainder": remainder}
    # Through the concrete function: a call of `_compiled` itself that traces counts
    # towards TensorFlow's "frequent retracing" warning, which a model's weights of many
    # shapes would set off (each shape is traced and compiled once, as it must be).
    compiled = _compiled.get_concrete_function(weights, **rule, method=choose_method(m, after))
    result: tf.Tensor = compiled(weights)
    return result


def choose_method(m: int, after: int) -> str:
    """How the comparisons are written for groups of m with `after` values after the axis."""
    if m > BROADCAST_UP_TO:
        return "roll"
    return "columns" if after < COLUMNS_BELOW else "broadcast"


def mask(weights: tf.Tensor, n: int, m: int, axis: int, remainder: str, method: str) -> tf.Tensor:
    """`n_m_mask` in plain ops, arguments already checked: what `_compiled` compiles."""
    shape = [int(d) for d in weights.shape]
    before, extent, after = math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1 :])
    partial = extent % m
    groups = -(-extent // m)
    view = _bit_view(weights)
    nan_key = tf.constant(view.nan_gap - 1, view.unsigned)  # the largest NaN key: NaNs tie
    keys = tf.reshape(tf.maximum(view.keys(), nan_key), [before, extent, after])
    if partial:  # padded with key 0, below every value's
        keys = tf.pad(keys, [[0, 0], [0, groups * m - extent], [0, 0]])
    kept = _KEEP[method](tf.reshape(keys, [before, groups, m, after]), n)
    kept = tf.reshape(kept, [before, groups * m, after])
    if partial:
        kept = kept[:, :extent, :]
        if remainder == "DENSE":
            tail = np.arange(extent).reshape(1, extent, 1) >= extent - partial
            kept = tf.logical_or(kept, tf.constant(tail))
    return tf.reshape(tf.cast(kept, weights.dtype), shape)


def _broadcast(keys: tf.Tensor, n: int) -> tf.Tensor:
    """Kept values of [before, groups, m, after] keys: every (i, j) pair at once."""
    m = int(keys.shape[2])
    # [i, j] = 1 where j >= i: j beats i when key_j >= key_i + 1 there (itself never).
    later = tf.constant(np.triu(np.ones((m, m)))[:, :, None], keys.dtype)
    beats = keys[:, :, None, :, :] >= keys[:, :, :, None, :] + later
    return tf.reduce_sum(tf.cast(beats, tf.int32), axis=3) < n


def _columns(keys: tf.Tensor, n: int) -> tf.Tensor:
    """Kept values of [before, groups, m, after] keys: the pairs of columns written out."""
    columns = tf.unstack(keys, axis=2)
    kept = []
    for i, key in enumerate(columns):
        beaten = [
            tf.cast(other >= key if j < i else other > key, tf.int32)
            for j, other in enumerate(columns)
            if j != i
        ]
        kept.append(tf.add_n(beaten) < n)
    return tf.stack(kept, axis=2)


def _roll(keys: tf.Tensor, n: int) -> tf.Tensor:
    """Kept values of [before, groups, m, after] keys: the group against its rotations."""
    m = int(keys.shape[2])
    index = np.arange(m).reshape(1, 1, m, 1)
    beaten = tf.zeros(keys.shape, tf.int32)
    for shift in range(1, m):
        # At i the rotation holds j = (i - shift) mod m, and j > i exactly when i < shift.
        later = tf.constant((index < shift).astype(keys.dtype.as_numpy_dtype))
        beaten += tf.cast(tf.roll(keys, shift, axis=2) >= keys + later, tf.int32)
    return beaten < n


_KEEP = {"broadcast": _broadcast, "columns": _columns, "roll": _roll}

# One XLA computation per weight shape, dtype and rule (the Python arguments), compiled
# when first called and reused after.
_compiled = tf.function(mask, jit_compile=True)
