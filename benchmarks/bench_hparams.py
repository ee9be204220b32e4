"""How fast a typical --pruning_hparams flag parses.

Target (issue 3): at least 20,000 parses per second of the README example string,
where a parse is the whole `parse_hparams` call a training script makes: grammar,
typing, validation and normalization into a `NormalizedSpec`. Grammar and typing
alone (`parse_hparams_source`, what r1.15's `HParams.parse` did) are reported
beside it, and so is `json.loads` of the same spec's `to_json()` (a C-accelerated
parser doing less work) as a same-session baseline.

    python benchmarks/bench_hparams.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _common import Figure, Report, load_average, machine

from pruning_spec import parse_hparams
from pruning_spec._hparams import parse_hparams_source

README_FLAG = (
    "name=cifar10_pruning,begin_pruning_step=10000,end_pruning_step=100000,target_sparsity=0.9,"
    "weight_sparsity_map=[conv1:0.8,conv.*/kernel:0.6],block_dims_map=[dense1:4x4]"
)
TARGET_PER_SECOND = 20_000


def rate(call: Callable[[], object], seconds: float, repeats: int) -> float:
    """Median calls per second over `repeats` timed runs of about `seconds` each."""
    for _ in range(200):  # warm-up: caches, regex compilation
        call()
    per_run = []
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(100):
                call()
            count += 100
        per_run.append(count / elapsed)
    return statistics.median(per_run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    seconds, repeats = (0.05, 3) if args.quick else (1.0, 7)

    json_text = parse_hparams(README_FLAG).to_json()
    figures = {
        "parse_hparams": rate(lambda: parse_hparams(README_FLAG), seconds, repeats),
        "grammar_and_typing_only": rate(
            lambda: parse_hparams_source(README_FLAG), seconds, repeats
        ),
        "baseline_json_loads": rate(lambda: json.loads(json_text), seconds, repeats),
    }
    ours, baseline = figures["parse_hparams"], figures["baseline_json_loads"]
    report = Report("hparams", args.quick)
    print(f"machine: {machine()} ({load_average()})")
    print("baseline: json.loads of the same spec's to_json()")
    report.add(
        Figure(
            "parse_hparams (parse, validate, normalize)",
            ours,
            baseline,
            "/s",
            ours / baseline,
            f">= {TARGET_PER_SECOND:,}/s",
            ours >= TARGET_PER_SECOND,
        )
    )
    grammar = figures["grammar_and_typing_only"]
    report.add(
        Figure(
            "hparam grammar and typing only", grammar, baseline, "/s", grammar / baseline, "", None
        )
    )
    report.write(args.json, per_second=figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
