"""The sparsity schedule and the mask-update predicate, exactly as r1.15 computes them.

The schedule is evaluated in float32, step by step as TensorFlow r1.15 did, so
every backend and every report agree to the bit:

    p = clamp(float32(t - t0) / float32(t1 - t0), 0, 1)
    s = float32(s_i - s_f) * (1 - p) ** e + s_f
"""

from __future__ import annotations

import math
import struct

_FLOAT32 = struct.Struct("<f")


def float32(value: float) -> float:
    """Rounds a Python float to the nearest float32 (returned as a Python float)."""
    result: float = _FLOAT32.unpack(_FLOAT32.pack(value))[0]
    return result


def _graph_mode_pow(base: float, exponent: float) -> float:
    """float32 `pow` as TensorFlow graph mode computes it.

    Grappler's arithmetic optimizer rewrites `pow` by a constant 1, 2, 3 or 0.5
    into multiplications or `sqrt` (ConvertPowStage), whose float32 roundings
    differ from a correctly rounded pow: with the default exponent 3, r1.15's
    schedule is 0.014850467 at step 1, not 0.014850497.
    """
    if exponent == 1.0:
        return base
    if exponent == 2.0:
        return float32(base * base)
    if exponent == 3.0:
        return float32(base * float32(base * base))
    if exponent == 0.5:
        return float32(math.sqrt(base))
    return float32(base**exponent)


def polynomial_sparsity(
    step: int,
    *,
    begin_step: int,
    end_step: int,
    initial_sparsity: float,
    target_sparsity: float,
    exponent: float,
) -> float:
    """The polynomial decay schedule of r1.15's `_setup_sparsity`, in float32."""
    progress = float32(float32(step - begin_step) / float32(end_step - begin_step))
    progress = min(1.0, max(0.0, progress))
    remaining = float32(1.0 - progress)
    decay = _graph_mode_pow(remaining, float32(exponent))
    scaled = float32(float32(initial_sparsity - target_sparsity) * decay)
    return float32(scaled + float32(target_sparsity))


def mask_update_due(
    step: int, *, last_update_step: int, begin_step: int, end_step: int, frequency: int
) -> bool:
    """r1.15's update predicate: in the pruning window and `frequency` steps since the last."""
    in_window = step >= begin_step and (end_step < 0 or step <= end_step)
    return in_window and last_update_step + frequency <= step
