"""What a mask update does, once, for every API of the backend (graph, tf.Module, Keras).

The arithmetic lives in `_kernels` and `_n_m`; this module decides which kernel a
weight gets (element-wise, blocks or N:M, from the spec and the weight's own name and
shape; a group's members together, see `pruning_spec._groups`), the schedule value for a
weight, and r1.15's update predicate. Graph mode and TF2 build the same ops from
these functions, so their masks and thresholds are identical.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from tensorflow.python.platform import tf_logging

from pruning_spec import NormalizedSpec
from pruning_spec._groups import Group

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


def check_not_empty(name: str, shape: Any, advice: str) -> None:
    """Refuses a weight of size 0: it has no magnitude to rank and no sparsity (0 of 0)."""
    dims = tf.TensorShape(shape)
    if dims.rank is not None and 0 in dims.as_list():
        raise ValueError(
            f"cannot prune {name!r}: its shape {dims.as_list()} has no values (size 0), so "
            f"there is nothing to rank or mask; {advice}"
        )


def threshold_and_mask(
    spec: NormalizedSpec, name: str, values: tf.Tensor, sparsity: tf.Tensor, threshold: Any
) -> tuple[tf.Tensor, tf.Tensor]:
    """(new threshold, new mask) of weight `name` with the given values and sparsity."""
    check_not_empty(name, values.shape, "leave it out of pruning")
    shape = values.shape.as_list()
    n_m = spec.n_m_for(name, shape)
    if n_m is not None:
        # No one threshold selects an N:M mask: the variable stays at 0, and the schedule's
        # sparsity does not apply.
        mask = _n_m.n_m_mask(values, n_m.n, n_m.m, n_m.axis, n_m.remainder)
        return tf.zeros([], values.dtype), mask
    decay = spec.threshold_decay
    block = spec.block_dims_for(name, shape)
    if block == (1, 1):
        _warn_if_block_ignored(spec, name, shape)
        return _kernels.element_mask(values, sparsity, threshold, decay)
    pooling = spec.block_pooling_function
    return _kernels.block_mask(values, sparsity, threshold, decay, block, pooling)


# (spec, weight, shape) already warned about: every trace of an update builds the ops again.
_WARNED_BLOCKS: set[tuple[str, str, tuple[int | None, ...]]] = set()


def _warn_if_block_ignored(spec: NormalizedSpec, name: str, shape: list[int]) -> None:
    dims = spec.configured_block_dims(name)
    key = (spec.fingerprint, name, tuple(shape))
    if dims != (1, 1) and key not in _WARNED_BLOCKS:
        _WARNED_BLOCKS.add(key)
        tf_logging.warning(
            "Block dims %s do not apply to %s of shape %s (not rank 2 after squeezing); "
            "it is pruned element-wise.",
            list(dims),
            name,
            shape,
        )


def group_threshold_and_masks(
    spec: NormalizedSpec,
    group: Group,
    values: list[tf.Tensor],
    sparsity: tf.Tensor,
    threshold: Any,
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """(new group threshold, each member's mask) of a group whose members hold `values`.

    `threshold` is the group's previous threshold (every member's threshold variable
    holds it), smoothed with the new one by threshold_decay. The floors are fixed by
    the members' sizes, so they are computed once, when the ops are built.
    """
    keep = _kernels.group_keep_count(group.size, sparsity)
    floors = [member.floor for member in group.members]
    selected = _kernels.group_thresholds(values, keep, floors)
    old = tf.cast(tf.convert_to_tensor(threshold), selected.threshold.dtype)
    smoothed = _kernels.smooth(selected.threshold, old, spec.threshold_decay)
    return smoothed, _kernels.group_masks(values, selected._replace(threshold=smoothed))


def zero_fraction(values: list[Any]) -> tf.Tensor:
    """The fraction of zeros over several tensors together (a group's), as a float64 tensor."""
    nonzero = tf.add_n([tf.math.count_nonzero(v, dtype=tf.int64) for v in values])
    total = sum(int(tf.TensorShape(v.shape).num_elements()) for v in values)
    return 1.0 - tf.cast(nonzero, tf.float64) / float(total)
