"""Renders the benchmarks' JSON results as one Markdown table (what the README quotes).

python benchmarks/report.py benchmarks/results [--output benchmarks/results/RESULTS.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from _common import format_value

ORDER = ("mask_update", "model_update", "global", "train_step", "cli", "hparams", "hostile")


def render(records: list[dict[str, Any]]) -> str:
    records = sorted(
        records, key=lambda r: ORDER.index(r["benchmark"]) if r["benchmark"] in ORDER else 99
    )
    dates = sorted({r["date"] for r in records})
    machines = sorted({r["machine"] for r in records})
    lines = [
        f"Measured {', '.join(dates)} on {'; '.join(machines)}.",
        "",
        "| figure | ours | baseline | ratio | target | verdict |",
        "|---|---:|---:|---:|---|---|",
    ]
    for record in records:
        for figure in record["figures"]:
            verdict = {True: "met", False: "**MISSED**", None: ""}[figure["met"]]
            lines.append(
                f"| {figure['name']} | {format_value(figure['ours'], figure['unit'])} | "
                f"{format_value(figure['baseline'], figure['unit'])} | {figure['ratio']:.2f}x | "
                f"{figure['target']} | {verdict} |"
            )
    notes = [note for record in records for note in record.get("notes", [])]
    quick = any(record.get("quick") for record in records)
    if quick:
        notes.append("quick mode (smoke): sizes are not the targets' sizes")
    return "\n".join(lines + [""] + [f"- {note}" for note in notes]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the folder of *.json results")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    paths = sorted(args.results.glob("*.json"))
    if not paths:
        print(f"no results in {args.results}: run `make bench` first", file=sys.stderr)
        return 2
    table = render([json.loads(path.read_text()) for path in paths])
    print(table, end="")
    if args.output:
        args.output.write_text(table)
    missed = table.count("**MISSED**")
    if missed:
        print(f"{missed} target(s) missed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
