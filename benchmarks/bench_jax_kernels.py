"""How fast the JAX kernels' mask updates are (`pruning_spec.backends.jax`), on JAX's CPU.

Figures (issue 18):
  - one element-wise mask update (`_kernels.element_mask`: radix select on the keys, then
    `|w| >= T`) of a 4096x4096 float32 weight at sparsity 0.9, against r1.15's algorithm
    written in JAX (`jax.lax.top_k` over all |w|, the k-th largest picked: the baseline)
    and against one element-wise pass (`(abs(w) >= c).astype(w.dtype)`, the floor).
    Targets: at least 20x faster than the baseline, at most 4x the floor;
  - the same at 1M values and at sparsity 0.5 (informative);
  - a 2:4 N:M mask along axis 0 of the same weight (`_n_m.n_m_mask`) against the floor
    (target: at most 3x, as for the TensorFlow kernel) and against `jax.lax.top_k` over
    each group, the groups' axis moved last (informative).
Every function is jitted and compiled before timing (the compile times are noted); each
time is the median of several runs after a warm-up, the functions interleaved
(`_common.median_times`), each run waiting for its result. The benchmark fails
(AssertionError) unless our threshold and mask equal the baseline's exactly (and the N:M
mask the numpy reference's).

    python benchmarks/bench_jax_kernels.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from _common import Figure, Report, load_average, machine, median_times

from pruning_spec import _n_m as reference
from pruning_spec.backends.jax import _kernels, _n_m

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
