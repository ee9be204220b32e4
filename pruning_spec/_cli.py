"""The `pruning-spec` command: validate, print, fmt and docs for spec files in CI.

Never imports TensorFlow. Exit status: 0 when there is nothing to report, 1 when
a spec has errors (or warnings, with --strict), 2 for usage and I/O problems.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from pruning_spec import _docs, _format, _loader
from pruning_spec._analyze import (
    CommandError,
    flag_problems,
    load,
    positive_int,
)
from pruning_spec._analyze import add_commands as add_analysis_commands
from pruning_spec._diagnostics import Diagnostic, Span, capped, hidden_line, split_bom
from pruning_spec._exit_codes import EXIT_FOUND, EXIT_OK, EXIT_USAGE, IO_CODES
from pruning_spec._files import FileError, write_atomically
from pruning_spec._inventory import plan_weights, read_inventory
from pruning_spec._lints import inventory_lints, schedule_lints
from pruning_spec._spec import NormalizedSpec
from pruning_spec._textproto import ParsedSource
from pruning_spec._version import __version__


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit with status 2 and a one-line message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pruning-spec",
        description="Validate, print, format and document pruning specs (no TensorFlow needed).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate", help="report every problem of every spec file", description=_VALIDATE_HELP
    )
    validate.add_argument(
        "files", nargs="+", metavar="FILE", help="spec files (.txtpb, .json, .pb)"
    )
    validate.add_argument("--hparams", default="", help="hparam overrides applied to each file")
    validate.add_argument("--strict", action="store_true", help="fail on warnings too")
    validate.add_argument(
        "--total-steps",
        type=positive_int,
        metavar="N",
        help="also lint the schedule of an N-step run",
    )
    validate.add_argument(
        "--weights", metavar="INVENTORY", help="also lint the rules against these weights"
    )
    validate.add_argument(
        "--format", choices=("text", "json", "github"), default="text", help="report format"
    )
    validate.set_defaults(run=_run_validate)

    show = commands.add_parser(
        "print",
        help="print the normalized spec",
        description="Print the normalized spec "
        "with every default filled in. Without FILE the defaults are the base.",
    )
    show.add_argument("file", nargs="?", metavar="FILE", help="spec file (default: the defaults)")
    show.add_argument("--hparams", default="", help="hparam overrides applied to the file")
    show.add_argument(
        "--to", choices=("hparams", "textproto", "json"), default="textproto", help="output format"
    )
    show.set_defaults(run=_run_print)

    fmt = commands.add_parser(
        "fmt",
        help="rewrite spec files in canonical layout, keeping comments",
        description="Rewrite text-format spec files in canonical layout. Comments are kept; a "
        "file that cannot be reformatted safely is left alone with a diagnostic.",
    )
    fmt.add_argument("files", nargs="+", metavar="FILE", help="text-format spec files")
    fmt.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if any would change"
    )
    fmt.set_defaults(run=_run_fmt)

    add_analysis_commands(commands)

    docs = commands.add_parser(
        "docs", help="print the Markdown field reference generated from the schema"
    )
    docs.add_argument("--output", "-o", type=Path, help="write to this file instead of stdout")
    docs.set_defaults(run=_run_docs)
    return parser


_VALIDATE_HELP = (
    "Validate spec files, reporting every diagnostic of every file. Exit status: 0 no errors, "
    "1 errors found (or warnings, with --strict), 2 usage or I/O problem."
)


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        status: int = args.run(args, sys.stdout)
    except BrokenPipeError:  # `pruning-spec print | head`
        return EXIT_OK
    except CommandError as error:
        _report_errors(error.diagnostics)
        return error.status
    return status


# validate


def _diagnose_file(path: str, args: argparse.Namespace) -> list[Diagnostic]:
    parsed = _loader.read_spec_file(path)
    if any(d.code in IO_CODES for d in parsed.diagnostics):
        return parsed.diagnostics
    found = _loader.check_source(parsed, args.hparams or None)
    if any(d.is_error for d in found) or (args.total_steps is None and args.weights is None):
        return found
    merged = _loader.apply_overrides(parsed, args.hparams or None)
    return found + _analysis_lints(_loader.build_spec(merged), merged, args)


def _analysis_lints(
    spec: NormalizedSpec, parsed: ParsedSource, args: argparse.Namespace
) -> list[Diagnostic]:
    if args.weights is None:
        found = schedule_lints(spec, args.total_steps)
    else:
        weights, problems = read_inventory(args.weights)
        plans, conflicts = plan_weights(spec, weights, args.total_steps)
        found = schedule_lints(spec, args.total_steps, plans)
        found += problems + conflicts + inventory_lints(spec, weights, plans)
    default = Span(parsed.source)
    return [d.with_span(d.span or parsed.locate(d.field_path) or default) for d in found]


def _run_validate(args: argparse.Namespace, out: TextIO) -> int:
    # A malformed --hparams is one usage problem, not one problem per file.
    problems = flag_problems(args.hparams)
    if problems:
        _REPORTERS[args.format]([("--hparams", problems)], out)
        return EXIT_USAGE
    results = [(path, _diagnose_file(path, args)) for path in args.files]
    _REPORTERS[args.format](results, out)
    diagnostics = [d for _, found in results for d in found]
    if any(d.code in IO_CODES for d in diagnostics):
        return EXIT_USAGE
    failing = [d for d in diagnostics if d.is_error or args.strict]
    return EXIT_FOUND if failing else EXIT_OK


Results = list[tuple[str, list[Diagnostic]]]


def _report_text(results: Results, out: TextIO) -> None:
    for path, diagnostics in results:
        shown, hidden = capped(diagnostics)
        for diagnostic in shown:
            out.write(diagnostic.format(caret=False, hint=False) + "\n")
            if diagnostic.span is not None and diagnostic.span.caret():
                out.write(diagnostic.span.caret() + "\n")
            if diagnostic.hint:
                out.write(f"  hint: {diagnostic.hint}\n")
        if hidden:
            out.write(f"{path}: {hidden_line(hidden)}\n")
    errors = sum(d.is_error for _, found in results for d in found)
    warnings = sum(not d.is_error for _, found in results for d in found)
    bad_files = sum(bool(found) for _, found in results)
    if errors or warnings:
        out.write(
            f"Found {_count(errors, 'error')} and {_count(warnings, 'warning')} "
            f"in {bad_files} of {_count(len(results), 'file')}.\n"
        )
    else:
        out.write(f"{_count(len(results), 'file')} checked: no problems.\n")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _report_json(results: Results, out: TextIO) -> None:
    files = []
    for path, found in results:
        shown, hidden = capped(found)
        files.append(
            {"path": path, "diagnostics": [_as_json(d) for d in shown], "not_shown": hidden}
        )
    document = {
        "version": 1,
        "files": files,
        "errors": sum(d.is_error for _, found in results for d in found),
        "warnings": sum(not d.is_error for _, found in results for d in found),
    }
    json.dump(document, out, indent=2)
    out.write("\n")


def _as_json(diagnostic: Diagnostic) -> dict[str, object]:
    span = diagnostic.span
    return {
        "code": diagnostic.code,
        "severity": diagnostic.severity.value,
        "field_path": diagnostic.field_path,
        "message": diagnostic.message,
        "hint": diagnostic.hint,
        "source": span.source if span else None,
        "line": span.line if span else None,
        "column": span.column if span else None,
        "offset": span.offset if span else None,
    }


def _report_github(results: Results, out: TextIO) -> None:
    for path, diagnostics in results:
        shown, hidden = capped(diagnostics)
        if hidden:
            out.write(f"::warning file={_escape_property(path)}::{hidden_line(hidden)}\n")
        for diagnostic in shown:
            span = diagnostic.span
            properties = [f"file={_escape_property(path)}"]
            if span is not None and span.line is not None and span.source == path:
                properties += [f"line={span.line}", f"col={span.column or 1}"]
            properties.append(f"title={_escape_property(diagnostic.code)}")
            subject = f"{diagnostic.field_path}: " if diagnostic.field_path else ""
            message = subject + diagnostic.message
            if diagnostic.hint:
                message += f"\n{diagnostic.hint}"
            out.write(
                f"::{diagnostic.severity.value} {','.join(properties)}::{_escape_data(message)}\n"
            )


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


_REPORTERS = {"text": _report_text, "json": _report_json, "github": _report_github}


# print


def _run_print(args: argparse.Namespace, out: TextIO) -> int:
    spec, _ = load(args)
    if args.to == "hparams":
        out.write(spec.to_hparams() + "\n")
    elif args.to == "json":
        out.write(spec.to_json(indent=2) + "\n")
    else:
        out.write(spec.to_textproto())
    return EXIT_OK


def _report_errors(diagnostics: Sequence[Diagnostic]) -> None:
    shown, hidden = capped(diagnostics)
    for diagnostic in shown:
        sys.stderr.write(diagnostic.format() + "\n")
    if hidden:
        sys.stderr.write(hidden_line(hidden) + "\n")


# fmt


def _run_fmt(args: argparse.Namespace, out: TextIO) -> int:
    status = EXIT_OK
    for path in args.files:
        outcome = _format_file(path, check=args.check)
        if outcome is None:
            continue
        if isinstance(outcome, Diagnostic):
            sys.stderr.write(outcome.format(caret=False, hint=False) + "\n")
            failed = EXIT_USAGE if outcome.code in IO_CODES else EXIT_FOUND
            status = max(status, failed)
        else:
            out.write(f"{'would reformat' if args.check else 'reformatted'} {path}\n")
            status = max(status, EXIT_FOUND if args.check else EXIT_OK)
    return status


def _format_file(path: str, *, check: bool) -> Diagnostic | str | None:
    """None when already formatted, the new text when it changes, or why it cannot be done."""
    data, parsed = _loader.read_spec_bytes(path)
    problems = [d for d in parsed.diagnostics if d.is_error]
    if problems:
        return problems[0]
    if data is None or not path.endswith(_loader.TEXT_SUFFIXES):
        return Diagnostic("unknown-format", "fmt formats text-format files only", span=Span(path))
    # The bytes the loader checked, decoded as it did: text mode would turn a lone '\r'
    # into a line end. A byte order mark stays where it was.
    bom, body = split_bom(data)
    text = body.decode("utf-8")
    try:
        formatted = _format.format_text(text)
    except _format.UnsafeToFormatError as error:
        return Diagnostic("fmt-unsafe", f"left unchanged: {error}", span=Span(path))
    if formatted == text:
        return None
    if not check:
        try:
            write_atomically(path, bom + formatted.encode("utf-8"))
        except FileError as error:
            return error.to_diagnostic()
    return formatted


# docs


def _run_docs(args: argparse.Namespace, out: TextIO) -> int:
    reference = _docs.render_reference()
    if args.output is None:
        out.write(reference)
        return EXIT_OK
    try:
        write_atomically(args.output, reference)
    except FileError as error:
        raise CommandError([error.to_diagnostic()], EXIT_USAGE) from None
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
