"""masked_conv2d / masked_fully_connected: r1.15's slim-style layers, without tf-keras."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from pruning_spec.backends import tensorflow as pruning

v1 = tf.compat.v1
HEIGHT, WIDTH = 7, 9


def names(variables: list[Any]) -> list[str]:
    return [v.op.name for v in variables]


def test_one_conv_layer_adds_one_mask_of_the_kernels_shape(graph: tf.Graph) -> None:
    pruning.masked_conv2d(tf.ones((8, HEIGHT, WIDTH, 8)), 32, 3)
    (mask,) = pruning.get_masks()
    (masked,) = pruning.get_masked_weights()
    assert mask.get_shape().as_list() == [3, 3, 8, 32]
    assert masked.get_shape().as_list() == [3, 3, 8, 32]
    assert names(v1.global_variables()) == [
        "Conv/weights",
        "Conv/mask",
        "Conv/threshold",
        "Conv/biases",
    ]
    assert masked.op.name == "Conv/weights/masked_weight"
    assert names(pruning.get_thresholds()) == ["Conv/threshold"]
    assert names(pruning.get_weights()) == ["Conv/weights"]
    assert names(v1.get_collection(v1.GraphKeys.MODEL_VARIABLES)) == names(v1.global_variables())
    assert names(v1.trainable_variables()) == ["Conv/weights", "Conv/biases"]


def test_stacked_conv_layers_each_get_their_mask(graph: tf.Graph) -> None:
    top = tf.ones((8, HEIGHT, WIDTH, 4))
    for index in range(5):
        top = pruning.masked_conv2d(top, 4 + (index + 1) * 7, 3)
    shapes = [m.get_shape().as_list() for m in pruning.get_masks()]
    assert shapes == [[3, 3, 4 + i * 7, 4 + (i + 1) * 7] for i in range(5)]
    assert len(pruning.get_masked_weights()) == 5
    assert names(pruning.get_masks())[:2] == ["Conv/mask", "Conv_1/mask"]


def test_stacked_fully_connected_layers_each_get_their_mask(graph: tf.Graph) -> None:
    top = tf.ones((8, 4))
    for index in range(5):
        top = pruning.masked_fully_connected(top, 4 + (index + 1) * 7)
    shapes = [m.get_shape().as_list() for m in pruning.get_masks()]
    assert shapes == [[4 + i * 7, 4 + (i + 1) * 7] for i in range(5)]
    assert names(pruning.get_masks())[0] == "fully_connected/mask"
    assert pruning.get_masked_weights()[0].op.name == "fully_connected/weights/masked_weight"


@pytest.mark.parametrize("rank", [3, 5])
def test_conv_inputs_must_be_rank_4(graph: tf.Graph, rank: int) -> None:
    with pytest.raises(ValueError, match="rank"):
        pruning.masked_conv2d(tf.ones((8,) * (rank - 1) + (3,)), 32, 3)


@pytest.mark.parametrize(
    ("data_format", "message"),
    [("NWC", "Unsupported data format"), ("NCDHW", "Unsupported data format"), ("HW", "Invalid")],
)
def test_data_formats_r115_refused(graph: tf.Graph, data_format: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pruning.masked_conv2d(tf.ones((2, 5, 5, 3)), 4, 3, data_format=data_format)


def test_unknown_channels_and_bad_output_counts_are_refused(graph: tf.Graph) -> None:
    with pytest.raises(ValueError, match="channel dimension"):
        pruning.masked_conv2d(v1.placeholder(tf.float32, [None, 5, 5, None]), 4, 3)
    with pytest.raises(ValueError, match=r"num_outputs should be int or long, got 4\.0\."):
        pruning.masked_fully_connected(tf.ones((2, 3)), 4.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="last dimension"):
        pruning.masked_fully_connected(v1.placeholder(tf.float32, [None, None]), 4)


def test_conv_computes_a_masked_convolution_in_both_layouts(graph: tf.Graph) -> None:
    images = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype(np.float32)
    nhwc = pruning.masked_conv2d(images, 4, 3, stride=2, activation_fn=None, scope="a")
    nchw = pruning.masked_conv2d(
        images.transpose(0, 3, 1, 2), 4, 3, stride=2, data_format="NCHW",
        activation_fn=None, scope="a", reuse=True,
    )  # fmt: skip
    kernel, mask = v1.get_variable_scope().global_variables()[:2]
    with v1.Session(graph=graph) as session:
        session.run(v1.global_variables_initializer())
        half = (np.arange(3 * 3 * 3 * 4).reshape(3, 3, 3, 4) % 2).astype(np.float32)
        session.run(mask.assign(half))
        got, got_nchw, weights = session.run([nhwc, nchw, kernel])
        reference = session.run(tf.nn.conv2d(images, weights * half, strides=2, padding="SAME"))
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_nchw.transpose(0, 2, 3, 1), reference, rtol=1e-5, atol=1e-5)
    assert len(pruning.get_masks()) == 1  # reuse shares the mask


def test_fully_connected_contracts_the_last_axis_of_higher_rank_inputs(graph: tf.Graph) -> None:
    inputs = np.ones((2, 3, 5), np.float32)
    outputs = pruning.masked_fully_connected(inputs, 4, activation_fn=None)
    assert outputs.get_shape().as_list() == [2, 3, 4]
    (kernel,) = pruning.get_weights()
    with v1.Session(graph=graph) as session:
        session.run(v1.global_variables_initializer())
        got, weights = session.run([outputs, kernel])
    np.testing.assert_allclose(got, inputs @ weights, rtol=1e-5)


def test_normalizer_replaces_biases_and_collections_are_filled(graph: tf.Graph) -> None:
    seen: list[Any] = []

    def normalizer(tensor: Any, scale: float) -> Any:
        seen.append(scale)
        return tensor * scale

    outputs = pruning.masked_fully_connected(
        tf.ones((2, 3)),
        4,
        normalizer_fn=normalizer,
        normalizer_params={"scale": 2.0},
        weights_regularizer=tf.nn.l2_loss,
        variables_collections={"weights": ["my_weights"]},
        outputs_collections="my_outputs",
        scope="fc",
    )
    assert seen == [2.0]
    assert "fc/biases" not in names(v1.global_variables())
    assert names(v1.get_collection("my_weights")) == ["fc/weights"]
    assert v1.get_collection("my_outputs") == [outputs]
    assert outputs.aliases == ["fc"]
    assert len(v1.get_collection(v1.GraphKeys.REGULARIZATION_LOSSES)) == 1
    none = pruning.masked_fully_connected(tf.ones((2, 3)), 4, biases_initializer=None, scope="nb")
    assert "nb/biases" not in names(v1.global_variables())
    assert none.op.type == "Relu"


def test_not_trainable_layers_keep_their_weights_out_of_training(graph: tf.Graph) -> None:
    pruning.masked_conv2d(tf.ones((1, 5, 5, 2)), 3, 3, trainable=False)
    assert v1.trainable_variables() == []


def test_pruning_prunes_every_masked_layer(graph: tf.Graph) -> None:
    images = tf.ones((4, 8, 8, 3))
    features = pruning.masked_conv2d(images, 16, 3, scope="conv1")
    flat = tf.reshape(features, [4, -1])
    logits = pruning.masked_fully_connected(flat, 10, activation_fn=None, scope="logits")
    step = v1.train.get_or_create_global_step()
    spec = "target_sparsity=0.75,sparsity_function_end_step=1,weight_sparsity_map=[logits:0.5]"
    update = pruning.Pruning(spec, global_step=step).mask_update_op()
    with v1.Session(graph=graph) as session:
        session.run(v1.global_variables_initializer())
        session.run(v1.assign(step, 1))
        session.run(update)
        sparsities = session.run(pruning.get_weight_sparsity())
        session.run(logits)
    assert names(pruning.get_masks()) == ["conv1/mask", "logits/mask"]
    np.testing.assert_allclose(sparsities, [0.75, 0.5])
