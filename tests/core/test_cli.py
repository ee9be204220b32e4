"""The pruning-spec command: reports, exit codes, bad input, fmt, print and docs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_run import run

from pruning_spec import load_spec, parse_spec_text
from pruning_spec._cli import main
from pruning_spec._loader import MAX_FILE_BYTES

ROOT = Path(__file__).resolve().parents[2]
CIFAR10 = str(ROOT / "examples" / "cifar10.txtpb")
BROKEN = (
    "target_sparsty: 0.9\ntarget_sparsity: 1.5\nbegin_pruning_step: 500\nend_pruning_step: 100\n"
)


@pytest.fixture
def broken(tmp_path: Path) -> str:
    path = tmp_path / "broken.txtpb"
    path.write_text(BROKEN)
    return str(path)


def test_valid_file_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "validate", CIFAR10)
    assert status == 0
    assert out == "1 file checked: no problems.\n"


def test_text_report_is_gcc_style_with_hints(
    capsys: pytest.CaptureFixture[str], broken: str
) -> None:
    status, out, _ = run(capsys, "validate", broken)
    assert status == 1
    lines = out.splitlines()
    assert (
        lines[0]
        == f"{broken}:1:1: error[unknown-field]: PruningSpec has no field named 'target_sparsty'"
    )
    assert lines[1] == "  hint: did you mean 'target_sparsity'?"
    assert (
        lines[2]
        == f"{broken}:2:1: error[out-of-range]: target_sparsity: must be in [0, 1), got 1.5"
    )
    assert lines[3].startswith(f"{broken}:4:1: error[end-before-begin]: end_pruning_step:")
    assert lines[-1] == "Found 3 errors and 0 warnings in 1 of 1 file."


def test_json_report(capsys: pytest.CaptureFixture[str], broken: str) -> None:
    status, out, _ = run(capsys, "validate", "--format", "json", broken, CIFAR10)
    assert status == 1
    document = json.loads(out)
    assert document["errors"] == 3 and document["warnings"] == 0
    assert [f["path"] for f in document["files"]] == [broken, CIFAR10]
    first = document["files"][0]["diagnostics"][0]
    assert (first["code"], first["line"], first["column"], first["severity"]) == (
        "unknown-field",
        1,
        1,
        "error",
    )
    assert document["files"][1]["diagnostics"] == []


def test_github_report(capsys: pytest.CaptureFixture[str], broken: str) -> None:
    _, out, _ = run(capsys, "validate", "--format", "github", broken)
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[1] == (
        f"::error file={broken},line=2,col=1,title=out-of-range::"
        "target_sparsity: must be in [0, 1), got 1.5"
    )
    assert "%0Adid you mean 'target_sparsity'?" in lines[0]


def test_hparams_are_applied_to_every_file(capsys: pytest.CaptureFixture[str], broken: str) -> None:
    status, out, _ = run(capsys, "validate", "--hparams", "target_sparsity=2", CIFAR10)
    assert status == 1
    assert "<hparams>:16: error[out-of-range]: target_sparsity" in out
    assert "  target_sparsity=2\n                  ^" in out


def test_warnings_fail_only_with_strict(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "validate", "--hparams", "nbins=3", CIFAR10)[0] == 0
    assert run(capsys, "validate", "--strict", "--hparams", "nbins=3", CIFAR10)[0] == 1


def test_one_bad_file_never_stops_the_others(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, broken: str
) -> None:
    status, out, _ = run(capsys, "validate", str(tmp_path / "missing.txtpb"), broken, CIFAR10)
    assert status == 2  # an I/O problem outranks spec errors
    assert "missing.txtpb: error[io-error]: cannot read the file: No such file or directory" in out
    assert "error[out-of-range]" in out
    assert out.splitlines()[-1] == "Found 4 errors and 0 warnings in 2 of 3 files."


@pytest.mark.parametrize(
    ("name", "content", "code", "status"),
    [
        ("empty.txtpb", b"", "empty-file", 0),
        ("garbage.txtpb", bytes(range(1, 128)) * 8, "syntax", 1),
        ("latin1.txtpb", b'name: "caf\xe9"\n', "invalid-utf8", 1),
        ("garbage.pb", b"\xff" * 64, "decode-error", 1),
        ("spec.yaml", b"target_sparsity: 0.5\n", "unknown-format", 2),
    ],
)
def test_bad_input(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
    content: bytes,
    code: str,
    status: int,
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    got_status, out, err = run(capsys, "validate", str(path))
    assert got_status == status
    assert f"[{code}]" in out
    assert "Traceback" not in out + err


def test_huge_file_is_refused_without_reading_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "huge.txtpb"
    with path.open("wb") as stream:  # a 50 MB sparse file
        stream.truncate(50 * 1024 * 1024)
    status, out, _ = run(capsys, "validate", str(path))
    assert status == 2
    assert f"error[file-too-large]: is {50 * 1024 * 1024:,} bytes" in out
    assert MAX_FILE_BYTES < 50 * 1024 * 1024


def test_ten_thousand_rules(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "rules.txtpb"
    rules = "".join(
        f'weight_sparsity_map {{ pattern: "layer_{i}/" sparsity: 0.5 }}\n' for i in range(10_000)
    )
    path.write_text(rules + 'weight_sparsity_map { pattern: "layer_7/" sparsity: 0.5 }\n')
    status, out, _ = run(capsys, "validate", str(path))
    assert status == 1
    assert f"{path}:10001:1: error[duplicate-pattern]: weight_sparsity_map[10000]" in out


def test_backtracking_only_regex_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "backreference.txtpb"
    path.write_text('weight_sparsity_map { pattern: "(a)\\\\1*b" sparsity: 0.5 }\n')
    status, out, err = run(capsys, "validate", str(path))
    assert status == 1
    assert f"{path}:1:23: error[unsupported-regex]: weight_sparsity_map[0].pattern" in out
    assert "hint: a backreference can take exponential time" in out
    assert err == ""  # RE2 logs nothing of its own


def test_print_defaults_without_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "print", "--to", "json")
    assert status == 0
    assert json.loads(out)["target_sparsity"] == 0.5


def test_print_file_with_overrides_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "print", CIFAR10, "--hparams", "target_sparsity=0.95")
    assert status == 0
    spec = parse_spec_text(out)
    assert spec.target_sparsity == 0.95 and spec.name == "cifar10_pruning"
    _, hparams, _ = run(capsys, "print", CIFAR10, "--to", "hparams")
    assert hparams.startswith("name=cifar10_pruning,begin_pruning_step=10000,")


def test_print_bad_spec_reports_on_stderr(capsys: pytest.CaptureFixture[str], broken: str) -> None:
    status, out, err = run(capsys, "print", broken)
    assert (status, out) == (1, "")
    assert len(err.splitlines()) == 3


def test_fmt_rewrites_and_check_detects(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "messy.txtpb"
    path.write_text("# keep me\nname:'x'   # and me\ntarget_sparsity : .9;\n")
    os.chmod(path, 0o640)
    status, out, _ = run(capsys, "fmt", "--check", str(path))
    assert (status, out) == (1, f"would reformat {path}\n")
    assert path.read_text().startswith("# keep me\nname:'x'")
    status, out, _ = run(capsys, "fmt", str(path))
    assert (status, out) == (0, f"reformatted {path}\n")
    assert path.read_text() == '# keep me\nname: "x"  # and me\ntarget_sparsity: 0.9\n'
    assert path.stat().st_mode & 0o777 == 0o640
    assert run(capsys, "fmt", "--check", str(path))[:2] == (0, "")
    assert [p.name for p in tmp_path.iterdir()] == ["messy.txtpb"]  # no temporary left behind


def test_fmt_leaves_broken_files_alone(capsys: pytest.CaptureFixture[str], broken: str) -> None:
    status, _, err = run(capsys, "fmt", broken)
    assert status == 1
    assert "error[unknown-field]" in err
    assert Path(broken).read_text() == BROKEN


def test_docs_committed_copy_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "docs")
    assert status == 0
    committed = (ROOT / "docs" / "reference.md").read_text()
    assert out == committed, "docs/reference.md is stale: run `make docs`"


def test_docs_to_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "reference.md"
    assert run(capsys, "docs", "--output", str(target))[0] == 0
    text = target.read_text()
    assert "| `target_sparsity` | double | `0.5` | in [0, 1); finite |" in text
    # A rule's optional value with no declared default is unset, not its type's zero.
    assert "| `axis` | int32 | unset | in [-64, 63] |" in text
    assert "| `remainder` | enum: `REJECT`, `DENSE`, `KEEP_N` | `REJECT` |" in text


def test_usage_errors_exit_two(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["validate"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        main(["validate", "--format", "xml", CIFAR10])
    assert exited.value.code == 2


@pytest.mark.parametrize("command", ["validate", "schedule", "explain"])
@pytest.mark.parametrize("steps", ["0", "-5"])
def test_a_run_length_must_be_positive(
    capsys: pytest.CaptureFixture[str], command: str, steps: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, CIFAR10, "--total-steps", steps, "--weights", "w.txt"])
    assert exited.value.code == 2
    assert f"--total-steps: must be a positive integer, got {steps}" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["validate"], ["print"], ["fmt"], ["docs"]])
def test_help_on_every_command(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("usage: pruning-spec")


def test_console_script_and_module_never_import_tensorflow() -> None:
    code = (
        "import sys, runpy\n"
        "sys.argv = ['pruning-spec', 'validate', sys.argv[1]]\n"
        "try:\n"
        "    runpy.run_module('pruning_spec', run_name='__main__')\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, CIFAR10], capture_output=True, text=True, check=False
    )
    assert result.stdout.endswith("ok\n"), result.stderr
    script = Path(sys.executable).parent / "pruning-spec"
    version = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, check=False
    )
    assert version.stdout.startswith("pruning-spec ")


def test_fmt_keeps_what_a_lone_carriage_return_hides(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Text format ends lines only at '\n': the second "line" belongs to the comment.
    path = tmp_path / "cr.txtpb"
    path.write_bytes(b"# note\rtarget_sparsity: 0.95\n")
    assert load_spec(path).target_sparsity == 0.5
    run(capsys, "fmt", str(path))
    assert load_spec(path).target_sparsity == 0.5


def test_fmt_writes_through_a_symlink(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    real = tmp_path / "real.txtpb"
    real.write_text("name:'x'\n")
    link = tmp_path / "link.txtpb"
    link.symlink_to(real)
    assert run(capsys, "fmt", str(link))[0] == 0
    assert link.is_symlink()
    assert real.read_text() == 'name: "x"\n'


# Hostile input (issue 12): clear answers, documented exit codes, nothing changed unasked.


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _link_to_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (_fifo, "is a FIFO, not a regular file"),
        (_link_to_zero, "is a character device, not a regular file"),
        (Path.mkdir, "is a directory, not a spec file"),
    ],
    ids=["fifo", "dev-zero", "directory"],
)
def test_what_is_not_a_regular_file_is_refused_without_blocking(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make: Callable[[Path], None], problem: str
) -> None:
    path = tmp_path / "spec.txtpb"
    make(path)
    status, out, _ = run(capsys, "validate", str(path))
    assert status == 2
    assert f"{path}: error[io-error]: {problem}" in out


@pytest.mark.parametrize("suffix", [".txtpb", ".json"])
def test_a_byte_order_mark_is_accepted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"bom{suffix}"
    body = '{"target_sparsity": 0.9}' if suffix == ".json" else "target_sparsity: 0.9\n"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    status, out, _ = run(capsys, "print", str(path), "--to", "hparams")
    assert status == 0
    assert "target_sparsity=0.9" in out


def test_a_byte_order_mark_does_not_shift_columns(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "bom.txtpb"
    path.write_bytes(b"\xef\xbb\xbftarget_sparsity: 1.5\n")
    status, out, _ = run(capsys, "validate", str(path))
    assert status == 1
    assert f"{path}:1:1: error[out-of-range]" in out


def test_fmt_keeps_a_byte_order_mark(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bom.txtpb"
    path.write_bytes(b"\xef\xbb\xbftarget_sparsity:0.9")
    assert run(capsys, "fmt", str(path))[0] == 0
    assert path.read_bytes() == b"\xef\xbb\xbftarget_sparsity: 0.9\n"


@pytest.mark.parametrize(
    "command",
    [
        ["validate", CIFAR10],
        ["print", CIFAR10],
        ["schedule", CIFAR10, "--total-steps", "10"],
        ["explain", CIFAR10, "--weights", CIFAR10],
        ["verify", CIFAR10, "--checkpoint", CIFAR10],
    ],
    ids=lambda command: command[0],
)
def test_a_bad_hparams_flag_is_a_usage_problem_in_every_command(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    status, out, err = run(capsys, *command, "--hparams", "target_sparsty=0.9")
    assert status == 2
    assert "error[unknown-name]: unknown hyperparameter 'target_sparsty'" in out + err


@pytest.mark.parametrize("value", ["nan", "inf", "-0.1", "1.5", "abc"])
@pytest.mark.parametrize("command", ["explain", "verify"])
def test_a_tolerance_outside_0_to_1_is_refused(
    capsys: pytest.CaptureFixture[str], command: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, CIFAR10, "--checkpoint", "x", "--tolerance", value])
    assert exited.value.code == 2
    assert "--tolerance" in capsys.readouterr().err


def test_fmt_leaves_a_read_only_file_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "ro.txtpb"
    path.write_text("target_sparsity:0.9")
    path.chmod(0o444)
    status, _, err = run(capsys, "fmt", str(path))
    assert status == 2
    assert "error[io-error]: is read-only; not changed" in err
    assert path.read_text() == "target_sparsity:0.9"
    assert path.stat().st_mode & 0o777 == 0o444


def test_fmt_refuses_a_hard_linked_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "a.txtpb"
    path.write_text("target_sparsity:0.9")
    other = tmp_path / "b.txtpb"
    os.link(path, other)
    status, _, err = run(capsys, "fmt", str(path))
    assert status == 2
    assert "has 2 hard links; not changed" in err
    assert path.read_text() == other.read_text() == "target_sparsity:0.9"
    assert path.stat().st_ino == other.stat().st_ino


def test_fmt_refuses_an_unsafe_file_and_says_why(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pruning_spec import _format  # noqa: PLC0415

    path = tmp_path / "spec.txtpb"
    path.write_text("target_sparsity:0.9")

    def unsafe(text: str) -> str:
        raise _format.UnsafeToFormatError("formatting would change the content")

    monkeypatch.setattr(_format, "format_text", unsafe)
    status, _, err = run(capsys, "fmt", str(path))
    assert status == 1
    assert "error[fmt-unsafe]: left unchanged: formatting would change the content" in err
    assert path.read_text() == "target_sparsity:0.9"


def test_docs_to_an_unwritable_place_is_an_io_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, err = run(capsys, "docs", "--output", str(tmp_path))
    assert status == 2
    assert f"{tmp_path}: error[io-error]: is a directory, not a file; not changed" in err
    assert "Traceback" not in out + err


def test_thousands_of_problems_print_the_first_hundred_and_a_count(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "many.txtpb"
    path.write_text("".join(f"unknown_{i}: 1\n" for i in range(3_000)))
    status, out, _ = run(capsys, "validate", str(path))
    assert status == 1
    assert out.count("error[unknown-field]") == 100
    assert f"{path}: ... and 2,900 more diagnostics not shown" in out
    assert "Found 3000 errors" in out
    status, out, _ = run(capsys, "validate", "--format", "json", str(path))
    [report] = json.loads(out)["files"]
    assert (len(report["diagnostics"]), report["not_shown"]) == (100, 2_900)


def test_a_huge_hparams_flag_prints_a_bounded_report(capsys: pytest.CaptureFixture[str]) -> None:
    flag = ",".join(f"x{i}=1" for i in range(4_000))  # 31 KB, 4,000 unknown names
    status, out, _ = run(capsys, "validate", "--hparams", flag, CIFAR10)
    assert status == 2
    assert len(out) < 40_000  # 100 diagnostics with a 100-character window each
    assert "... and 3,900 more diagnostics not shown" in out


def test_schedule_streams_its_rows(tmp_path: Path) -> None:
    # 10^14 updates cannot be built before printing; `head` must see rows at once.
    command = [sys.executable, "-m", "pruning_spec", "schedule", CIFAR10]
    command += ["--hparams", "end_pruning_step=-1", "--total-steps", str(10**15), "--format", "csv"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        process.kill()
    assert lines[0] == b"step,sparsity,^conv1/\n"
    assert lines[1].startswith(b"10000,0,")


def test_table_cells_escape_control_characters(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    inventory = tmp_path / "weights.txt"
    inventory.write_text("conv1/\x1b[31mred 3,3\n")
    status, out, _ = run(capsys, "explain", CIFAR10, "--weights", str(inventory))
    assert status == 0
    assert "conv1/\\x1b[31mred" in out
    assert "\x1b" not in out


def test_a_parser_stops_after_ten_thousand_problems(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "garbage.txtpb"
    path.write_text("x: 1\n" * 50_000)
    status, out, _ = run(capsys, "validate", str(path))
    assert status == 1
    assert f"{path}: error[too-many-problems]: stopped after 10,000 problems" in out
    assert "Found 10001 errors" in out


@pytest.mark.parametrize(
    ("flag", "value"), [("--total-steps", str(2**63)), ("--step", str(2**63)), ("--step", "-1")]
)
def test_steps_beyond_int64_or_negative_are_usage_problems(
    capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    command = "schedule" if flag == "--total-steps" else "verify"
    with pytest.raises(SystemExit) as exited:
        main([command, CIFAR10, "--checkpoint", "x", flag, value])
    assert exited.value.code == 2
    assert flag in capsys.readouterr().err


def test_a_plot_that_cannot_be_written_is_an_io_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "missing" / "plot.png"
    status, _, err = run(capsys, "schedule", CIFAR10, "--total-steps", "10", "--plot", str(target))
    assert status == 2
    assert f"{target}: error[io-error]: cannot write the file" in err


N_M_SPEC = """\
end_pruning_step: 50
n_m_map {
  pattern: "^dense"
  n: 2
  m: 4
}
n_m_map {
  pattern: "^conv"
  n: 2
  m: 4
  axis: 5
}
"""


def test_validate_locates_n_m_errors_at_the_weight_and_names_the_rule(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec, weights = tmp_path / "nm.txtpb", tmp_path / "weights.txt"
    spec.write_text(N_M_SPEC)
    weights.write_text("dense/kernel 8,8\ndense_2/kernel 6,8\nconv/kernel 3,3,4,8\n")
    assert run(capsys, "validate", str(spec))[:2] == (0, "1 file checked: no problems.\n")
    status, out, _ = run(capsys, "validate", str(spec), "--weights", str(weights))
    assert status == 1
    errors = [line for line in out.splitlines() if ": error[" in line]
    assert errors == [
        f"{weights}:2:1: error[n-m-remainder]: n_m_map[0].m: weight 'dense_2/kernel' of shape "
        "[6, 8] has 6 values along axis 0, not a multiple of m = 4",
        f"{weights}:3:1: error[n-m-axis]: n_m_map[1].axis: axis 5 is out of range for weight "
        "'conv/kernel' of shape [3, 3, 4, 8]",
    ]
    assert out.splitlines()[-1] == "Found 2 errors and 0 warnings in 1 of 1 file."


def test_validate_leaves_out_curve_lints_when_every_pruned_weight_is_n_m(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Updates stop at 50, before the curve's end at 100: that matters to scheduled weights only.
    spec, weights = tmp_path / "nm.txtpb", tmp_path / "weights.txt"
    spec.write_text(N_M_SPEC)
    weights.write_text("dense/kernel 8,8\n")
    status, out, _ = run(capsys, "validate", str(spec), "--total-steps", "1000")
    assert status == 0 and "warning[updates-stop-early]" in out
    assert "warning[target-not-reached]" in out
    status, out, _ = run(
        capsys, "validate", str(spec), "--total-steps", "1000", "--weights", str(weights)
    )
    # No curve lint; the only lint is about the rule no weight matches, located at the rule.
    assert status == 0
    assert out.splitlines()[0] == (
        f"{spec}:7:1: warning[rule-matches-nothing]: n_m_map[1]: N:M pattern '^conv' matches "
        "none of the 1 weights"
    )
    assert out.splitlines()[-1] == "Found 0 errors and 1 warning in 1 of 1 file."
    weights.write_text("dense/kernel 8,8\nlogits/kernel 8,2\n")
    _, out, _ = run(
        capsys, "validate", str(spec), "--total-steps", "1000", "--weights", str(weights)
    )
    assert "warning[updates-stop-early]" in out and "warning[target-not-reached]" in out
