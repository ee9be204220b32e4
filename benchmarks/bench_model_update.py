"""A whole model's mask update: ours vs TensorFlow Model Optimization's `prune_low_magnitude`.

Weights: the kernels of ResNet-50 (53 convolutions and the classifier) and of a BERT-base
encoder (12 layers of Q, K, V, output, and the two feed-forward kernels), 109M float32
values with normal random values (fixed seed, the same in both processes). Sparsity 0.9.

- ours: `pruning_spec.backends.tensorflow.Pruner.force_update` (every mask and threshold,
  and the zeroing of the pruned values) in one `tf.function`;
- tfmot: one `pruning_impl.Pruning` per weight, as each `PruneLowMagnitude` wrapper holds,
  and what the wrapper's `call` runs on an update step: `conditional_mask_update()`, then
  `weight_mask_op()` (weights = weights * mask, the same zeroing ours does), all in one
  `tf.function` (ConstantSparsity(0.9), frequency 1, so every call updates). It runs in
  its own process, in the benchmark-only environment `.venv-bench` (tensorflow-cpu 2.21,
  tf-keras 2.21, tensorflow-model-optimization 0.8.1; `make bench` creates it), with
  TF_USE_LEGACY_KERAS=1.

Each side reports the median of several updates after a warm-up, each starting from the
dense random values (restored, untimed, before every update: on the zeros an update leaves,
a sort has far less to do), and the number of values each mask keeps; the counts must be
equal (both keep round(n * 0.1) values here).
Target: ours >= 20x faster.

    python benchmarks/bench_model_update.py [--quick] [--json PATH] [--tfmot-python PATH]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import model_shapes

SPARSITY = 0.9
SEED = 7
SPEEDUP_TARGET = 20.0
TFMOT_PYTHON = Path(__file__).resolve().parents[1] / ".venv-bench" / "bin" / "python"


def make_values(shapes: list[tuple[int, ...]]) -> list[np.ndarray[Any, np.dtype[np.float32]]]:
    rng = np.random.default_rng(SEED)
    return [rng.standard_normal(shape, dtype=np.float32) for shape in shapes]


# One side of the comparison, run in a worker process.


def ours_update(variables: list[Any], tf: Any) -> tuple[Any, list[Any]]:
    from pruning_spec.backends.tensorflow import Pruner  # noqa: PLC0415 - main venv only

    spec = f"begin_pruning_step=0,pruning_frequency=1,target_sparsity={SPARSITY},"
    spec += "sparsity_function_end_step=1"
    pruner = Pruner(spec, variables)
    step = tf.constant(1, tf.int64)
    return tf.function(lambda: pruner.force_update(step)), pruner.masks


def tfmot_update(variables: list[Any], tf: Any) -> tuple[Any, list[Any]]:
    from tensorflow_model_optimization.python.core.sparsity.keras import (  # noqa: PLC0415
        pruning_impl,
        pruning_schedule,
    )

    step = tf.Variable(1, dtype=tf.int64)
    schedule = pruning_schedule.ConstantSparsity(SPARSITY, begin_step=0, frequency=1)
    masks, prunings = [], []
    for variable in variables:
        mask = tf.Variable(tf.ones_like(variable), trainable=False)
        threshold = tf.Variable(tf.zeros([], variable.dtype), trainable=False)
        masks.append(mask)
        prunings.append(
            pruning_impl.Pruning(
                training_step_fn=lambda: step,
                pruning_vars=[(variable, mask, threshold)],
                pruning_schedule=schedule,
                block_size=(1, 1),
                block_pooling_type="AVG",
            )
        )

    @tf.function
    def update() -> None:
        for pruning in prunings:  # what PruneLowMagnitude.call runs on an update step
            with tf.control_dependencies([pruning.conditional_mask_update()]):
                pruning.weight_mask_op()

    return update, masks


def worker(implementation: str, quick: bool, repeats: int) -> int:
    import tensorflow as tf  # noqa: PLC0415

    values = make_values(model_shapes(quick))
    variables = [tf.Variable(v) for v in values]
    build = ours_update if implementation == "ours" else tfmot_update
    update, masks = build(variables, tf)
    dense = [tf.constant(v) for v in values]

    @tf.function
    def restore() -> None:
        for variable, value in zip(variables, dense, strict=True):
            variable.assign(value)

    seconds = timed_from_dense(update, restore, repeats)
    record = {
        "implementation": implementation,
        "seconds": seconds,
        "repeats": repeats,
        "values": int(sum(v.size for v in values)),
        "weights": len(values),
        "kept": [int(np.count_nonzero(m.numpy())) for m in masks],
        "tensorflow": tf.__version__,
    }
    print(json.dumps(record))
    return 0


def timed_from_dense(update: Any, restore: Any, repeats: int) -> float:
    """Median time of `update`, each run (and one warm-up) starting from the dense values.

    An update zeroes 90% of the values; run again on them, a sort has far less to do.
    """
    samples = []
    for _ in range(repeats + 1):
        restore()
        start = time.perf_counter()
        update()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples[1:])


# The comparison.


def run_worker(python: Path, implementation: str, quick: bool, repeats: int) -> dict[str, Any]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if implementation == "tfmot":
        env["TF_USE_LEGACY_KERAS"] = "1"
    command = [str(python), __file__, "--worker", implementation, "--repeats", str(repeats)]
    done = subprocess.run(
        command + (["--quick"] if quick else []),
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the {implementation} worker failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 of the weights, 2 runs (smoke)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--tfmot-python", type=Path, default=TFMOT_PYTHON)
    parser.add_argument("--worker", choices=("ours", "tfmot"), help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    if args.worker:
        return worker(args.worker, args.quick, repeats)

    from _common import Figure, Report, load_average, machine  # noqa: PLC0415

    report = Report("model_update", args.quick)
    print(f"machine: {machine()} ({load_average()})")
    ours = run_worker(Path(sys.executable), "ours", args.quick, repeats)
    print(
        f"{ours['weights']} weights, {ours['values']:,} float32 values, sparsity {SPARSITY}, "
        f"median of {repeats} updates after a warm-up"
    )
    if not args.tfmot_python.exists():
        report.note(
            f"tfmot: not measured, {args.tfmot_python} does not exist (`make bench` creates "
            f"it); ours alone: {ours['seconds']:.3f} s per update"
        )
        report.write(args.json, ours=ours)
        return 0
    tfmot = run_worker(args.tfmot_python, "tfmot", args.quick, repeats)
    if ours["kept"] != tfmot["kept"]:
        raise SystemExit(f"the masks differ: ours keep {ours['kept']}, tfmot {tfmot['kept']}")
    speedup = tfmot["seconds"] / ours["seconds"]
    report.add(
        Figure(
            f"mask update, ResNet-50 + BERT-base kernels ({ours['values'] / 1e6:.0f}M)",
            ours["seconds"],
            tfmot["seconds"],
            "s",
            speedup,
            f">= {SPEEDUP_TARGET:g}x",
            speedup >= SPEEDUP_TARGET,
        )
    )
    print(f"masks keep the same number of values in all {ours['weights']} weights")
    report.write(args.json, ours=ours, tfmot=tfmot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
