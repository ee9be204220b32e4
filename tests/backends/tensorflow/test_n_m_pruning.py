"""N:M weights in graph mode, `Pruner` and Keras: the reference top-N masks, the same in all three.

The kernel's own cases (ties, NaN, dtypes, remainders) are in `test_n_m_masks.py`; here
the APIs are checked to choose the N:M kernel for the weights a rule names, from the
first update in the pruning window on, with the schedule left to the other weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from summaries import read_scalars

from pruning_spec import SpecError, parse_hparams
from pruning_spec._n_m import broken_groups, keep_mask
from pruning_spec.backends import tensorflow as pruning
from pruning_spec.backends.tensorflow import Pruner
from pruning_spec.backends.tensorflow import keras as pks

# first: 2:4 down its 12 rows; conv: 1:4 down its 6 input channels, the last 2 keeping 1;
# third: 3:8 along its columns, the last 2 dense; second follows the schedule.
SPEC = (
    "begin_pruning_step=2,pruning_frequency=3,target_sparsity=0.8,sparsity_function_end_step=20,"
    "n_m_map=[first:2/4,conv:1/4/KEEP_N,third:3/8/DENSE/1]"
)
PATTERNS = {"first": (2, 4, 0, "REJECT"), "conv": (1, 4, 2, "KEEP_N"), "third": (3, 8, 1, "DENSE")}
STEPS = 12
UPDATES = {3, 6, 9, 12}  # r1.15: frequency steps after the last (0), inside [2, end]


# Per step: each weight's (mask, threshold, weight) after that step's update.
State = dict[str, tuple[Any, Any, Any]]


def weight_values(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(seed)
    values = {
        "first": rng.randn(12, 10).astype(np.float32),
        "second": rng.randn(7, 9).astype(np.float32),
        "conv": rng.randn(3, 3, 6, 5).astype(np.float32),
        "third": rng.randn(4, 10).astype(np.float32),
    }
    values["first"][4:8, 3] = 0.5  # an all-equal group: the first two are kept
    values["first"][0:4, 0] = [-1.0, 1.0, 0.25, 1.0]  # ties of sign: the lower index wins
    return values


def expected_masks(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        name: keep_mask(values[name], *pattern).astype(np.float32)
        for name, pattern in PATTERNS.items()
    }


def pruner_history(values: dict[str, np.ndarray], *, function: bool) -> list[State]:
    variables = {name: tf.Variable(value, name=name) for name, value in values.items()}
    pruner = Pruner(SPEC, [])
    for name, variable in variables.items():
        pruner.register(variable, name)
    update = tf.function(pruner.update) if function else pruner.update
    history = []
    for step in range(1, STEPS + 1):
        update(tf.constant(step, tf.int64))
        history.append(
            {
                p.name: (p.mask.numpy(), p.threshold.numpy(), p.weight.numpy())
                for p in pruner.pruned_weights
            }
        )
    return history


def graph_history(values: dict[str, np.ndarray]) -> list[State]:
    history = []
    with tf.Graph().as_default():
        step = tf.compat.v1.train.get_or_create_global_step()
        masked = {}
        for name, value in values.items():
            weight = tf.compat.v1.get_variable(name, initializer=tf.constant(value))
            masked[name] = pruning.apply_mask(weight, name)
        update = pruning.Pruning(SPEC, global_step=step).conditional_mask_update_op()
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for t in range(1, STEPS + 1):
                session.run(step.assign(t))
                session.run(update)
                masks = session.run(pruning.get_masks())
                thresholds = session.run(pruning.get_thresholds())
                weights = session.run(list(masked.values()))
                history.append(
                    {
                        name: (mask, threshold, weight)
                        for name, mask, threshold, weight in zip(
                            values, masks, thresholds, weights, strict=True
                        )
                    }
                )
    return history


@pytest.fixture(scope="module")
def histories() -> dict[str, list[State]]:
    values = weight_values()
    return {
        "eager": pruner_history(values, function=False),
        "function": pruner_history(values, function=True),
        "graph": graph_history(values),
    }


@pytest.mark.parametrize("api", ["eager", "function", "graph"])
def test_n_m_masks_are_the_reference_top_n_from_the_first_update_on(
    histories: dict[str, list[State]], api: str
) -> None:
    values = weight_values()
    want = expected_masks(values)
    for step, state in enumerate(histories[api], 1):
        for name in PATTERNS:
            mask, threshold, _ = state[name]
            if step < min(UPDATES):
                np.testing.assert_array_equal(mask, np.ones_like(mask), err_msg=f"{name}@{step}")
            else:
                # Pruned values are zeroed, so later updates keep choosing the same ones.
                np.testing.assert_array_equal(mask, want[name], err_msg=f"{api}: {name}@{step}")
            assert threshold == 0.0, f"{name}: an N:M weight has no threshold"
    final = histories[api][-1]
    assert final["first"][0][0:4, 0].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert final["first"][0][4:8, 3].tolist() == [1.0, 1.0, 0.0, 0.0]
    # The other weight follows the schedule: 0.8 at step 20 is beyond the run, so less.
    second_mask = final["second"][0]
    schedule = parse_hparams(SPEC).sparsity_at(12)
    assert 0 < np.mean(second_mask == 0) == pytest.approx(schedule, abs=1 / 63)


def test_n_m_masks_are_identical_in_all_three_apis(
    histories: dict[str, list[State]],
) -> None:
    for other in ("function", "graph"):
        for step, (mine, theirs) in enumerate(
            zip(histories["eager"], histories[other], strict=True), 1
        ):
            for name in mine:
                for part, a, b in zip(
                    ("mask", "threshold", "weight"), mine[name], theirs[name], strict=True
                ):
                    # Graph mode's masked weight is w * mask: a pruned negative value is -0.
                    unsigned_a = np.asarray(a) + np.float32(0)
                    unsigned_b = np.asarray(b) + np.float32(0)
                    assert unsigned_a.tobytes() == unsigned_b.tobytes(), (
                        f"{other}: {name} {part} at step {step}"
                    )


def test_n_m_weights_reach_their_pattern_sparsity_exactly(
    histories: dict[str, list[State]],
) -> None:
    final = histories["eager"][-1]
    spec = parse_hparams(SPEC)
    for name, (n, m, axis, remainder) in PATTERNS.items():
        mask, _, weight = final[name]
        pattern = spec.n_m_for(name, mask.shape)
        assert pattern is not None and (pattern.n, pattern.m, pattern.axis) == (n, m, axis)
        assert int(mask.sum()) == pattern.kept_count(mask.shape), name
        assert broken_groups(mask == 1, n, m, axis, remainder) == 0, name
        assert not weight[mask == 0].any(), f"{name}: pruned values are zero"
    assert final["first"][0].mean() == 0.5


def test_an_n_m_weights_sparsity_is_its_patterns_at_every_step() -> None:
    pruner = Pruner(SPEC, [])
    pruner.register(tf.Variable(weight_values()["first"]), "first")
    pruner.register(tf.Variable(weight_values()["second"]), "second")
    assert [float(pruner.sparsity(step, "first")) for step in (0, 10, 50)] == [0.5] * 3
    assert (
        0
        < float(pruner.sparsity(10, "second"))
        < float(pruner.sparsity(20, "second"))
        == (pytest.approx(0.8))
    )


def test_a_rule_that_does_not_fit_the_weight_fails_at_registration() -> None:
    pruner = Pruner("n_m_map=[odd:2/4]", [])
    with pytest.raises(SpecError, match=r"n-m-remainder.*'odd'.*10 values along axis 0"):
        pruner.register(tf.Variable(np.ones((10, 3), np.float32)), "odd")
    assert pruner.pruned_weights == ()
    claimed = Pruner("n_m_map=[w:2/4],weight_sparsity_map=[w:0.5]", [])
    with pytest.raises(SpecError, match="ambiguous-rule"):
        claimed.register(tf.Variable(np.ones((8, 3), np.float32)), "w")


def _model(seed: int) -> keras.Model:
    rng = np.random.RandomState(seed)
    inputs = keras.Input((12,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(4, name="output")(hidden)
    model = keras.Model(inputs, outputs)
    model.set_weights([rng.randn(*w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def test_keras_prunes_n_m_kernels_to_the_reference_and_reports_them(tmp_path: Path) -> None:
    spec = "begin_pruning_step=0,pruning_frequency=2,n_m_map=[hidden:2/4,output:1/2]"
    model = _model(1)
    kernels = {f"{layer.name}/kernel": layer.kernel.numpy() for layer in model.layers[1:]}
    pruned = pks.prune(model, spec)
    pruned.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    x = np.random.RandomState(2).randn(32, 12).astype(np.float32)
    y = np.zeros((32, 4), np.float32)
    callback = pks.PruningCallback(spec, log_dir=str(tmp_path))
    pruned.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[callback])
    masks = {
        p.name: p.mask.numpy() for layer in pks.pruned_layers(pruned) for p in layer.pruned_weights
    }
    assert masks.keys() == kernels.keys()
    np.testing.assert_array_equal(
        masks["hidden/kernel"], keep_mask(kernels["hidden/kernel"], 2, 4, 0, "REJECT")
    )
    np.testing.assert_array_equal(
        masks["output/kernel"], keep_mask(kernels["output/kernel"], 1, 2, 0, "REJECT")
    )
    assert pks.weight_sparsity(pruned) == {"hidden/kernel": 0.5, "output/kernel": 0.5}
    scalars = read_scalars(tmp_path)
    assert scalars["pruning/hidden/kernel/sparsity"] == 0.5
    assert scalars["pruning/hidden/kernel/threshold"] == 0.0


def test_keras_refuses_an_n_m_rule_that_does_not_fit_before_training() -> None:
    with pytest.raises(
        SpecError, match=r"n-m-remainder.*'output/kernel'.*8 values along axis 0.*m = 3"
    ):
        pks.prune(_model(0), "n_m_map=[output:1/3]")


def test_prune_now_applies_the_n_m_pattern_at_once_as_asp_one_shot_does() -> None:
    model = _model(3)
    kernel = model.get_layer("hidden").kernel.numpy()
    pruned = pks.prune(model, "n_m_map=[hidden:2/4],exclude=[output]")
    sparsity = pks.prune_now(pruned)
    assert sparsity == {"hidden/kernel": 0.5}
    (layer,) = pks.pruned_layers(pruned)
    (weight,) = layer.pruned_weights
    want = keep_mask(kernel, 2, 4, 0, "REJECT")
    np.testing.assert_array_equal(weight.mask.numpy(), want.astype(np.float32))
    np.testing.assert_array_equal(weight.weight.numpy(), np.where(want, kernel, 0))


def test_a_default_axis_is_refused_where_it_is_not_the_reduction_axis() -> None:
    tokens = keras.Input((5, 64))
    attention = keras.layers.MultiHeadAttention(num_heads=4, key_dim=16, name="attention")
    model = keras.Model(tokens, attention(tokens, tokens))
    # The query kernel is [64, 4, 16]: axis -2 would group across the 4 heads.
    with pytest.raises(SpecError, match=r"n-m-axis.*'attention/query/kernel' of EinsumDense"):
        pks.prune(model, "n_m_map=[attention/query/kernel:2/4]")
    pruned = pks.prune(model, "n_m_map=[attention/query/kernel:2/4/REJECT/0]")
    (layer,) = pks.pruned_layers(pruned)
    assert [p.name for p in layer.pruned_weights] == [
        f"attention/{key}/kernel" for key in ("query", "key", "value", "attention_output")
    ]
    image = keras.Input((4, 4, 8))
    upsample = keras.layers.Conv2DTranspose(12, 3, name="up")
    transposed = keras.Model(image, upsample(image))
    with pytest.raises(SpecError, match=r"n-m-axis.*Conv2DTranspose.*axis: -1"):
        pks.prune(transposed, "n_m_map=[up:2/4]")
    assert pks.prune(transposed, "n_m_map=[up:2/4/REJECT/-1]") is not transposed


def test_a_depthwise_kernel_left_dense_is_not_held_to_an_n_m_rule() -> None:
    image = keras.Input((6, 6, 6))
    depthwise = keras.layers.DepthwiseConv2D(3, name="dw")(image)
    model = keras.Model(image, keras.layers.Conv2D(8, 1, name="pw")(depthwise))
    # Along axis 3, pw/kernel [1, 1, 6, 8] fits 2:4 and dw/kernel [3, 3, 6, 1] would not.
    pruned = pks.prune(model, "n_m_map=[kernel:2/4/REJECT/3]")
    assert [p.name for layer in pks.pruned_layers(pruned) for p in layer.pruned_weights] == [
        "pw/kernel"
    ]


def test_a_wrapped_layer_and_a_new_spec_are_checked_before_training() -> None:
    wrapped = pks.prune(keras.layers.Dense(6, name="dense"), "n_m_map=[dense:2/4]")
    with pytest.raises(SpecError, match=r"n-m-remainder.*'dense/kernel'.*10 values"):
        wrapped.build((None, 10))
    pruned = pks.prune(_model(4), "n_m_map=[hidden:2/4]")
    with pytest.raises(SpecError, match=r"n-m-remainder.*'output/kernel'.*8 values.*m = 3"):
        pks.prune(pruned, "n_m_map=[hidden:2/4,output:1/3]")
    assert pks.pruned_layers(pruned)[0].spec.n_m_map[0].m == 4  # the old spec stays
