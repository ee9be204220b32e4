"""Keras 3: what is pruned, fit, summaries, strip, saving and resuming, and graph-mode parity."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from summaries import read_scalars

from pruning_spec import SpecError
from pruning_spec.backends import tensorflow as pruning
from pruning_spec.backends.keras import _callback as _keras_callback
from pruning_spec.backends.tensorflow import keras as pks

SPEC = (
    "begin_pruning_step=0,pruning_frequency=4,target_sparsity=0.75,"
    "sparsity_function_end_step=40,weight_sparsity_map=[out/kernel:0.5]"
)
RNG = np.random.RandomState(0)
X = RNG.rand(128, 16).astype(np.float32)
Y = RNG.randint(0, 4, 128)


def mlp(name: str = "mlp") -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16,))
    hidden = keras.layers.Dense(32, activation="relu", name="hidden")(inputs)
    hidden = keras.layers.BatchNormalization(name="norm")(hidden)
    return keras.Model(inputs, keras.layers.Dense(4, name="out")(hidden), name=name)


def compiled(model: keras.Model, learning_rate: float = 0.01) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def fit(model: keras.Model, epochs: int, spec: str = SPEC, **kwargs: Any) -> Any:
    extra = kwargs.pop("extra", [])
    callbacks = [pks.PruningCallback(spec, **kwargs), *extra]
    return model.fit(
        X, Y, batch_size=16, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks
    )


def state(model: keras.Model) -> dict[str, np.ndarray]:
    """Every weight of the model, pruning variables and optimizer state included."""
    found = {f"w{i}": np.asarray(v.numpy()) for i, v in enumerate(model.weights)}
    found.update({f"o{i}": np.asarray(v.numpy()) for i, v in enumerate(model.optimizer.variables)})
    return found


def assert_same_state(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


# Which weights are pruned.


def test_prune_wraps_kernels_and_leaves_biases_and_normalization_alone() -> None:
    model = pks.prune(mlp(), SPEC)
    names = [w.name for layer in pks.pruned_layers(model) for w in layer.pruned_weights]
    assert names == ["hidden/kernel", "out/kernel"]
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer",
        "PrunedLayer",
        "BatchNormalization",
        "PrunedLayer",
    ]


@pytest.mark.parametrize("initial", [0.0, 0.5])
def test_a_rule_of_sparsity_zero_keeps_a_weight_dense(initial: float) -> None:
    # One-shot specs start above 0: the rule still keeps `out` dense (r1.15 pruned it first).
    spec = f"initial_sparsity={initial},target_sparsity=0.5,weight_sparsity_map=[out:0]"
    model = pks.prune(mlp(), spec)
    assert [w.name for w in pks.pruned_layers(model)[0].pruned_weights] == ["hidden/kernel"]
    assert len(pks.pruned_layers(model)) == 1


def test_select_chooses_other_weights() -> None:
    inputs = keras.Input((5,), dtype="int32")
    outputs = keras.layers.Dense(3, name="head")(keras.layers.Embedding(50, 8, name="emb")(inputs))
    model = pks.prune(
        keras.Model(inputs, outputs), "target_sparsity=0.5", select=lambda v: v.name == "embeddings"
    )
    assert [w.name for layer in pks.pruned_layers(model) for w in layer.pruned_weights] == [
        "emb/embeddings"
    ]


def test_what_cannot_be_pruned_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"not built.*Input"):
        pks.prune(keras.Sequential([keras.layers.Dense(3)]), SPEC)
    with pytest.raises(ValueError, match="nothing to prune"):
        pks.prune(keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()]), SPEC)
    with pytest.raises(SpecError, match="'hidden/kernel' matches both"):
        pks.prune(mlp(), "weight_sparsity_map=[hidden:0.5,kernel:0.6]")

    class Subclassed(keras.Model):  # type: ignore[misc]
        def call(self, x: Any) -> Any:
            return x

    with pytest.raises(TypeError, match=r"subclassed.*Wrap its layers"):
        pks.prune(Subclassed(), SPEC)


def test_a_rule_that_matches_no_weight_warns() -> None:
    with pytest.warns(UserWarning, match=r"rule-matches-nothing.*'conv1' matches none of the 2"):
        pks.prune(mlp(), "weight_sparsity_map=[conv1:0.5]")


def test_a_subclassed_model_prunes_the_layers_it_wraps() -> None:
    class Net(keras.Model):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.hidden = pks.prune(keras.layers.Dense(8, name="hidden"), SPEC)
            self.out = keras.layers.Dense(4, name="out")

        def call(self, x: Any) -> Any:
            return self.out(self.hidden(x))

    net = compiled(Net())
    fit(net, 6)
    (layer,) = pks.pruned_layers(net)
    assert pks.weight_sparsity(net) == {"hidden/kernel": 0.75}
    assert [w.name for w in layer.pruned_weights] == ["hidden/kernel"]


# Training.


class ZeroWatcher(keras.callbacks.Callback):  # type: ignore[misc]
    """Records the largest pruned value after every batch."""

    def __init__(self) -> None:
        super().__init__()
        self.largest: list[float] = []

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        for layer in pks.pruned_layers(self.model):
            for w in layer.pruned_weights:
                dead = np.asarray(w.weight.numpy()) * (1 - np.asarray(w.mask.numpy()))
                self.largest.append(float(np.max(np.abs(dead))))


def test_fit_reaches_the_spec_and_pruned_weights_stay_zero() -> None:
    model = compiled(pks.prune(mlp(), SPEC))
    watcher = ZeroWatcher()
    history = fit(model, 6, extra=[watcher])
    assert pks.weight_sparsity(model) == {"hidden/kernel": 0.75, "out/kernel": 0.5}
    assert watcher.largest and max(watcher.largest) == 0.0
    assert history.history["sparsity"][-1] == pytest.approx((0.75 * 512 + 0.5 * 128) / 640)
    assert [int(layer.last_mask_update_step.numpy()) for layer in pks.pruned_layers(model)] == [
        48,
        48,
    ]


def test_keras_masks_equal_graph_mode_for_the_same_weights_and_steps() -> None:
    spec = SPEC + ",threshold_decay=0.2,block_height=2,block_width=4"
    model = compiled(pks.prune(mlp(), spec), learning_rate=0.0)  # the weights stay put
    kernels = {
        w.name: w.weight.numpy() for layer in pks.pruned_layers(model) for w in layer.pruned_weights
    }
    model.fit(X, Y, batch_size=16, epochs=3, shuffle=False, verbose=0,
              callbacks=[pks.PruningCallback(spec)])  # fmt: skip
    with tf.Graph().as_default():
        step = tf.compat.v1.train.get_or_create_global_step()
        for name, value in kernels.items():
            layer, weight = name.split("/")
            with tf.compat.v1.variable_scope(layer):  # graph names equal Keras's: out/kernel
                variable = tf.compat.v1.get_variable(weight, initializer=value)
            pruning.apply_mask(variable, layer)
        graph = pruning.Pruning(spec, global_step=step)
        update = graph.conditional_mask_update_op()
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for t in range(1, 25):
                session.run(step.assign(t))
                session.run(update)
            want = session.run(pruning.get_masks() + pruning.get_thresholds())
    got = [w.mask.numpy() for layer in pks.pruned_layers(model) for w in layer.pruned_weights]
    got += [w.threshold.numpy() for layer in pks.pruned_layers(model) for w in layer.pruned_weights]
    assert 0 < float(np.mean(got[0])) < 1
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_summaries_equal_the_exported_models_sparsity(tmp_path: Path) -> None:
    model = compiled(pks.prune(mlp(), SPEC))
    fit(model, 4, log_dir=str(tmp_path))
    scalars = read_scalars(tmp_path)
    exported = pks.strip(model)
    for layer_name in ("hidden", "out"):
        kernel = exported.get_layer(layer_name).kernel.numpy()
        assert scalars[f"pruning/{layer_name}/kernel/sparsity"] == pytest.approx(
            float(np.mean(kernel == 0)), abs=1e-7
        )
    assert scalars["pruning/sparsity"] == pytest.approx(0.75 * (1 - (1 - 32 / 40) ** 3), abs=1e-6)


def test_summaries_without_tensorboard_fail_before_training(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *rest: None if name == "tensorboard" else real_find_spec(name, *rest),
    )
    with pytest.raises(ImportError, match=r"but tensorboard is not installed"):
        pks.PruningCallback(SPEC, log_dir="logs")
    pks.PruningCallback(SPEC)  # without summaries it needs no tensorboard: no error


def test_a_callback_spec_other_than_the_models_stops_fit() -> None:
    model = compiled(pks.prune(mlp(), SPEC))
    with pytest.raises(ValueError, match="differs from the one the model was pruned with"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[pks.PruningCallback("target_sparsity=0.9")])
    pks.prune(model, "target_sparsity=0.9")  # switching specs keeps the layers
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[pks.PruningCallback("target_sparsity=0.9")])
    with pytest.raises(ValueError, match="no pruned layers"):
        compiled(mlp()).fit(X, Y, epochs=1, verbose=0, callbacks=[pks.PruningCallback(SPEC)])


# Export.


def test_strip_gives_a_plain_model_with_the_zeros_baked_in(tmp_path: Path) -> None:
    model = compiled(pks.prune(mlp(), SPEC))
    fit(model, 6)
    exported = pks.strip(model)
    assert not any("mask" in v.path or "threshold" in v.path for v in exported.weights)
    assert [type(layer).__name__ for layer in exported.layers] == [
        "InputLayer",
        "Dense",
        "BatchNormalization",
        "Dense",
    ]
    np.testing.assert_array_equal(exported.predict(X, verbose=0), model.predict(X, verbose=0))
    exported.save(tmp_path / "plain.keras")
    # Loads where this package was never imported.
    script = (
        "import keras, numpy as np, sys; m = keras.models.load_model(sys.argv[1], safe_mode=True); "
        "print(float(np.mean(m.get_layer('hidden').kernel.numpy() == 0)))"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "plain.keras")],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.split()[-1]) == 0.75


# Saving and resuming.


DECAYS = pytest.mark.parametrize("spec", [SPEC, f"{SPEC},threshold_decay=0.5"], ids=["0", "0.5"])


@DECAYS
def test_resuming_from_a_keras_file_equals_an_uninterrupted_run(tmp_path: Path, spec: str) -> None:
    uninterrupted = compiled(pks.prune(mlp(), spec))
    fit(uninterrupted, 4, spec=spec)  # 32 steps: updates at 4, 8, ..., 32

    first = compiled(pks.prune(mlp(), spec))
    fit(first, 2, spec=spec)
    first.save(tmp_path / "half.keras")
    resumed = keras.models.load_model(tmp_path / "half.keras", safe_mode=True)
    assert [int(layer.last_mask_update_step.numpy()) for layer in pks.pruned_layers(resumed)] == [
        16,
        16,
    ]
    fit(resumed, 2, spec=spec)
    assert_same_state(state(resumed), state(uninterrupted))


@DECAYS
def test_resuming_from_a_tf_train_checkpoint_equals_an_uninterrupted_run(
    tmp_path: Path, spec: str
) -> None:
    uninterrupted = compiled(pks.prune(mlp(), spec))
    fit(uninterrupted, 4, spec=spec)

    first = compiled(pks.prune(mlp(), spec))
    fit(first, 2, spec=spec)
    path = tf.train.Checkpoint(model=first, optimizer=first.optimizer).save(str(tmp_path / "c"))
    resumed = compiled(pks.prune(mlp("other"), spec))
    resumed.optimizer.build(resumed.trainable_variables)
    tf.train.Checkpoint(model=resumed, optimizer=resumed.optimizer).restore(path).assert_consumed()
    fit(resumed, 2, spec=spec)
    assert_same_state(state(resumed), state(uninterrupted))


def pruning_steps(model: keras.Model) -> set[tuple[int, int]]:
    """Each PrunedLayer's (pruning step, last mask update step)."""
    return {
        (int(layer.pruning_step.numpy()), int(layer.last_mask_update_step.numpy()))
        for layer in pks.pruned_layers(model)
    }


# 8 steps an epoch: 5 epochs reach SPEC's end step, 40, where every weight is at its target.
AT_THE_TARGET = {"hidden/kernel": 0.75, "out/kernel": 0.5}


def test_a_recompiled_model_resumes_its_schedule_where_it_was() -> None:
    model = compiled(pks.prune(mlp(), SPEC))
    fit(model, 2)
    compiled(model, learning_rate=0.001)  # fine-tuning: a new optimizer, at step 0
    fit(model, 3)
    assert int(model.optimizer.iterations.numpy()) == 24
    assert pruning_steps(model) == {(40, 40)}
    assert pks.weight_sparsity(model) == AT_THE_TARGET


def test_a_keras_file_loaded_then_recompiled_resumes_its_schedule(tmp_path: Path) -> None:
    first = compiled(pks.prune(mlp(), SPEC))
    fit(first, 2)
    first.save(tmp_path / "half.keras")
    loaded = compiled(keras.models.load_model(tmp_path / "half.keras"), learning_rate=0.001)
    fit(loaded, 3)
    assert pruning_steps(loaded) == {(40, 40)}
    assert pks.weight_sparsity(loaded) == AT_THE_TARGET


def test_weights_files_keep_the_pruning_step(tmp_path: Path) -> None:
    first = compiled(pks.prune(mlp(), SPEC))
    fit(first, 2)
    first.save_weights(tmp_path / "half.weights.h5")
    loaded = compiled(pks.prune(mlp(), SPEC))
    with warnings.catch_warnings():  # its optimizer is not built, so Keras skips the saved one
        warnings.simplefilter("ignore")
        loaded.load_weights(tmp_path / "half.weights.h5")
    for got, want in zip(loaded.weights, first.weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    fit(loaded, 3)
    assert int(loaded.optimizer.iterations.numpy()) == 24
    assert pruning_steps(loaded) == {(40, 40)}
    assert pks.weight_sparsity(loaded) == AT_THE_TARGET


def test_a_file_saved_within_an_epoch_records_the_step_of_the_save(tmp_path: Path) -> None:
    path = tmp_path / "every3.keras"
    model = compiled(pks.prune(mlp(), SPEC))
    fit(model, 1, extra=[keras.callbacks.ModelCheckpoint(path, save_freq=3)])
    saved = keras.models.load_model(path)  # the last save: after step 6
    assert int(saved.optimizer.iterations.numpy()) == 6
    assert pruning_steps(saved) == {(6, 4)}
    recompiled = compiled(saved)
    fit(recompiled, 1)
    assert pruning_steps(recompiled) == {(14, 12)}


def test_a_model_saved_before_the_step_was_recorded_resumes_from_its_optimizer(
    tmp_path: Path,
) -> None:
    uninterrupted = compiled(pks.prune(mlp(), SPEC))
    fit(uninterrupted, 4)
    first = compiled(pks.prune(mlp(), SPEC))
    fit(first, 2)
    first.save(tmp_path / "half.keras")
    old = _without_the_step_record(tmp_path / "half.keras", tmp_path / "old.keras")
    resumed = keras.models.load_model(old)
    assert {int(layer.pruning_step.numpy()) for layer in pks.pruned_layers(resumed)} == {-1}
    fit(resumed, 2)
    assert_same_state(state(resumed), state(uninterrupted))
    # A weights-only file of that version cannot say where the schedule was.
    restarted = compiled(pks.prune(mlp(), SPEC))
    first.save_weights(tmp_path / "half.weights.h5")
    _drop_step_datasets(tmp_path / "half.weights.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restarted.load_weights(tmp_path / "half.weights.h5")
    with pytest.raises(ValueError, match=r"optimizer is at step 0.*last updated at step 16"):
        fit(restarted, 1)


def _drop_step_datasets(weights: Path) -> None:
    """Deletes what pruning-spec 0.1.x did not save: each PrunedLayer's last two variables."""
    import h5py  # noqa: PLC0415 - Keras's own dependency

    with h5py.File(weights, "r+") as file:
        for name in list(file["layers"]):
            own = file["layers"][name].get("vars")
            if name.startswith("pruned_layer") and own is not None:
                last = len(own)
                del own[str(last - 1)], own[str(last - 2)]


def _without_the_step_record(path: Path, old: Path) -> Path:
    """A copy of a .keras file as pruning-spec 0.1.x saved it."""
    import zipfile  # noqa: PLC0415

    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    weights = old.with_suffix(".h5")
    weights.write_bytes(members["model.weights.h5"])
    _drop_step_datasets(weights)
    members["model.weights.h5"] = weights.read_bytes()
    with zipfile.ZipFile(old, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return old


def test_warnings_are_not_raised_for_a_clean_spec() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pks.prune(mlp(), SPEC)


def test_several_steps_per_execution_warn_that_updates_come_late() -> None:
    model = pks.prune(mlp(), SPEC)
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=4)
    with pytest.warns(UserWarning, match="runs 4 steps per execution"):
        model.fit(X, np.ones((128, 4)), epochs=1, verbose=0, callbacks=[pks.PruningCallback(SPEC)])


# Models of every shape.


def assert_same_outputs(model: keras.Model, pruned: keras.Model, inputs: Any) -> None:
    np.testing.assert_array_equal(
        np.asarray(pruned(inputs, training=False)), np.asarray(model(inputs, training=False))
    )


def test_ops_and_masked_sequences_in_a_functional_graph_pass_through() -> None:
    inputs = keras.Input((6,), dtype="int32")
    embedded = keras.layers.Embedding(20, 4, mask_zero=True, name="emb")(inputs)
    recurrent = keras.layers.LSTM(5, name="lstm")(embedded)
    outputs = keras.layers.Dense(2, name="head")(keras.ops.relu(recurrent) * 2.0)
    model = keras.Model(inputs, outputs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "will destroy the mask information"
        pruned = pks.prune(model, "target_sparsity=0.5")
    names = [w.name for layer in pks.pruned_layers(pruned) for w in layer.pruned_weights]
    assert names == ["lstm/lstm_cell/kernel", "lstm/lstm_cell/recurrent_kernel", "head/kernel"]
    assert_same_outputs(model, pruned, np.array([[3, 4, 5, 0, 0, 0], [1, 2, 0, 0, 0, 0]]))


class PlainDense(keras.layers.Layer):  # type: ignore[misc]
    """A custom layer with only build and call, as most are."""

    def build(self, input_shape: Any) -> None:
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, x: Any) -> Any:
        return keras.ops.matmul(x, self.kernel)


def test_layers_with_several_inputs_and_custom_layers_can_be_pruned() -> None:
    query = keras.Input((4, 8))
    value = keras.Input((5, 8))
    attended = keras.layers.MultiHeadAttention(2, 4, name="attention")(query, value)
    outputs = PlainDense(name="custom")(attended)
    model = keras.Model([query, value], outputs)
    pruned = pks.prune(model, "target_sparsity=0.5")
    names = {w.name for layer in pks.pruned_layers(pruned) for w in layer.pruned_weights}
    assert "custom/kernel" in names and "attention/query/kernel" in names
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 5, 8))]
    assert_same_outputs(model, pruned, inputs)


def test_a_float32_layer_in_a_mixed_precision_model_keeps_float32() -> None:
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        inputs = keras.Input((16,))
        hidden = keras.layers.Dense(8, name="hidden")(inputs)
        outputs = keras.layers.Dense(2, dtype="float32", name="out")(hidden)
        model = keras.Model(inputs, outputs)
        pruned = pks.prune(model, "target_sparsity=0.5")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert pruned.output.dtype == "float32"
    assert_same_outputs(model, pruned, X)


def test_weights_of_sub_models_are_named_by_their_sub_model() -> None:
    def block(name: str) -> keras.Model:
        return keras.Sequential(
            [keras.Input((16,)), keras.layers.Dense(16, name="proj")], name=name
        )

    inputs = keras.Input((16,))
    model = keras.Model(inputs, keras.layers.Dense(4, name="out")(block("b")(block("a")(inputs))))
    spec = SPEC.replace("out/kernel:0.5", "a/proj/kernel:0.5")
    pruned = compiled(pks.prune(model, spec))
    pruned.fit(X, Y, batch_size=16, epochs=6, verbose=0, callbacks=[pks.PruningCallback(spec)])
    assert pks.weight_sparsity(pruned) == {
        "a/proj/kernel": 0.5,
        "b/proj/kernel": 0.75,
        "out/kernel": 0.75,
    }


def test_pruning_the_original_model_twice_warns_and_the_last_mask_rules() -> None:
    model = mlp()
    pks.prune(model, SPEC)
    with pytest.warns(UserWarning, match="'hidden/kernel' was already pruned"):
        second = pks.prune(model, SPEC)
    (hidden, _) = pks.pruned_layers(second)
    constraint = hidden.pruned_weights[0].weight.constraint
    assert constraint.mask is hidden.pruned_weights[0].mask and constraint.inner is None


# Issue 15: fits that reuse the model, and specs that must be given.


def test_each_fit_reuses_the_traced_mask_update() -> None:
    model = compiled(pks.prune(mlp(), SPEC))
    fit(model, 1)
    fit(model, 1)  # a new PruningCallback, as most scripts write it
    fit(model, 1)
    (_, updater) = _keras_callback._UPDATERS[model]
    assert updater._traced.experimental_get_tracing_count() == 1
    assert int(model.optimizer.iterations.numpy()) == 24


@pytest.mark.parametrize("build", [mlp, lambda: keras.layers.Dense(3)])
def test_prune_without_a_spec_is_refused(build: Any) -> None:
    with pytest.raises(TypeError, match=r"needs a spec.*NormalizedSpec\(\) for r1\.15's defaults"):
        pks.prune(build(), None)
    with pytest.raises(TypeError, match="PrunedLayer needs a spec"):
        pks.PrunedLayer(keras.layers.Dense(3))


def test_a_reloaded_model_takes_its_spec_from_its_config(tmp_path: Path) -> None:
    model = compiled(pks.prune(mlp(), SPEC))
    fit(model, 1)
    model.save(tmp_path / "pruned.keras")
    loaded = keras.saving.load_model(tmp_path / "pruned.keras")
    specs = {layer.spec for layer in pks.pruned_layers(loaded)}
    assert specs == {pruning.get_pruning_hparams().parse(SPEC).spec}


def test_depthwise_kernels_are_left_dense_by_default_as_tfmot_does() -> None:
    inputs = keras.Input((8, 8, 3))
    hidden = keras.layers.SeparableConv2D(4, 3, name="separable")(inputs)
    hidden = keras.layers.DepthwiseConv2D(3, name="depthwise")(hidden)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, name="pointwise")(hidden))
    pruned = pks.prune(model, "target_sparsity=0.5")
    names = [w.name for layer in pks.pruned_layers(pruned) for w in layer.pruned_weights]
    assert names == ["separable/pointwise_kernel", "pointwise/kernel"]
    opted_in = pks.prune(
        keras.models.clone_model(model),
        "target_sparsity=0.5",
        select=lambda v: v.trainable and v.name.endswith("kernel"),
    )
    names = [w.name for layer in pks.pruned_layers(opted_in) for w in layer.pruned_weights]
    assert "depthwise/kernel" in names  # Keras 3 names a DepthwiseConv2D kernel `kernel`
    assert "separable/depthwise_kernel" in names


# One-shot pruning: the masks at the target before the first step, kept through training.

ONE_SHOT = str(Path(__file__).resolve().parents[3] / "examples" / "one_shot.txtpb")


def test_prune_now_applies_the_one_shot_masks_before_training() -> None:
    model = compiled(pks.prune(mlp(), ONE_SHOT))
    # k = round(n * 0.2) kept: 102 of 512 and 26 of 128.
    at_target = {"hidden/kernel": 410 / 512, "out/kernel": 102 / 128}
    assert pks.prune_now(model) == at_target
    assert [int(layer.last_mask_update_step.numpy()) for layer in pks.pruned_layers(model)] == [
        0,
        0,
    ]
    before = model.predict(X[:4], verbose=0)
    model.fit(X, Y, batch_size=16, epochs=2, verbose=0, callbacks=[pks.PruningCallback(ONE_SHOT)])
    assert pks.weight_sparsity(model) == at_target
    assert not np.array_equal(model.predict(X[:4], verbose=0), before)  # it trained


def test_prune_now_takes_the_schedule_at_a_step_and_refuses_what_it_cannot_do() -> None:
    model = pks.prune(mlp(), SPEC)  # 0.75 at step 40, 0.5 for out/kernel
    assert pks.prune_now(model, step=40) == {"hidden/kernel": 0.75, "out/kernel": 0.5}
    with pytest.raises(ValueError, match="integer >= 0"):
        pks.prune_now(model, step=-1)
    with pytest.raises(ValueError, match="no pruned layers"):
        pks.prune_now(mlp())
    nothing = keras.Sequential(
        [keras.Input((4,)), pks.PrunedLayer(keras.layers.Dense(2), "target_sparsity=0.5", [])]
    )
    with pytest.raises(ValueError, match="has no pruned weights"):
        pks.prune_now(nothing)


def test_export_tflite_writes_a_smaller_sparse_model_with_the_same_outputs(tmp_path: Path) -> None:
    keras.utils.set_random_seed(1)
    inputs = keras.Input((16,))
    hidden = keras.layers.Dense(256, activation="relu", name="wide")(inputs)
    hidden = keras.layers.Dense(128, activation="relu", name="narrow")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(4, name="out")(hidden))
    pruned = pks.prune(model, ONE_SHOT)
    pks.prune_now(pruned)
    sparse_size = pks.export_tflite(pruned, tmp_path / "sparse.tflite")
    dense_size = pks.export_tflite(pruned, tmp_path / "dense.tflite", sparse=False)
    assert sparse_size == (tmp_path / "sparse.tflite").stat().st_size
    assert sparse_size < 0.5 * dense_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter points to LiteRT
        interpreter = tf.lite.Interpreter(model_path=str(tmp_path / "sparse.tflite"))
    interpreter.allocate_tensors()
    (given,), (taken,) = interpreter.get_input_details(), interpreter.get_output_details()
    for row in X[:8]:
        interpreter.set_tensor(given["index"], row[None, :])
        interpreter.invoke()
        np.testing.assert_allclose(
            interpreter.get_tensor(taken["index"]),
            pruned.predict(row[None, :], verbose=0),
            rtol=1e-5,
            atol=1e-6,
        )


def test_exclusions_keep_their_weights_unpruned_in_keras_and_pruner() -> None:
    spec = "initial_sparsity=0.5,target_sparsity=0.5,exclude=[^out/]"
    model = pks.prune(mlp(), spec)
    assert [w.name for layer in pks.pruned_layers(model) for w in layer.pruned_weights] == [
        "hidden/kernel"
    ]
    kept = tf.Variable(np.ones((4, 4), np.float32), name="out/kernel")
    pruned = tf.Variable(np.arange(16, dtype=np.float32).reshape(4, 4), name="hidden/kernel")
    pruner = pruning.Pruner(spec, [kept, pruned])
    pruner.update(10)
    assert pruner.weight_sparsity() == {"out/kernel": 0.0, "hidden/kernel": 0.5}
