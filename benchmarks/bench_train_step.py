"""What pruning costs a Keras training step on which no mask update happens.

The same Keras 3 MLP (784-512-512-10, batch 128, SGD with momentum, random data) is
trained for one epoch of `STEPS` steps, plain and with pruning attached (`prune` plus
`PruningCallback`; the spec's first update is far beyond the run, so every measured step
is one without an update, but each still pays for the callback and the mask constraint the
optimizer applies). The two models alternate, one epoch each, after a warm-up epoch;
each figure is the median. Target: pruned at most 5% slower (steps/s ratio >= 0.95).

    python benchmarks/bench_train_step.py [--quick] [--json PATH]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import argparse
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
from _common import Figure, Report, load_average, machine, median_times

from pruning_spec.backends.tensorflow import keras as pks

BATCH = 128
STEPS, QUICK_STEPS = 50, 10
MAX_SLOWDOWN = 0.05
NO_UPDATE_SPEC = "begin_pruning_step=1000000,target_sparsity=0.9"


def mlp() -> Any:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((784,))
    hidden = keras.layers.Dense(512, activation="relu")(inputs)
    hidden = keras.layers.Dense(512, activation="relu")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(10)(hidden))
    return model


def compiled(model: Any) -> Any:
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 steps an epoch, 2 runs (smoke)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    steps, repeats = (QUICK_STEPS, 2) if args.quick else (STEPS, 41)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps * BATCH, 784), dtype=np.float32)
    y = rng.integers(0, 10, steps * BATCH)

    plain = compiled(mlp())
    pruned = compiled(pks.prune(mlp(), NO_UPDATE_SPEC))
    callback = pks.PruningCallback(NO_UPDATE_SPEC)

    def epoch(model: Any, callbacks: list[Any]) -> None:
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)

    times = median_times(
        {"plain": lambda: epoch(plain, []), "pruned": lambda: epoch(pruned, [callback])},
        repeats,
        warmups=1,
    )
    updates = int(pks.pruned_layers(pruned)[0].last_mask_update_step.numpy())
    assert updates == 0, f"a mask update ran at step {updates}: the figure would not be clean"

    report = Report("train_step", args.quick)
    print(f"machine: {machine()} ({load_average()})")
    print(f"MLP 784-512-512-10, batch {BATCH}, {steps} steps an epoch, median of {repeats} epochs")
    ours, baseline = steps / times["pruned"], steps / times["plain"]
    ratio = ours / baseline
    report.add(
        Figure(
            "training steps/s, pruning attached vs plain",
            ours,
            baseline,
            "steps/s",
            ratio,
            f">= {1 - MAX_SLOWDOWN:.2f}x",
            ratio >= 1 - MAX_SLOWDOWN,
        )
    )
    extra = (1 / ratio - 1) * 100
    more_or_less = "more" if extra > 0 else "less"
    print(f"a pruned step takes {abs(extra):.1f}% {more_or_less} time than a plain one")
    report.write(args.json, seconds_per_epoch=times, steps=steps, repeats=repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
