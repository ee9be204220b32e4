"""The Keras API on the backend these tests run on: TensorFlow in the suite, and JAX in
`make test`'s second session (`KERAS_BACKEND=jax pytest tests/backends/keras/...`).

The same assertions on both: what fit prunes and reports, what the model computes with,
one-shot pruning, saving and resuming bit for bit, summaries, strip and TFLite export.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from pruning_spec import parse_hparams
from pruning_spec.backends import keras as pks

SPEC = (
    "begin_pruning_step=0,pruning_frequency=2,target_sparsity=0.75,"
    "sparsity_function_end_step=12,weight_sparsity_map=[out/kernel:0.5]"
)
RNG = np.random.default_rng(0)
X = RNG.random((128, 16), dtype=np.float32)
Y = RNG.integers(0, 4, 128)


def mlp() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16,))
    hidden = keras.layers.Dense(32, activation="relu", name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(4, name="out")(hidden))


def compiled(model: keras.Model) -> keras.Model:
    # Momentum moves pruned values after their gradient is gone: they must stay pruned.
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def fit(model: keras.Model, epochs: int, **kwargs: Any) -> Any:
    return model.fit(
        X, Y, batch_size=16, epochs=epochs, shuffle=False, verbose=0,
        callbacks=[pks.PruningCallback(SPEC, **kwargs)],
    )  # fmt: skip


def _numpy(variable: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(variable.value))


def state(model: keras.Model, optimizer: bool = True) -> dict[str, np.ndarray]:
    """Every variable of the model by path, and of its optimizer (by position: its name varies)."""
    found = {str(v.path): _numpy(v) for v in model.weights}
    if optimizer:
        found.update({f"optimizer/{i}": _numpy(v) for i, v in enumerate(model.optimizer.variables)})
    return found


def test_fit_prunes_to_the_schedule_and_reports_it() -> None:
    model = compiled(pks.prune(mlp(), SPEC))
    history = fit(model, 2)  # 16 steps, past the schedule's end (12)
    assert pks.weight_sparsity(model) == {"hidden/kernel": 0.75, "out/kernel": 0.5}
    assert history.history["sparsity"][-1] == (0.75 * 512 + 0.5 * 128) / 640
    assert [layer.name for layer in pks.pruned_layers(model)] == ["pruned_hidden", "pruned_out"]
    for layer in pks.pruned_layers(model):
        (pruned,) = layer.pruned_weights
        mask, weight = _numpy(pruned.mask), _numpy(pruned.weight)
        assert (weight[mask == 0] == 0).all()  # the variables hold the zeros
        assert (weight[mask == 1] != 0).all()
        assert _numpy(pruned.threshold) == np.abs(weight[mask == 1]).min()
        assert int(_numpy(layer.last_mask_update_step)) == 16


def test_the_model_computes_with_its_pruned_weights() -> None:
    model = compiled(pks.prune(mlp(), SPEC))
    fit(model, 2)
    plain = pks.strip(model)
    assert not pks.pruned_layers(plain)
    expected = plain.predict(X, verbose=0)
    # To rounding: XLA may fuse the masking into the product, and round otherwise.
    np.testing.assert_allclose(model.predict(X, verbose=0), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(X)), expected, rtol=1e-6, atol=1e-6)


class _ForwardCheck(keras.callbacks.Callback):  # type: ignore[misc]
    """Before each step: the model's output is the one of its masked kernels, by hand, and
    the kernels hold 0 where their masks are 0."""

    def __init__(self) -> None:
        super().__init__()
        self.checked = 0
        self.largest_pruned_value = 0.0  # what the kernels hold where their masks are 0

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:  # JAX's fit keeps the state out of the variables between steps
            sync()
        hidden, out = (layer.layer for layer in pks.pruned_layers(self.model))
        masked = {}
        for layer in pks.pruned_layers(self.model):
            (pruned,) = layer.pruned_weights
            kernel, mask = _numpy(pruned.weight), _numpy(pruned.mask)
            masked[layer.layer.name] = np.where(mask != 0, kernel, 0)
            pruned_values = np.abs(kernel[mask == 0])
            if pruned_values.size:
                self.largest_pruned_value = max(self.largest_pruned_value, pruned_values.max())
        activations = np.maximum(X[:16] @ masked["hidden"] + _numpy(hidden.bias), 0)
        expected = activations @ masked["out"] + _numpy(out.bias)
        got = keras.ops.convert_to_numpy(self.model.predict_on_batch(X[:16]))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        self.checked += 1


def test_every_step_computes_with_the_masked_kernels() -> None:
    model = compiled(pks.prune(mlp(), SPEC))
    check = _ForwardCheck()
    model.fit(
        X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0,
        callbacks=[pks.PruningCallback(SPEC), check],
    )  # fmt: skip
    assert check.checked == 16
    # Momentum would move them: the mask constraint holds them at 0 after every step, on
    # JAX (whose stateless optimizer step gets the mask from the forward pass) as on TF.
    assert check.largest_pruned_value == 0


def test_prune_now_prunes_to_the_target_at_once() -> None:
    one_shot = "initial_sparsity=0.75,target_sparsity=0.75,begin_pruning_step=0"
    model = pks.prune(mlp(), one_shot)
    assert pks.prune_now(model) == {"hidden/kernel": 0.75, "out/kernel": 0.75}
    assert pks.weight_sparsity(model) == {"hidden/kernel": 0.75, "out/kernel": 0.75}


@pytest.mark.parametrize("suffix", [".keras", ".weights.h5"])
def test_a_saved_model_resumes_bit_for_bit(tmp_path: Path, suffix: str) -> None:
    whole = compiled(pks.prune(mlp(), SPEC))
    fit(whole, 2)
    first = compiled(pks.prune(mlp(), SPEC))
    fit(first, 1)
    path = tmp_path / f"half{suffix}"
    if suffix == ".keras":
        first.save(path)
        resumed = keras.saving.load_model(path)
    else:
        first.save_weights(path)
        resumed = compiled(pks.prune(mlp(), SPEC))
        resumed.optimizer.build(resumed.trainable_variables)  # so that its state loads too
        resumed.load_weights(path)
    fit(resumed, 1)
    expected, got = state(whole), state(resumed)
    assert got.keys() == expected.keys()
    masks = [path for path in got if path.endswith("_mask")]
    assert len(masks) == 2
    for path in masks:
        np.testing.assert_array_equal(got[path], expected[path], err_msg=path)
    for path, value in got.items():
        assert value.tobytes() == expected[path].tobytes(), path


def test_summaries_report_the_schedule_and_each_weight(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing import event_accumulator  # noqa: PLC0415

    model = compiled(pks.prune(mlp(), SPEC))
    fit(model, 2, log_dir=str(tmp_path))
    events = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    events.Reload()

    def last(tag: str) -> tuple[int, float]:
        event = events.Tensors(tag)[-1]
        return event.step, float(np.asarray(keras.ops.convert_to_numpy(_tensor(event))))

    assert last("pruning/sparsity") == (16, pytest.approx(0.75))
    assert last("pruning/hidden/kernel/sparsity") == (16, 0.75)
    assert last("pruning/out/kernel/sparsity") == (16, 0.5)
    assert last("pruning/last_mask_update_step") == (16, 16.0)
    (hidden, _) = (layer.pruned_weights[0] for layer in pks.pruned_layers(model))
    _, threshold = last("pruning/hidden/kernel/threshold")
    assert threshold == pytest.approx(float(_numpy(hidden.threshold)))
    assert [event.step for event in events.Tensors("pruning/sparsity")] == [8, 16]


def _tensor(event: Any) -> Any:
    from tensorboard.util import tensor_util  # noqa: PLC0415

    return tensor_util.make_ndarray(event.tensor_proto)


def test_strip_bakes_the_zeros_into_a_plain_model(tmp_path: Path) -> None:
    model = compiled(pks.prune(mlp(), SPEC))
    fit(model, 2)
    plain = pks.strip(model)
    plain.save(tmp_path / "plain.keras")
    loaded = keras.saving.load_model(tmp_path / "plain.keras")  # no custom objects needed
    kernels = {
        layer.name: _numpy(layer.kernel) for layer in loaded.layers if hasattr(layer, "kernel")
    }
    assert {name: float(np.mean(k == 0)) for name, k in kernels.items()} == {
        "hidden": 0.75,
        "out": 0.5,
    }


def test_export_tflite_writes_a_tensorflow_lite_file(tmp_path: Path) -> None:
    model = compiled(pks.prune(mlp(), SPEC))
    fit(model, 1)
    size = pks.export_tflite(model, tmp_path / "model.tflite")
    data = (tmp_path / "model.tflite").read_bytes()
    assert size == len(data) > 0
    assert data[4:8] == b"TFL3"  # the flatbuffer's file identifier


def test_the_spec_is_kept_in_the_saved_model(tmp_path: Path) -> None:
    model = compiled(pks.prune(mlp(), SPEC))
    fit(model, 1)
    model.save(tmp_path / "pruned.keras")
    loaded = keras.saving.load_model(tmp_path / "pruned.keras")
    (layer, _) = pks.pruned_layers(loaded)
    assert layer.spec.fingerprint == parse_hparams(SPEC).fingerprint
    # After step 8 of the schedule (k rounded to a whole number of the 512 values).
    expected = parse_hparams(SPEC).sparsity_at(8, "hidden/kernel")
    assert math.isclose(pks.weight_sparsity(loaded)["hidden/kernel"], expected, abs_tol=1 / 512)


def test_a_checkpoint_written_during_fit_holds_the_zeros(tmp_path: Path) -> None:
    model = compiled(pks.prune(mlp(), SPEC))
    path = tmp_path / "checkpoint.keras"
    # Listed first, so it saves before PruningCallback's own end-of-epoch work.
    saver = keras.callbacks.ModelCheckpoint(path)
    model.fit(
        X, Y, batch_size=16, epochs=1, shuffle=False, verbose=0,
        callbacks=[saver, pks.PruningCallback(SPEC)],
    )  # fmt: skip
    loaded = keras.saving.load_model(path)
    for layer in pks.pruned_layers(loaded):
        (pruned,) = layer.pruned_weights
        mask, weight = _numpy(pruned.mask), _numpy(pruned.weight)
        assert 0 < np.mean(mask == 0) < 1
        assert (weight[mask == 0] == 0).all()


class _StepLog(keras.callbacks.Callback):  # type: ignore[misc]
    """Before each step (after PruningCallback): the optimizer's iterations, the last update."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        (layer, _) = pks.pruned_layers(self.model)
        iterations = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.seen.append((iterations, int(_numpy(layer.last_mask_update_step))))


def test_steps_an_optimizer_skips_do_not_count() -> None:
    # The largest loss scale overflows the first gradients (the inputs are large): the
    # optimizer skips those steps, halving the scale each time, so its iterations fall
    # behind the batches.
    model = pks.prune(mlp(), SPEC)
    optimizer = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(1e-9), initial_scale=float(np.finfo(np.float32).max)
    )
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(True))
    log = _StepLog()
    model.fit(
        X * 10, Y, batch_size=16, epochs=1, shuffle=False, verbose=0,
        callbacks=[pks.PruningCallback(SPEC), log],
    )  # fmt: skip
    iterations = [seen[0] for seen in log.seen]
    assert iterations[:2] == [0, 0] and iterations[-1] >= 3  # skipped, then stepping
    spec = parse_hparams(SPEC)

    def last_update(step: int) -> int:  # r1.15's updates at every step up to `step`
        last = 0
        for each in range(step + 1):
            if spec.mask_update_due(each, last):
                last = each
        return last

    assert [seen[1] for seen in log.seen] == [last_update(step) for step in iterations]


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX's stateless training steps")
def test_a_custom_jax_step_holds_the_pruned_values_at_zero_and_a_split_one_is_warned() -> None:
    import jax  # noqa: PLC0415

    model = pks.prune(mlp(), "begin_pruning_step=0,initial_sparsity=0.5,target_sparsity=0.5")
    pks.prune_now(model)
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    optimizer.build(model.trainable_variables)

    def loss(trainable: Any, frozen: Any, x: Any) -> Any:
        y, frozen = model.stateless_call(trainable, frozen, x)
        return keras.ops.sum(y**2), frozen

    @jax.jit
    def step(trainable: Any, frozen: Any, optimizer_state: Any, x: Any) -> Any:
        (_, frozen), grads = jax.value_and_grad(loss, has_aux=True)(trainable, frozen, x)
        trainable, optimizer_state = optimizer.stateless_apply(optimizer_state, grads, trainable)
        return trainable, frozen, optimizer_state

    state = [[v.value for v in variables] for variables in (
        model.trainable_variables, model.non_trainable_variables, optimizer.variables
    )]  # fmt: skip
    for _ in range(3):  # momentum would move the pruned values
        state = list(step(*state, X))
    kernels = {
        str(v.path): value for v, value in zip(model.trainable_variables, state[0], strict=True)
    }
    masks = {
        str(v.path): value for v, value in zip(model.non_trainable_variables, state[1], strict=True)
    }
    kernel, mask = kernels["hidden/kernel"], masks["pruned_hidden/kernel_mask"]
    assert float(keras.ops.max(keras.ops.abs(kernel[mask == 0]))) == 0.0

    # An optimizer step traced apart from the forward pass cannot see the masks: warned.
    apart = jax.jit(optimizer.stateless_apply)
    with pytest.warns(UserWarning, match="ran in a stateless scope without the forward pass"):
        apart(state[2], [keras.ops.ones_like(t) for t in state[0]], state[0])


def test_an_ema_optimizer_s_final_weights_keep_the_zeros() -> None:
    # use_ema writes its moving averages into the weights as fit ends, past the constraint.
    model = pks.prune(mlp(), SPEC)
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9, use_ema=True),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    fit(model, 2)
    for layer in pks.pruned_layers(model):
        (pruned,) = layer.pruned_weights
        assert (_numpy(pruned.weight)[_numpy(pruned.mask) == 0] == 0).all()
    assert pks.weight_sparsity(model) == {"hidden/kernel": 0.75, "out/kernel": 0.5}


@keras.saving.register_keras_serializable(package="tests")
class _Block(keras.layers.Layer):  # type: ignore[misc]
    """A custom layer that prunes the Dense layer it holds."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.proj = pks.prune(keras.layers.Dense(4, name="proj"), SPEC)

    def call(self, x: Any) -> Any:
        return self.proj(x)


def test_pruned_layers_inside_custom_layers_and_wrappers_are_found_and_pruned() -> None:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16,))
    block = _Block(name="block")(inputs)
    sequence = keras.layers.Reshape((2, 8))(inputs)
    timed = keras.layers.TimeDistributed(pks.prune(keras.layers.Dense(2, name="each"), SPEC))
    outputs = keras.layers.Concatenate()([block, keras.layers.Flatten()(timed(sequence))])
    model = compiled(keras.Model(inputs, outputs))
    assert {layer.name for layer in pks.pruned_layers(model)} == {"pruned_proj", "pruned_each"}
    fit(model, 2)
    assert pks.weight_sparsity(model) == {"proj/kernel": 0.75, "each/kernel": 0.75}


class _Crash(keras.callbacks.Callback):  # type: ignore[misc]
    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        if epoch == 2:
            raise RuntimeError("interrupted")


def test_a_run_restored_by_backup_and_restore_goes_on_with_the_schedule(tmp_path: Path) -> None:
    # Updates every 7 steps of 8-step epochs: at 7, 14, 21 and 28, never at an epoch's start.
    spec = "begin_pruning_step=0,pruning_frequency=7,target_sparsity=0.75"

    def run(model: keras.Model, *callbacks: Any) -> None:
        model.fit(X, Y, batch_size=16, epochs=4, shuffle=False, verbose=0, callbacks=callbacks)

    whole = compiled(pks.prune(mlp(), spec))
    run(whole, pks.PruningCallback(spec))
    backup = str(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="interrupted"):
        run(
            compiled(pks.prune(mlp(), spec)),
            keras.callbacks.BackupAndRestore(backup),
            pks.PruningCallback(spec),
            _Crash(),
        )
    resumed = compiled(pks.prune(mlp(), spec))
    # PruningCallback first: BackupAndRestore restores the weights after its on_train_begin.
    run(resumed, pks.PruningCallback(spec), keras.callbacks.BackupAndRestore(backup))
    for got, expected in zip(pks.pruned_layers(resumed), pks.pruned_layers(whole), strict=True):
        assert int(_numpy(expected.last_mask_update_step)) == 28
        assert int(_numpy(got.last_mask_update_step)) == 28
        (mine, theirs) = (got.pruned_weights[0], expected.pruned_weights[0])
        np.testing.assert_array_equal(_numpy(mine.mask), _numpy(theirs.mask))


def test_summaries_every_n_steps_count_the_steps_an_optimizer_takes(tmp_path: Path) -> None:
    # No update is due (so nothing else reads the step), and the first steps are skipped.
    spec = "begin_pruning_step=1000,target_sparsity=0.5"
    model = pks.prune(mlp(), spec)
    optimizer = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(1e-9), initial_scale=float(np.finfo(np.float32).max)
    )
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(True))
    log = _StepLog()
    callback = pks.PruningCallback(spec, log_dir=str(tmp_path), update_freq=4)
    model.fit(
        X * 10, Y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[callback, log]
    )
    from tensorboard.backend.event_processing import event_accumulator  # noqa: PLC0415

    events = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    events.Reload()
    written = sorted({event.step for event in events.Tensors("pruning/sparsity")})
    iterations = [seen[0] for seen in log.seen]
    assert iterations[:2] == [0, 0]  # skipped
    final = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    # Every fourth step the optimizer reached, the last one included.
    assert written == sorted({s for s in [*iterations, final] if s % 4 == 0})
    assert len(written) >= 2
