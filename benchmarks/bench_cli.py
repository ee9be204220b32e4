"""How fast `pruning-spec validate` answers in CI.

Targets (issue 4), wall time on the dev machine:
  - `pruning-spec validate examples/cifar10.txtpb` as a fresh process: <= 0.25 s;
  - validating 1,000 spec files in one invocation: <= 3 s.
Each figure is the median of several runs after a warm-up; the same session also
times a bare `python -c pass` (interpreter start-up, the floor of any Python CLI)
and reports the ratio to it.

    python benchmarks/bench_cli.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import Figure, Report, load_average, machine, median_times

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cifar10.txtpb"
COLD_START_TARGET = 0.25
THOUSAND_FILES_TARGET = 3.0


def succeeds(command: list[str]) -> None:
    """Runs a command; a benchmark of a failing command would time its error path."""
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{command[:3]} failed: {result.stdout.decode()[-500:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and files (smoke test)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    repeats, count = (2, 50) if args.quick else (7, 1000)
    cli = [sys.executable, "-m", "pruning_spec", "validate"]

    with tempfile.TemporaryDirectory() as folder:
        text = EXAMPLE.read_text()
        files = []
        for index in range(count):
            path = Path(folder) / f"spec_{index}.txtpb"
            path.write_text(text.replace("cifar10_pruning", f"spec_{index}"))
            files.append(str(path))
        commands = {
            "python_startup_s": [sys.executable, "-c", "pass"],
            "cold_validate_one_file_s": [*cli, str(EXAMPLE)],
            f"validate_{count}_files_s": [*cli, *files],
        }
        # The warm-up run fills the OS file cache.
        figures = median_times(
            {name: (lambda c=command: succeeds(c)) for name, command in commands.items()},
            repeats,
            warmups=1,
        )
    floor = figures["python_startup_s"]
    cold, many = figures["cold_validate_one_file_s"], figures[f"validate_{count}_files_s"]
    report = Report("cli", args.quick)
    print(f"machine: {machine()} ({load_average()})")
    print("baseline: `python -c pass`, the interpreter's own start-up")
    report.add(
        Figure(
            "validate one file, cold start",
            cold,
            floor,
            "s",
            cold / floor,
            f"<= {COLD_START_TARGET:g} s",
            cold <= COLD_START_TARGET,
        )
    )
    report.add(
        Figure(
            f"validate {count} files, one invocation",
            many,
            floor,
            "s",
            many / floor,
            f"<= {THOUSAND_FILES_TARGET:g} s",
            many <= THOUSAND_FILES_TARGET,
        )
    )
    report.write(args.json, seconds=figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
