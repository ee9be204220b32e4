"""The sparsity schedule and the mask-update predicate, as r1.15 computed them in graph mode.

Every backend evaluates this same float32 arithmetic, so schedules agree to the bit:

    p = clamp(float32(t - t0) * float32(1 / (t1 - t0)), 0, 1)
    s = float32(s_i - s_f) * float32((1 - p) ** e) + s_f

The division is a multiplication by the float32 reciprocal because that is what
TensorFlow's graph optimizer made of r1.15's `(t - t0) / (t1 - t0)`. The power is
correctly rounded: r1.15's float32 `pow` (Eigen's) is within one float32 ulp of it
but not reproducible outside TensorFlow, so at some steps r1.15 differs by that ulp
(e.g. 0.014850467 instead of 0.014850497 at step 1 with the defaults).
"""

from __future__ import annotations

import struct

_FLOAT32 = struct.Struct("<f")


def float32(value: float) -> float:
    """Rounds a Python float to the nearest float32 (returned as a Python float)."""
    result: float = _FLOAT32.unpack(_FLOAT32.pack(value))[0]
    return result


def reciprocal(extent: int) -> float:
    """float32(1 / float32(extent)): the constant r1.15's division became."""
    return float32(1.0 / float32(extent))


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
    progress = float32(float32(step - begin_step) * reciprocal(end_step - begin_step))
    progress = min(1.0, max(0.0, progress))
    remaining = float32(1.0 - progress)
    decay = float32(remaining ** float32(exponent))
    scaled = float32(float32(initial_sparsity - target_sparsity) * decay)
    return float32(scaled + float32(target_sparsity))


def mask_update_due(
    step: int, *, last_update_step: int, begin_step: int, end_step: int, frequency: int
) -> bool:
    """r1.15's update predicate: in the pruning window and `frequency` steps since the last."""
    in_window = step >= begin_step and (end_step < 0 or step <= end_step)
    return in_window and last_update_step + frequency <= step
