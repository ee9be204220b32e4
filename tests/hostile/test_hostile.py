"""Hostile inputs: every input, of any size or kind, gets a clear answer in bounded time.

What the corpus proves. Each line of `cases.tsv` runs `pruning-spec COMMAND` as a
subprocess (`python -m pruning_spec`, stdin closed, the corpus as its current directory)
on crafted inputs (regex bombs, deep nesting, huge numbers, NaN spellings, NUL bytes,
invalid UTF-8, lone surrogates, BOMs, CR line ends, unterminated blocks, thousands of
diagnostics, binary garbage, FIFOs and devices, 4 MiB inputs, hostile inventories and
`--hparams` strings, bad flags) and on seeded mutations of the example specs, and checks:

- the exit code is one of the expected ones: 0 nothing to report, 1 a spec has errors,
  2 usage or I/O problem (a set such as {0,1} where the exact code is not knowable);
- it finishes within TIMEOUT seconds of wall clock, under a MEMORY_LIMIT address space;
- no Python traceback appears on stdout or stderr, and the process is not killed;
- stdout and stderr together stay under MAX_OUTPUT bytes;
- a non-zero exit says something (an empty failure is not a clear answer);
- `fmt --check` leaves its files byte-for-byte unchanged; after `fmt` exits 0, `fmt --check`
  accepts what it wrote. Commands that write (`fmt`, `--output`, `--plot`) run on a private
  copy of the corpus; `test_corpus_untouched` checks no other case changed the shared copy.

How to add a case: add the file and its `corpus.case(expected codes, *command)` to
`make_corpus.py`, run `python tests/hostile/make_corpus.py`, and commit `corpus/` and
`cases.tsv` with it (`test_corpus_is_generated` fails when they differ from what the
script writes). In a command, `@PATH` passes the bytes of a corpus file as one argument
and `%XX` is the byte 0xXX; a command ending in `| head` has its stdout closed after
64 KiB and must then exit 0 promptly. Files git cannot hold (FIFOs, device links, 4 MiB inputs) are
made by `make_corpus.write_runtime_files` under `runtime/` when the tests run.

How it runs: each case is its own test (`test_case[COMMAND]`), so a failure names its
command and `-k` selects cases. The subprocesses themselves run once, concurrently in a
small thread pool, when the first selected case needs its result: some 750 sequential
runs of 0.1-0.2 s would take two minutes on 2 cores. Set PRUNING_SPEC_HOSTILE_REPORT=FILE to
also get every outcome as JSON.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import select
import shlex
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import make_corpus
import pytest

import pruning_spec

HERE = Path(__file__).resolve().parent
CASES_FILE = HERE / "cases.tsv"
TIMEOUT = 5.0  # seconds of wall clock per command
# Inputs at the documented size limits (4 MiB spec files and inventories) take 1-4 s alone
# through protobuf's Python text tokenizer; in a pool on 2 cores they get more room.
LARGE_TIMEOUT = 15.0
LARGE_INPUTS = ("runtime/max-", "4mib")
MAX_OUTPUT = 1 << 20  # bytes of stdout + stderr per command
MEMORY_LIMIT = 1 << 30  # bytes of address space per command
FILE_SIZE_LIMIT = 16 << 20  # a runaway output is cut here (EFBIG), well above MAX_OUTPUT
WORKERS = (os.cpu_count() or 1) + 1
HEAD_BYTES = 64 << 10  # what `| head` cases read before closing the pipe
TRACEBACK = b"Traceback (most recent call last)"

# `python -m pruning_spec` under resource limits. The limits are set in the child itself:
# `preexec_fn` is not safe with the threads that run the cases.
_LAUNCHER = f"""\
import resource, runpy
limits = ((resource.RLIMIT_AS, {MEMORY_LIMIT}), (resource.RLIMIT_FSIZE, {FILE_SIZE_LIMIT}))
for limit, value in limits:
    hard = resource.getrlimit(limit)[1]
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(limit, (value, value))
runpy.run_module("pruning_spec", run_name="__main__", alter_sys=True)
"""


@dataclasses.dataclass(frozen=True)
class Case:
    expect: frozenset[int]
    command: str  # shell-quoted arguments after `pruning-spec`
    note: str

    @property
    def head(self) -> bool:
        """`COMMAND | head`: stdout is closed after HEAD_BYTES, as `head` would close it."""
        return shlex.split(self.command)[-2:] == ["|", "head"]

    @property
    def argv(self) -> list[str]:
        tokens = shlex.split(self.command)
        return tokens[:-2] if self.head else tokens

    @property
    def id(self) -> str:
        if len(self.command) <= 100:
            return self.command
        return f"{self.command[:80]} ... ({len(self.argv)} args)"

    @property
    def writes(self) -> bool:
        argv = self.argv
        writes_files = bool(argv) and argv[0] == "fmt" and "--check" not in argv
        return writes_files or any(flag in argv for flag in ("--output", "-o", "--plot"))


def _read_cases() -> list[Case]:
    cases = []
    for line in CASES_FILE.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        expect, command, note = line.split("\t")
        codes = frozenset(int(code) for code in expect.split(","))
        cases.append(Case(codes, command, note))
    return cases


CASES = _read_cases()
assert len({case.id for case in CASES}) == len(CASES), "two cases with one id"


@dataclasses.dataclass
class Outcome:
    case: Case
    code: int | None  # None: killed at the timeout
    seconds: float
    stdout: bytes
    stderr: bytes
    problems: list[str]

    @property
    def output_size(self) -> int:
        return len(self.stdout) + len(self.stderr)

    def summary(self) -> str:
        status = "timeout" if self.code is None else f"exit {self.code}"
        expected = ",".join(str(code) for code in sorted(self.case.expect))
        head = (
            f"{status} (expected {expected}) in {self.seconds:.2f} s, "
            f"{_size(self.output_size)} of output"
        )
        return "; ".join([head, *self.problems])


def _size(count: int) -> str:
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def _arguments(case: Case, root: Path) -> list[bytes]:
    """The command's arguments as bytes: `@PATH` is a corpus file's bytes, `%XX` a byte."""
    arguments = []
    for token in case.argv:
        if token.startswith("@"):
            value = (root / token[1:]).read_bytes()
        else:
            value = urllib.parse.unquote_to_bytes(token)
        assert b"\0" not in value, f"{case.command}: an argument cannot hold a NUL byte"
        arguments.append(value)
    return arguments


def _environment() -> dict[str, str]:
    environment = dict(os.environ)
    for name in ("PYTHONUTF8", "PYTHONIOENCODING", "PYTHONWARNINGS", "PYTHONSTARTUP"):
        environment.pop(name, None)
    # Under `make test`'s coverage run, tracing would slow each case 3-4x and turn its
    # wall-clock bound into a measure of the tracer: the corpus runs untraced.
    for name in [name for name in environment if name.startswith("COVERAGE_")]:
        environment.pop(name)
    package_root = str(Path(pruning_spec.__file__).resolve().parents[1])
    path = environment.get("PYTHONPATH")
    environment.update(
        LC_ALL="C.UTF-8",
        LANG="C.UTF-8",
        COLUMNS="80",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONPATH=package_root + (os.pathsep + path if path else ""),
    )
    return environment


ENVIRONMENT = _environment()


def time_limit(case: Case) -> float:
    """Seconds of wall clock a case may take."""
    large = any(marker in argument for argument in case.argv for marker in LARGE_INPUTS)
    return LARGE_TIMEOUT if large else TIMEOUT


def _execute(
    arguments: list[bytes], cwd: Path, scratch: Path, limit: float, *, head: bool = False
) -> tuple[int | None, float, bytes, bytes]:
    """(exit code or None at the timeout, seconds, stdout, stderr), outputs kept in files."""
    scratch.mkdir(parents=True)
    out_path, err_path = scratch / "stdout", scratch / "stderr"
    command = [os.fsencode(sys.executable), b"-c", _LAUNCHER.encode(), *arguments]
    start = time.monotonic()
    code: int | None
    with out_path.open("wb") as out, err_path.open("wb") as err:
        if head:
            code, received = _run_into_head(command, cwd, err, start + limit)
            out.write(received)
            return code, time.monotonic() - start, received, err_path.read_bytes()
        try:
            code = subprocess.run(
                command,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=ENVIRONMENT,
                timeout=limit,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            code = None
    return code, time.monotonic() - start, out_path.read_bytes(), err_path.read_bytes()


def _run_into_head(
    command: list[bytes], cwd: Path, err: BinaryIO, deadline: float
) -> tuple[int | None, bytes]:
    """Reads the first HEAD_BYTES of stdout, closes the pipe, and waits until the deadline."""
    process = subprocess.Popen(
        command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
        env=ENVIRONMENT,
    )  # fmt: skip
    assert process.stdout is not None
    received = bytearray()
    while len(received) < HEAD_BYTES:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([process.stdout], [], [], remaining)[0]:
            break
        chunk = os.read(process.stdout.fileno(), HEAD_BYTES - len(received))
        if not chunk:
            break
        received += chunk
    process.stdout.close()
    try:
        code: int | None = process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        code = None
    return code, bytes(received)


def _traceback_excerpt(text: bytes) -> str:
    """The exception line and the innermost pruning_spec frame of a traceback."""
    lines = text.decode("utf-8", "replace").splitlines()
    start = max(i for i, line in enumerate(lines) if "Traceback (most recent" in line)
    frames = [line.strip() for line in lines[start:] if line.strip().startswith("File ")]
    ours = [frame for frame in frames if "pruning_spec" in frame] or frames
    exception = next(
        (line for line in reversed(lines[start:]) if line and not line.startswith(" ")), ""
    )
    where = ours[-1].replace(str(Path(pruning_spec.__file__).parent) + os.sep, "") if ours else ""
    return f"traceback: {exception[:200]} at {where}"


def _check(case: Case, arguments: list[bytes], cwd: Path, scratch: Path) -> Outcome:
    before = {}
    if case.argv[:2] == ["fmt", "--check"]:
        watched = [cwd / os.fsdecode(argument) for argument in arguments[2:]]
        before = {path: path.read_bytes() for path in watched if path.is_file()}
    limit = time_limit(case)
    code, seconds, stdout, stderr = _execute(arguments, cwd, scratch, limit, head=case.head)
    problems = []
    if code is None:
        problems.append(f"no answer within {limit:g} s")
    elif code < 0:
        problems.append(f"killed by signal {-code}")
    elif code not in case.expect:
        problems.append(f"wrong exit code {code}")
    for name, text in (("stdout", stdout), ("stderr", stderr)):
        if TRACEBACK in text:
            problems.append(f"{_traceback_excerpt(text)} (on {name})")
    if len(stdout) + len(stderr) >= MAX_OUTPUT:
        problems.append(f"output over {_size(MAX_OUTPUT)}")
    if code not in (None, 0) and not (stdout.strip() or stderr.strip()):
        problems.append("failed without saying why")
    for path, content in before.items():
        if not path.is_file() or path.read_bytes() != content:
            problems.append(f"fmt --check changed {path.relative_to(cwd)}")
    outcome = Outcome(case, code, seconds, stdout, stderr, problems)
    if case.writes and case.argv[0] == "fmt" and code == 0:
        _check_idempotent(outcome, arguments, cwd, scratch)
    return outcome


def _check_idempotent(outcome: Outcome, arguments: list[bytes], cwd: Path, scratch: Path) -> None:
    """After `fmt` succeeds, `fmt --check` on the same files must find nothing to change."""
    code, seconds, stdout, stderr = _execute(
        [arguments[0], b"--check", *arguments[1:]], cwd, scratch / "check", TIMEOUT
    )
    outcome.seconds += seconds
    if code != 0 or TRACEBACK in stdout + stderr:
        said = (stdout + stderr).decode("utf-8", "replace").strip().splitlines()[:1]
        outcome.problems.append(f"fmt --check after fmt: exit {code} {said}")


@dataclasses.dataclass
class Run:
    root: Path  # the shared copy of the corpus
    outcomes: dict[str, Outcome]


@pytest.fixture(scope="module")
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Runs every selected case once, concurrently, in a copy of the corpus."""
    root = tmp_path_factory.mktemp("hostile") / "corpus"
    shutil.copytree(make_corpus.CORPUS, root, symlinks=True)
    make_corpus.write_runtime_files(root)
    scratch = tmp_path_factory.mktemp("outputs")
    selected = [
        item.callspec.params["case"]
        for item in request.session.items
        if item.parent is request.node
        and hasattr(item, "callspec")
        and "case" in item.callspec.params
    ]

    def one(index: int, case: Case) -> Outcome:
        cwd = root
        if case.writes:  # a private copy: nothing else sees what it writes
            cwd = tmp_path_factory.mktemp("private") / "corpus"
            shutil.copytree(make_corpus.CORPUS, cwd, symlinks=True)
            make_corpus.write_runtime_files(cwd, large=False)
        return _check(case, _arguments(case, cwd), cwd, scratch / str(index))

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(one, index, case) for index, case in enumerate(selected)]
        outcomes = {
            case.id: future.result() for case, future in zip(selected, futures, strict=True)
        }
    report = os.environ.get("PRUNING_SPEC_HOSTILE_REPORT")
    if report:
        _write_report(Path(report), outcomes.values())
    yield Run(root, outcomes)
    shutil.rmtree(root / make_corpus.RUNTIME)  # a 1 GiB sparse file and 50 MB of 4 MiB inputs


def _write_report(path: Path, outcomes: Iterable[Outcome]) -> None:
    rows = [
        {
            "command": outcome.case.command,
            "expect": sorted(outcome.case.expect),
            "note": outcome.case.note,
            "code": outcome.code,
            "seconds": round(outcome.seconds, 3),
            "stdout_bytes": len(outcome.stdout),
            "stderr_bytes": len(outcome.stderr),
            "problems": outcome.problems,
            "head": (outcome.stdout + outcome.stderr)[:300].decode("utf-8", "replace"),
        }
        for outcome in outcomes
    ]
    path.write_text(json.dumps(rows, indent=1), encoding="utf-8")


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case(case: Case, run: Run) -> None:
    outcome = run.outcomes[case.id]
    if outcome.problems:  # one line, without assertion rewriting's dump of the outcome
        pytest.fail(f"{case.command}: {outcome.summary()}", pytrace=False)


def test_corpus_untouched(run: Run) -> None:
    """No command changed, added or removed a file of the shared corpus copy."""
    committed = {
        path.relative_to(make_corpus.CORPUS): path.read_bytes()
        for path in make_corpus.CORPUS.rglob("*")
        if path.is_file()
    }
    copied = {
        path.relative_to(run.root): path
        for path in run.root.rglob("*")
        if path.parts[len(run.root.parts)] != make_corpus.RUNTIME and not path.is_dir()
    }
    changed = sorted(
        str(relative)
        for relative in committed.keys() | copied.keys()
        if relative not in copied
        or relative not in committed
        or copied[relative].read_bytes() != committed[relative]
    )
    assert not changed, f"changed by a command: {changed}"


def test_corpus_is_generated() -> None:
    """corpus/ and cases.tsv are exactly what make_corpus.py writes: nobody edited them by hand."""
    problems = make_corpus.differences(make_corpus.build())
    assert not problems, (
        "run `python tests/hostile/make_corpus.py` and commit its output:\n" + "\n".join(problems)
    )
