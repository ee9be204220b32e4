"""MaskedBasicLSTMCell / MaskedLSTMCell: r1.15's cells on TF 2.21's v1 RNN functions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from pruning_spec.backends import tensorflow as pruning

v1 = tf.compat.v1
BATCH, DIM, TIME = 8, 10, 5


def random(*shape: int) -> tf.Tensor:
    return tf.constant(np.random.default_rng(sum(shape)).normal(size=shape), tf.float32)


@pytest.mark.parametrize("cell_type", [pruning.MaskedBasicLSTMCell, pruning.MaskedLSTMCell])
def test_one_call_adds_one_mask_of_the_kernels_shape(graph: tf.Graph, cell_type: Any) -> None:
    state = pruning.LSTMStateTuple(random(BATCH, DIM), random(BATCH, DIM))
    cell_type(DIM)(random(BATCH, DIM), state)
    for getter in (pruning.get_masks, pruning.get_weights):
        (variable,) = getter()
        assert variable.get_shape().as_list() == [2 * DIM, 4 * DIM]
    assert len(pruning.get_masked_weights()) == len(pruning.get_thresholds()) == 1


def _numpy_lstm_step(
    x: np.ndarray, c: np.ndarray, h: np.ndarray, kernel: np.ndarray, bias: np.ndarray, mask: Any
) -> tuple[np.ndarray, np.ndarray]:
    def sigmoid(v: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-v))

    gates = np.concatenate([x, h], 1) @ (kernel * mask) + bias
    i, j, f, o = np.split(gates, 4, axis=1)
    new_c = c * sigmoid(f + 1.0) + sigmoid(i) * np.tanh(j)
    return new_c, np.tanh(new_c) * sigmoid(o)


@pytest.mark.parametrize("cell_type", [pruning.MaskedBasicLSTMCell, pruning.MaskedLSTMCell])
def test_the_step_is_the_lstm_on_the_masked_kernel(graph: tf.Graph, cell_type: Any) -> None:
    x, c, h = random(BATCH, 3), random(BATCH, DIM), random(BATCH, DIM)
    cell = cell_type(DIM)
    output, state = cell(x, pruning.LSTMStateTuple(c, h))
    (mask,) = pruning.get_masks()
    kernel, bias = cell.variables[:2]
    half = (np.arange((3 + DIM) * 4 * DIM).reshape(3 + DIM, 4 * DIM) % 3 != 0).astype(np.float32)
    with v1.Session(graph=graph) as session:
        session.run(v1.global_variables_initializer())
        session.run(bias.assign(random(4 * DIM)))
        session.run(mask.assign(half))
        got_h, got_state, values = session.run([output, state, [x, c, h, kernel, bias]])
    want_c, want_h = _numpy_lstm_step(*values, mask=half)
    np.testing.assert_allclose(got_h, want_h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_state.c, want_c, rtol=1e-5, atol=1e-6)
    assert isinstance(got_state, pruning.LSTMStateTuple)


@pytest.mark.parametrize("runner", ["dynamic_rnn", "static_rnn"])
@pytest.mark.parametrize(
    ("cell_type", "options", "output_depth"),
    [
        (pruning.MaskedBasicLSTMCell, {}, DIM),
        (pruning.MaskedBasicLSTMCell, {"state_is_tuple": False}, DIM),
        (pruning.MaskedLSTMCell, {"use_peepholes": True, "cell_clip": 2.0}, DIM),
        # r1.15 failed to build with num_proj (its mask had num_units rows for the projection).
        (pruning.MaskedLSTMCell, {"num_proj": 6, "proj_clip": 1.0}, 6),
        (pruning.MaskedLSTMCell, {"num_unit_shards": 2}, DIM),
    ],
)
def test_cells_run_in_v1_rnns_and_pruning_prunes_them(
    graph: tf.Graph, runner: str, cell_type: Any, options: dict[str, Any], output_depth: int
) -> None:
    inputs = random(BATCH, TIME, 3)
    cell = cell_type(DIM, **options)
    if runner == "dynamic_rnn":
        outputs, _ = v1.nn.dynamic_rnn(cell, inputs, dtype=tf.float32)
    else:
        steps, _ = v1.nn.static_rnn(cell, tf.unstack(inputs, axis=1), dtype=tf.float32)
        outputs = tf.stack(steps, axis=1)
    step = v1.train.get_or_create_global_step()
    update = pruning.Pruning(
        "initial_sparsity=0.6,target_sparsity=0.6", global_step=step
    ).mask_update_op()
    (mask,) = pruning.get_masks()
    rows = 3 + output_depth
    assert mask.get_shape().as_list() == [rows, 4 * DIM]
    assert mask.op.name.endswith("lstm_cell/mask")
    with v1.Session(graph=graph) as session:
        session.run(v1.global_variables_initializer())
        session.run(update)
        (sparsity,) = session.run(pruning.get_weight_sparsity())
        result = session.run(outputs)
    assert result.shape == (BATCH, TIME, output_depth)
    assert sparsity == pytest.approx(round(rows * 4 * DIM * 0.6) / (rows * 4 * DIM))
    assert len(pruning.get_masks()) == 1


def test_a_cell_reused_by_two_rnns_shares_its_variables(graph: tf.Graph) -> None:
    cell = pruning.MaskedBasicLSTMCell(DIM)
    v1.nn.dynamic_rnn(cell, random(BATCH, TIME, 3), dtype=tf.float32)
    before = list(v1.global_variables())
    v1.nn.dynamic_rnn(cell, random(BATCH, TIME, 3), dtype=tf.float32, scope="rnn_2")
    assert list(v1.global_variables()) == before
    assert len(pruning.get_masks()) == 1


def test_state_and_output_sizes(graph: tf.Graph) -> None:
    basic = pruning.MaskedBasicLSTMCell(DIM)
    assert basic.state_size == (DIM, DIM) and basic.output_size == DIM
    projected = pruning.MaskedLSTMCell(DIM, num_proj=4, state_is_tuple=False)
    assert projected.state_size == DIM + 4 and projected.output_size == 4
    zero = projected.zero_state(3, tf.float32)
    assert zero.get_shape().as_list() == [3, DIM + 4]
    with pytest.raises(ValueError, match="positive integer"):
        pruning.MaskedLSTMCell(0)
    with pytest.raises(ValueError, match="Could not infer input size"):
        basic(v1.placeholder(tf.float32, [2, None]), basic.zero_state(2, tf.float32))


@pytest.mark.parametrize("runner", ["dynamic_rnn", "static_rnn"])
def test_stacked_cells_keep_r115s_names(graph: tf.Graph, runner: str) -> None:
    cell = pruning.MultiRNNCell([pruning.MaskedBasicLSTMCell(DIM) for _ in range(2)])
    inputs = random(BATCH, TIME, 3)
    if runner == "dynamic_rnn":
        v1.nn.dynamic_rnn(cell, inputs, dtype=tf.float32)
    else:
        v1.nn.static_rnn(cell, tf.unstack(inputs, axis=1), dtype=tf.float32)
    assert [m.op.name for m in pruning.get_masks()] == [
        f"rnn/multi_rnn_cell/cell_{i}/masked_basic_lstm_cell/mask" for i in range(2)
    ]
    assert [m.get_shape().as_list() for m in pruning.get_masks()] == [
        [3 + DIM, 4 * DIM],
        [2 * DIM, 4 * DIM],
    ]
    assert cell.state_size == ((DIM, DIM), (DIM, DIM)) and cell.output_size == DIM
    assert len(cell.variables) == 8
