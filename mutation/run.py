"""Mutation testing with cosmic-ray: one session per module, then a score per module and in all.

python mutation/run.py [MODULE ...]      (default: every mutation/*.toml; `make mutation`)

For each module, mutation/<module>.toml names the file and the tests that exercise it. This
script, for each one:

1. runs those tests unmutated (a failing or missing test command would "kill" every mutant);
2. `cosmic-ray init` in build/mutation/<module>.sqlite (a fresh session each time);
3. skips the mutants that are not worth a test run (`skip_reason`: operators outside the
   selective set below, and type annotations, which `from __future__ import annotations`
   makes strings that nothing evaluates);
4. `cosmic-ray exec`: each mutant is written into the file in place, the tests run in a
   subprocess, and the file is put back (this script also restores it if anything goes wrong);
5. prints killed, survived, timeouts (counted as killed, as cosmic-ray does), incompetent
   and skipped, and the score killed / (killed + survived); the survivors, each with its
   diff, go to build/mutation/<module>-survivors.txt.
"""

from __future__ import annotations

import argparse
import ast
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import toml
from cosmic_ray.config import ConfigDict, deserialize_config
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "mutation"
OUT = ROOT / "build" / "mutation"
ORDER = ("schedule", "validate", "hparams", "scalars", "entries", "kernels", "masking")
# The slowest sessions start first, so that the last to finish is not a slow one.
SLOWEST_FIRST = ("kernels", "hparams", "masking", "validate", "scalars", "entries", "schedule")
PYTHONPATH = os.environ.get("PYTHONPATH", "")
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
)

# Selective mutation. cosmic-ray replaces each binary operator by each of the 10 others and
# each comparison by each of the 7 others: mostly redundant mutants (a float `<<` or `@` is
# a TypeError that any test calling the line kills). We keep one replacement per arithmetic
# or bitwise operator (its inverse, as PIT's and mutmut's math mutators do), the boundary and
# negation replacements of each comparison, and `-x` -> `x` (`-x` -> `+x` is the same mutant
# on numbers). Every other operator (constants, numbers, and/or, not, break/continue,
# exceptions, decorators, loops) is kept whole.
KEPT_REPLACEMENTS = {
    "ReplaceBinaryOperator": {
        "Add_Sub",
        "Sub_Add",
        "Mul_Div",
        "Div_Mul",
        "FloorDiv_Mul",
        "Mod_Mul",
        "Pow_Mul",
        "LShift_RShift",
        "RShift_LShift",
        "BitOr_BitAnd",
        "BitAnd_BitOr",
        "BitXor_BitAnd",
    },
    "ReplaceComparisonOperator": {
        "Eq_NotEq",
        "NotEq_Eq",
        "Lt_LtE",
        "Lt_GtE",
        "LtE_Lt",
        "LtE_Gt",
        "Gt_GtE",
        "Gt_LtE",
        "GtE_Gt",
        "GtE_Lt",
        "Is_IsNot",
        "IsNot_Is",
        "In_NotIn",
        "NotIn_In",
    },
    "ReplaceUnaryOperator": {"Delete_Not", "Delete_USub", "Delete_Invert", "UAdd_USub"},
}


@dataclass
class Score:
    module: str
    path: str
    killed: int = 0
    timeouts: int = 0
    survived: int = 0
    incompetent: int = 0
    skipped: int = 0
    seconds: float = 0.0

    @property
    def score(self) -> float:
        tested = self.killed + self.survived
        return 100.0 * self.killed / tested if tested else 100.0


Position = tuple[int, int]
Spans = list[tuple[Position, Position, str]]


def _end(node: ast.expr | ast.arg) -> Position:
    return (node.end_lineno or node.lineno, node.end_col_offset or node.col_offset)


def unexecuted_spans(source: str) -> Spans:
    """(start, end, why) of the code where a mutant changes nothing that runs.

    Annotations, when the module postpones their evaluation (`from __future__ import
    annotations`); and the bare `*` before keyword-only parameters, which cosmic-ray's
    parser takes for a multiplication and turns into `/` (positional-only): no call that
    works before fails after.
    """
    tree = ast.parse(source)
    postponed = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )
    spans: Spans = []
    for node in ast.walk(tree):
        annotations: list[ast.expr | None] = []
        if isinstance(node, ast.arg | ast.AnnAssign):
            annotations.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            if not isinstance(node, ast.Lambda):
                annotations.append(node.returns)
            args = node.args
            if args.kwonlyargs and args.vararg is None:
                before = [*args.posonlyargs, *args.args, *args.defaults]
                lo = max((_end(a) for a in before), default=(node.lineno, node.col_offset))
                first = args.kwonlyargs[0]
                spans.append((lo, (first.lineno, first.col_offset), "bare * (keyword-only)"))
        for ann in annotations:
            if postponed and ann is not None:
                spans.append(((ann.lineno, ann.col_offset), _end(ann), "annotation"))
    return spans


def skip_reason(operator: str, start: Position, spans: Spans) -> str | None:
    name = operator.removeprefix("core/")
    family, _, replacement = name.partition("_")
    if family in KEPT_REPLACEMENTS and replacement not in KEPT_REPLACEMENTS[family]:
        return "redundant operator"
    for lo, hi, why in spans:
        if lo <= start < hi:
            return why
    return None


def load_config(module: str, table: str = "cosmic-ray") -> tuple[ConfigDict, Path] | None:
    """The module's session config ("cosmic-ray") or its `[confirm]` variant, {python} filled in.

    `[confirm]` (optional) gives the test command, and its timeout, that the survivors of
    the session run against again: the session's own tests are a quick selection, the
    confirming ones all the tests of the module. Written where cosmic-ray reads it.
    """
    raw = toml.loads((CONFIGS / f"{module}.toml").read_text(encoding="utf-8"))
    if table not in raw:
        return None
    session = {"cosmic-ray": {**raw["cosmic-ray"], **raw[table]}}
    command = session["cosmic-ray"]["test-command"]
    session["cosmic-ray"]["test-command"] = command.replace("{python}", shlex.quote(sys.executable))
    text = toml.dumps(session)
    resolved = OUT / f"{module}{'' if table == 'cosmic-ray' else '-' + table}.toml"
    resolved.write_text(text, encoding="utf-8")
    return deserialize_config(text), resolved


def reopen_survivors(db_path: Path) -> int:
    """Makes the survivors of a session pending again (cosmic-ray exec runs pending mutants)."""
    with sqlite3.connect(db_path) as db:
        return db.execute(
            "DELETE FROM work_results WHERE test_outcome = ?", (TestOutcome.SURVIVED.name,)
        ).rowcount


def copy_tree(module: str) -> Path:
    """A copy of the work tree for one module's session, importable as the installed package.

    cosmic-ray writes each mutant into the file in place: in a copy, the work tree is never
    left mutated, and sessions run side by side (a kernel test must not see a validator
    mutant). The copy comes first on PYTHONPATH; `pruning_spec/backends` links to
    `backends/`, as the package-dir mapping installs it (the editable install would
    otherwise import the work tree's backends, by absolute path).
    """
    tree = OUT / "trees" / module
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(ROOT, tree, symlinks=True, ignore=COPY_IGNORE)
    link = tree / "pruning_spec" / "backends"
    if not link.exists():
        link.symlink_to(Path("..") / "backends", target_is_directory=True)
    return tree


def check_imports_from(tree: Path, path: str, env: dict[str, str]) -> None:
    """Fails unless the tests would import the copy's `path` (not the work tree's)."""
    name = path.removesuffix(".py").replace("/", ".")
    if not name.startswith("pruning_spec."):
        name = f"pruning_spec.{name}"
    find = f"import importlib.util as u; print(u.find_spec({name!r}).origin)"
    origin = subprocess.run(
        [sys.executable, "-c", find], cwd=tree, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    if Path(origin).resolve() != (tree / path).resolve():
        sys.exit(f"{path}: the tests would import {origin}, not the copy in {tree}")


def run_module(module: str, recheck: bool = False) -> tuple[Score, list[Survivor]]:
    """One session: all mutants, or (recheck) the last session's survivors again."""
    loaded = load_config(module)
    assert loaded is not None
    config, config_path = loaded
    db_path = OUT / f"{module}.sqlite"
    if recheck and not db_path.exists():
        sys.exit(f"{module}: no session to recheck ({db_path})")
    tree = copy_tree(module)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tree), PYTHONPATH])),
        # A mutant may keep its file's size and second: no bytecode cache to trust.
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    check_imports_from(tree, config["module-path"], env)
    log = (OUT / f"{module}.log").open("a" if recheck else "w", encoding="utf-8")
    server = start_forkserver(module, tree, env, log)
    try:
        return session(module, config, config_path, tree, env, log, recheck)
    finally:
        if server:
            server.terminate()
            server.wait()
        log.close()
        shutil.rmtree(tree)


def start_forkserver(
    module: str, tree: Path, env: dict[str, str], log: IO[str]
) -> subprocess.Popen[bytes] | None:
    """mutation/forkserver.py, preloading `[forkserver] preload`, if the config has it."""
    raw = toml.loads((CONFIGS / f"{module}.toml").read_text(encoding="utf-8"))
    if "forkserver" not in raw:
        return None
    command = [sys.executable, "mutation/forkserver.py", "serve", *raw["forkserver"]["preload"]]
    server = subprocess.Popen(command, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)
    socket_path = tree / ".forkserver.sock"
    deadline = time.monotonic() + 300
    while not socket_path.exists():
        if server.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"{module}: the fork server did not start (see {log.name})")
        time.sleep(0.2)
    return server


def session(
    module: str,
    config: ConfigDict,
    config_path: Path,
    tree: Path,
    env: dict[str, str],
    log: IO[str],
    recheck: bool,
) -> tuple[Score, list[Survivor]]:
    path = config["module-path"]
    score = Score(module, path)
    started = time.monotonic()
    db_path = OUT / f"{module}.sqlite"
    confirm = load_config(module, "confirm")

    def run(*command: str, check: bool = True) -> int:
        return subprocess.run(
            command, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT, check=check
        ).returncode

    def cosmic_ray_exec(config_path: Path) -> None:
        run(sys.executable, "-m", "cosmic_ray.cli", "exec", str(config_path), str(db_path))

    if not recheck:
        print(f"{module}: {path}: the tests, unmutated", flush=True)
        if run(*shlex.split(config["test-command"]), check=False) != 0:
            sys.exit(f"{module}: the tests fail unmutated (see {OUT / f'{module}.log'})")
        db_path.unlink(missing_ok=True)
        run(sys.executable, "-m", "cosmic_ray.cli", "init", str(config_path), str(db_path))
        spans = unexecuted_spans((tree / path).read_text(encoding="utf-8"))
        with use_db(str(db_path), WorkDB.Mode.open) as db:
            for item in list(db.pending_work_items):
                (mutation,) = item.mutations
                position = (mutation.start_pos[0], mutation.start_pos[1])
                reason = skip_reason(mutation.operator_name, position, spans)
                if reason:
                    db.set_result(
                        item.job_id,
                        WorkResult(output=reason, worker_outcome=WorkerOutcome.SKIPPED),
                    )
            pending = db.num_work_items - db.num_results
        print(f"{module}: {pending} mutants to test", flush=True)
        cosmic_ray_exec(config_path)
    if recheck or confirm:
        survivors = reopen_survivors(db_path)
        print(f"{module}: {survivors} survivors, against {'[confirm]' if confirm else 'the tests'}")
        cosmic_ray_exec(confirm[1] if confirm else config_path)
    score.seconds = time.monotonic() - started
    return tally(score, db_path)


Survivor = tuple[int, str, str]  # line, "file:line: operator", diff


def tally(score: Score, db_path: Path) -> tuple[Score, list[Survivor]]:
    """Counts a finished session's outcomes into `score`; writes the survivors' diffs."""
    survivors: list[Survivor] = []
    with use_db(str(db_path), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            (mutation,) = item.mutations
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                score.skipped += 1
            elif result.test_outcome == TestOutcome.KILLED:
                score.killed += 1
                score.timeouts += result.output == "timeout"
            elif result.test_outcome == TestOutcome.SURVIVED:
                score.survived += 1
                line = mutation.start_pos[0]
                head = f"{score.path}:{line}: {mutation.operator_name}"
                survivors.append((line, head, result.diff))
            else:
                score.incompetent += 1
    survivors.sort()
    report = OUT / f"{score.module}-survivors.txt"
    report.write_text(
        "".join(f"{head}\n{diff}\n\n" for _, head, diff in survivors), encoding="utf-8"
    )
    print(f"{score.module}: {score.seconds / 60:.1f} min, {score.score:.1f}%", flush=True)
    return score, survivors


def table(scores: list[Score]) -> str:
    lines = [
        "| module | file | killed (timeouts) | survived | incompetent | skipped | score | time |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scores:
        lines.append(
            f"| {s.module} | `{s.path}` | {s.killed} ({s.timeouts}) | {s.survived} | "
            f"{s.incompetent} | {s.skipped} | {s.score:.1f}% | {s.seconds / 60:.1f} min |"
        )
    if len(scores) > 1:
        total = Score("total", "", seconds=sum(s.seconds for s in scores))
        for field in ("killed", "timeouts", "survived", "incompetent", "skipped"):
            setattr(total, field, sum(getattr(s, field) for s in scores))
        lines.append(
            f"| **total** | | {total.killed} ({total.timeouts}) | {total.survived} | "
            f"{total.incompetent} | {total.skipped} | **{total.score:.1f}%** | "
            f"{total.seconds / 60:.1f} min |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"default: all of {', '.join(ORDER)}")
    parser.add_argument(
        "--recheck",
        action="store_true",
        help="test the last session's survivors again (after new tests), not every mutant",
    )
    parser.add_argument(
        "--jobs", type=int, default=2, help="sessions run side by side, each in its own copy"
    )
    args = parser.parse_args()
    available = {p.stem for p in CONFIGS.glob("*.toml")}
    modules = args.modules or [m for m in ORDER if m in available] + sorted(available - set(ORDER))
    unknown = [m for m in modules if m not in available]
    if unknown:
        parser.error(f"no mutation/<module>.toml for {', '.join(unknown)}")
    OUT.mkdir(parents=True, exist_ok=True)
    started = sorted(modules, key=lambda m: SLOWEST_FIRST.index(m) if m in SLOWEST_FIRST else 0)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        sessions = pool.map(lambda module: run_module(module, args.recheck), started)
        results = dict(zip(started, sessions, strict=True))
    scores = [results[m][0] for m in modules]
    summary = table(scores)
    (OUT / "summary.md").write_text(summary + "\n", encoding="utf-8")
    for module in modules:
        for _, head, _ in results[module][1]:
            print(f"survived: {head}")
    print()
    print(summary)
    print("\nscore = killed / (killed + survived); timeouts count as killed")
    print(f"survivors and their diffs: {OUT.relative_to(ROOT)}/<module>-survivors.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
