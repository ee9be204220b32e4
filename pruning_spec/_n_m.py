"""N:M semi-structured sparsity: which values of a weight an N:M rule keeps (numpy reference).

A rule keeps `n` of every `m` consecutive values along one axis of a weight
(1 <= n < m <= 64; the axis already resolved to 0 <= axis < rank):

- Along `axis` the weight splits into groups of `m` consecutive values starting at index
  0, for every position of the other axes. Each group keeps its `n` values of largest
  magnitude |w|; among equal magnitudes the lower index along the axis is kept.
- Magnitudes are compared exactly, on their bit patterns (`magnitude_keys`): -0 equals 0,
  subnormals are not zero, +-inf ranks above every finite value, and every NaN ranks
  below every number, 0 included; NaNs tie with each other (the lower index is kept).
  float16 and bfloat16 are compared after widening to float32, which is exact.
- When the axis' extent is not a multiple of m, its last r = extent % m values form a
  partial group, handled by the `remainder` policy: "REJECT" raises ValueError (the spec
  layer reports it first, with where; this is a guard), "DENSE" keeps the partial group
  entirely, "KEEP_N" keeps its min(n, r) largest by the same rule.

So a mask keeps exactly `kept_count` values, whatever the values (NaNs are kept when a
group holds fewer than its allowance of numbers). The TensorFlow kernel
(`pruning_spec.backends.tensorflow._n_m.n_m_mask`) selects the same values; this module
is its reference and what tools use to check a mask or a pruned weight
(`broken_groups`). numpy is imported when a function needs it (an optional extra of the
core); the shape functions need nothing.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

REMAINDERS = ("REJECT", "DENSE", "KEEP_N")
MAX_M = 64
DTYPES = ("float16", "bfloat16", "float32", "float64")


def check(shape: Sequence[int], n: int, m: int, axis: int, remainder: str) -> int:
    """The partial group's size r = extent % m, once the arguments are known to be valid.

    ValueError for n, m, axis or remainder out of range, and for a partial group under
    "REJECT" (naming the extent, m and the axis).
    """
    if not (_integer(n) and _integer(m) and 1 <= n < m <= MAX_M):
        raise ValueError(f"N:M needs integers 1 <= n < m <= {MAX_M}, not n={n!r}, m={m!r}")
    if remainder not in REMAINDERS:
        raise ValueError(f"remainder must be one of {', '.join(REMAINDERS)}, not {remainder!r}")
    rank = len(shape)
    if not (_integer(axis) and 0 <= axis < rank):
        raise ValueError(f"axis {axis!r} is not an axis of a rank-{rank} weight {list(shape)}")
    extent = int(shape[axis])
    partial = extent % m
    if partial and remainder == "REJECT":
        raise ValueError(
            f"axis {axis} has extent {extent}, not a multiple of m={m} "
            f"({partial} values left over; remainder REJECT)"
        )
    return partial


def _integer(value: object) -> bool:
    """An int (numpy's too), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _positions(shape: Sequence[int], axis: int) -> int:
    """How many positions the other axes have: the groups along the axis per group index."""
    return math.prod(int(d) for i, d in enumerate(shape) if i != axis)


def group_count(shape: Sequence[int], m: int, axis: int, remainder: str) -> int:
    """How many groups constrain what a mask keeps: the groups `broken_groups` checks.

    Every full group, and the partial groups under "KEEP_N" (each keeps at most
    min(n, r)); "DENSE"'s partial groups keep every value, so nothing constrains them
    and they are not counted. ValueError under "REJECT" with a partial group.
    """
    partial = check(shape, 1, m, axis, remainder)
    per_position = int(shape[axis]) // m + (1 if partial and remainder == "KEEP_N" else 0)
    return _positions(shape, axis) * per_position


def kept_count(shape: Sequence[int], n: int, m: int, axis: int, remainder: str) -> int:
    """How many values a mask keeps in all: its sparsity is 1 - kept_count / size."""
    partial = check(shape, n, m, axis, remainder)
    in_partial = partial if remainder == "DENSE" else min(n, partial)
    return _positions(shape, axis) * (int(shape[axis]) // m * n + in_partial)


def magnitude_keys(values: npt.ArrayLike) -> npt.NDArray[Any]:
    """Unsigned integers ordered like the magnitudes |x|, exactly; every NaN's is below 0's.

    The bit pattern with the sign cleared orders like |x| (-0 and 0 alike, subnormals
    exact). Adding the gap between inf's pattern and the largest one, modulo 2^(width -
    1), moves the NaNs' patterns (above inf's) below 0's, as the TensorFlow backend's
    `_BitView.keys` does; then every NaN gets the same key, the largest of them, so that
    NaNs tie and the lower index is kept. float16 and bfloat16 are widened to float32
    first (exact); the keys are uint32 (uint64 for float64).
    """
    import numpy as np  # noqa: PLC0415 - an optional extra of the core

    array = np.asarray(values)
    if array.dtype.name not in DTYPES:
        raise TypeError(f"N:M masks need floats ({', '.join(DTYPES)}), not {array.dtype.name}")
    bits: npt.NDArray[np.unsignedinteger[Any]]
    if array.dtype == np.float64:
        bits, mantissa = array.view(np.uint64), np.finfo(np.float64).nmant
    else:
        bits, mantissa = array.astype(np.float32).view(np.uint32), np.finfo(np.float32).nmant
    unsigned = bits.dtype.type
    largest = (1 << (bits.dtype.itemsize * 8 - 1)) - 1
    gap = largest - (largest >> mantissa << mantissa)  # the NaNs' patterns lie above inf's
    rotated = (bits + unsigned(gap)) & unsigned(largest)
    keys: npt.NDArray[Any] = np.maximum(rotated, unsigned(gap - 1))
    return keys


def _keep_in_groups(keys: npt.NDArray[Any], count: int) -> npt.NDArray[np.bool_]:
    """Of each group on the last axis, the `count` largest keys; ties: the lower index.

    A stable sort of the keys, descending, then the first `count` positions in it.
    """
    import numpy as np  # noqa: PLC0415

    descending = np.iinfo(keys.dtype).max - keys  # reverses the order, keeps ties tied
    order = np.argsort(descending, axis=-1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(keys.shape[-1]), axis=-1)
    kept: npt.NDArray[np.bool_] = rank < count
    return kept


def keep_mask(
    values: npt.ArrayLike, n: int, m: int, axis: int, remainder: str
) -> npt.NDArray[np.bool_]:
    """The values an N:M rule keeps (True), by the rules of the module docstring."""
    import numpy as np  # noqa: PLC0415

    keys = magnitude_keys(values)
    partial = check(keys.shape, n, m, axis, remainder)
    moved = np.moveaxis(keys, axis, -1)  # the groups' axis last
    extent = moved.shape[-1]
    whole = extent - partial
    full = moved[..., :whole].reshape(*moved.shape[:-1], whole // m, m)
    kept = _keep_in_groups(full, n).reshape(*moved.shape[:-1], whole)
    if partial:
        tail = moved[..., whole:]
        if remainder == "DENSE":
            tail_kept = np.ones(tail.shape, bool)
        else:
            tail_kept = _keep_in_groups(tail, min(n, partial))
        kept = np.concatenate([kept, tail_kept], axis=-1)
    mask: npt.NDArray[np.bool_] = np.moveaxis(kept, -1, axis)
    return mask


def broken_groups(kept: npt.ArrayLike, n: int, m: int, axis: int, remainder: str) -> int:
    """How many groups keep more than their allowance (0: `kept` obeys the rule).

    `kept` is true where a value is kept (a mask's 1s, or a pruned weight's non-zeros:
    the caller decides). A full group's allowance is n; a partial group's is min(n, r)
    under "KEEP_N", and under "DENSE" all its r values (it is never broken). "REJECT"
    with a partial group raises ValueError.
    """
    import numpy as np  # noqa: PLC0415

    flags = np.asarray(kept).astype(bool)
    partial = check(flags.shape, n, m, axis, remainder)
    moved = np.moveaxis(flags, axis, -1)
    whole = moved.shape[-1] - partial
    counts = moved[..., :whole].reshape(*moved.shape[:-1], whole // m, m).sum(axis=-1)
    broken = int(np.count_nonzero(counts > n))
    if partial and remainder == "KEEP_N":
        broken += int(np.count_nonzero(moved[..., whole:].sum(axis=-1) > min(n, partial)))
    return broken
