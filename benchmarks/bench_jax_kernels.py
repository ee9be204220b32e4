"""How fast the JAX kernels' mask updates are (`pruning_spec.backends.jax`), on JAX's CPU.

Figures (issue 18):
  - one element-wise mask update (`_kernels.element_mask`: radix select on the keys, then
    `|w| >= T`) of a 4096x4096 float32 weight at sparsity 0.9, against r1.15's algorithm
    written in JAX (`jax.lax.top_k` over all |w|, the k-th largest picked: the baseline)
    and against one element-wise pass (`(abs(w) >= c).astype(w.dtype)`, the floor).
    Targets: at least 20x faster than the baseline, at most 4x the floor;
  - the same at 1M values and at sparsity 0.5 (informative);
  - the same update end to end through Keras 3 on JAX: `KerasUpdater.update(step)`
    (`pruning_spec.backends.jax._update`, what `PruningCallback` and `prune_now` run) on
    the kernel of a built `Dense` layer wrapped by `pks.prune`, holding the same weight:
    the host schedule, one jitted call (the pruned values zeroed, threshold and mask,
    the weight zeroed where pruned) and the assignment of the threshold, the mask, the
    weight and the last update step. Against the same two baselines, with the same
    targets, and against the kernel alone (informative: what the Keras path adds).
    Before each timed update the variables are given back the dense weight, a mask of
    ones and a threshold of 0 (untimed), so every update ranks what the kernel ranks;
  - a 2:4 N:M mask along axis 0 of the same weight (`_n_m.n_m_mask`) against the floor
    (target: at most 3x, as for the TensorFlow kernel) and against `jax.lax.top_k` over
    each group, the groups' axis moved last (informative).
Every function is jitted and compiled before timing (the compile times are noted); each
time is the median of several runs after a warm-up, the functions interleaved
(`_common.median_times`), each run waiting for its result (the Keras update: for every
variable it assigns). The benchmark fails (AssertionError) unless our threshold and mask
equal the baseline's exactly, the Keras update's equal the kernel's (and the N:M mask the
numpy reference's).

    python benchmarks/bench_jax_kernels.py [--quick] [--json PATH]
"""

from __future__ import annotations

import os

# The Keras figure is of Keras's JAX backend, whatever the environment says.
os.environ["KERAS_BACKEND"] = "jax"

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np
from _common import Figure, Report, load_average, machine, median_times

from pruning_spec import _n_m as reference
from pruning_spec.backends import keras as pks
from pruning_spec.backends.jax import _kernels, _n_m
from pruning_spec.backends.jax._update import KerasUpdater

SIZES = {"1M": (1024, 1024), "16.7M": (4096, 4096)}
QUICK_SIZES = {"0.26M": (512, 512)}
TARGET_SIZE = "16.7M"
SPARSITIES = (0.5, 0.9)
TARGET_SPARSITY = 0.9
DECAY = 0.0  # r1.15's default threshold_decay
SEED = 20191015
FLOOR_CONSTANT = 1.0
SPEEDUP_TARGET = 20.0  # ours at least this many times faster than the top_k baseline
FLOOR_TARGET = 4.0  # the mask update at most this many times one element-wise pass
N_M_FLOOR_TARGET = 3.0  # the 2:4 mask at most this many times one element-wise pass
N, M = 2, 4
# The Keras update's spec and step: past the schedule's end, at exactly TARGET_SPARSITY
# (threshold_decay is r1.15's default 0, as DECAY).
KERAS_SPEC = f"target_sparsity={TARGET_SPARSITY},sparsity_function_end_step=100"
KERAS_STEP = 1000


def make_weights(shape: tuple[int, int]) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.random.default_rng(SEED).standard_normal(shape, dtype=np.float32)


# The functions, jitted.


@jax.jit
def ours(weights: jax.Array, sparsity: jax.Array, old: jax.Array) -> tuple[jax.Array, jax.Array]:
    return _kernels.element_mask(weights, sparsity, old, DECAY)


@jax.jit
def baseline(
    weights: jax.Array, sparsity: jax.Array, old: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """r1.15's `_update_mask` (and tfmot's) in JAX: a full top_k of |w| for the k-th largest."""
    magnitudes = jnp.abs(weights)
    size = magnitudes.size
    k = jnp.round(np.float32(size) * (np.float32(1.0) - sparsity)).astype(jnp.int32)
    values, _ = jax.lax.top_k(magnitudes.reshape(-1), size)
    current = values[k - 1]
    smoothed = current * np.float32(1.0 - DECAY) + old * np.float32(DECAY)
    return smoothed, (magnitudes >= smoothed).astype(weights.dtype)


@jax.jit
def floor(weights: jax.Array, constant: jax.Array) -> jax.Array:
    """One element-wise pass over the weight: the least any mask update must do."""
    return (jnp.abs(weights) >= constant).astype(weights.dtype)


@jax.jit
def ours_n_m(weights: jax.Array) -> jax.Array:
    return _n_m.n_m_mask(weights, N, M, 0, "REJECT")


@jax.jit
def baseline_n_m(weights: jax.Array) -> jax.Array:
    """top_k of |w| over each group of M along axis 0, moved last; one_hot; moved back."""
    rows, cols = weights.shape
    last = jnp.transpose(jnp.abs(weights).reshape(rows // M, M, cols), (0, 2, 1))
    _, indices = jax.lax.top_k(last, N)  # equal values: the lower index first
    kept = jnp.sum(jax.nn.one_hot(indices, M, dtype=weights.dtype), axis=-2)
    return jnp.transpose(kept, (0, 2, 1)).reshape(rows, cols)


def ready(function: Callable[..., Any], *arguments: Any) -> Callable[[], object]:
    """A call of `function` that returns once its results are computed."""
    return lambda: jax.block_until_ready(function(*arguments))


def compile_seconds(function: Callable[..., Any], *arguments: Any) -> float:
    """The first call's time: tracing, compiling and one run."""
    start = time.perf_counter()
    jax.block_until_ready(function(*arguments))
    return time.perf_counter() - start


# Identical results.


def check_identical(case: str, got: tuple[Any, Any], expected: tuple[Any, Any]) -> int:
    """Fail loudly unless our threshold and mask equal the baseline's; the kept count."""
    (threshold, mask), (ref_threshold, ref_mask) = got, expected
    mask, ref_mask = np.asarray(mask), np.asarray(ref_mask)
    assert mask.dtype == ref_mask.dtype and mask.shape == ref_mask.shape, case
    differ = int(np.count_nonzero(mask != ref_mask))
    assert differ == 0 and float(threshold) == float(ref_threshold), (
        f"{case}: our mask differs from the baseline's in {differ} of {mask.size} entries; "
        f"threshold {float(threshold)!r} vs baseline {float(ref_threshold)!r}"
    )
    return int(np.count_nonzero(mask))


def check_n_m(weights: np.ndarray[Any, Any], **masks: Any) -> int:
    expected = reference.keep_mask(weights, N, M, 0, "REJECT")
    for name, got in masks.items():
        differ = int(np.count_nonzero(np.asarray(got).astype(bool) != expected))
        assert differ == 0, f"{N}:{M}: {name}'s mask differs from the reference in {differ}"
    return int(np.count_nonzero(expected))


# The figures.


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="512x512 weight, 2 runs (smoke)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    sizes, target_size = (QUICK_SIZES, "0.26M") if args.quick else (SIZES, TARGET_SIZE)
    report = Report("jax_kernels", args.quick)
    platform = jax.devices()[0].platform
    print(f"machine: {machine()}, JAX {jax.__version__} on {platform} ({load_average()})")
    seconds: dict[str, dict[str, float]] = {}
    constant = jnp.float32(FLOOR_CONSTANT)
    old = jnp.float32(0.0)
    for label, shape in sizes.items():
        weights = jnp.asarray(make_weights(shape))
        compiled = compile_seconds(ours, weights, jnp.float32(SPARSITIES[0]), old)
        report.note(f"{label}: our first call (trace, compile, run) took {compiled:.2f} s")
        for sparsity_value in SPARSITIES:
            sparsity = jnp.float32(sparsity_value)
            case = f"{label} s={sparsity_value}"
            kept = check_identical(
                case, ours(weights, sparsity, old), baseline(weights, sparsity, old)
            )
            print(f"  {case}: masks identical to top_k's ({kept:,} of {weights.size:,} kept)")
            big = shape[0] * shape[1] > 4e6
            repeats = 2 if args.quick else (3 if big else 7)
            times = median_times(
                {
                    "ours": ready(ours, weights, sparsity, old),
                    "baseline": ready(baseline, weights, sparsity, old),
                    "floor": ready(floor, weights, constant),
                },
                repeats,
                warmups=1,
            )
            seconds[case] = times
            targeted = label == target_size and sparsity_value == TARGET_SPARSITY
            add_figures(report, case, times, targeted)
    weights_np = make_weights(sizes[target_size])
    weights = jnp.asarray(weights_np)
    seconds[f"{target_size} s={TARGET_SPARSITY} Keras"] = keras_figures(
        report, target_size, weights, quick=args.quick
    )
    compiled = compile_seconds(ours_n_m, weights)
    kept = check_n_m(weights_np, ours=ours_n_m(weights), baseline=baseline_n_m(weights))
    print(f"  {N}:{M}: masks identical to the reference ({kept:,} kept)")
    times = median_times(
        {
            "ours": ready(ours_n_m, weights),
            "baseline": ready(baseline_n_m, weights),
            "floor": ready(floor, weights, constant),
        },
        2 if args.quick else 7,
        warmups=1,
    )
    case = f"{target_size} {N}:{M} axis 0"
    seconds[case] = times
    over_floor = times["ours"] / times["floor"]
    report.add(
        Figure(
            f"{case}: ours vs one pass (floor)",
            times["ours"],
            times["floor"],
            "s",
            over_floor,
            f"<= {N_M_FLOOR_TARGET:g}x",
            over_floor <= N_M_FLOOR_TARGET,
        )
    )
    speedup = times["baseline"] / times["ours"]
    name = f"{case}: ours vs top_k per group"
    report.add(Figure(name, times["ours"], times["baseline"], "s", speedup, "", None))
    report.note(f"{case}: our first call (trace, compile, run) took {compiled:.2f} s")
    report.write(args.json, seconds=seconds)
    return 0


def keras_figures(report: Report, label: str, weights: jax.Array, quick: bool) -> dict[str, float]:
    """`KerasUpdater.update` on a pruned Dense layer's kernel against the kernel's baselines."""
    assert keras.backend.backend() == "jax", keras.backend.backend()
    rows, cols = weights.shape
    dense = keras.layers.Dense(cols, use_bias=False)
    dense.build((None, rows))
    layer = pks.prune(dense, KERAS_SPEC)
    layer.build((None, rows))
    (pruned,) = layer.pruned_weights
    updater = KerasUpdater(layer.spec, [pruned], [layer.last_mask_update_step])
    ones = jnp.ones_like(weights)
    zero = jnp.zeros((), weights.dtype)

    def dense_again() -> None:
        """The update's inputs as the kernel's: the dense weight, a mask of ones, T = 0."""
        pruned.weight.assign(weights)
        pruned.mask.assign(ones)
        pruned.threshold.assign(zero)
        layer.last_mask_update_step.assign(0)

    def update() -> None:
        updater.update(KERAS_STEP)
        jax.block_until_ready(
            [v.value for v in (pruned.weight, pruned.mask, pruned.threshold)]
            + [layer.last_mask_update_step.value]
        )

    dense_again()
    start = time.perf_counter()
    update()
    compiled = time.perf_counter() - start
    sparsity, old = jnp.float32(TARGET_SPARSITY), jnp.float32(0.0)
    case = f"{label} s={TARGET_SPARSITY} Keras on JAX"
    expected = ours(weights, sparsity, old)
    kept = check_identical(case, (pruned.threshold.value, pruned.mask.value), expected)
    zeroed = np.where(np.asarray(expected[1]) != 0, np.asarray(weights), 0)
    assert np.array_equal(np.asarray(pruned.weight.value), zeroed), f"{case}: weight not zeroed"
    assert int(layer.last_mask_update_step.value) == KERAS_STEP, case
    print(f"  {case}: threshold and mask identical to the kernel's ({kept:,} kept)")
    times = median_times(
        {
            "keras": update,
            "ours": ready(ours, weights, sparsity, old),
            "baseline": ready(baseline, weights, sparsity, old),
            "floor": ready(floor, weights, jnp.float32(FLOOR_CONSTANT)),
        },
        2 if quick else 7,
        warmups=1,
        setups={"keras": dense_again},
    )
    speedup, over_floor = times["baseline"] / times["keras"], times["keras"] / times["floor"]
    name = f"{case}: update vs full top_k"
    report.add(
        Figure(
            name,
            times["keras"],
            times["baseline"],
            "s",
            speedup,
            f">= {SPEEDUP_TARGET:g}x",
            speedup >= SPEEDUP_TARGET,
        )
    )
    report.add(
        Figure(
            f"{case}: update vs one pass (floor)",
            times["keras"],
            times["floor"],
            "s",
            over_floor,
            f"<= {FLOOR_TARGET:g}x",
            over_floor <= FLOOR_TARGET,
        )
    )
    over_kernel = times["keras"] / times["ours"]
    name = f"{case}: update vs the kernel alone"
    report.add(Figure(name, times["keras"], times["ours"], "s", over_kernel, "", None))
    report.note(
        f"{case}: the updater's first call (trace, compile, run, assign) took {compiled:.2f} s"
    )
    return times


def add_figures(report: Report, case: str, times: dict[str, float], targeted: bool) -> None:
    speedup, over_floor = times["baseline"] / times["ours"], times["ours"] / times["floor"]
    report.add(
        Figure(
            f"{case}: ours vs full top_k",
            times["ours"],
            times["baseline"],
            "s",
            speedup,
            f">= {SPEEDUP_TARGET:g}x" if targeted else "",
            speedup >= SPEEDUP_TARGET if targeted else None,
        )
    )
    report.add(
        Figure(
            f"{case}: ours vs one pass (floor)",
            times["ours"],
            times["floor"],
            "s",
            over_floor,
            f"<= {FLOOR_TARGET:g}x" if targeted else "",
            over_floor <= FLOOR_TARGET if targeted else None,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
