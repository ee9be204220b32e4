"""N:M semi-structured sparsity masks in JAX: `n_m_mask`, exact and O(size).

The rule and the algorithm are those of `pruning_spec.backends.tensorflow._n_m` (whose
docstring measures the three ways of writing the comparisons; the same XLA compiles
both): along `axis`, every `m` consecutive values from index 0 form a group, and each
group keeps its `n` values of largest magnitude, the lower index among equal ones.
Magnitudes are compared on their keys (`_kernels._keys`), integers, with every NaN's made
equal so that NaNs tie; no float is computed, so the mask is the same on every platform.
float16 and bfloat16 are compared on their own 16-bit keys, which order exactly as their
float32 widenings do. Value i of a group is kept when fewer than n values j beat it, j
beating i when `key_j >= key_i + [j > i]`; a partial last group is padded with key 0,
below every value's.

Meant to run inside `jax.jit` (shapes and the rule are static). Peak memory: the keys
and the mask.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pruning_spec import _n_m

from . import _kernels

Array = jax.Array

METHODS = ("broadcast", "columns", "roll")
BROADCAST_UP_TO = 8  # m; beyond it, "roll"
COLUMNS_BELOW = 16  # values after the axis below which "columns" beats "broadcast"


def n_m_mask(weights: Any, n: int, m: int, axis: int, remainder: str) -> Array:
    """The N:M mask of `weights`, in its dtype: 1 kept, 0 dropped.

    `axis` is resolved (0 <= axis < rank); 1 <= n < m <= 64; `remainder` is "REJECT",
    "DENSE" or "KEEP_N". ValueError for a partial group under "REJECT" or arguments out
    of range; TypeError for a dtype that is not a float (or float64 without x64).
    """
    weights = _kernels._checked(weights)
    shape = tuple(int(d) for d in weights.shape)
    _n_m.check(shape, n, m, axis, remainder)
    if math.prod(shape) == 0:
        return jnp.zeros(shape, weights.dtype)
    after = math.prod(shape[int(axis) + 1 :])
    return mask(weights, int(n), int(m), int(axis), remainder, choose_method(int(m), after))


def choose_method(m: int, after: int) -> str:
    """How the comparisons are written for groups of m with `after` values after the axis."""
    if m > BROADCAST_UP_TO:
        return "roll"
    return "columns" if after < COLUMNS_BELOW else "broadcast"


def mask(weights: Array, n: int, m: int, axis: int, remainder: str, method: str) -> Array:
    """`n_m_mask` with its arguments already checked, the comparisons written by `method`."""
    shape = [int(d) for d in weights.shape]
    before, extent, after = math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1 :])
    partial = extent % m
    groups = -(-extent // m)
    fmt = _kernels._format(weights.dtype)
    nan_key = fmt.constant(fmt.nan_gap - 1)  # the largest NaN key: NaNs tie
    keys = jnp.maximum(_kernels._keys(weights), nan_key).reshape(before, extent, after)
    if partial:  # padded with key 0, below every value's
        keys = jnp.pad(keys, ((0, 0), (0, groups * m - extent), (0, 0)))
    kept = _KEEP[method](keys.reshape(before, groups, m, after), n)
    kept = kept.reshape(before, groups * m, after)
    if partial:
        kept = kept[:, :extent, :]
        if remainder == "DENSE":
            tail = np.arange(extent).reshape(1, extent, 1) >= extent - partial
            kept = kept | jnp.asarray(tail)
    return kept.reshape(shape).astype(weights.dtype)


def _broadcast(keys: Array, n: int) -> Array:
    """Kept values of [before, groups, m, after] keys: every (i, j) pair at once."""
    m = keys.shape[2]
    # [i, j] = 1 where j >= i: j beats i when key_j >= key_i + 1 there (itself never).
    later = jnp.asarray(np.triu(np.ones((m, m), np.int64))[:, :, None], keys.dtype)
    beats = keys[:, :, None, :, :] >= keys[:, :, :, None, :] + later
    return jnp.sum(beats, axis=3, dtype=jnp.int32) < n


def _columns(keys: Array, n: int) -> Array:
    """Kept values of [before, groups, m, after] keys: the pairs of columns written out."""
    columns = [keys[:, :, j, :] for j in range(keys.shape[2])]
    kept = []
    for i, key in enumerate(columns):
        beaten = [
            (other >= key if j < i else other > key).astype(jnp.int32)
            for j, other in enumerate(columns)
            if j != i
        ]
        kept.append(sum(beaten[1:], start=beaten[0]) < n)
    return jnp.stack(kept, axis=2)


def _roll(keys: Array, n: int) -> Array:
    """Kept values of [before, groups, m, after] keys: the group against its rotations."""
    m = keys.shape[2]
    index = np.arange(m).reshape(1, 1, m, 1)
    beaten = jnp.zeros(keys.shape, jnp.int32)
    for shift in range(1, m):
        # At i the rotation holds j = (i - shift) mod m, and j > i exactly when i < shift.
        later = jnp.asarray((index < shift).astype(np.int64), keys.dtype)
        beaten += (jnp.roll(keys, shift, axis=2) >= keys + later).astype(jnp.int32)
    return beaten < n


_KEEP = {"broadcast": _broadcast, "columns": _columns, "roll": _roll}
