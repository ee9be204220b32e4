"""pruning_utils: r1.15's helpers, with the numbers its tests checked (docs/semantics.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from pruning_spec.backends.tensorflow import Pruning, apply_mask, pruning_utils

v1 = tf.compat.v1

BLOCK_CASES = [
    (shape, block)
    for block in ([1, 1], [6, 6], [4, 4], [1, 4], [4, 1])
    for shape in ([32, 32], [3, 3], [2, 32], [32, 2], [30, 30])
]


def run(graph: tf.Graph, *fetches: Any) -> Any:
    with v1.Session(graph=graph) as session:
        session.run(v1.global_variables_initializer())
        return session.run(list(fetches))


def test_mask_and_threshold_variables(graph: tf.Graph) -> None:
    weights = v1.get_variable("layer/weights", [3, 4], dtype=tf.float64)
    mask = pruning_utils.weight_mask_variable(weights, "layer")
    threshold = pruning_utils.weight_threshold_variable(weights, "layer")
    assert (mask.op.name, threshold.op.name) == ("layer/mask", "layer/threshold")
    assert mask.dtype.base_dtype == threshold.dtype.base_dtype == tf.float64
    assert mask.get_shape().as_list() == [3, 4] and threshold.get_shape().as_list() == []
    assert mask not in v1.trainable_variables() and threshold not in v1.trainable_variables()
    mask_value, threshold_value = run(graph, mask, threshold)
    assert np.all(mask_value == 1) and threshold_value == 0


def test_kronecker_product_matches_numpy(graph: tf.Graph) -> None:
    left = np.arange(6, dtype=np.float32).reshape(2, 3)
    right = np.array([[1, -1], [2, 0.5]], dtype=np.float32)
    (product,) = run(graph, pruning_utils.kronecker_product(tf.constant(left), tf.constant(right)))
    np.testing.assert_array_equal(product, np.kron(left, right))


@pytest.mark.parametrize(("shape", "block"), BLOCK_CASES)
def test_expand_tensor_is_the_kronecker_product_with_ones(
    tf2_graph: tf.Graph, shape: list[int], block: list[int]
) -> None:
    values = tf.random.normal(shape, seed=1)
    expanded, product = run(
        tf2_graph,
        pruning_utils.expand_tensor(values, block),
        pruning_utils.kronecker_product(values, tf.ones(block)),
    )
    np.testing.assert_array_equal(expanded, product)


@pytest.mark.parametrize("pooling", ["AVG", "MAX"])
@pytest.mark.parametrize(("shape", "window"), BLOCK_CASES)
def test_factorized_pool_equals_two_dimensional_pooling(
    tf2_graph: tf.Graph, shape: list[int], window: list[int], pooling: str
) -> None:
    weights = v1.get_variable("weights", shape)
    arguments = {
        "window_shape": window,
        "pooling_type": pooling,
        "strides": window,
        "padding": "SAME",
    }
    direct = tf.squeeze(tf.nn.pool(tf.reshape(weights, [1, *shape, 1]), **arguments), [0, 3])
    factorized, reference = run(
        tf2_graph, pruning_utils.factorized_pool(weights, **arguments), direct
    )
    np.testing.assert_allclose(factorized, reference, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: pruning_utils.expand_tensor(tf.ones([2, 2, 2]), [2, 2]), "must be rank 2"),
        (lambda: pruning_utils.expand_tensor(tf.ones([2, 2]), [2]), "must have 2 elements"),
        (
            lambda: pruning_utils.factorized_pool(tf.ones([4]), [2, 2], "MAX", [2, 2], "SAME"),
            "rank 2 only",
        ),
        (lambda: pruning_utils.kronecker_product(tf.ones([2]), tf.ones([2, 2])), "rank-2"),
    ],
)
def test_rank_errors(tf2_graph: tf.Graph, call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_cdf_numbers_of_the_old_tests(tf2_graph: tf.Graph) -> None:
    magnitudes = tf.abs(tf.constant([-1, 0, 1, 1.5, 2, 3, 4, 5, 10, 100]))
    cdf, same = run(
        tf2_graph,
        pruning_utils.compute_cdf_from_histogram(magnitudes, [0.0, 5.0], nbins=5),
        pruning_utils.compute_cdf(magnitudes, [0.0, 5.0], nbins=5),
    )
    np.testing.assert_array_equal(cdf, np.array([0.1, 0.4, 0.5, 0.6, 1.0], np.float32))
    np.testing.assert_array_equal(same, cdf)
    # An evenly spread variable fills every bin once: the CDF climbs by 1/n.
    spread = tf.constant(np.linspace(0.0, 1.0, 100), tf.float32)
    (even,) = run(tf2_graph, pruning_utils.compute_cdf(spread, [0.0, 1.0], nbins=100))
    np.testing.assert_allclose(even, np.arange(1, 101) / 100, rtol=1e-6)
    assert pruning_utils.NBINS == 256


def test_assigns_are_named_as_r115(graph: tf.Graph) -> None:
    plain = v1.get_variable("plain", [4, 3])
    assign = pruning_utils.variable_assign(plain, tf.zeros([4, 3]))
    assert assign.op.name == "plain_assign"
    with v1.variable_scope("layer", partitioner=v1.fixed_size_partitioner(3, axis=1)):
        split = v1.get_variable("kernel", [4, 6])
    assert pruning_utils.determine_partitioned_axis(split) == 1
    group = pruning_utils.partitioned_variable_assign(split, tf.reshape(tf.range(24.0), [4, 6]))
    assert group.name == "layer/kernel_group_assign"
    with v1.Session(graph=graph) as session:
        session.run(v1.global_variables_initializer())
        session.run(group)
        np.testing.assert_array_equal(
            session.run(split.as_tensor()), np.arange(24, dtype=np.float32).reshape(4, 6)
        )


def test_partitioned_axis_must_be_one(graph: tf.Graph) -> None:
    with v1.variable_scope("x", partitioner=v1.fixed_size_partitioner(2)):
        split = v1.get_variable("w", [4, 4])

    class TwoAxes:
        def get_shape(self) -> tf.TensorShape:
            return tf.TensorShape([4, 4])

        def __iter__(self) -> Any:
            return iter([v1.get_variable("part", [2, 2])])

    assert pruning_utils.determine_partitioned_axis(split) == 0
    with pytest.raises(ValueError, match="Number of partitioned axes 2 not equal to 1"):
        pruning_utils.determine_partitioned_axis(TwoAxes())


def test_pruning_prunes_a_partitioned_weight_through_these_helpers(graph: tf.Graph) -> None:
    with v1.variable_scope("layer", partitioner=v1.fixed_size_partitioner(2)):
        weights = v1.get_variable(
            "weights", [8, 4], initializer=v1.random_normal_initializer(seed=3)
        )
        apply_mask(weights, v1.get_variable_scope())
    step = v1.train.get_or_create_global_step()
    update = Pruning("initial_sparsity=0.5,target_sparsity=0.5", global_step=step).mask_update_op()
    with v1.Session(graph=graph) as session:
        session.run(v1.global_variables_initializer())
        session.run(update)
        mask, values = session.run([v1.get_collection("masks")[0].as_tensor(), weights.as_tensor()])
    magnitudes = np.abs(values)
    kept = magnitudes >= np.sort(magnitudes.ravel())[16]
    np.testing.assert_array_equal(mask, kept.astype(np.float32))
    assert mask.sum() == 16
