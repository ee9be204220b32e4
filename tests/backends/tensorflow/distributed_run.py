"""One pruned Keras training run, in a process of its own, for `test_distribute.py`.

TensorFlow fixes its devices when it first initializes, and a `MultiWorkerMirroredStrategy`
worker reads `TF_CONFIG` and starts a server for its process, so neither a run over two
logical CPUs nor a worker can share a process with other tests. The test starts this
script once per run (twice for two workers) and compares the `.npz` files they write:

    python distributed_run.py single|mirrored|multiworker --lr 0.0 --out run.npz

Every run trains the same model (Dense 16->32->4 with initial weights from a fixed numpy
seed) on the same data in the same global batches, with SGD at the given learning rate,
under the default strategy (`single`), a `MirroredStrategy` over two logical CPUs
(`mirrored`) or a `MultiWorkerMirroredStrategy` set up by `TF_CONFIG` (`multiworker`, one
replica per worker).

Keys of the `.npz` file (`<r>`: the index of a replica local to this process):
  `<weight name>/{mask,threshold,weight}/<r>`: each pruned weight's variables at the end;
  `<variable path>/<r>`: every other model variable at the end (biases, update steps);
  `trace/<weight name>/{mask,threshold,weight}/<r>`: the same after every training step
    (stacked, step 1 first), read after the pruning callback's update;
  `trace/last_mask_update_step/<r>`: the first layer's last update step after every step;
  `initial/<weight name>`: the pruned weight right after `prune`, before training;
  `weight_sparsity/<weight name>`: `pks.weight_sparsity` at the end;
  `history_sparsity`: the `sparsity` the callback logs at each epoch's end;
  `iterations`, `num_replicas` (in sync, over all workers), `local_replicas`.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras.src.backend.tensorflow import trainer as keras_tf_trainer

from pruning_spec.backends.tensorflow import keras as pks

SPEC = "begin_pruning_step=0,pruning_frequency=4,target_sparsity=0.75,sparsity_function_end_step=40"
# The same schedule with one threshold over both kernels, and a floor for the small one.
GLOBAL_SPEC = SPEC + ",pruning_scope=GLOBAL,min_weight_density=0.1"
N_M_SPEC = SPEC + ",n_m_map=[hidden:2/4]"  # the hidden kernel 2:4 along its 16 inputs
SAMPLES = 256
GLOBAL_BATCH = 32
EPOCHS = 6  # 8 steps an epoch, 48 in all: mask updates at steps 4, 8, ..., 48
INPUTS, HIDDEN, OUTPUTS = 16, 32, 4


def make_strategy(mode: str) -> tf.distribute.Strategy:
    if mode == "single":
        return tf.distribute.get_strategy()
    if mode == "mirrored":
        (cpu,) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    if mode == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown mode {mode!r}")


def initial_weights() -> list[np.ndarray]:
    """Kernels and biases of the two Dense layers, the same in every run."""
    rng = np.random.RandomState(0)
    shapes = [(INPUTS, HIDDEN), (HIDDEN,), (HIDDEN, OUTPUTS), (OUTPUTS,)]
    return [rng.normal(0.0, 0.5, shape).astype(np.float32) for shape in shapes]


def dataset() -> tf.data.Dataset:
    """The same global batches in the same order in every run (no shuffling)."""
    rng = np.random.RandomState(1)
    x = rng.normal(size=(SAMPLES, INPUTS)).astype(np.float32)
    y = rng.normal(size=(SAMPLES, OUTPUTS)).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH, drop_remainder=True)
    options = tf.data.Options()
    # Each global batch is split between the replicas (and workers), as MirroredStrategy does.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options)


def work_around_keras_multi_worker_fit(model: Any, strategy: tf.distribute.Strategy) -> None:
    """Lets Keras 3.15's `fit` run under `MultiWorkerMirroredStrategy` (pruning or not).

    A plain Keras model's `fit` fails there twice (tensorflow/tensorflow#72388 reports the second):
    `_maybe_symbolic_build` hands the first (x, y) batch, a tuple of `PerReplica`, to
    `strategy.reduce`, which takes a single value ("Attempt to convert a value
    (PerReplica...) to a Tensor"); then `reduce_per_replica` reduces the scalar logs along
    `axis=0` ("Invalid reduction dimension 0 for input with 0 dimensions"). The symbolic
    build only needs the batch's shapes (one local replica's, the same on every worker),
    and the logs are averaged over all replicas without an axis. Training is untouched.
    """

    def symbolic_build(iterator: Any = None, data_batch: Any = None) -> None:
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = keras.tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0], next(batches)
                )
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    original = keras_tf_trainer.reduce_per_replica

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction not in ("auto", "mean"):
            return original(values, strategy, reduction)
        return keras.tree.map_structure(
            lambda v: (
                strategy.reduce("MEAN", v, axis=None)
                if isinstance(v, tf.distribute.DistributedValues)
                else v
            ),
            values,
        )

    model._maybe_symbolic_build = symbolic_build
    keras_tf_trainer.reduce_per_replica = reduce_per_replica


def local(strategy: tf.distribute.Strategy, variable: Any) -> list[np.ndarray]:
    """A Keras variable's value on each replica of this process."""
    return [np.asarray(v) for v in strategy.experimental_local_results(variable.value)]


class Trace(keras.callbacks.Callback):  # type: ignore[misc]
    """Masks, thresholds and weights on every local replica after each step.

    Listed after `PruningCallback`, which updates the masks for step t before step t+1
    (and at the end of an epoch), so it records there, once per step.
    """

    def __init__(self, strategy: tf.distribute.Strategy) -> None:
        super().__init__()
        self.strategy = strategy
        self.values: dict[str, list[list[np.ndarray]]] = {}
        self.recorded_step = 0

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._record()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._record()

    def _record(self) -> None:
        step = int(self.model.optimizer.iterations.numpy())
        if step == self.recorded_step:
            return
        self.recorded_step = step
        layers = pks.pruned_layers(self.model)
        for layer in layers:
            for pruned in layer.pruned_weights:
                for part in ("mask", "threshold", "weight"):
                    self._add(f"trace/{pruned.name}/{part}", getattr(pruned, part))
        self._add("trace/last_mask_update_step", layers[0].last_mask_update_step)

    def _add(self, key: str, variable: Any) -> None:
        self.values.setdefault(key, []).append(local(self.strategy, variable))


def run(mode: str, learning_rate: float, out: str, spec: str = SPEC) -> None:
    strategy = make_strategy(mode)
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((INPUTS,)),
                keras.layers.Dense(HIDDEN, activation="relu", name="hidden"),
                keras.layers.Dense(OUTPUTS, name="output"),
            ]
        )
        model.set_weights(initial_weights())
        model = pks.prune(model, spec)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse")
    if mode == "multiworker":
        work_around_keras_multi_worker_fit(model, strategy)

    results: dict[str, np.ndarray] = {}
    for layer in pks.pruned_layers(model):
        for pruned in layer.pruned_weights:
            results[f"initial/{pruned.name}"] = np.asarray(pruned.weight)

    trace = Trace(strategy)
    callbacks = [pks.PruningCallback(spec), trace]
    history = model.fit(dataset(), epochs=EPOCHS, shuffle=False, verbose=0, callbacks=callbacks)

    saved = set()
    for layer in pks.pruned_layers(model):
        for pruned in layer.pruned_weights:
            for part in ("mask", "threshold", "weight"):
                variable = getattr(pruned, part)
                saved.add(id(variable))
                for replica, value in enumerate(local(strategy, variable)):
                    results[f"{pruned.name}/{part}/{replica}"] = value
    for variable in model.variables:
        if id(variable) not in saved:
            for replica, value in enumerate(local(strategy, variable)):
                results[f"{variable.path}/{replica}"] = value
    for key, steps in trace.values.items():
        for replica in range(len(steps[0])):
            results[f"{key}/{replica}"] = np.stack([values[replica] for values in steps])
    for name, sparsity in pks.weight_sparsity(model).items():
        results[f"weight_sparsity/{name}"] = np.asarray(sparsity, np.float64)
    results["history_sparsity"] = np.asarray(history.history["sparsity"], np.float64)
    results["iterations"] = np.asarray(model.optimizer.iterations.numpy(), np.int64)
    results["num_replicas"] = np.asarray(strategy.num_replicas_in_sync, np.int64)
    results["local_replicas"] = np.asarray(
        len(local(strategy, model.optimizer.iterations)), np.int64
    )
    np.savez(out, allow_pickle=False, **results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["single", "mirrored", "multiworker"])
    parser.add_argument("--lr", type=float, required=True, help="the SGD learning rate")
    parser.add_argument("--out", required=True, help="the .npz file to write")
    specs = parser.add_mutually_exclusive_group()
    specs.add_argument("--global", dest="global_scope", action="store_true", help="GLOBAL_SPEC")
    specs.add_argument("--n-m", dest="n_m", action="store_true", help="N_M_SPEC")
    args = parser.parse_args()
    tf.get_logger().setLevel("ERROR")
    spec = GLOBAL_SPEC if args.global_scope else N_M_SPEC if args.n_m else SPEC
    run(args.mode, args.lr, args.out, spec)


if __name__ == "__main__":
    main()
