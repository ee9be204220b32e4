"""A global threshold over a whole model: ours (no concatenation) vs sorting the concatenation.

Weights: the kernels of ResNet-50 and BERT-base (`_common.model_shapes`: 126 float32
tensors, 109M values, normal random values with bench_model_update's seed). One group of
them all, K = round(N * 0.1) (90% sparsity over the group), no floors.

- ours: `group_thresholds` then `group_masks` (`pruning_spec.backends.tensorflow._kernels`),
  in one `tf.function`;
- baselines, each in one `tf.function`: concatenate every |w| (`tf.concat`), then either
  sort it (`tf.sort`, descending) and take the K-th value, or `tf.math.top_k(concat, K,
  sorted=False)` and take the smallest of the K; then each mask `|w| >= T`. The faster
  of the two is the baseline of the ratios; the other is reported too.

Time: the three functions interleaved in this process (`_common.median_times`), the
median of several calls after a warm-up. The benchmark fails (AssertionError) unless our
threshold and every mask equal the baseline's exactly.

Memory: each approach in a fresh subprocess, started with TF_ENABLE_ONEDNN_OPTS=0 and
MALLOC_MMAP_THRESHOLD_=65536, so that the RSS follows the live tensors rather than what an
allocator keeps for later: with oneDNN on, TensorFlow's CPU allocator pools freed memory
(a second call's RSS then does not grow at all), and glibc maps every allocation of 64 KiB
or more on its own and unmaps it when it is freed. (Neither changes what our kernels or
the baselines allocate; the timings run with TensorFlow's defaults.) The child
creates the weights as variables (one member at a time), then resets the peak RSS (VmHWM,
through /proc/self/clear_refs) and runs the function once: tracing, graph optimisation
and the first allocations (the "first call"); then resets it again and runs it a second
time. The figure is the second call's peak RSS above the RSS before it; the first call's
is reported beside it. Where VmHWM cannot be reset, the growth of ru_maxrss over the
first call is all there is. The outputs (every mask: 1x the weights) count for every
approach alike.

Also measured the same way, for the claim that a group needs no more memory than its
largest member: `group_kth_largest` alone (no masks) against `radix_kth_largest` of the
largest member alone.

Targets (the issue): ours >= 30x faster than the faster baseline, masks identical, peak
extra memory <= 0.5x the baseline's; the group's threshold alone within its largest
member's radix select plus 8 MiB (the group's histograms and batches are O(2^16)).

    python benchmarks/bench_global.py [--quick] [--json PATH]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no start-up chatter

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
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
    model_shapes,
    reset_peak_rss,
    status_bytes,
)

from pruning_spec.backends.tensorflow import _kernels

SPARSITY = 0.9
SEED = 7  # bench_model_update's: the same values
SPEEDUP_TARGET = 30.0
MEMORY_SHARE_TARGET = 0.5
HISTOGRAM_ALLOWANCE = 8 * MIB  # what the group may need beyond its largest member
UPDATES = ("ours", "sort", "top_k")
ALGORITHMS = (*UPDATES, "group_threshold", "largest_radix")


def make_variables(shapes: list[tuple[int, ...]]) -> list[tf.Variable]:
    """The weights as variables, each one's numpy values freed before the next is drawn."""
    rng = np.random.default_rng(SEED)
    return [tf.Variable(rng.standard_normal(shape, dtype=np.float32)) for shape in shapes]


def kept_count(variables: list[tf.Variable]) -> int:
    size = sum(int(np.prod(v.shape)) for v in variables)
    return int(_kernels.keep_count(size, tf.constant(SPARSITY, tf.float32)))


# The functions, each a tf.function of no arguments over the variables.

Update = Callable[[], Any]


def ours(variables: list[tf.Variable], keep: int) -> Update:
    @tf.function
    def update() -> tuple[tf.Tensor, list[tf.Tensor]]:
        thresholds = _kernels.group_thresholds(variables, tf.constant(keep, tf.int64))
        return thresholds.threshold, _kernels.group_masks(variables, thresholds)

    return update


def _masks(variables: list[tf.Variable], threshold: tf.Tensor) -> list[tf.Tensor]:
    return [tf.cast(tf.abs(v) >= threshold, v.dtype) for v in variables]


def _concatenated_magnitudes(variables: list[tf.Variable]) -> tf.Tensor:
    return tf.concat([tf.reshape(tf.abs(v), [-1]) for v in variables], 0)


def concat_sort(variables: list[tf.Variable], keep: int) -> Update:
    @tf.function
    def update() -> tuple[tf.Tensor, list[tf.Tensor]]:
        ordered = tf.sort(_concatenated_magnitudes(variables), direction="DESCENDING")
        threshold = ordered[keep - 1]
        return threshold, _masks(variables, threshold)

    return update


def concat_top_k(variables: list[tf.Variable], keep: int) -> Update:
    @tf.function
    def update() -> tuple[tf.Tensor, list[tf.Tensor]]:
        top = tf.math.top_k(_concatenated_magnitudes(variables), k=keep, sorted=False)
        threshold = tf.reduce_min(top.values)
        return threshold, _masks(variables, threshold)

    return update


def group_threshold(variables: list[tf.Variable], keep: int) -> Update:
    return tf.function(lambda: _kernels.group_kth_largest(variables, tf.constant(keep, tf.int64)))


def largest_radix(variables: list[tf.Variable], keep: int) -> Update:
    sizes = [int(np.prod(v.shape)) for v in variables]
    largest = variables[sizes.index(max(sizes))]
    share = max(1, keep * max(sizes) // sum(sizes))  # the group's sparsity
    return tf.function(lambda: _kernels.radix_kth_largest(largest, tf.constant(share, tf.int64)))


BUILDERS: dict[str, Callable[[list[tf.Variable], int], Update]] = {
    "ours": ours,
    "sort": concat_sort,
    "top_k": concat_top_k,
    "group_threshold": group_threshold,
    "largest_radix": largest_radix,
}


# Time and identical masks, in this process.


def check_identical(got: Any, expected: Any) -> int:
    """Fail loudly unless our threshold and every mask equal the baseline's; the kept count."""
    (threshold, masks), (ref_threshold, ref_masks) = got, expected
    assert float(threshold) == float(ref_threshold), (
        f"threshold {float(threshold)!r} vs baseline {float(ref_threshold)!r}"
    )
    kept = 0
    for index, (mine, theirs) in enumerate(zip(masks, ref_masks, strict=True)):
        mask, ref_mask = np.asarray(mine), np.asarray(theirs)
        differ = int(np.count_nonzero(mask != ref_mask))
        assert mask.dtype == ref_mask.dtype and mask.shape == ref_mask.shape and not differ, (
            f"member {index}: our mask differs from the baseline's in {differ} entries"
        )
        kept += int(np.count_nonzero(mask))
    return kept


# Memory: one approach in a fresh process.


def memory_child(algorithm: str, quick: bool) -> int:
    """Print, as JSON, the peak RSS growth of the first and of the second call."""
    variables = make_variables(model_shapes(quick))
    update = BUILDERS[algorithm](variables, kept_count(variables))
    record: dict[str, Any] = {"algorithm": algorithm}
    if reset_peak_rss():
        before = status_bytes("VmRSS")
        update()
        record["first_call"] = status_bytes("VmHWM") - before
        reset_peak_rss()
        before = status_bytes("VmRSS")
        result = update()
        record["delta"] = status_bytes("VmHWM") - before
        record["method"] = "VmHWM after clear_refs, second call"
    else:
        before = max_rss_bytes()
        result = update()
        record["delta"] = record["first_call"] = max_rss_bytes() - before
        record["method"] = "ru_maxrss growth, first call"
    del result
    print(json.dumps(record))
    return 0


def measure_memory(quick: bool) -> dict[str, dict[str, Any]]:
    """Each algorithm's record, each in its own fresh process (in parallel when quick)."""
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "MALLOC_MMAP_THRESHOLD_": "65536"}
    children, outputs = {}, {}
    for algorithm in ALGORITHMS:
        command = [sys.executable, __file__, "--memory-child", algorithm]
        child = subprocess.Popen(
            command + (["--quick"] if quick else []),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        children[algorithm] = child
        if not quick:
            outputs[algorithm] = child.communicate()
    records = {}
    for algorithm, child in children.items():
        out, err = outputs[algorithm] if algorithm in outputs else child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"memory child {algorithm} failed:\n{err[-2000:]}")
        records[algorithm] = json.loads(out.strip().splitlines()[-1])
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 of the kernels, 2 runs (smoke)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--memory-child", choices=ALGORITHMS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        return memory_child(args.memory_child, args.quick)
    report = Report("global", args.quick)
    print(f"machine: {machine()} ({load_average()})")
    # Memory first, while this process is idle, so the children do not disturb the timings.
    memory = measure_memory(args.quick)
    variables = make_variables(model_shapes(args.quick))
    values, keep = sum(int(np.prod(v.shape)) for v in variables), kept_count(variables)
    updates = {name: BUILDERS[name](variables, keep) for name in UPDATES}
    results = {name: update() for name, update in updates.items()}  # traces them
    repeats = 2 if args.quick else 3
    seconds = median_times(updates, repeats, warmups=1)
    baseline = min(("sort", "top_k"), key=lambda name: seconds[name])
    kept = check_identical(results["ours"], results[baseline])
    check_identical(results["sort"], results["top_k"])
    del results
    size = f"{len(variables)} kernels, {values / 1e6:.1f}M values"
    print(f"{size}, K = {keep:,}; median of {repeats} calls after a warm-up")
    labels = {"sort": "concat + tf.sort", "top_k": "concat + top_k(K)"}
    for name in ("top_k", "sort"):
        speedup = seconds[name] / seconds["ours"]
        targeted = name == baseline
        report.add(
            Figure(
                f"global threshold + masks vs {labels[name]}",
                seconds["ours"],
                seconds[name],
                "s",
                speedup,
                f">= {SPEEDUP_TARGET:g}x" if targeted else "",
                speedup >= SPEEDUP_TARGET if targeted else None,
            )
        )
    print(f"  masks identical to the baseline's ({kept:,} of {values:,} kept; K = {keep:,})")
    add_memory_figures(report, memory, labels[baseline], baseline)
    report.note(
        f"global threshold over {size} (ResNet-50 + BERT-base kernels), sparsity {SPARSITY}; "
        f"the faster baseline is {labels[baseline]}"
    )
    report.write(
        args.json,
        seconds=seconds,
        values=values,
        keep=keep,
        kept=kept,
        baseline=baseline,
        memory=memory,
    )
    return 0


def add_memory_figures(
    report: Report, memory: dict[str, dict[str, Any]], label: str, baseline: str
) -> None:
    ours, theirs = memory["ours"]["delta"], memory[baseline]["delta"]
    share = ours / max(theirs, 1)
    report.add(
        Figure(
            f"peak extra memory vs {label}",
            ours / MIB,
            theirs / MIB,
            "MiB",
            share,
            f"<= {MEMORY_SHARE_TARGET:g}x",
            share <= MEMORY_SHARE_TARGET,
        )
    )
    group, largest = memory["group_threshold"]["delta"], memory["largest_radix"]["delta"]
    report.add(
        Figure(
            "group threshold alone vs largest member's radix",
            group / MIB,
            largest / MIB,
            "MiB",
            group / max(largest, 1),
            f"<= 1x + {HISTOGRAM_ALLOWANCE // MIB} MiB",
            group <= largest + HISTOGRAM_ALLOWANCE,
        )
    )
    first_calls = ", ".join(
        f"{name} {record['first_call'] / MIB:.1f} MiB" for name, record in memory.items()
    )
    method = " / ".join(sorted({record["method"] for record in memory.values()}))
    report.note(f"memory: a fresh process per approach ({method}); first calls: {first_calls}")


if __name__ == "__main__":
    sys.exit(main())
