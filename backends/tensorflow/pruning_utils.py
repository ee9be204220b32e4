"""r1.15's `pruning_utils`: the helpers pruning code and its tests call, in graph mode.

    from pruning_spec.backends.tensorflow import pruning_utils

Names, arguments, op names and results are r1.15's (`tf.contrib.model_pruning.
python.pruning_utils`). `compute_cdf` and `compute_cdf_from_histogram` had left
r1.15 (the threshold moved to top-k in December 2018); they are here with the
numbers of the last release that had them, for code written against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1
# The histogram size r1.15's CDF helpers defaulted to (the old `nbins` hparam's default).
NBINS = 256

__all__ = [
    "NBINS",
    "compute_cdf",
    "compute_cdf_from_histogram",
    "determine_partitioned_axis",
    "expand_tensor",
    "factorized_pool",
    "kronecker_product",
    "partitioned_variable_assign",
    "variable_assign",
    "weight_mask_variable",
    "weight_threshold_variable",
]


def weight_mask_variable(var: Any, scope: Any) -> Any:
    """The `mask` of `var` in variable scope `scope`: its shape and dtype, all ones, frozen."""
    with v1.variable_scope(scope):
        return v1.get_variable(
            "mask",
            var.get_shape(),
            initializer=v1.ones_initializer(),
            trainable=False,
            dtype=var.dtype.base_dtype,
        )


def weight_threshold_variable(var: Any, scope: Any) -> Any:
    """The scalar `threshold` of `var` in variable scope `scope`: zero, frozen."""
    with v1.variable_scope(scope):
        return v1.get_variable(
            "threshold",
            [],
            initializer=v1.zeros_initializer(),
            trainable=False,
            dtype=var.dtype.base_dtype,
        )


def _static_matrix_shape(tensor: Any, what: str) -> tuple[int, int]:
    shape = tensor.get_shape()
    if shape.ndims != 2 or not shape.is_fully_defined():
        raise ValueError(f"{what} needs a rank-2 tensor with a known shape, got shape {shape}")
    rows, cols = shape.as_list()
    return int(rows), int(cols)


def kronecker_product(mat1: Any, mat2: Any) -> tf.Tensor:
    """The Kronecker product of an mxn and a pxq matrix: an mpxnq matrix (static shapes)."""
    m1, n1 = _static_matrix_shape(mat1, "kronecker_product")
    m2, n2 = _static_matrix_shape(mat2, "kronecker_product")
    # Broadcasting [m1, 1, n1, 1] against [1, m2, 1, n2] places mat1[i, j] * mat2 at block (i, j).
    product = tf.reshape(mat1, [m1, 1, n1, 1]) * tf.reshape(mat2, [1, m2, 1, n2])
    return tf.reshape(product, [m1 * m2, n1 * n2])


def expand_tensor(tensor: Any, block_dims: Sequence[int]) -> tf.Tensor:
    """Repeats each row `block_dims[0]` times and each column `block_dims[1]` times.

    The same as `kronecker_product(tensor, ones(block_dims))`; a factor of at most 1
    leaves its axis alone, as r1.15.
    """
    if tensor.get_shape().ndims != 2:
        raise ValueError("Input tensor must be rank 2")
    if len(block_dims) != 2:
        raise ValueError("block_dims must have 2 elements")
    expanded = tf.convert_to_tensor(tensor)
    for axis, factor in enumerate(block_dims):
        if factor > 1:
            expanded = tf.repeat(expanded, factor, axis=axis)
    return expanded


def factorized_pool(
    input_tensor: Any,
    window_shape: Sequence[int],
    pooling_type: str,
    strides: Sequence[int],
    padding: str,
    name: str | None = None,
) -> tf.Tensor:
    """mxn pooling of a rank-2 tensor as a 1xm pooling of its rows, then a 1xn of its columns.

    Equal to `tf.nn.pool` over the matrix seen as a one-channel image: max pooling
    exactly, average pooling up to rounding (a mean of means over equal counts).
    """
    if input_tensor.get_shape().ndims != 2:
        raise ValueError("factorized_pool() accepts tensors of rank 2 only")
    height, width = input_tensor.get_shape().as_list()
    with tf.name_scope(name or "factorized_pool"):
        # As r1.15: [1, 1, H, W], so that a 1xk window slides along one axis at a time.
        aligned = tf.reshape(
            input_tensor, [1, 1, height, width], name=f"{input_tensor.op.name}_aligned"
        )
        pooled = aligned
        for window, stride in zip(window_shape, strides, strict=True):
            pooled = tf.nn.pool(
                pooled,
                window_shape=[1, window],
                pooling_type=pooling_type,
                strides=[1, stride],
                padding=padding,
            )
            # Swap the two spatial axes: the second pass pools the other one, and the
            # second swap restores the original orientation.
            pooled = tf.transpose(pooled, perm=[0, 1, 3, 2])
        return tf.squeeze(pooled, axis=[0, 1])


def determine_partitioned_axis(partitioned_variable: Any) -> int:
    """The one axis along which a partitioned variable is split (ValueError if not one)."""
    whole = partitioned_variable.get_shape().as_list()
    axis = 0
    for partition in partitioned_variable:
        split = [
            index
            for index, (part, full) in enumerate(
                zip(partition.get_shape().as_list(), whole, strict=True)
            )
            if part < full
        ]
        if len(split) != 1:
            raise ValueError(f"Number of partitioned axes {len(split)} not equal to 1")
        axis = split[0]
    return axis


def variable_assign(var: Any, new_value: Any) -> Any:
    """`assign(var, new_value)`, named `<var>_assign` as r1.15."""
    return v1.assign(var, new_value, name=f"{var.op.name}_assign")


def partitioned_variable_assign(partitioned_var: Any, new_value: Any) -> Any:
    """Assigns `new_value` slice by slice; one grouped op, `<var>_group_assign`."""
    partitions = list(partitioned_var)
    axis = 0 if len(partitions) == 1 else determine_partitioned_axis(partitioned_var)
    sizes = [int(p.get_shape()[axis]) for p in partitions]
    pieces = tf.split(new_value, sizes, axis=axis)
    assigns = [variable_assign(p, piece) for p, piece in zip(partitions, pieces, strict=True)]
    return tf.group(*assigns, name=f"{partitioned_var.name}_group_assign")


def _bin_indices(values: Any, value_range: Any, nbins: int) -> tf.Tensor:
    """Each value's bin among `nbins` equal bins over `value_range`; outliers clip to the ends."""
    values = tf.reshape(tf.convert_to_tensor(values), [-1])
    low, high = value_range[0], value_range[1]
    scaled = tf.truediv(values - low, high - low)
    bins = tf.floor(np.float32(nbins) * scaled)
    return tf.cast(tf.clip_by_value(bins, 0, np.float32(nbins - 1)), tf.int32)


def compute_cdf_from_histogram(
    values: Any, value_range: Any, nbins: int = NBINS, name: str | None = None
) -> tf.Tensor:
    """The normalized cumulative histogram of `values` over `value_range` (float32, `nbins`).

    Bin b holds the values v with floor(nbins·(v - low)/(high - low)) = b, clipped to
    [0, nbins - 1]; entry b of the result is the fraction of values in bins 0..b.
    """
    with tf.name_scope(name or "cdf"):
        indices = _bin_indices(values, value_range, nbins)
        histogram = tf.math.unsorted_segment_sum(tf.ones_like(indices, tf.float32), indices, nbins)
        cumulative = tf.cumsum(histogram)
        return tf.math.divide(cumulative, tf.reduce_max(cumulative))


def compute_cdf(
    values: Any, value_range: Any, nbins: int = NBINS, name: str | None = None
) -> tf.Tensor:
    """The same numbers as `compute_cdf_from_histogram`.

    r1.15's predecessor computed them a second way, a while loop for TPUs, and its
    tests checked that the two agree; one computation serves both names here.
    """
    return compute_cdf_from_histogram(values, value_range, nbins=nbins, name=name or "cdf")
