"""A custom `tf.function` training loop with `Pruner` under MirroredStrategy on two CPUs.

Run by `test_pruner.py` in a subprocess: the two logical devices must be configured
before TensorFlow initializes. Prints one JSON line of what the test checks.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

SPEC = "begin_pruning_step=0,pruning_frequency=2,target_sparsity=0.75,sparsity_function_end_step=10"


def main() -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from pruning_spec.backends.tensorflow import Pruner  # noqa: PLC0415 - after the devices

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        weight = tf.Variable(np.random.RandomState(0).randn(16, 8).astype("float32"))
        optimizer = tf.keras.optimizers.SGD(0.01, momentum=0.9)
        optimizer.build([weight])  # slots before tracing, as tf.distribute asks
        pruner = Pruner(SPEC, [weight])
    data = np.random.RandomState(1).randn(32, 16).astype("float32")
    batches = tf.data.Dataset.from_tensor_slices(data).batch(8).repeat(3)

    @tf.function
    def train_step(batch: tf.Tensor) -> None:
        def replica_step(inputs: tf.Tensor) -> None:
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(inputs @ pruner.masked(weight) - 1.0))
            optimizer.apply_gradients([(tape.gradient(loss, weight), weight)])

        strategy.run(replica_step, args=(batch,))
        pruner.apply_masks()
        pruner.update(optimizer.iterations)

    for batch in strategy.experimental_distribute_dataset(batches):
        train_step(batch)
    masks = [v.numpy() for v in strategy.experimental_local_results(pruner.masks[0])]
    weights = [v.numpy() for v in strategy.experimental_local_results(weight)]
    print(
        json.dumps(
            {
                "replicas": strategy.num_replicas_in_sync,
                "masks_equal": all(np.array_equal(m, masks[0]) for m in masks),
                "weights_equal": all(np.array_equal(w, weights[0]) for w in weights),
                "sparsity": float(1 - masks[0].mean()),
                "largest_pruned": float(np.abs(weights[0] * (1 - masks[0])).max()),
                "last_update": int(pruner.last_mask_update_step.numpy()),
                "steps": int(optimizer.iterations.numpy()),
            }
        )
    )


if __name__ == "__main__":
    main()
