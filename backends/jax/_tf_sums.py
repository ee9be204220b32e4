"""TensorFlow's CPU block sums in JAX, addition for addition (for AVG block pooling).

The TensorFlow backend pools |w| over blocks with `tf.reduce_sum(blocks, axis=[1, 3])` on
a [rows, bh, cols, bw] tensor. Float addition is not associative, so a block's sum, and
the threshold selected among the averages, depend on the order of the additions; that
order is Eigen's (TensorFlow 2.21's CPU kernels, built for x86-64 with AVX: packets of 8
floats, 4 doubles or 8 halves). `block_sums` reproduces it with explicit additions, which
XLA never reorders. The order, as measured against TensorFlow (the tests compare every
layout below on random data of wide range):

- TensorFlow drops the dimensions of size 1 and merges neighbours that are both kept or
  both reduced. Then, by what remains (K kept, R reduced):
  * K R K R, K R: the values of each block made contiguous (a transpose), one row of L
    values per block, each summed by the inner reducer below;
  * R (one block): the whole of it by the inner reducer (one thread; verified to 2^23
    values);
  * K R K, R K (bw = 1): columns summed down the block height by the "preserver": the
    outputs are computed P at a time when P consecutive outputs lie in one row of
    blocks (and below the last multiple of P), else one at a time;
  * R K R (a single row of blocks): each block in column-major order, one value at a time.
- The inner reducer over L values starting at flat index f: above P * leaf values
  (leaf = 1024; 200 for float16) it splits at the first multiple of P at or after
  f + ceil(L / 2) and adds the two halves' sums; below, four packet accumulators take
  every fourth packet while 4P values remain, are added ((a0 + a1) + a2) + a3, take the
  remaining whole packets, and the left-over values are summed one by one from 0; the
  result is that sum plus the accumulator's lanes added pairwise by halves.
- The preserver, over a column of J >= 16 values, keeps four accumulators (one per value
  mod 4) over the first 4 * (J // 4), adds them as above, then the rest one by one; with
  J < 16, and computing one output at a time, it adds the values in order.
- float16 adds in float32 and rounds to float16 after every addition, but the lanes of a
  packet are added in float32 and rounded once; bfloat16 is summed in float32 (as
  float32, P = 8) and rounded once at the end. Subnormal inputs are read as 0 (CPUs run
  TensorFlow with denormals-are-zero), except float16's, which are float32 normals.

The inputs are magnitudes (|w| >= 0, inf, NaN), so a sum of normal numbers is never
subnormal and no result needs flushing. Each loop over more than a few packets is a
`lax.fori_loop`, so that the program stays small whatever the block size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = jax.Array

# Loops of at most this many steps are unrolled; longer ones are fori_loops.
_UNROLL = 8
# The preserver keeps four accumulators from this column depth on.
_FOUR_ACCUMULATORS_FROM = 16


class _Adder(NamedTuple):
    """How one dtype is added on TensorFlow's CPU."""

    lanes: int  # Eigen's packet size P
    leaf: int  # the tree reduction's leaf, in packets
    add: Callable[[Array, Array], Array]
    across: Callable[[Array], Array]  # a packet's lanes [..., P] added into one value


def _plain_add(a: Array, b: Array) -> Array:
    return a + b


def _half_add(a: Array, b: Array) -> Array:
    """float16 addition as Eigen's `half` does it: in float32, rounded to float16."""
    return (a.astype(jnp.float32) + b.astype(jnp.float32)).astype(jnp.float16)


def _across(packet: Array) -> Array:
    """The lanes added by halves: [a + c, b + d] of [a, b, c, d], down to one value."""
    while packet.shape[-1] > 1:
        half = packet.shape[-1] // 2
        packet = packet[..., :half] + packet[..., half:]
    return packet[..., 0]


def _half_across(packet: Array) -> Array:
    """A float16 packet's lanes: added in float32, rounded to float16 once."""
    return _across(packet.astype(jnp.float32)).astype(jnp.float16)


_ADDERS = {
    np.dtype(np.float32): _Adder(8, 1024, _plain_add, _across),
    np.dtype(np.float64): _Adder(4, 1024, _plain_add, _across),
    np.dtype(np.float16): _Adder(8, 200, _half_add, _half_across),
}


def block_sums(blocks: Array) -> Array:
    """`tf.reduce_sum(blocks, axis=[1, 3])` of [rows, bh, cols, bw] magnitudes, as TF's CPU.

    In the blocks' dtype (float16, bfloat16, float32 or float64), shape [rows, cols].
    """
    dtype = np.dtype(blocks.dtype)
    if dtype == np.dtype(jnp.bfloat16):
        widened = lax.bitcast_convert_type(
            lax.bitcast_convert_type(blocks, jnp.uint16).astype(jnp.uint32) << 16, jnp.float32
        )
        return block_sums(widened).astype(jnp.bfloat16)
    adder = _ADDERS[dtype]
    if dtype != np.dtype(np.float16):
        blocks = _flush_subnormals(blocks)
    rows, height, cols, width = blocks.shape
    kept_or_reduced = [
        (extent, reduced)
        for extent, reduced in zip(blocks.shape, (False, True, False, True), strict=True)
        if extent != 1
    ]
    pattern: list[bool] = []
    for _, reduced in kept_or_reduced:
        if not pattern or pattern[-1] != reduced:
            pattern.append(reduced)
    if pattern in ([False, True, False, True], [False, True], [True]):
        size = height * width
        rows_of_blocks = jnp.transpose(blocks, (0, 2, 1, 3)).reshape(rows * cols, size)
        return _inner(rows_of_blocks, adder).reshape(rows, cols)
    if pattern in ([False, True, False], [True, False]):
        return _preserved(blocks.reshape(rows, height, cols), adder)
    if pattern == [True, False, True]:  # one row of blocks, each in column-major order
        columns = jnp.transpose(blocks.reshape(height, cols, width), (1, 2, 0))
        return _fold(columns.reshape(cols, width * height), adder.add).reshape(1, cols)
    raise AssertionError(f"no block layout {pattern} for blocks of shape {blocks.shape}")


def _flush_subnormals(values: Array) -> Array:
    """Non-negative values with every subnormal read as 0 (denormals-are-zero)."""
    tiny = jnp.asarray(np.finfo(values.dtype).tiny, values.dtype)
    return jnp.where(values < tiny, jnp.zeros_like(values), values)


def _fold(values: Array, add: Callable[[Array, Array], Array], first: Array | None = None) -> Array:
    """values[:, 0] + values[:, 1] + ... in order (after `first` when given), [N, T, ...]."""
    steps = values.shape[1]
    if first is None:
        if steps == 0:
            raise AssertionError("nothing to fold")
        first, values, steps = values[:, 0], values[:, 1:], steps - 1
    if steps <= _UNROLL:
        total = first
        for step in range(steps):
            total = add(total, values[:, step])
        return total
    leading = jnp.moveaxis(values, 1, 0)
    folded: Array = lax.fori_loop(0, steps, lambda step, total: add(total, leading[step]), first)
    return folded


def _inner(rows: Array, adder: _Adder) -> Array:
    """Each row's sum by Eigen's inner reducer, the row starting at flat index row * L."""
    count, size = rows.shape
    lanes = adder.lanes
    if size <= lanes * adder.leaf:
        return _leaf(rows, adder)
    # Above a leaf the split point is aligned on the flat index: rows differ by f mod P.
    residues = (np.arange(count) * size) % lanes
    classes = np.unique(residues)
    if classes.size == 1:
        return _tree(rows, int(classes[0]), adder)
    sums = jnp.zeros(count, rows.dtype)
    for residue in classes:
        index = np.flatnonzero(residues == residue)
        sums = sums.at[index].set(_tree(rows[index], int(residue), adder))
    return sums


def _tree(rows: Array, residue: int, adder: _Adder) -> Array:
    """Rows starting at a flat index = residue (mod P), split while above a leaf."""
    size = rows.shape[1]
    lanes = adder.lanes
    if size <= lanes * adder.leaf:
        return _leaf(rows, adder)
    split = lanes * -(-(residue + -(-size // 2)) // lanes)
    left_size = min(split - residue, size)
    left = _tree(rows[:, :left_size], residue, adder)
    if left_size == size:
        return left
    return adder.add(left, _tree(rows[:, left_size:], 0, adder))


def _leaf(rows: Array, adder: _Adder) -> Array:
    """Each row's sum by Eigen's vectorized inner reducer, below the tree's leaf size."""
    count, size = rows.shape
    lanes, add = adder.lanes, adder.add
    packets: Array | None = None
    start = 0
    if size >= 4 * lanes:
        quads = size // (4 * lanes)
        four = _fold(rows[:, : quads * 4 * lanes].reshape(count, quads, 4, lanes), add)
        packets = add(add(add(four[:, 0], four[:, 1]), four[:, 2]), four[:, 3])
        start = quads * 4 * lanes
    whole = size // lanes * lanes
    if start < whole:
        rest = rows[:, start:whole].reshape(count, (whole - start) // lanes, lanes)
        packets = _fold(rest, add, packets)
    tail = rows[:, whole:]
    if packets is None:
        return _fold(tail, add)
    across = adder.across(packets)
    if tail.shape[1] == 0:
        return across
    return add(_fold(tail, add), across)


def _preserved(columns: Array, adder: _Adder) -> Array:
    """[R, J, C] summed over J by Eigen's inner-most-dimension preserver, shape [R, C]."""
    count, depth, width = columns.shape
    add, lanes = adder.add, adder.lanes
    one_by_one = _fold(columns, add)
    if depth < _FOUR_ACCUMULATORS_FROM:
        return one_by_one
    quads = depth // 4
    four = _fold(columns[:, : quads * 4].reshape(count, quads, 4, width), add)
    packets = add(add(add(four[:, 0], four[:, 1]), four[:, 2]), four[:, 3])
    if depth > quads * 4:
        packets = _fold(columns[:, quads * 4 :], add, packets)
    # Output o is computed in a packet when it lies below the last multiple of P and its
    # packet [o - o % P, o - o % P + P) lies in one row of C outputs.
    output = np.arange(count * width)
    start = output - output % lanes
    in_packet = (output < (count * width) // lanes * lanes) & (start % width + lanes <= width)
    return jnp.where(in_packet.reshape(count, width), packets, one_by_one)
