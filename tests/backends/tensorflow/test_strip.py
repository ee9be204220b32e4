"""Folding masks into constants: graph_def_from_checkpoint + strip_pruning_vars_fn.

Reference: docs/semantics.md §f.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from pruning_spec.backends import tensorflow as pruning

v1 = tf.compat.v1
WEIGHTS = np.array(
    [[0.5, -2.0, 1.5], [-0.25, 3.0, -1.0], [0.75, -0.1, 2.5], [1.25, -3.5, 0.2]], np.float32
)
INPUTS = np.array([[1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, 0.0, 2.0]], np.float32)
VARIABLE_OPS = {"VariableV2", "VarHandleOp", "ReadVariableOp", "Assign", "AssignVariableOp"}


def _train_and_save(checkpoint_dir):
    """A pruned one-layer model saved with a v1 Saver; returns (masked weights, output)."""
    global_step = v1.train.get_or_create_global_step()
    inputs = v1.placeholder(tf.float32, [None, 4], name="input")
    with v1.variable_scope("layer1"):
        weights = v1.get_variable("weights", initializer=tf.constant(WEIGHTS))
        masked = pruning.apply_mask(weights)
    tf.matmul(inputs, masked, name="output")
    p = pruning.Pruning("target_sparsity=0.5,sparsity_function_end_step=1", global_step=global_step)
    update = p.mask_update_op()
    saver = v1.train.Saver()
    with v1.Session() as session:
        session.run(v1.global_variables_initializer())
        session.run(v1.assign(global_step, 1))
        session.run(update)
        masked_value, output = session.run([masked, "output:0"], {inputs: INPUTS})
        saver.save(session, str(checkpoint_dir / "model.ckpt"), global_step=1)
    return masked_value, output


def test_strip_folds_the_masks_into_constants(graph, tmp_path) -> None:
    masked_value, output = _train_and_save(tmp_path)
    assert (masked_value == 0).sum() == 6  # |w| >= 1.25 kept: 6 of 12

    frozen = pruning.graph_def_from_checkpoint(str(tmp_path), ["output"])
    stripped = pruning.strip_pruning_vars_fn(frozen, ["output"])

    nodes = {node.name: node for node in stripped.node}
    assert "output" in nodes and "input" in nodes
    leaves = {name.rsplit("/", 1)[-1] for name in nodes}
    assert not leaves & {"mask", "threshold"}, sorted(nodes)
    assert "layer1/weights" not in nodes  # the unmasked weight is gone too
    assert not any(node.op in VARIABLE_OPS for node in stripped.node)
    assert not any("last_mask_update_step" in name for name in nodes)

    folded = nodes["layer1/weights/masked_weight"]
    assert folded.op == "Const"
    assert folded.attr["dtype"].type == tf.float32.as_datatype_enum
    constant = tf.make_ndarray(folded.attr["value"].tensor)
    np.testing.assert_array_equal(constant, masked_value)
    np.testing.assert_array_equal(constant, np.where(np.abs(WEIGHTS) >= 1.25, WEIGHTS, 0))

    with tf.Graph().as_default() as imported:
        v1.import_graph_def(stripped, name="")
        with v1.Session(graph=imported) as session:
            stripped_output = session.run("output:0", {"input:0": INPUTS})
    np.testing.assert_array_equal(stripped_output, output)
    np.testing.assert_allclose(stripped_output, INPUTS @ masked_value, rtol=1e-6)


def test_the_frozen_graph_still_holds_the_masks_before_stripping(graph, tmp_path) -> None:
    masked_value, output = _train_and_save(tmp_path)
    frozen = pruning.graph_def_from_checkpoint(str(tmp_path), ["output"])
    nodes = {node.name: node for node in frozen.node}
    assert nodes["layer1//mask"].op == "Const"
    mask = tf.make_ndarray(nodes["layer1//mask"].attr["value"].tensor)
    np.testing.assert_array_equal(mask, (masked_value != 0).astype(np.float32))
    with tf.Graph().as_default() as imported:
        v1.import_graph_def(frozen, name="")
        with v1.Session(graph=imported) as session:
            np.testing.assert_array_equal(session.run("output:0", {"input:0": INPUTS}), output)


def test_strip_pruning_vars_is_the_same_function() -> None:
    assert pruning.strip_pruning_vars is pruning.strip_pruning_vars_fn


def test_missing_checkpoint(tmp_path) -> None:
    with pytest.raises(ValueError, match="Could not find a checkpoint at"):
        pruning.graph_def_from_checkpoint(str(tmp_path), ["output"])


# r1.15's strip tests: masked conv, fully connected and stacked LSTM models, pruned with an
# external sparsity over 20 updates, frozen, stripped: no mask or threshold left, same outputs.


def _conv_model() -> tf.Tensor:
    top = tf.ones((8, 7, 9, 4))
    with v1.variable_scope("conv_model"):
        for index in range(5):
            top = pruning.masked_conv2d(top, 4 + (index + 1) * 7, 3, scope=f"Conv_{index}")
    return top


def _fully_connected_model() -> tf.Tensor:
    top = tf.ones((8, 4))
    with v1.variable_scope("fc_model"):
        for index in range(3):
            top = pruning.masked_fully_connected(top, 4 + (index + 1) * 7)
    return top


def _lstm_model() -> tf.Tensor:
    inputs = tf.Variable(tf.random.normal([8, 10], seed=7))
    cell = pruning.MultiRNNCell(
        [pruning.MaskedBasicLSTMCell(10, forget_bias=0.0, reuse=False) for _ in range(2)]
    )
    outputs, _ = v1.nn.static_rnn(cell, [inputs], initial_state=cell.zero_state(8, tf.float32))
    return outputs[0]


@pytest.mark.parametrize(
    ("build", "layers"), [(_conv_model, 5), (_fully_connected_model, 3), (_lstm_model, 2)]
)
def test_stripping_masked_layer_models_keeps_their_outputs(graph, build, layers) -> None:
    sparsity = tf.Variable(0.5, name="sparsity")
    step = v1.train.get_or_create_global_step()
    output = build()
    hparams = pruning.get_pruning_hparams().parse(
        "pruning_frequency=1,begin_pruning_step=1,end_pruning_step=10,nbins=2048,"
        "threshold_decay=0.0"
    )
    update = pruning.Pruning(hparams, sparsity=sparsity).conditional_mask_update_op()
    increment = v1.assign_add(step, 1)
    node = output.op.name
    with v1.Session() as session:
        session.run(v1.global_variables_initializer())
        for _ in range(20):
            session.run(update)
            session.run(increment)
        reference = session.run(output)
        assert [round(float(s), 6) for s in session.run(pruning.get_weight_sparsity())] == [
            pytest.approx(0.5, abs=0.01)
        ] * layers
        frozen = v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), [node])
    masks = [n.name for n in frozen.node if n.name.endswith("mask")]
    assert len(masks) == layers
    stripped = pruning.strip_pruning_vars_fn(frozen, [node])
    assert [n.name for n in stripped.node if n.name.endswith(("mask", "threshold"))] == []
    with tf.Graph().as_default() as final:
        tf.graph_util.import_graph_def(stripped, name="final")
        with v1.Session(graph=final) as session:
            np.testing.assert_array_equal(session.run(f"final/{node}:0"), reference)
