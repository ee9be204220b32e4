"""r1.15's slim-style masked layers: `masked_conv2d` and `masked_fully_connected`.

Built on `tf.compat.v1.get_variable` and `tf.nn`, so they need neither
`tf.compat.v1.layers` nor tf-keras. Variables are r1.15's, `<scope>/weights`,
`<scope>/mask`, `<scope>/threshold` and `<scope>/biases`, the masked kernel is
`<scope>/weights/masked_weight`, and the pruning collections are filled through
`apply_mask`, so `Pruning` finds and prunes every layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import tensorflow as tf
from tensorflow.python.ops import variables

from ._graph import apply_mask

v1 = tf.compat.v1

_DATA_FORMATS = (None, "NWC", "NCW", "NHWC", "NCHW", "NDHWC", "NCDHW")
Collections = Sequence[str] | Mapping[str, Sequence[str] | str] | str | None
# r1.15's defaults: slim's xavier_initializer() is Glorot uniform.
_XAVIER = v1.glorot_uniform_initializer()
_ZEROS = v1.zeros_initializer()


def masked_convolution(
    inputs: Any,
    num_outputs: int,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: str = "SAME",
    data_format: str | None = None,
    rate: int | Sequence[int] = 1,
    activation_fn: Callable[[Any], Any] | None = tf.nn.relu,
    normalizer_fn: Callable[..., Any] | None = None,
    normalizer_params: Mapping[str, Any] | None = None,
    weights_initializer: Any = _XAVIER,
    weights_regularizer: Callable[[Any], Any] | None = None,
    biases_initializer: Any = _ZEROS,
    biases_regularizer: Callable[[Any], Any] | None = None,
    reuse: bool | None = None,
    variables_collections: Collections = None,
    outputs_collections: Sequence[str] | str | None = None,
    trainable: bool = True,
    scope: Any = None,
) -> tf.Tensor:
    """A 2-D convolution with a masked kernel, then a normalizer or biases, then an activation.

    r1.15's arguments and defaults: Xavier (Glorot uniform) weights, zero biases,
    `biases_initializer=None` for none, and no biases when `normalizer_fn` is given.
    Only rank-4 inputs are supported, in `NHWC` (default) or `NCHW`.
    """
    if data_format not in _DATA_FORMATS:
        raise ValueError(f"Invalid data_format: {data_format!r}")
    with v1.variable_scope(scope, "Conv", [inputs], reuse=reuse) as layer_scope:
        inputs = tf.convert_to_tensor(inputs)
        rank = inputs.get_shape().ndims
        if rank != 4:
            raise ValueError("Sparse Convolution not supported for input with rank", rank)
        if data_format not in (None, "NHWC", "NCHW"):
            raise ValueError("Unsupported data format", data_format)
        nchw = data_format == "NCHW"
        channels = tf.compat.dimension_value(inputs.get_shape()[1 if nchw else -1])
        if channels is None:
            raise ValueError("The channel dimension of the inputs should be defined. Found `None`.")
        kernel_shape = [*_pair(kernel_size, "kernel_size"), int(channels), num_outputs]
        masked_kernel = _masked_weights(
            layer_scope,
            kernel_shape,
            inputs.dtype.base_dtype,
            weights_initializer,
            weights_regularizer,
            trainable,
            variables_collections,
        )
        outputs = tf.nn.convolution(
            inputs,
            masked_kernel,
            strides=_pair(stride, "stride"),
            padding=padding.upper(),
            data_format="NCHW" if nchw else "NHWC",
            dilations=_pair(rate, "rate"),
        )
        return _finish(
            outputs,
            layer_scope,
            num_outputs,
            "NCHW" if nchw else "NHWC",
            (activation_fn, normalizer_fn, normalizer_params),
            (biases_initializer, biases_regularizer),
            trainable,
            variables_collections,
            outputs_collections,
        )


masked_conv2d = masked_convolution


def masked_fully_connected(
    inputs: Any,
    num_outputs: int,
    activation_fn: Callable[[Any], Any] | None = tf.nn.relu,
    normalizer_fn: Callable[..., Any] | None = None,
    normalizer_params: Mapping[str, Any] | None = None,
    weights_initializer: Any = _XAVIER,
    weights_regularizer: Callable[[Any], Any] | None = None,
    biases_initializer: Any = _ZEROS,
    biases_regularizer: Callable[[Any], Any] | None = None,
    reuse: bool | None = None,
    variables_collections: Collections = None,
    outputs_collections: Sequence[str] | str | None = None,
    trainable: bool = True,
    scope: Any = None,
) -> tf.Tensor:
    """A fully connected layer with a masked weight matrix (r1.15's arguments and defaults).

    Inputs of rank above 2 are contracted over their last axis, as r1.15's layer did.
    """
    if isinstance(num_outputs, bool) or not isinstance(num_outputs, int):
        raise ValueError(f"num_outputs should be int or long, got {num_outputs}.")
    with v1.variable_scope(scope, "fully_connected", [inputs], reuse=reuse) as layer_scope:
        inputs = tf.convert_to_tensor(inputs)
        shape = inputs.get_shape()
        if shape.ndims is None or shape.ndims < 2:
            raise ValueError(
                f"masked_fully_connected needs inputs of rank 2 or more, got shape {shape}"
            )
        depth = tf.compat.dimension_value(shape[-1])
        if depth is None:
            raise ValueError(
                "The last dimension of the inputs to `masked_fully_connected` should be "
                "defined. Found `None`."
            )
        masked_kernel = _masked_weights(
            layer_scope,
            [int(depth), num_outputs],
            inputs.dtype.base_dtype,
            weights_initializer,
            weights_regularizer,
            trainable,
            variables_collections,
        )
        if shape.ndims == 2:
            outputs = tf.matmul(inputs, masked_kernel)
        else:
            outputs = tf.tensordot(inputs, masked_kernel, [[shape.ndims - 1], [0]])
            outputs.set_shape(shape[:-1].concatenate([num_outputs]))
        return _finish(
            outputs,
            layer_scope,
            num_outputs,
            "NHWC",
            (activation_fn, normalizer_fn, normalizer_params),
            (biases_initializer, biases_regularizer),
            trainable,
            variables_collections,
            outputs_collections,
        )


def _pair(value: int | Sequence[int], name: str) -> list[int]:
    values = [value, value] if isinstance(value, int) else list(value)
    if len(values) != 2 or not all(isinstance(v, int) and v > 0 for v in values):
        raise ValueError(f"{name} must be a positive integer or a pair of them, got {value!r}")
    return values


def _masked_weights(
    layer_scope: Any,
    shape: list[int],
    dtype: tf.DType,
    initializer: Any,
    regularizer: Callable[[Any], Any] | None,
    trainable: bool,
    collections: Collections,
) -> tf.Tensor:
    """Creates `weights` (a model variable) and its mask and threshold; returns mask * weights."""
    weights = _model_variable(
        "weights",
        shape,
        dtype,
        initializer,
        regularizer,
        trainable,
    )
    masked = apply_mask(weights, layer_scope)
    with v1.variable_scope(layer_scope, reuse=True):
        for name in ("mask", "threshold"):
            _add_to_collections(v1.get_variable(name), [v1.GraphKeys.MODEL_VARIABLES])
    _add_to_collections(weights, _collections_for(collections, "weights"))
    return masked


def _finish(
    outputs: tf.Tensor,
    layer_scope: Any,
    num_outputs: int,
    data_format: str,
    post: tuple[Callable[[Any], Any] | None, Callable[..., Any] | None, Mapping[str, Any] | None],
    bias: tuple[Any, Callable[[Any], Any] | None],
    trainable: bool,
    variables_collections: Collections,
    outputs_collections: Sequence[str] | str | None,
) -> tf.Tensor:
    """Biases (unless a normalizer replaces them), normalizer, activation, output collections."""
    activation_fn, normalizer_fn, normalizer_params = post
    biases_initializer, biases_regularizer = bias
    if normalizer_fn is None and biases_initializer is not None:
        biases = _model_variable(
            "biases",
            [num_outputs],
            outputs.dtype.base_dtype,
            biases_initializer,
            biases_regularizer,
            trainable,
        )
        _add_to_collections(biases, _collections_for(variables_collections, "biases"))
        outputs = tf.nn.bias_add(outputs, biases, data_format=data_format)
    if normalizer_fn is not None:
        outputs = normalizer_fn(outputs, **(normalizer_params or {}))
    if activation_fn is not None:
        outputs = activation_fn(outputs)
    if outputs_collections:
        # slim's convention: the output carries the layer's name as an alias.
        alias = layer_scope.original_name_scope.rstrip("/")
        outputs.aliases = [*getattr(outputs, "aliases", []), alias]
        names = (
            [outputs_collections] if isinstance(outputs_collections, str) else outputs_collections
        )
        v1.add_to_collections(list(names), outputs)
    return outputs


def _model_variable(
    name: str,
    shape: list[int],
    dtype: tf.DType,
    initializer: Any,
    regularizer: Callable[[Any], Any] | None,
    trainable: bool,
) -> Any:
    """A variable in the global and model-variable collections, as slim's `model_variable`."""
    return v1.get_variable(
        name,
        shape,
        dtype=dtype,
        initializer=initializer,
        regularizer=regularizer,
        trainable=trainable,
        collections=[v1.GraphKeys.GLOBAL_VARIABLES, v1.GraphKeys.MODEL_VARIABLES],
    )


def _collections_for(collections: Collections, name: str) -> list[str]:
    """slim's rule: a mapping gives each variable its own collections, a list gives all the same."""
    if collections is None:
        return []
    if isinstance(collections, Mapping):
        chosen = collections.get(name) or []
        return [chosen] if isinstance(chosen, str) else list(chosen)
    return [collections] if isinstance(collections, str) else list(collections)


def _add_to_collections(variable: Any, collections: Sequence[str]) -> None:
    """Adds the variable, or each part of a partitioned one, once to each collection."""
    parts = list(variable) if isinstance(variable, variables.PartitionedVariable) else [variable]
    for collection in collections:
        present = v1.get_collection_ref(collection)
        for part in parts:
            if not any(part is member for member in present):
                present.append(part)
