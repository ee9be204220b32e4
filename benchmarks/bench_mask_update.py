"""How fast and how lean one element-wise mask update of the TensorFlow backend is.

Figures (issue 7, 1 and 4; first set by issue 5):
  - one weight of 1M, 4M, 16.7M and 50M float32 values at sparsity 0.5 and 0.9: a mask
    update (`element_mask`: radix select, then `|w| >= T`) against the r1.15/tfmot
    algorithm (a full `top_k` sort, implemented below as the baseline) and against one
    element-wise pass over the weight (`cast(abs(w) >= c, w.dtype)`, the floor). Targets
    at 16.7M (4096x4096): at least 20x faster than the sort, at most 4x the floor;
  - the same at 16.7M, sparsity 0.9, in a `tf.compat.v1.Session` graph (the drop-in's mode);
  - peak extra memory of one update at 16.7M: at most half the sort's, and at most 2x the
    weight's size (the new mask itself is 1x).
All ops run in the same session on the same weights (normal, fixed seed), each wrapped in
`tf.function`; each time is the median of several runs after a warm-up, the runs of the
three ops interleaved. The benchmark fails (AssertionError) unless our mask and threshold
equal the baseline's exactly. Memory is measured in a fresh subprocess per algorithm, so
that no allocator pool is left over from other work: the child creates the weight, traces
and warms the op up on a small slice, then records the peak RSS of one full-size update
above the RSS before it (VmHWM after resetting it through /proc/self/clear_refs; where that
is not possible, the growth of ru_maxrss).

    python benchmarks/bench_mask_update.py [--quick] [--json PATH]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no start-up chatter

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from _common import (
    MIB,
    Figure,
    Report,
    load_average,
    machine,
    max_rss_bytes,
    median_times,
    reset_peak_rss,
    status_bytes,
)

from pruning_spec.backends.tensorflow._kernels import element_mask

# Weight shapes by their size; the targets apply to TARGET_SIZE.
SIZES = {"1M": (1024, 1024), "4M": (2048, 2048), "16.7M": (4096, 4096), "50M": (5000, 10000)}
QUICK_SIZES = {"0.26M": (512, 512)}
TARGET_SIZE = "16.7M"
SPARSITIES = (0.5, 0.9)
SPARSITY = 0.9  # of the graph-mode and memory figures
DECAY = 0.0  # r1.15's default threshold_decay; the smoothing arithmetic still runs
OLD_THRESHOLD = 0.0
FLOOR_CONSTANT = 1.0
SEED = 20191015
SPEEDUP_TARGET = 20.0  # ours at least this many times faster than the baseline
FLOOR_TARGET = 4.0  # ours at most this many times one element-wise pass
MEMORY_TARGET = 2.0  # peak extra memory at most this many times the weight's size
MEMORY_SHARE_TARGET = 0.5  # and at most this share of the full sort's
ALGORITHMS = ("ours", "baseline")


def make_weights(shape: tuple[int, int]) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.random.default_rng(SEED).standard_normal(shape, dtype=np.float32)


# The three ops, as plain TensorFlow functions (usable in tf.function and in a v1 graph).


def ours(weights: tf.Tensor, sparsity: tf.Tensor, old_threshold: tf.Tensor) -> tuple[Any, Any]:
    threshold, mask = element_mask(weights, sparsity, old_threshold, DECAY)
    return threshold, mask


def baseline(weights: tf.Tensor, sparsity: tf.Tensor, old_threshold: tf.Tensor) -> tuple[Any, Any]:
    """r1.15's `_update_mask` (and tfmot's): a full top_k sort of |w| for the k-th largest."""
    abs_weights = tf.abs(weights)
    size = tf.size(abs_weights)
    k = tf.cast(tf.round(tf.cast(size, tf.float32) * (1.0 - sparsity)), tf.int32)
    values, _ = tf.math.top_k(tf.reshape(abs_weights, [-1]), k=size)
    current = tf.gather(values, k - 1)
    smoothed = current * (1.0 - DECAY) + old_threshold * DECAY
    mask = tf.cast(tf.greater_equal(abs_weights, smoothed), weights.dtype)
    return smoothed, mask


def floor(weights: tf.Tensor, constant: tf.Tensor) -> Any:
    """One element-wise pass over the weight: the least any mask update must do."""
    return tf.cast(tf.abs(weights) >= constant, weights.dtype)


# Timing.


def check_identical(mode: str, got: tuple[Any, Any], expected: tuple[Any, Any]) -> int:
    """Fail loudly unless our threshold and mask equal the baseline's; the kept count."""
    (threshold, mask), (ref_threshold, ref_mask) = got, expected
    mask, ref_mask = np.asarray(mask), np.asarray(ref_mask)
    assert mask.dtype == ref_mask.dtype and mask.shape == ref_mask.shape, (
        f"{mode}: mask {mask.dtype}{mask.shape} vs baseline {ref_mask.dtype}{ref_mask.shape}"
    )
    differ = int(np.count_nonzero(mask != ref_mask))
    assert differ == 0 and float(threshold) == float(ref_threshold), (
        f"{mode}: our mask differs from the baseline's in {differ} of {mask.size} entries; "
        f"threshold {float(threshold)!r} vs baseline {float(ref_threshold)!r}"
    )
    return int(np.count_nonzero(mask))


def time_tf_function(
    weights_np: np.ndarray[Any, np.dtype[np.float32]], sparsity_value: float, repeats: int
) -> tuple[dict[str, float], int]:
    weights = tf.constant(weights_np)
    sparsity = tf.constant(sparsity_value, tf.float32)
    old = tf.constant(OLD_THRESHOLD, tf.float32)
    constant = tf.constant(FLOOR_CONSTANT, tf.float32)
    ours_fn, baseline_fn, floor_fn = tf.function(ours), tf.function(baseline), tf.function(floor)
    kept = check_identical(
        "tf.function", ours_fn(weights, sparsity, old), baseline_fn(weights, sparsity, old)
    )
    # Eager calls of a tf.function on CPU return once the outputs are computed.
    times = median_times(
        {
            "ours": lambda: ours_fn(weights, sparsity, old),
            "baseline": lambda: baseline_fn(weights, sparsity, old),
            "floor": lambda: floor_fn(weights, constant),
        },
        repeats,
        warmups=1,
    )
    return times, kept


def time_graph_mode(
    weights_np: np.ndarray[Any, np.dtype[np.float32]], repeats: int
) -> tuple[dict[str, float], int]:
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        variable = v1.Variable(tf.zeros(weights_np.shape, tf.float32), use_resource=True)
        initial = v1.placeholder(tf.float32, weights_np.shape)
        load = variable.assign(initial)
        weights = variable.read_value()
        sparsity = v1.placeholder_with_default(tf.constant(SPARSITY, tf.float32), [])
        old = v1.placeholder_with_default(tf.constant(OLD_THRESHOLD, tf.float32), [])
        constant = v1.placeholder_with_default(tf.constant(FLOOR_CONSTANT, tf.float32), [])
        outputs = {
            "ours": ours(weights, sparsity, old),
            "baseline": baseline(weights, sparsity, old),
            "floor": (tf.constant(FLOOR_CONSTANT), floor(weights, constant)),
        }
        # Each target assigns the new threshold and mask to variables, as an update op does:
        # fetching the mask would add a copy into numpy, and outputs that only a tf.group
        # consumes are pruned by Grappler (the ops would not run at all).
        threshold_variable = v1.Variable(0.0, use_resource=True)
        mask_variable = v1.Variable(tf.zeros(weights_np.shape, tf.float32), use_resource=True)
        targets = {
            name: tf.group(threshold_variable.assign(threshold), mask_variable.assign(mask))
            for name, (threshold, mask) in outputs.items()
        }
        initialize = v1.global_variables_initializer()
    with v1.Session(graph=graph) as session:
        session.run(initialize)
        session.run(load, {initial: weights_np})
        got, expected = session.run([outputs["ours"], outputs["baseline"]])
        kept = check_identical("graph mode", got, expected)
        times = median_times(
            {name: (lambda op=op: session.run(op)) for name, op in targets.items()}, repeats
        )
    return times, kept


# Memory: one update in a fresh process.


def memory_child(algorithm: str, size: int) -> int:
    """Print, as JSON, the peak RSS growth of one update of a fresh weight."""
    weights_np = make_weights((size, size))
    weights = tf.constant(weights_np)
    sparsity = tf.constant(SPARSITY, tf.float32)
    old = tf.constant(OLD_THRESHOLD, tf.float32)
    signature = [
        tf.TensorSpec([None, None], tf.float32),
        tf.TensorSpec([], tf.float32),
        tf.TensorSpec([], tf.float32),
    ]
    update = tf.function(ours if algorithm == "ours" else baseline, input_signature=signature)
    # Trace and instantiate the function on a small slice, so that neither the tracing nor
    # a pool left by a full-size warm-up counts; the full-size update below is the first.
    update(weights[:64, :64], sparsity, old)
    if reset_peak_rss():
        method, before = "VmHWM after clear_refs", status_bytes("VmRSS")
        result = update(weights, sparsity, old)
        peak = status_bytes("VmHWM")
    else:
        method, before = "ru_maxrss growth", max_rss_bytes()
        result = update(weights, sparsity, old)
        peak = max_rss_bytes()
    assert result[1].shape == weights.shape
    record = {"algorithm": algorithm, "method": method, "before": before, "delta": peak - before}
    print(json.dumps(record))
    return 0


def measure_memory(size: int, parallel: bool) -> tuple[dict[str, int], str]:
    """Peak extra bytes of one update per algorithm, each in its own fresh process."""
    children, results = {}, {}
    for algorithm in ALGORITHMS:
        command = [sys.executable, __file__, "--memory-child", algorithm, "--size", str(size)]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        children[algorithm] = child
        if not parallel:
            results[algorithm] = child.communicate()
    for algorithm, child in children.items():
        out, err = results[algorithm] if algorithm in results else child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"memory child {algorithm} failed:\n{err[-2000:]}")
        results[algorithm] = (out, err)
    records = [json.loads(results[name][0].strip().splitlines()[-1]) for name in ALGORITHMS]
    deltas = {record["algorithm"]: int(record["delta"]) for record in records}
    return deltas, " / ".join(sorted({record["method"] for record in records}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="512x512 weight, 2 runs (smoke)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--memory-child", choices=ALGORITHMS, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        return memory_child(args.memory_child, args.size)
    sizes, target_size = (QUICK_SIZES, "0.26M") if args.quick else (SIZES, TARGET_SIZE)
    report = Report("mask_update", args.quick)
    print(f"machine: {machine()} ({load_average()})")
    # Memory first, while this process is idle, so the children do not disturb the timings.
    side = sizes[target_size][0]
    memory, method = measure_memory(side, parallel=args.quick)
    seconds: dict[str, dict[str, float]] = {}
    for label, shape in sizes.items():
        weights_np = make_weights(shape)
        for sparsity in SPARSITIES:
            repeats = 2 if args.quick else (3 if shape[0] * shape[1] > 20e6 else 5)
            times, kept = time_tf_function(weights_np, sparsity, repeats)
            seconds[f"{label} s={sparsity}"] = times
            add_speed_figures(report, f"{label} s={sparsity}", times, label == target_size)
            print(f"  masks identical to the sort's ({kept:,} of {weights_np.size:,} kept)")
        del weights_np
    weights_np = make_weights(sizes[target_size])
    graph_times, _ = time_graph_mode(weights_np, 2 if args.quick else 7)
    seconds[f"{target_size} s={SPARSITY} graph mode"] = graph_times
    add_speed_figures(report, f"{target_size} s={SPARSITY} graph mode", graph_times, True)
    add_memory_figures(report, memory, weights_np.nbytes, method, target_size)
    report.write(args.json, seconds=seconds, peak_extra_memory_bytes=memory)
    return 0


def add_speed_figures(report: Report, case: str, times: dict[str, float], targeted: bool) -> None:
    speedup, over_floor = times["baseline"] / times["ours"], times["ours"] / times["floor"]
    report.add(
        Figure(
            f"{case}: ours vs full sort",
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


def add_memory_figures(
    report: Report, memory: dict[str, int], weight_bytes: int, method: str, label: str
) -> None:
    ours, baseline = memory["ours"] / MIB, memory["baseline"] / MIB
    share = memory["ours"] / max(memory["baseline"], 1)
    report.add(
        Figure(
            f"{label}: peak extra memory vs full sort",
            ours,
            baseline,
            "MiB",
            share,
            f"<= {MEMORY_SHARE_TARGET:g}x",
            share <= MEMORY_SHARE_TARGET,
        )
    )
    over_weight = memory["ours"] / weight_bytes
    report.add(
        Figure(
            f"{label}: peak extra memory vs the weight",
            ours,
            weight_bytes / MIB,
            "MiB",
            over_weight,
            f"<= {MEMORY_TARGET:g}x",
            over_weight <= MEMORY_TARGET,
        )
    )
    report.note(f"memory measured in a fresh process per algorithm ({method})")


if __name__ == "__main__":
    sys.exit(main())
