"""What pruning costs a Keras training step on which no mask update happens.

The same Keras 3 MLP (784-512-512-10, batch 128, SGD with momentum, random data) is
trained for one epoch of `STEPS` steps, plain and with pruning attached (`prune` plus
`PruningCallback`; the spec's first update is far beyond the run, so every measured step
is one without an update, but each still pays for the callback and for keeping the pruned
values at zero). The two models alternate, one `fit` of one epoch each, after a warm-up
epoch of each; each figure is the median. Target: pruned at most 5% slower (steps/s ratio
>= 0.95).

It runs on the Keras backend KERAS_BACKEND names (default: tensorflow), and says which in
the figure's name and the JSON's `keras_backend`. What a pruned step adds differs:

  - tensorflow: the mask constraint the optimizer applies after every step (`value * mask`,
    one element-wise pass over each kernel);
  - jax: the forward pass masks each kernel inside the stateless call (`where(mask != 0, w,
    0)`, and its gradient), and the masks and pruning records travel in and out of the
    jitted step as non-trainable state.

On JAX, the first `fit` of each model traces and compiles its train step (timed and noted,
never in the figure); the benchmark fails unless no JAX compilation happens while the
epochs are timed.

    python benchmarks/bench_train_step.py [--quick] [--json PATH]
    KERAS_BACKEND=jax python benchmarks/bench_train_step.py [--quick] [--json PATH]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import keras
import numpy as np
from _common import Figure, Report, load_average, machine, median_times

from pruning_spec.backends import keras as pks

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


def software(backend: str) -> str:
    """Keras and the backend's framework, with their versions."""
    framework = {"jax": "jax", "tensorflow": "tensorflow-cpu"}.get(backend, backend)
    try:
        version = metadata.version(framework)
    except metadata.PackageNotFoundError:
        version = "?"
    return f"Keras {keras.__version__} on {backend} ({framework} {version})"


@contextmanager
def counted_compiles(backend: str) -> Iterator[list[float]]:
    """The durations of JAX's backend compilations while the block runs (JAX only)."""
    durations: list[float] = []
    if backend != "jax":
        yield durations
        return
    import jax  # noqa: PLC0415 - only on Keras's JAX backend

    def listener(event: str, duration_secs: float, **_: str | int) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            durations.append(duration_secs)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield durations
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 steps an epoch, 2 runs (smoke)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    backend = str(keras.backend.backend())
    steps, repeats = (QUICK_STEPS, 2) if args.quick else (STEPS, 41)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps * BATCH, 784), dtype=np.float32)
    y = rng.integers(0, 10, steps * BATCH)

    plain = compiled(mlp())
    pruned = compiled(pks.prune(mlp(), NO_UPDATE_SPEC))
    callback = pks.PruningCallback(NO_UPDATE_SPEC)

    def epoch(model: Any, callbacks: list[Any]) -> None:
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)

    calls = {"plain": lambda: epoch(plain, []), "pruned": lambda: epoch(pruned, [callback])}
    # The first fit of each traces (and on JAX compiles) its train step: timed apart.
    first = {name: seconds(call) for name, call in calls.items()}
    with counted_compiles(backend) as compiles:
        times = median_times(calls, repeats, warmups=1)
    assert not compiles, f"{len(compiles)} JAX compilation(s) while the epochs were timed"
    last = keras.ops.convert_to_numpy(pks.pruned_layers(pruned)[0].last_mask_update_step)
    assert int(last) == 0, f"a mask update ran at step {int(last)}: the figure would not be clean"

    report = Report("train_step", args.quick)
    print(f"machine: {machine()}, {software(backend)} ({load_average()})")
    print(f"MLP 784-512-512-10, batch {BATCH}, {steps} steps an epoch, median of {repeats} epochs")
    ours, baseline = steps / times["pruned"], steps / times["plain"]
    ratio = ours / baseline
    report.add(
        Figure(
            f"training steps/s on {backend}, pruning attached vs plain",
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
    report.note(
        f"train step on {backend}: the first fit (tracing, compiling, one epoch) took "
        f"{first['plain']:.2f} s plain, {first['pruned']:.2f} s pruned; not in the figure"
    )
    report.write(
        args.json,
        keras_backend=backend,
        software=software(backend),
        seconds_per_epoch=times,
        first_fit_seconds=first,
        steps=steps,
        repeats=repeats,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
