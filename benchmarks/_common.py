"""What every benchmark shares: interleaved median timing, the machine, and how figures print.

A figure is ours vs a baseline measured in the same run on the same inputs, their
ratio, and the target; a missed target is printed as MISSED, never left out.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

MIB = 1 << 20


def median_times(
    calls: Mapping[str, Callable[[], object]],
    repeats: int,
    warmups: int = 2,
    setups: Mapping[str, Callable[[], object]] | None = None,
) -> dict[str, float]:
    """Median wall time of each call; runs interleaved so drift hits every call alike.

    Every other round runs the calls in reverse order, so that none always runs
    right after a particular other one (caches, CPU frequency, collector pauses).
    `setups[name]`, where given, runs before each of that call's runs, untimed (to give
    a call that changes its inputs the same inputs every time).
    """
    setups = setups or {}

    def no_setup() -> None:
        return None

    for name, call in calls.items():  # warm-up: tracing, graph optimisation, allocator pools
        for _ in range(warmups):
            setups.get(name, no_setup)()
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for round_number in range(repeats):
        order = list(calls.items())
        for name, call in order if round_number % 2 == 0 else reversed(order):
            setups.get(name, no_setup)()
            start = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}


def machine() -> str:
    """The CPU, its core count and the software the figures were measured with."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    try:  # from the package metadata: naming the version must not cost a TensorFlow import
        software = f", TensorFlow {metadata.version('tensorflow-cpu')}"
    except metadata.PackageNotFoundError:
        software = ""
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}{software}"


def load_average() -> str:
    return f"load average {os.getloadavg()[0]:.1f}"


# Peak memory: the resident set's high-water mark.


def status_bytes(field: str) -> int:
    """A size field of /proc/self/status (VmRSS, VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return status_bytes("VmHWM") <= status_bytes("VmRSS") + 4 * MIB
    except OSError:
        return False


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


# The weights of the whole-model benchmarks.


def resnet50_kernels() -> list[tuple[int, ...]]:
    """Shapes (h, w, in, out) of ResNet-50's convolutions, then its classifier (in, out)."""
    shapes: list[tuple[int, ...]] = [(7, 7, 3, 64)]
    channels = 64
    for blocks, width in ((3, 64), (4, 128), (6, 256), (3, 512)):
        for block in range(blocks):
            shapes += [(1, 1, channels, width), (3, 3, width, width), (1, 1, width, 4 * width)]
            if block == 0:
                shapes.append((1, 1, channels, 4 * width))  # the projection shortcut
            channels = 4 * width
    return [*shapes, (2048, 1000)]


def bert_base_kernels() -> list[tuple[int, ...]]:
    """A BERT-base encoder's kernels: 12 layers of Q, K, V, output and the feed-forward pair."""
    hidden, intermediate = 768, 3072
    layer = [(hidden, hidden)] * 4 + [(hidden, intermediate), (intermediate, hidden)]
    return layer * 12


def model_shapes(quick: bool) -> list[tuple[int, ...]]:
    """ResNet-50's and BERT-base's kernels (126, 109M values); 6 of them when quick."""
    shapes = resnet50_kernels() + bert_base_kernels()
    return shapes[:4] + shapes[-2:] if quick else shapes


@dataclasses.dataclass
class Figure:
    """One measured comparison. `ratio` is oriented so that bigger is better for us."""

    name: str
    ours: float
    baseline: float
    unit: str
    ratio: float
    target: str
    met: bool | None  # None: no target for this row

    def line(self) -> str:
        verdict = "" if self.met is None else ("MET" if self.met else "MISSED")
        return (
            f"{self.name:<44} ours {format_value(self.ours, self.unit):>12}  baseline "
            f"{format_value(self.baseline, self.unit):>12}  ratio {self.ratio:8.2f}x  "
            f"{self.target:<14} {verdict}"
        )


def format_value(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.4f} s" if value < 10 else f"{value:.2f} s"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    return f"{value:,.0f} {unit}"


class Report:
    """Figures of one benchmark: printed as they come, then written as JSON."""

    def __init__(self, benchmark: str, quick: bool) -> None:
        self.benchmark = benchmark
        self.quick = quick
        self.figures: list[Figure] = []
        self.notes: list[str] = []

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        print(figure.line() + (" (quick mode: not the target's size)" if self.quick else ""))

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(text)

    def write(self, path: Path | None, **extra: Any) -> None:
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "benchmark": self.benchmark,
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine(),
            "load_average_at_end": os.getloadavg()[0],
            "quick": self.quick,
            "figures": [dataclasses.asdict(f) for f in self.figures],
            "notes": self.notes,
            **extra,
        }
        path.write_text(json.dumps(record, indent=2) + "\n")
