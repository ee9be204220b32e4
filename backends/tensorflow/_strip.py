"""Folding masks into the weights of an exported graph (r1.15's strip_pruning_vars)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.python.platform import tf_logging
from tensorflow.python.util import deprecation

v1 = tf.compat.v1
_MASKED_WEIGHT_MARKER = "masked_weight"


def graph_def_from_checkpoint(checkpoint_dir: str, output_node_names: Sequence[str]) -> Any:
    """The latest checkpoint's graph with variables turned into constants."""
    checkpoint = v1.train.latest_checkpoint(checkpoint_dir)
    if checkpoint is None:
        raise ValueError(f"Could not find a checkpoint at: {checkpoint_dir}.")
    with tf.Graph().as_default():
        saver = v1.train.import_meta_graph(checkpoint + ".meta", clear_devices=True)
        with v1.Session() as session:
            saver.restore(session, checkpoint)
            graph_def = session.graph.as_graph_def()
            # These are r1.15's functions, deprecated since; their warning is noise here.
            with deprecation.silence():
                return v1.graph_util.convert_variables_to_constants(
                    session, graph_def, list(output_node_names)
                )


def strip_pruning_vars_fn(input_graph_def: Any, output_node_names: Sequence[str]) -> Any:
    """Replaces every `*masked_weight*` node by its value and drops what is no longer used.

    The result holds the pruned weights as constants (zeros baked in) and no mask,
    threshold or unmasked weight.
    """
    names = [node.name for node in input_graph_def.node if _MASKED_WEIGHT_MARKER in node.name]
    values = _evaluate(input_graph_def, names)
    stripped = v1.GraphDef()
    stripped.versions.CopyFrom(input_graph_def.versions)
    for node in input_graph_def.node:
        if node.name in values:
            value = values[node.name]
            tf_logging.info(
                "Stripping %s: %d weights, %.1f%% zeros",
                node.name,
                value.size,
                100.0 * float(np.mean(value == 0)) if value.size else 0.0,
            )
            stripped.node.append(_constant_node(node, value))
        else:
            stripped.node.append(node)
    with deprecation.silence():
        return v1.graph_util.extract_sub_graph(stripped, list(output_node_names))


strip_pruning_vars = strip_pruning_vars_fn


def _evaluate(graph_def: Any, names: list[str]) -> dict[str, np.ndarray]:
    if not names:
        return {}
    with tf.Graph().as_default() as graph:
        v1.import_graph_def(graph_def, name="")
        with v1.Session(graph=graph) as session:
            results = session.run([f"{name}:0" for name in names])
    return dict(zip(names, results, strict=True))


def _constant_node(node: Any, value: np.ndarray) -> Any:
    constant = v1.NodeDef(name=node.name, op="Const")
    dtype = node.attr["T"].type
    constant.attr["dtype"].type = dtype
    constant.attr["value"].tensor.CopyFrom(
        tf.make_tensor_proto(value, dtype=tf.dtypes.as_dtype(dtype))
    )
    return constant
