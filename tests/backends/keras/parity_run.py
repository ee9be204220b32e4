"""One pruned training on the Keras backend of KERAS_BACKEND: every mask and threshold, recorded.

Run by `test_parity.py`, once per backend, in processes of their own (Keras picks its
backend at import):

    KERAS_BACKEND=jax python parity_run.py OUT.npz [--epochs N] [--save F] [--resume F]
        [--learning-rate R] [--data-parallel]

`--save F` saves the model as the first epoch ends (after the pruning's own end-of-epoch
work), and the run goes on: `--resume F --epochs N-1` on any backend must then record
what the whole run recorded from there.

The model's initial weights come from numpy (the same on every backend); the optimizer's
learning rate is 0, so the weights change only by pruning, and every backend's masks and
thresholds must be equal to the bit. The spec exercises every kernel: element-wise with
threshold decay, blocks (AVG), a global group with floors, N:M. The record holds, at each
mask update, each pruned weight's mask, threshold and value, and at the end the step.
With `--data-parallel` (JAX, XLA_FLAGS=--xla_force_host_platform_device_count=2) the model
is replicated over two devices by `keras.distribution.DataParallel`, and each recorded
value must be the same on both, to the bit.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

SPEC = (
    "begin_pruning_step=2,end_pruning_step=40,pruning_frequency=3,"
    "sparsity_function_begin_step=2,sparsity_function_end_step=30,target_sparsity=0.8,"
    "threshold_decay=0.5,block_pooling_function=AVG,"
    "weight_sparsity_map=[element/kernel:0.7],block_dims_map=[block/kernel:2x4],"
    "global_group=[left|right:pair@0.6],min_weight_density=0.05,n_m_map=[nm/kernel:2/4]"
)
WIDTH = 24


def model() -> Any:
    import keras  # noqa: PLC0415 - after KERAS_BACKEND is set

    inputs = keras.Input((WIDTH,))
    x = keras.layers.Dense(WIDTH, activation="relu", name="element")(inputs)
    x = keras.layers.Dense(WIDTH, activation="relu", name="block")(x)
    left = keras.layers.Dense(WIDTH, name="left")(x)
    right = keras.layers.Dense(WIDTH * 2, name="right")(x)
    x = keras.layers.Concatenate()([left, right])
    x = keras.layers.Dense(WIDTH, activation="relu", name="nm")(x)
    built = keras.Model(inputs, keras.layers.Dense(4, name="out")(x))
    rng = np.random.default_rng(0)
    # Ties (repeated magnitudes) and exact zeros, where a selection off by one would show;
    # small enough that training at --learning-rate does not diverge.
    built.set_weights(
        [np.round(rng.normal(size=w.shape) * 0.2, 3).astype(np.float32) for w in built.weights]
    )
    return built


class Recorder:
    """At each mask update and epoch end: every pruned weight's mask, threshold and value."""

    def __init__(self) -> None:
        self.record: dict[str, np.ndarray] = {}

    def callback(self) -> Any:
        import keras  # noqa: PLC0415

        from pruning_spec.backends import keras as pks  # noqa: PLC0415

        recorder = self

        class Record(keras.callbacks.Callback):  # type: ignore[misc]
            def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
                self._take(None)

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                self._take(None)
                self._take(f"epoch{epoch}")

            def _take(self, key: str | None) -> None:
                sync = getattr(self.model, "jax_state_sync", None)
                if sync is not None:
                    sync()
                layers = pks.pruned_layers(self.model)
                step = int(keras.ops.convert_to_numpy(layers[0].last_mask_update_step.value))
                key = key or str(step)
                if any(name.startswith(f"{key}/") for name in recorder.record):
                    return  # as the update left them, not as training changed them since
                for layer in layers:
                    for pruned in layer.pruned_weights:
                        for part in ("mask", "threshold", "weight"):
                            value = _on_every_device(getattr(pruned, part).value)
                            recorder.record[f"{key}/{pruned.name}/{part}"] = value

        return Record()


def _on_every_device(value: Any) -> np.ndarray:
    """The value, after checking that every device holding a copy holds the same bits."""
    shards = getattr(value, "addressable_shards", None)
    if shards is None:  # a TensorFlow tensor
        return np.asarray(value)
    copies = [np.asarray(shard.data) for shard in shards]
    for copy in copies[1:]:
        if copy.shape != copies[0].shape or copy.tobytes() != copies[0].tobytes():
            raise AssertionError(f"the devices hold different values: {copies}")
    DEVICES.add(len(copies))
    return copies[0]


DEVICES: set[int] = set()


def _SaveFirstEpoch(path: str) -> Any:  # noqa: N802 - a class made once Keras is imported
    import keras  # noqa: PLC0415

    class SaveFirstEpoch(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if epoch == 0:
                self.model.save(path)

    return SaveFirstEpoch()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--save", help="a .keras file to save as the first epoch ends")
    parser.add_argument("--resume")
    parser.add_argument("--learning-rate", type=float, default=0.0)
    parser.add_argument("--data-parallel", action="store_true")
    args = parser.parse_args()

    import keras  # noqa: PLC0415

    from pruning_spec.backends import keras as pks  # noqa: PLC0415

    if args.data_parallel:
        import jax  # noqa: PLC0415

        devices = jax.devices()
        if len(devices) != 2:
            raise SystemExit(f"--data-parallel needs 2 devices, not {devices}")
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))

    if args.resume:
        pruned = keras.saving.load_model(args.resume)
    else:
        pruned = pks.prune(model(), SPEC)
        optimizer = keras.optimizers.SGD(args.learning_rate, momentum=0.9)
        pruned.compile(optimizer=optimizer, loss="mse")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, WIDTH)).astype(np.float32)
    y = rng.normal(size=(64, 4)).astype(np.float32)
    recorder = Recorder()
    callbacks = [pks.PruningCallback(SPEC), recorder.callback()]
    if args.save:
        callbacks.append(_SaveFirstEpoch(args.save))
    pruned.fit(
        x, y, batch_size=8, epochs=args.epochs, shuffle=False, verbose=0, callbacks=callbacks
    )
    record = dict(recorder.record)
    record["iterations"] = np.asarray(int(pruned.optimizer.iterations.numpy()))
    record["backend"] = np.asarray(keras.backend.backend())
    record["devices"] = np.asarray(sorted(DEVICES) or [1])
    np.savez(args.out, **record)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
