"""What a mask update does, once, for every API of the backend (graph, tf.Module, Keras).

The arithmetic lives in `_kernels` and `_n_m`; which kernel a weight gets (element-wise,
blocks or N:M, from the spec and the weight's own name and shape; a group's members
together, see `pruning_spec._groups`) is decided in `backends/_dispatch`, for every
framework. This module gives it TensorFlow's kernels, the schedule value for a weight,
and r1.15's update predicate. Graph mode and TF2 build the same ops from
these functions, so their masks and thresholds are identical.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from tensorflow.python.platform import tf_logging

from pruning_spec import NormalizedSpec
from pruning_spec._groups import Group

from .. import _dispatch
from . import _kernels, _n_m


def scheduled_sparsity(spec: NormalizedSpec, step: Any, target: float) -> tf.Tensor:
    """r1.15's polynomial schedule at `step` (float32), ending at `target`."""
    return _kernels.polynomial_sparsity(
        step,
        begin_step=spec.sparsity_function_begin_step,
        end_step=spec.sparsity_function_end_step,
        initial_sparsity=spec.initial_sparsity,
        target_sparsity=target,
        exponent=spec.sparsity_function_exponent,
    )


def update_due(spec: NormalizedSpec, step: tf.Tensor, last_update_step: Any) -> tf.Tensor:
    """r1.15's predicate: in [begin, end] (end < 0: open), `frequency` steps after the last."""
    last = tf.cast(last_update_step, step.dtype)
    in_window = tf.logical_and(
        step >= spec.begin_pruning_step,
        tf.logical_or(step <= spec.end_pruning_step, spec.end_pruning_step < 0),
    )
    return tf.logical_and(in_window, last + spec.pruning_frequency <= step)


def _block_ignored(name: str, dims: tuple[int, int], shape: list[int | None]) -> None:
    # Every trace of an update builds the ops again: warn once per weight, dims and shape.
    key = (name, dims, tuple(shape))
    if key not in _WARNED_BLOCKS:
        _WARNED_BLOCKS.add(key)
        tf_logging.warning(
            "Block dims %s do not apply to %s of shape %s (not rank 2 after squeezing); "
            "it is pruned element-wise.",
            list(dims),
            name,
            shape,
        )


_WARNED_BLOCKS: set[tuple[str, tuple[int, int], tuple[int | None, ...]]] = set()
KERNELS = _dispatch.Kernels.of(
    _kernels,
    _n_m,
    zero_threshold=lambda dtype: tf.zeros([], dtype),
    cast=lambda value, dtype: tf.cast(tf.convert_to_tensor(value), dtype),
    block_ignored=_block_ignored,
)


def threshold_and_mask(
    spec: NormalizedSpec, name: str, values: tf.Tensor, sparsity: tf.Tensor, threshold: Any
) -> tuple[tf.Tensor, tf.Tensor]:
    """(new threshold, new mask) of weight `name` with the given values and sparsity."""
    return _dispatch.threshold_and_mask(KERNELS, spec, name, values, sparsity, threshold)


def group_threshold_and_masks(
    spec: NormalizedSpec,
    group: Group,
    values: list[tf.Tensor],
    sparsity: tf.Tensor,
    threshold: Any,
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """(new group threshold, each member's mask) of a group whose members hold `values`."""
    return _dispatch.group_threshold_and_masks(KERNELS, spec, group, values, sparsity, threshold)


def zero_fraction(values: list[Any]) -> tf.Tensor:
    """The fraction of zeros over several tensors together (a group's), as a float64 tensor."""
    nonzero = tf.add_n([tf.math.count_nonzero(v, dtype=tf.int64) for v in values])
    total = sum(int(tf.TensorShape(v.shape).num_elements()) for v in values)
    return 1.0 - tf.cast(nonzero, tf.float64) / float(total)
