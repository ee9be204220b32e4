"""`pruning-spec schedule`, `explain` and `verify`: what a spec does, before and after training."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar

from pruning_spec import _loader
from pruning_spec._diagnostics import (
    Diagnostic,
    Severity,
    Span,
    SpecError,
    capped,
    hidden_line,
    printable,
)
from pruning_spec._exit_codes import EXIT_FOUND, EXIT_OK, EXIT_USAGE, IO_CODES
from pruning_spec._files import FileError, write_atomically
from pruning_spec._hparams import parse_hparams_source
from pruning_spec._inventory import (
    GroupPlan,
    Weight,
    WeightPlan,
    plan_groups,
    plan_weights,
    read_inventory,
)
from pruning_spec._lints import inventory_lints, schedule_lints
from pruning_spec._spec import NMPattern, NormalizedSpec
from pruning_spec._textproto import ParsedSource
from pruning_spec._timeline import (
    ScheduledGroup,
    ScheduledNM,
    UpdatePoint,
    compile_schedule,
    schedule_groups,
    schedule_n_m,
    update_steps,
)
from pruning_spec.v1 import pruning_pb2

if TYPE_CHECKING:  # imported when used: checkpoints need the tensorflow extra
    import numpy as np
    import numpy.typing as npt

    from pruning_spec._checkpoints import Checkpoint

_Parser = TypeVar("_Parser", bound=argparse.ArgumentParser)


class CommandError(Exception):
    """Ends a command: the diagnostics to print and the exit status."""

    def __init__(self, diagnostics: Sequence[Diagnostic], status: int) -> None:
        super().__init__(diagnostics[0].message if diagnostics else "")
        self.diagnostics = list(diagnostics)
        self.status = status


def add_commands(commands: argparse._SubParsersAction[_Parser]) -> None:
    schedule = commands.add_parser(
        "schedule",
        help="the exact mask-update steps and the sparsity each rule and group reaches",
        description="The exact steps at which masks update in a run of N steps, with the "
        "global sparsity, each weight_sparsity_map rule's and each global group's (as a whole) "
        "at each, computed as the backends compute them, and each n_m_map rule's (its weights "
        "have no schedule: 1 - n/m from the first update on). Lints about the schedule follow "
        "on stderr.",
    )
    _common(schedule)
    schedule.add_argument("--total-steps", type=positive_int, required=True, metavar="N")
    schedule.add_argument("--format", choices=("table", "csv", "json"), default="table")
    schedule.add_argument("--plot", metavar="PNG", help="also draw the curves (needs matplotlib)")
    schedule.set_defaults(run=run_schedule)

    explain = commands.add_parser(
        "explain",
        help="what the spec does to each weight of a model",
        description="For every weight: the rules that apply, its final sparsity, the values or "
        "blocks kept, the block shape and its padding, and its N:M pattern if it has one. Lints "
        "follow on stderr.",
    )
    _common(explain)
    source = explain.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", metavar="INVENTORY", help="text file of 'name shape' lines")
    source.add_argument("--checkpoint", metavar="PATH", help="TF checkpoint, .keras or .weights.h5")
    explain.add_argument("--total-steps", type=positive_int, metavar="N", help="length of the run")
    explain.add_argument("--tolerance", type=tolerance, default=0.01)
    explain.add_argument("--format", choices=("table", "json"), default="table")
    explain.set_defaults(run=run_explain)

    verify = commands.add_parser(
        "verify",
        help="check a checkpoint's sparsity against the spec",
        description="Reads each weight (or its mask) from a checkpoint and checks its sparsity "
        "and block structure against what the spec requires at the checkpoint's step, and "
        "every group of an N:M weight against its pattern. Exit 1 with a table of the "
        "offenders.",
    )
    _common(verify)
    verify.add_argument("--checkpoint", metavar="PATH", required=True)
    when = verify.add_mutually_exclusive_group()
    when.add_argument(
        "--step", type=step_number, help="the step, when the checkpoint does not store it"
    )
    when.add_argument(
        "--final",
        action="store_true",
        help="check the sparsity the run ends at (a stripped or exported model)",
    )
    verify.add_argument("--tolerance", type=tolerance, default=0.01)
    verify.set_defaults(run=run_verify)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="spec file")
    parser.add_argument("--hparams", default="", help="hparam overrides applied to the file")
    parser.add_argument("--strict", action="store_true", help="fail on warnings too")


_LARGEST_STEP = 2**63 - 1  # global steps are int64 in every framework


def positive_int(text: str) -> int:
    """argparse type of a step count: a positive integer a global step can reach."""
    return _step(text, lowest=1, what="a positive integer")


def step_number(text: str) -> int:
    """argparse type of a global step: an integer from 0 to 2**63 - 1."""
    return _step(text, lowest=0, what="an integer >= 0")


def _step(text: str, *, lowest: int, what: str) -> int:
    value = int(text)  # argparse reports a ValueError as an invalid value
    if not lowest <= value <= _LARGEST_STEP:
        shown = text if len(text) <= 40 else f"{text[:20]}...{text[-20:]} ({len(text)} digits)"
        bound = "at most 2**63 - 1, the largest int64 global step" if value > 0 else what
        raise argparse.ArgumentTypeError(f"must be {bound}, got {shown}")
    return value


def tolerance(text: str) -> float:
    """argparse type of a sparsity tolerance: a finite number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0 <= value <= 1:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text}")
    return value


def flag_problems(hparams: str) -> list[Diagnostic]:
    """The errors of an --hparams flag: a usage problem (exit 2) in every command."""
    return [d for d in parse_hparams_source(hparams).diagnostics if d.is_error]


def load(args: argparse.Namespace) -> tuple[NormalizedSpec, ParsedSource]:
    """The spec of `args.file` (the defaults without one) with `args.hparams` applied."""
    problems = flag_problems(args.hparams)
    if problems:
        raise CommandError(problems, EXIT_USAGE)
    if args.file:
        parsed = _loader.read_spec_file(args.file)
    else:
        parsed = ParsedSource(pruning_pb2.PruningSpec())
    if any(d.code in IO_CODES for d in parsed.diagnostics):
        raise CommandError(parsed.diagnostics, EXIT_USAGE)
    try:
        spec = _loader.build_spec(parsed, args.hparams or None)
    except SpecError as error:
        raise CommandError(error.diagnostics, EXIT_FOUND) from None
    return spec, _loader.apply_overrides(parsed, args.hparams or None)


def finish(lints: list[Diagnostic], parsed: ParsedSource, strict: bool) -> int:
    """Prints lints on stderr, located in the spec where they are about a field."""
    shown, hidden = capped(lints)
    for lint in shown:
        span = lint.span or parsed.locate(lint.field_path) or Span(parsed.source or "<spec>")
        sys.stderr.write(lint.with_span(span).format(caret=False) + "\n")
    if hidden:
        sys.stderr.write(hidden_line(hidden) + "\n")
    return EXIT_FOUND if any(d.is_error or strict for d in lints) else EXIT_OK


# schedule


def run_schedule(args: argparse.Namespace, out: TextIO) -> int:
    spec, parsed = load(args)
    patterns = [rule.pattern for rule in spec.weight_sparsity_map]
    groups = schedule_groups(spec)
    n_m = schedule_n_m(spec)
    columns = [*patterns, *(f"group {g.name}" for g in groups), *(r.label for r in n_m)]
    points = compile_schedule(spec, args.total_steps)
    if args.format == "json":
        _write_schedule_json(out, args.total_steps, patterns, groups, n_m, points)
    elif args.format == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["step", "sparsity", *columns])
        for p in points:
            writer.writerow([p.step, *(f"{v:.9g}" for v in _point_values(p))])
    else:
        _write_schedule_table(out, spec, args.total_steps, columns, points)
        out.writelines(_group_line(g) + "\n" for g in groups)
        updates = update_steps(spec, args.total_steps)
        first = f"step {updates[0]:,}" if len(updates) else "none in this run"
        out.writelines(_n_m_line(r, first) + "\n" for r in n_m)
    if args.plot:
        _plot(spec, args.total_steps, patterns, groups, n_m, args.plot)
    return finish(schedule_lints(spec, args.total_steps), parsed, args.strict)


def _group_line(group: ScheduledGroup) -> str:
    """What a group's column is: its name, its weights and its target."""
    weights = (
        "the weights no rule claims (pruning_scope GLOBAL)"
        if group.pattern is None
        else f"the weights matching {group.pattern!r}"
    )
    if group.dense:
        return f"group {group.name}: {weights}, kept dense (sparsity 0)"
    return f"group {group.name}: {weights}, ranked together to sparsity {group.target:g}"


def _point_values(point: UpdatePoint) -> tuple[float, ...]:
    """An update's values in column order: global, rules, groups, N:M rules."""
    return (
        point.sparsity,
        *point.rule_sparsities,
        *point.group_sparsities,
        *point.n_m_sparsities,
    )


_REMAINDER_TEXT = {
    "DENSE": "a last partial group keeps all its values (remainder DENSE)",
    "KEEP_N": "a last partial group keeps at most its {n} largest (remainder KEEP_N)",
}


def _n_m_line(rule: ScheduledNM, first: str) -> str:
    """What an N:M rule's column is: its weights, pattern, and that it has no schedule."""
    axis = f"axis {rule.axis}"
    if rule.axis is None:
        axis = "the default axis (-2; 0 for a rank-1 weight)"
    line = (
        f"{rule.label}: the weights matching {rule.pattern!r} keep {rule.n} of every {rule.m} "
        f"values along {axis}: no schedule, sparsity 0 before the first mask update ({first}) "
        f"and {rule.sparsity:g} from it on (every update re-masks them)"
    )
    if rule.remainder in _REMAINDER_TEXT:
        partial = _REMAINDER_TEXT[rule.remainder].format(n=rule.n)
        line += f"; {partial}, so a weight whose axis {rule.m} does not divide is less sparse"
    return line


def _write_schedule_json(
    out: TextIO,
    total_steps: int,
    patterns: list[str],
    groups: list[ScheduledGroup],
    n_m: list[ScheduledNM],
    points: Iterator[UpdatePoint],
) -> None:
    """`json.dumps(document, indent=2)`'s layout, written one update at a time."""
    described = [
        {"name": g.name, "pattern": g.pattern, "target": 0.0 if g.dense else g.target}
        for g in groups
    ]
    n_m_rules = [
        {
            "pattern": r.pattern,
            "n": r.n,
            "m": r.m,
            "axis": r.axis,
            "remainder": r.remainder,
            "sparsity": r.sparsity,
        }
        for r in n_m
    ]
    head = json.dumps(
        {"total_steps": total_steps, "rules": patterns, "groups": described, "n_m": n_m_rules},
        indent=2,
    )
    out.write(head[:-2] + ',\n  "updates": [')
    separator = "\n"
    for p in points:
        update = {
            "step": p.step,
            "sparsity": p.sparsity,
            "rule_sparsities": list(p.rule_sparsities),
            "group_sparsities": list(p.group_sparsities),
            "n_m_sparsities": list(p.n_m_sparsities),
        }
        out.write(separator + textwrap.indent(json.dumps(update, indent=2), "    "))
        separator = ",\n"
    out.write("\n  ]\n}\n" if separator == ",\n" else "]\n}\n")


def _write_schedule_table(
    out: TextIO,
    spec: NormalizedSpec,
    total_steps: int,
    columns: list[str],
    points: Iterator[UpdatePoint],
) -> None:
    """The table, written row by row: column widths are known before the first row."""
    steps = update_steps(spec, total_steps)
    step_width = max(len("step"), len(f"{steps[-1]:,}") if len(steps) else 0)
    header = ["step", "sparsity", *columns]
    widths = [step_width, *(max(len(h), len("0.000000")) for h in header[1:])]
    out.write("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip() + "\n")
    for p in points:
        values = _point_values(p)
        cells = [f"{v:.6f}".rjust(w) for v, w in zip(values, widths[1:], strict=True)]
        out.write("  ".join([f"{p.step:,}".ljust(step_width), *cells]) + "\n")
    out.write(f"{len(steps):,} mask updates in {total_steps:,} steps\n")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(
            [r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))]
        )
        for r in rows
    ]
    return "\n".join(lines) + "\n"


_PLOTTED_UPDATES = 2_000  # markers a plot can show apart


def _plot(
    spec: NormalizedSpec,
    total_steps: int,
    patterns: list[str],
    groups: list[ScheduledGroup],
    n_m: list[ScheduledNM],
    path: str,
) -> None:
    try:
        import matplotlib  # noqa: PLC0415 - optional

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        raise CommandError(
            [
                Diagnostic(
                    "missing-extra",
                    "--plot needs matplotlib",
                    span=Span(path),
                    hint="pip install 'pruning-spec[plot]'",
                )
            ],
            EXIT_USAGE,
        ) from None
    stride = max(1, total_steps // 1000)
    steps = list(range(0, total_steps, stride))
    all_updates = update_steps(spec, total_steps)
    points = list(
        compile_schedule(
            spec, total_steps, all_updates[:: max(1, -(-len(all_updates) // _PLOTTED_UPDATES))]
        )
    )
    figure, axes = plt.subplots(figsize=(8, 4.5))
    axes.plot(steps, [spec.sparsity_at(t) for t in steps], label="target_sparsity (global)")
    plotted_steps = [p.step for p in points]
    axes.plot(plotted_steps, [p.sparsity for p in points], "o", markersize=3, color="C0")
    for index, pattern in enumerate(patterns):
        target = spec.weight_sparsity_map[index].sparsity
        curve = [p.rule_sparsities[index] for p in points]
        axes.plot(plotted_steps, curve, "o-", markersize=3, label=f"{pattern!r} -> {target:g}")
    for index, group in enumerate(groups):
        curve = [p.group_sparsities[index] for p in points]
        target = 0.0 if group.dense else group.target
        label = f"group {group.name} -> {target:g}"
        axes.plot(plotted_steps, curve, "s-", markersize=3, label=label)
    first = all_updates[0] if len(all_updates) else total_steps
    for rule in n_m:  # no schedule: 0, then the pattern's sparsity from the first update on
        curve = [rule.sparsity if t >= first else 0.0 for t in steps]
        label = f"{rule.label} -> {rule.sparsity:g} (no schedule)"
        axes.plot(steps, curve, "--", drawstyle="steps-post", label=label)
    axes.set_xlabel("global step")
    axes.set_ylabel("sparsity")
    axes.set_title(f"{spec.name}: {len(all_updates):,} mask updates in {total_steps:,} steps")
    axes.set_ylim(0, 1)
    axes.legend(loc="lower right")
    figure.tight_layout()
    image = io.BytesIO()
    try:  # the format follows the suffix, as matplotlib's own savefig(path) does
        figure.savefig(image, dpi=100, format=Path(path).suffix[1:].lower() or "png")
    except ValueError as error:
        raise _plot_problem(path, str(error)) from None
    finally:
        plt.close(figure)
    try:
        write_atomically(path, image.getvalue())
    except FileError as error:
        raise CommandError([error.to_diagnostic()], EXIT_USAGE) from None


def _plot_problem(path: str, reason: str) -> CommandError:
    message = f"cannot draw the plot: {reason}"
    hint = "name the file .png, .svg or .pdf"
    problem = Diagnostic("unknown-format", message, span=Span(path), hint=hint)
    return CommandError([problem], EXIT_USAGE)


# explain


def run_explain(args: argparse.Namespace, out: TextIO) -> int:
    spec, parsed = load(args)
    checkpoint = _read_checkpoint(args.checkpoint) if args.checkpoint else None
    weights = (
        _inventory(args.weights) if checkpoint is None else _candidates(checkpoint, args.checkpoint)
    )
    plans, conflicts = plan_weights(spec, weights, args.total_steps)
    groups = plan_groups(spec, plans)
    kept = {} if checkpoint is None else _kept_by_values(checkpoint, groups, args.checkpoint)
    lints = conflicts + inventory_lints(spec, weights, plans, tolerance=args.tolerance)
    lints += schedule_lints(spec, args.total_steps, plans)
    if args.format == "json":
        document = [_plan_json(spec, p, groups, kept.get(p.weight.name)) for p in plans]
        out.write(json.dumps(document, indent=2) + "\n")
    else:
        # The group and n:m columns only when some weight has one: tables of other specs
        # stay as they were.
        header = ["weight", "shape", "sparsity rule", "block rule", "group", "n:m", "final"]
        header += ["kept", "block", "padding"]
        rows = [_plan_row(spec, p, kept.get(p.weight.name)) for p in plans]
        n_m = any(p.n_m is not None for p in plans)
        shown = [i for i in range(len(header)) if (i != 4 or groups) and (i != 5 or n_m)]
        header = [header[i] for i in shown]
        rows = [[row[i] for i in shown] for row in rows]
        out.write(_table(header, rows))
        if n_m:
            out.write(_N_M_NOTE)
        if groups:
            out.write("\n" + _table(_GROUP_HEADER, [_group_row(g) for g in groups.values()]))
            if checkpoint is None:
                out.write(_DEPENDS_ON_VALUES)
    return finish(lints, parsed, args.strict)


_GROUP_HEADER = ["group", "target", "final", "members", "values", "kept", "floors"]


_N_M_NOTE = (
    "n:m: [rule] N:M axis A: the weight keeps N of every M consecutive values along axis A "
    "from the first mask update on (no schedule)\n"
)


_DEPENDS_ON_VALUES = (
    "(group): the group's sparsity; each member's own depends on the values "
    "(explain --checkpoint computes it)\n"
)


def _inventory(path: str) -> list[Weight]:
    weights, problems = read_inventory(path)
    if problems:
        raise CommandError(problems, EXIT_USAGE)
    return weights


def _kept_by_values(
    checkpoint: Checkpoint, groups: dict[str, GroupPlan], path: str
) -> dict[str, int]:
    """What each group member keeps of its checkpointed values at the group's final sparsity."""
    from pruning_spec._checkpoints import CheckpointError  # noqa: PLC0415

    kept: dict[str, int] = {}
    for group in groups.values():
        names = [member.name for member in group.group.members]
        try:
            selection = group.select([checkpoint.values(name) for name in names])
        except CheckpointError as error:
            raise _unreadable(path, error) from None
        kept.update(zip(names, selection.kept, strict=True))
    return kept


def _candidates(checkpoint: Checkpoint, path: str) -> list[Weight]:
    """The checkpoint's weights a spec applies to, saying so when that is an assumption."""
    if checkpoint.assumed:
        sys.stderr.write(
            f"{path}: note: checking its Keras kernels, what pks.prune prunes by default "
            "(not biases, embeddings or normalization)\n"
        )
    return [Weight(w.name, w.shape, Span(path)) for w in checkpoint.candidates]


def _read_checkpoint(path: str) -> Checkpoint:
    from pruning_spec._checkpoints import CheckpointError, read_checkpoint  # noqa: PLC0415

    try:
        return read_checkpoint(path)
    except CheckpointError as error:
        raise _unreadable(path, error) from None


def _unreadable(path: str, error: Exception) -> CommandError:
    """A checkpoint that cannot be read is an I/O problem (exit 2), whatever the format."""
    return CommandError([Diagnostic("io-error", str(error), span=Span(path))], EXIT_USAGE)


def _rule_text(spec: NormalizedSpec, map_name: str, index: int | None) -> str:
    return "-" if index is None else f"[{index}] {getattr(spec, map_name)[index].pattern}"


def _n_m_text(pattern: NMPattern | None) -> str:
    """`[0] 2:4 axis 0`, with the remainder when it is not REJECT: `... axis 2 KEEP_N`."""
    if pattern is None:
        return "-"
    text = f"[{pattern.rule}] {pattern.n}:{pattern.m} axis {pattern.axis}"
    return text if pattern.remainder == "REJECT" else f"{text} {pattern.remainder}"


def _plan_row(spec: NormalizedSpec, plan: WeightPlan, own_kept: int | None) -> list[str]:
    """A weight's row; a group member's final and kept are its own from values, if known.

    An N:M weight's kept count is its pattern's, whatever its values (ties keep the lower
    index): from --weights and --checkpoint alike, it is exact.
    """
    kept_units = plan.kept_units if plan.group is None else own_kept
    units = f"{plan.units:,}" + (" blocks" if plan.block != (1, 1) else "")
    if kept_units is None:  # a group member without values
        final, kept = f"{plan.final_sparsity:.4f} (group)", f"?/{units}"
    elif plan.group is None:
        final, kept = f"{plan.final_sparsity:.4f}", f"{kept_units:,}/{units}"
    else:
        final, kept = f"{1 - kept_units / plan.units:.4f}", f"{kept_units:,}/{units}"
    return [
        plan.weight.name,
        "x".join(map(str, plan.weight.shape)),
        "excluded"
        if spec.is_excluded(plan.weight.name)
        else _rule_text(spec, "weight_sparsity_map", plan.sparsity_rule),
        _rule_text(spec, "block_dims_map", plan.block_rule),
        plan.group or "-",
        _n_m_text(plan.n_m),
        final,
        kept,
        _block_text(plan),
        "-" if plan.padding == (0, 0) else f"+{plan.padding[0]} rows, +{plan.padding[1]} cols",
    ]


def _block_text(plan: WeightPlan) -> str:
    if plan.n_m is not None:
        return "-"  # ranked in its N:M groups, not in blocks
    return "element-wise" if plan.block == (1, 1) else f"{plan.block[0]}x{plan.block[1]}"


def _group_row(group: GroupPlan) -> list[str]:
    return [
        group.name,
        f"{group.target:g}",
        f"{group.final_sparsity:.4f}",
        f"{len(group.group.members):,}",
        f"{group.size:,}",
        f"{group.kept_units:,}",
        f"{group.floors:,}",
    ]


def _plan_json(
    spec: NormalizedSpec, plan: WeightPlan, groups: dict[str, GroupPlan], own_kept: int | None
) -> dict[str, object]:
    """A weight's entry. A group member's final_sparsity is its group's; its own kept
    count and sparsity are null without values (an inventory), exact with them."""
    group = groups.get(plan.group) if plan.group is not None else None
    kept, achieved = plan.kept_units, plan.achieved_sparsity
    if group is not None:
        kept = own_kept
        achieved = None if own_kept is None else 1.0 - own_kept / plan.units
    floors = {} if group is None else {m.name: m.floor for m in group.group.members}
    return {
        "name": plan.weight.name,
        "excluded": spec.is_excluded(plan.weight.name),
        "shape": list(plan.weight.shape),
        "sparsity_rule": plan.sparsity_rule,
        "block_rule": plan.block_rule,
        "final_sparsity": plan.final_sparsity,
        "achieved_sparsity": achieved,
        "units": plan.units,
        "kept_units": kept,
        "block": list(plan.block),
        "padding": list(plan.padding),
        "group": None if group is None else _group_json(group),
        "floor": floors.get(plan.weight.name),
        "n_m": None if plan.n_m is None else _n_m_json(plan.n_m),
    }


def _n_m_json(pattern: NMPattern) -> dict[str, object]:
    return {
        "n": pattern.n,
        "m": pattern.m,
        "axis": pattern.axis,
        "remainder": pattern.remainder,
        "rule": pattern.rule,
    }


def _group_json(group: GroupPlan) -> dict[str, object]:
    return {
        "name": group.name,
        "target": group.target,
        "final_sparsity": group.final_sparsity,
        "members": len(group.group.members),
        "values": group.size,
        "kept_units": group.kept_units,
        "floors": group.floors,
    }


# verify


def run_verify(args: argparse.Namespace, out: TextIO) -> int:
    spec, parsed = load(args)
    checkpoint = _read_checkpoint(args.checkpoint)
    weights = _candidates(checkpoint, args.checkpoint)
    if args.final:
        plans, conflicts = plan_weights(spec, weights)  # an unbounded run: where it ends
        when = "the end of the run"
    else:
        step = _verified_step(args, checkpoint)
        plans, conflicts = plan_weights(spec, weights, step + 1)
        when = f"step {step:,}"
    groups = plan_groups(spec, plans)
    from pruning_spec._checkpoints import CheckpointError  # noqa: PLC0415

    bad_groups = 0
    try:
        offenders, checked, n_m_groups = _check_weights(checkpoint, plans, args.tolerance)
        for group in groups.values():
            if group.final_sparsity == 0:
                continue  # not pruned (yet), as above
            checked += 1
            group_row, floor_rows = _check_group(checkpoint, group, args.tolerance)
            bad_groups += group_row is not None
            offenders += ([group_row] if group_row is not None else []) + floor_rows
    except CheckpointError as error:
        raise _unreadable(args.checkpoint, error) from None
    header = ["weight", "expected", "actual", "problem"]
    groups_noun = "group" if len(groups) == 1 else "groups"
    grouped = f" and {bad_groups} of {len(groups)} {groups_noun}" if groups else ""
    if offenders:
        out.write(_table(header, offenders))
        bad_weights = len(offenders) - bad_groups
        out.write(
            f"{bad_weights} of {len(plans)} weights{grouped} do not match the spec at {when}\n"
        )
    elif plans and not checked:
        out.write(f"no weight is pruned at {when}: nothing was checked\n")
        conflicts.append(
            Diagnostic(
                "nothing-checked",
                f"no weight is due to be pruned at {when}, so nothing was checked",
                severity=Severity.WARNING,
                span=Span(args.checkpoint),
                hint="for a stripped or exported model, which stores no training step, "
                "pass --final",
            )
        )
    elif checkpoint.weights and not checkpoint.candidates:
        # Not a pass: a file whose format hides which weights are pruned checks nothing.
        count = len(checkpoint.weights)
        out.write(f"none of the checkpoint's {count} weights is pruned: nothing was checked\n")
        conflicts.append(
            Diagnostic(
                "nothing-checked",
                f"the checkpoint holds {count} weights, but none that its format says is "
                "pruned (or, for a Keras file without pruning wrappers, is a kernel), so "
                "nothing was checked",
                severity=Severity.WARNING,
                span=Span(args.checkpoint),
                hint="a .weights.h5 file names no variables: only the kernels of Dense, "
                "EinsumDense, Conv and SeparableConv layers are recognized there",
            )
        )
    else:
        grouped = f" and {len(groups)} {groups_noun} as a whole" if groups else ""
        n_m = ""
        if n_m_groups:
            whose = "N:M weight" if len(n_m_groups) == 1 else f"{len(n_m_groups)} N:M weights"
            n_m = f", including all {sum(n_m_groups):,} groups of the {whose}"
        out.write(f"{len(plans)} weights{grouped} match the spec at {when}{n_m}\n")
    status = finish(conflicts, parsed, args.strict)
    return EXIT_FOUND if offenders else status


def _check_weights(
    checkpoint: Checkpoint, plans: Sequence[WeightPlan], tolerance: float
) -> tuple[list[list[str]], int, list[int]]:
    """The rows of the weights ranked alone that do not match, how many were checked,
    and each checked N:M weight's number of groups."""
    offenders, checked, n_m_groups = [], 0, []
    for plan in plans:
        if plan.group is not None:
            continue  # a member need not reach its group's sparsity: checked with the group
        if plan.final_sparsity == 0 and plan.block == (1, 1):
            continue  # not pruned (yet): natural zeros are no mismatch
        checked += 1
        if plan.n_m is not None:
            row, count = _check_n_m(checkpoint, plan, tolerance)
            n_m_groups.append(count)
        else:
            row = _check_weight(checkpoint, plan, tolerance)
        if row is not None:
            offenders.append(row)
    return offenders, checked, n_m_groups


def _verified_step(args: argparse.Namespace, checkpoint: Checkpoint) -> int:
    step: int | None = args.step if args.step is not None else checkpoint.step
    if step is None:
        raise CommandError(
            [
                Diagnostic(
                    "missing-step",
                    "the checkpoint stores no training step",
                    span=Span(args.checkpoint),
                    hint="pass --step N, or --final for a model at the end of its run",
                )
            ],
            EXIT_USAGE,
        )
    return step


def _stored(checkpoint: Checkpoint, name: str) -> npt.NDArray[np.generic]:
    """A weight's mask if the checkpoint pairs one with it, else its values."""
    import numpy as np  # noqa: PLC0415 - verify needs the tensorflow extra anyway

    mask = checkpoint.mask_values(name)
    return np.asarray(mask if mask is not None else checkpoint.values(name))


def _check_weight(checkpoint: Checkpoint, plan: WeightPlan, tolerance: float) -> list[str] | None:
    import numpy as np  # noqa: PLC0415

    name = plan.weight.name
    values = _stored(checkpoint, name)
    actual = float(np.mean(values == 0)) if values.size else 0.0
    expected = plan.achieved_sparsity
    assert expected is not None  # only group members have none, and they are not checked here
    if abs(actual - expected) > tolerance:
        return [
            name,
            f"{expected:.4f}",
            f"{actual:.4f}",
            f"sparsity off by more than {tolerance:g}",
        ]
    if plan.block != (1, 1) and not _block_structured(values, plan.block):
        return [
            name,
            f"{plan.block[0]}x{plan.block[1]} blocks",
            "mixed blocks",
            "zeros do not form whole blocks",
        ]
    return None


def _check_n_m(
    checkpoint: Checkpoint, plan: WeightPlan, tolerance: float
) -> tuple[list[str] | None, int]:
    """An N:M weight's row if some group breaks its pattern, and its number of groups.

    Kept values: mask == 1 when the checkpoint pairs a mask with the weight, else the
    values that are not 0. A group breaks the pattern when it keeps more than its
    allowance (n; under KEEP_N a last partial group of r values min(n, r); under DENSE
    all of it). Fewer is no offence for values, which may hold natural zeros: an N:M
    weight is never reported sparser than 1 - kept/size for its values. A mask is the
    pattern itself, exactly n kept in every full group, so a mask sparser than that by
    more than `tolerance` is reported.
    """
    import numpy as np  # noqa: PLC0415

    from pruning_spec._n_m import broken_groups, group_count  # noqa: PLC0415

    pattern = plan.n_m
    assert pattern is not None
    name, shape = plan.weight.name, plan.weight.shape
    mask = checkpoint.mask_values(name)
    kept = np.asarray(mask) == 1 if mask is not None else np.asarray(checkpoint.values(name)) != 0
    args = (pattern.n, pattern.m, pattern.axis, pattern.remainder)
    total = group_count(shape, pattern.m, pattern.axis, pattern.remainder)
    broken = broken_groups(kept, *args)
    described = _n_m_text(pattern).split(" ", 1)[1]  # without the rule index
    if broken:
        return [
            name,
            described,
            f"{broken:,} of {total:,} groups",
            f"keep more than the pattern allows ({pattern.n} of {pattern.m})",
        ], total
    if mask is not None:
        actual = 1.0 - float(np.count_nonzero(kept)) / kept.size
        expected = plan.achieved_sparsity
        assert expected is not None
        if actual - expected > tolerance:
            return [
                name,
                f"{expected:.4f}",
                f"{actual:.4f}",
                f"its mask keeps fewer than {described} by more than {tolerance:g}",
            ], total
    return None, total


def _check_group(
    checkpoint: Checkpoint, group: GroupPlan, tolerance: float
) -> tuple[list[str] | None, list[list[str]]]:
    """The group's row if its overall sparsity is off, and a row for each member below its floor.

    Expected: what the group keeps without ties, max(K, floors) of its N values; ties at
    the threshold keep more, and --tolerance absorbs them as it does for a single weight.
    A floor is exact: a member keeps at least ceil(n * min_weight_density) values.
    """
    import numpy as np  # noqa: PLC0415

    kept = [int(np.count_nonzero(_stored(checkpoint, m.name))) for m in group.group.members]
    actual = 1.0 - sum(kept) / group.size
    expected = group.achieved_sparsity
    group_row = None
    if abs(actual - expected) > tolerance:
        group_row = [
            f"group {group.name}",
            f"{expected:.4f}",
            f"{actual:.4f}",
            f"the group's sparsity off by more than {tolerance:g}",
        ]
    floor_rows = [
        [
            member.name,
            f"keeps >= {member.floor:,}",
            f"keeps {count:,}",
            f"below its floor in group {group.name} (min_weight_density)",
        ]
        for member, count in zip(group.group.members, kept, strict=True)
        if count < member.floor
    ]
    return group_row, floor_rows


def _block_structured(values: npt.NDArray[np.generic], block: tuple[int, int]) -> bool:
    """Whether every block is either wholly zero or holds no zero (padding cells ignored)."""
    import numpy as np  # noqa: PLC0415

    squeezed = np.squeeze(values)
    height, width = squeezed.shape
    rows, cols = -(-height // block[0]), -(-width // block[1])
    # Booleans: one byte a cell, so a checkpoint's largest weight fits beside its value.
    zeros = np.zeros((rows * block[0], cols * block[1]), dtype=np.bool_)
    real = np.zeros_like(zeros)
    zeros[:height, :width] = squeezed == 0
    real[:height, :width] = True
    per_block = (rows, block[0], cols, block[1])
    zero_count = zeros.reshape(per_block).sum(axis=(1, 3))
    real_count = real.reshape(per_block).sum(axis=(1, 3))
    return not bool(((zero_count > 0) & (zero_count < real_count)).any())
