"""How fast and how lean one N:M mask of the TensorFlow backend is (`_n_m.n_m_mask`).

Weights: 4096x4096 float32 (normal, fixed seed). Rules: 2:4 along axis 0 (the target's:
an [in, out] kernel's input axis), 2:4 along axis 1, 4:8 along axis 0, 16:64 along axis 0.
Each rule times, in the same process, interleaved (`_common.median_times`), each in a
`tf.function`:

- ours: `n_m_mask` (an XLA-compiled rank count; see its module);
- the floor: one element-wise pass over the weight, `cast(abs(w) >= c, w.dtype)`, as in
  bench_mask_update.py. Target for 2:4 along axis 0: ours at most 3x the floor;
- the baseline: what one would write first, `tf.math.top_k` of |w| over a transposed
  [..., m] view of the groups (which keeps the lower index among equal values), its
  indices turned into the mask by `one_hot` and a sum, transposed back. Informative:
  the speedup;
- for 2:4 along axis 0, also ours without XLA (our ops in a plain `tf.function`, written
  as "columns", the fastest way without XLA), and ours and the floor in a
  `tf.compat.v1.Session` (graph-mode pruning's mode).

The benchmark fails (AssertionError) unless our mask equals the baseline's and the numpy
reference (`pruning_spec._n_m.keep_mask`) exactly, for every rule.

Memory (informative): one 2:4 mask along axis 0 in a fresh process per approach (ours,
the baseline), started with TF_ENABLE_ONEDNN_OPTS=0 and MALLOC_MMAP_THRESHOLD_=65536 so
that the RSS follows the live tensors (as in bench_global.py). The first call traces
and compiles; the figure is the second call's peak RSS (VmHWM, reset through
/proc/self/clear_refs) above the RSS before it, the output mask (1x the weight)
included. Where VmHWM cannot be reset, the growth of ru_maxrss over the first call.

    python benchmarks/bench_n_m.py [--quick] [--json PATH]
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
from typing import Any, NamedTuple

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

from pruning_spec import _n_m as reference
from pruning_spec.backends.tensorflow import _n_m

SHAPE, QUICK_SHAPE = (4096, 4096), (512, 512)
SEED = 20240402
FLOOR_CONSTANT = 1.0
FLOOR_TARGET = 3.0  # ours at most this many times one element-wise pass (2:4, axis 0)
ALGORITHMS = ("ours", "baseline")


class Rule(NamedTuple):
    n: int
    m: int
    axis: int

    @property
    def label(self) -> str:
        return f"{self.n}:{self.m} axis {self.axis}"


TARGET_RULE = Rule(2, 4, 0)
RULES = (TARGET_RULE, Rule(2, 4, 1), Rule(4, 8, 0), Rule(16, 64, 0))


def make_weights(shape: tuple[int, int]) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.random.default_rng(SEED).standard_normal(shape, dtype=np.float32)


# The approaches, as functions of the weight (plain TensorFlow: tf.function or a v1 graph).


def ours(rule: Rule) -> Callable[[tf.Tensor], tf.Tensor]:
    return lambda weights: _n_m.n_m_mask(weights, rule.n, rule.m, rule.axis, "REJECT")


def ours_without_xla(rule: Rule) -> Callable[[tf.Tensor], tf.Tensor]:
    """Our ops in a plain tf.function, written as "columns": without XLA, the fastest."""
    return lambda weights: _n_m.mask(weights, rule.n, rule.m, rule.axis, "REJECT", "columns")


def baseline(rule: Rule) -> Callable[[tf.Tensor], tf.Tensor]:
    """top_k of |w| over each group, the groups' axis moved last; one_hot; moved back."""

    def mask(weights: tf.Tensor) -> tf.Tensor:
        shape = [int(d) for d in weights.shape]
        before = int(np.prod(shape[: rule.axis]))
        after = int(np.prod(shape[rule.axis + 1 :]))
        groups = tf.reshape(tf.abs(weights), [before, shape[rule.axis] // rule.m, rule.m, after])
        last = tf.transpose(groups, [0, 1, 3, 2])  # [before, groups, after, m]
        top = tf.math.top_k(last, rule.n, sorted=True)  # equal values: the lower index first
        kept = tf.reduce_sum(tf.one_hot(top.indices, rule.m, dtype=weights.dtype), axis=-2)
        return tf.reshape(tf.transpose(kept, [0, 1, 3, 2]), shape)

    return mask


def floor(weights: tf.Tensor, constant: tf.Tensor) -> tf.Tensor:
    """One element-wise pass over the weight: the least any mask must do."""
    return tf.cast(tf.abs(weights) >= constant, weights.dtype)


# Time and identical masks.


def check_identical(label: str, weights: np.ndarray[Any, Any], rule: Rule, **masks: Any) -> int:
    """Fail loudly unless every mask equals the numpy reference's; the kept count."""
    expected = reference.keep_mask(weights, rule.n, rule.m, rule.axis, "REJECT")
    for name, got in masks.items():
        mask = np.asarray(got)
        assert mask.dtype == weights.dtype and mask.shape == weights.shape, (
            f"{label}: {name}'s mask is {mask.dtype}{mask.shape}"
        )
        differ = int(np.count_nonzero(mask.astype(bool) != expected))
        assert differ == 0, f"{label}: {name}'s mask differs from the reference in {differ}"
    return int(np.count_nonzero(expected))


def time_rule(
    weights_np: np.ndarray[Any, np.dtype[np.float32]], rule: Rule, repeats: int
) -> tuple[dict[str, float], int]:
    weights = tf.constant(weights_np)
    constant = tf.constant(FLOOR_CONSTANT, tf.float32)
    functions = {"ours": tf.function(ours(rule)), "baseline": tf.function(baseline(rule))}
    if rule == TARGET_RULE:
        functions["ours without XLA"] = tf.function(ours_without_xla(rule))
    masks = {name.replace(" ", "_"): function(weights) for name, function in functions.items()}
    kept = check_identical(rule.label, weights_np, rule, **masks)
    del masks
    floor_function = tf.function(floor)
    calls: dict[str, Callable[[], object]] = {
        name: (lambda function=function: function(weights)) for name, function in functions.items()
    }
    calls["floor"] = lambda: floor_function(weights, constant)
    return median_times(calls, repeats, warmups=1), kept


def time_graph_mode(
    weights_np: np.ndarray[Any, np.dtype[np.float32]], repeats: int
) -> dict[str, float]:
    """Ours and the floor in a v1 Session, each assigning its mask to a variable."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        variable = v1.Variable(tf.zeros(weights_np.shape, tf.float32), use_resource=True)
        initial = v1.placeholder(tf.float32, weights_np.shape)
        load = variable.assign(initial)
        weights = variable.read_value()
        constant = v1.placeholder_with_default(tf.constant(FLOOR_CONSTANT, tf.float32), [])
        outputs = {"ours": ours(TARGET_RULE)(weights), "floor": floor(weights, constant)}
        # Assigned, as an update op does: a fetch would add a copy into numpy.
        mask_variable = v1.Variable(tf.zeros(weights_np.shape, tf.float32), use_resource=True)
        targets = {name: mask_variable.assign(mask).op for name, mask in outputs.items()}
        initialize = v1.global_variables_initializer()
    with v1.Session(graph=graph) as session:
        session.run(initialize)
        session.run(load, {initial: weights_np})
        check_identical("graph mode", weights_np, TARGET_RULE, ours=session.run(outputs["ours"]))
        return median_times(
            {name: (lambda op=op: session.run(op)) for name, op in targets.items()}, repeats
        )


# Memory: one mask in a fresh process.


def memory_child(algorithm: str, quick: bool) -> int:
    """Print, as JSON, the peak RSS growth of the first and of the second call."""
    weights = tf.constant(make_weights(QUICK_SHAPE if quick else SHAPE))
    update = tf.function(ours(TARGET_RULE) if algorithm == "ours" else baseline(TARGET_RULE))
    record: dict[str, Any] = {"algorithm": algorithm}
    if reset_peak_rss():
        before = status_bytes("VmRSS")
        update(weights)
        record["first_call"] = status_bytes("VmHWM") - before
        reset_peak_rss()
        before = status_bytes("VmRSS")
        result = update(weights)
        record["delta"] = status_bytes("VmHWM") - before
        record["method"] = "VmHWM after clear_refs, second call"
    else:
        before = max_rss_bytes()
        result = update(weights)
        record["delta"] = record["first_call"] = max_rss_bytes() - before
        record["method"] = "ru_maxrss growth, first call"
    assert result.shape == weights.shape
    del result
    print(json.dumps(record))
    return 0


def measure_memory(quick: bool) -> dict[str, dict[str, Any]]:
    """Each approach's record, each in its own fresh process (in parallel when quick)."""
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "MALLOC_MMAP_THRESHOLD_": "65536"}
    children, outputs = {}, {}
    for algorithm in ALGORITHMS:
        command = [sys.executable, __file__, "--memory-child", algorithm]
        child = subprocess.Popen(
            command + (["--quick"] if quick else []),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
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
    parser.add_argument("--quick", action="store_true", help="512x512 weight, 2 runs (smoke)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--memory-child", choices=ALGORITHMS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        return memory_child(args.memory_child, args.quick)
    report = Report("n_m", args.quick)
    print(f"machine: {machine()} ({load_average()})")
    # Memory first, while this process is idle, so the children do not disturb the timings.
    memory = measure_memory(args.quick)
    shape = QUICK_SHAPE if args.quick else SHAPE
    size = f"{shape[0]}x{shape[1]}"
    weights_np = make_weights(shape)
    repeats = 2 if args.quick else 7
    seconds: dict[str, dict[str, float]] = {}
    for rule in RULES:
        times, kept = time_rule(weights_np, rule, repeats)
        seconds[rule.label] = times
        add_speed_figures(report, f"{size} {rule.label}", times, rule == TARGET_RULE)
        print(f"  masks identical to the reference's and the baseline's ({kept:,} kept)")
    graph_times = time_graph_mode(weights_np, repeats)
    seconds[f"{TARGET_RULE.label} graph mode"] = graph_times
    over_floor = graph_times["ours"] / graph_times["floor"]
    report.add(
        Figure(
            f"{size} {TARGET_RULE.label} v1 Session: ours vs one pass",
            graph_times["ours"],
            graph_times["floor"],
            "s",
            over_floor,
            "",
            None,
        )
    )
    add_memory_figures(report, memory, weights_np.nbytes, f"{size} {TARGET_RULE.label}")
    report.note(
        f"N:M masks of a {size} float32 weight; the baseline is top_k over [..., m] + one_hot; "
        f"median of {repeats} calls after a warm-up"
    )
    report.write(args.json, seconds=seconds, memory=memory)
    return 0


def add_speed_figures(report: Report, case: str, times: dict[str, float], targeted: bool) -> None:
    over_floor = times["ours"] / times["floor"]
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
    speedup = times["baseline"] / times["ours"]
    report.add(
        Figure(f"{case}: ours vs top_k", times["ours"], times["baseline"], "s", speedup, "", None)
    )
    if "ours without XLA" in times:
        plain = times["ours without XLA"] / times["floor"]
        report.add(
            Figure(
                f"{case}: ours without XLA vs one pass",
                times["ours without XLA"],
                times["floor"],
                "s",
                plain,
                "",
                None,
            )
        )


def add_memory_figures(
    report: Report, memory: dict[str, dict[str, Any]], weight_bytes: int, case: str
) -> None:
    ours_bytes, theirs = memory["ours"]["delta"], memory["baseline"]["delta"]
    report.add(
        Figure(
            f"{case}: peak extra memory vs top_k",
            ours_bytes / MIB,
            theirs / MIB,
            "MiB",
            ours_bytes / max(theirs, 1),
            "",
            None,
        )
    )
    report.add(
        Figure(
            f"{case}: peak extra memory vs the weight",
            ours_bytes / MIB,
            weight_bytes / MIB,
            "MiB",
            ours_bytes / weight_bytes,
            "",
            None,
        )
    )
    first_calls = ", ".join(
        f"{name} {record['first_call'] / MIB:.1f} MiB" for name, record in memory.items()
    )
    method = " / ".join(sorted({record["method"] for record in memory.values()}))
    report.note(f"memory: a fresh process per approach ({method}); first calls: {first_calls}")


if __name__ == "__main__":
    sys.exit(main())
