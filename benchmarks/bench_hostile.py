"""Hostile input in bounded time (issue 12): RE2 matching, linear parsers, bounded reports.

Every figure compares with a baseline run in the same session:
  - rule matching: Python's `re`, which r1.15 and earlier versions of this project used;
  - catastrophic patterns: `re` on a name of a few dozen characters against RE2 on a name
    of 10,000 (500x longer), and RE2 at 20,000 against 10,000 characters (linear: 2x);
  - the parsers and reports: this project before issue 12 (`git archive` of BASELINE_REVISION,
    its protos compiled afresh), run in a subprocess on the same inputs. Inputs are sized so
    that the old code finishes: its cost grew quadratically or worse.
Target: validating 100,000 rules >= 5x faster than before (the Validator on the rules of
`rules_and_names`, half of them anchored; the whole path from a text file is reported too).

    python benchmarks/bench_hostile.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from _common import Figure, Report, load_average, machine, median_times

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pruning_spec import (  # noqa: E402
    PruningSpec,
    SpecError,
    WeightSparsityRule,
    collect_diagnostics,
    parse_hparams,
)
from pruning_spec._inventory import parse_inventory  # noqa: E402
from pruning_spec._loader import check_source, parse_json  # noqa: E402
from pruning_spec._regex import RuleMatcher  # noqa: E402
from pruning_spec._textproto import parse_textproto  # noqa: E402

RULE_SHAPES = ["^model/layer_{i}/kernel$", "block{i}_conv[0-9]+/", "head_{i}/.*bias", "^enc{i}/"]
BASELINE_REVISION = "bca5639"  # the last commit before issue 12
VALIDATE_SPEEDUP_TARGET = 5.0
# (pattern, repeated character, a name length at which Python's `re` takes 0.03-1 s here;
# (a+){25}b needs 26 characters before `re` tries at all, and then 1.2 s)
CATASTROPHIC = [
    (r"a*a*a*a*a*a*a*a*b", "a", 22),
    (r"(a+){25}b", "a", 26),
    (r"(a|a){0,100}b", "a", 19),
    (r".*.*.*.*.*.*=", "x", 32),
    (r"\w*\w*\w*\w*\w*!", "w", 40),
]


def rules_and_names(rules: int, names: int) -> tuple[list[str], list[str]]:
    """Patterns as specs write them (anchored names, wildcards, classes) and model names."""
    patterns = [RULE_SHAPES[i % len(RULE_SHAPES)].format(i=i) for i in range(rules)]
    weights = [
        f"model/layer_{j}/kernel" if j % 2 else f"block{j}_conv3/kernel" for j in range(names)
    ]
    return patterns, weights


def python_matching(patterns: list[str], names: list[str]) -> list[list[int]]:
    compiled = [re.compile(p) for p in patterns]
    return [[i for i, c in enumerate(compiled) if c.search(n)] for n in names]


def re2_matching(patterns: list[str], names: list[str]) -> list[list[int]]:
    matcher = RuleMatcher(patterns)
    return [matcher.matching(n) for n in names]


def comparison(name: str, ours: float, baseline: float, unit: str = "s") -> Figure:
    """A figure with no target: how many times better than the baseline."""
    return Figure(name, ours, baseline, unit, baseline / ours, "", None)


def growth(name: str, longer: float, shorter: float, limit: float, target: str) -> Figure:
    """Time on a larger input over time on a smaller one: at most `limit` if it scales linearly."""
    ratio = longer / shorter
    return Figure(name, longer, shorter, "s", ratio, target, ratio <= limit)


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def matching_figures(report: Report, quick: bool) -> None:
    rules, names = (1_000, 1_000) if quick else (10_000, 10_000)
    patterns, weights = rules_and_names(rules, names)
    subset = weights[: names // 10]
    if python_matching(patterns, subset) != re2_matching(patterns, subset):
        raise SystemExit("RE2 and re disagree on the benchmark's rules")
    seconds = median_times(
        {
            "re": lambda: python_matching(patterns, subset),
            "re2": lambda: re2_matching(patterns, subset),
            "re2_all": lambda: re2_matching(patterns, weights),
        },
        repeats=3,
        warmups=1,
    )
    name = f"{rules:,} rules x {len(subset):,} names: RE2 vs re"
    report.add(comparison(name, seconds["re2"], seconds["re"]))
    name = f"{rules:,} rules x {names:,} names vs x {len(subset):,} (linear: 10x)"
    report.add(growth(name, seconds["re2_all"], seconds["re2"], 12, "<= 12x"))


def catastrophic_figures(report: Report, quick: bool) -> None:
    long = 1_000 if quick else 10_000
    for pattern, char, slow_length in CATASTROPHIC:
        matcher = RuleMatcher([pattern])
        compiled = re.compile(pattern)
        python_length = slow_length - 4 if quick else slow_length
        seconds = median_times(
            {
                "re": lambda c=compiled, n=char * python_length: c.search(n),
                "re2": lambda m=matcher, n=char * long: m.matching(n),
                # Ten times longer, so that timer noise does not decide the linearity ratio.
                "re2_10x": lambda m=matcher, n=char * 10 * long: m.matching(n),
                "re2_20x": lambda m=matcher, n=char * 20 * long: m.matching(n),
            },
            repeats=7,
            warmups=1,
        )
        name = f"{pattern}: RE2 {long:,} chars vs re {python_length}"
        report.add(comparison(name, seconds["re2"], seconds["re"]))
        name = f"{pattern}: RE2 {20 * long:,} vs {10 * long:,} chars"
        target = "<= 3x (linear: 2x)"
        report.add(growth(name, seconds["re2_20x"], seconds["re2_10x"], 3, target))


# The old code, from git, compiled and run in a subprocess on the same inputs.


def baseline_tree(folder: Path) -> Path | None:
    """BASELINE_REVISION's package with its protos compiled, or None without git history."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", BASELINE_REVISION, "pruning_spec", "proto", "setup.py"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        return None
    folder.mkdir()
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    compile_protos = (
        "import runpy, pathlib; "
        "runpy.run_path('setup.py', run_name='proto')['compile_protos'](pathlib.Path('.'))"
    )
    subprocess.run(
        [sys.executable, "-c", compile_protos], cwd=folder, check=True, capture_output=True
    )
    return folder


def run_in(tree: Path, code: str, timeout: float = 600) -> float:
    """The number the snippet prints last (seconds it timed itself), run in the tree's package."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return float(result.stdout.split()[-1])


def spec_with_rules(count: int) -> str:
    rule = 'weight_sparsity_map {{ pattern: "l{}/k" sparsity: 0.5 }}\n'
    return "".join(rule.format(i) for i in range(count))


VALIDATE = """
    import time
    from pruning_spec._loader import check_source
    from pruning_spec._textproto import parse_textproto
    text = open({path!r}).read()
    start = time.perf_counter()
    found = check_source(parse_textproto(text, "rules.txtpb"))
    assert not [d for d in found if d.is_error], found[:3]
    print(time.perf_counter() - start)
"""
VALIDATOR = """
    import time
    from pruning_spec import PruningSpec, WeightSparsityRule, collect_diagnostics
    shapes = {shapes!r}
    spec = PruningSpec()
    spec.weight_sparsity_map.extend(
        WeightSparsityRule(pattern=shapes[i % len(shapes)].format(i=i), sparsity=0.5)
        for i in range({rules})
    )
    start = time.perf_counter()
    assert not collect_diagnostics(spec)
    print(time.perf_counter() - start)
"""
INVENTORY = """
    import time
    from pruning_spec._inventory import parse_inventory
    start = time.perf_counter()
    parse_inventory("a" + " " * {spaces} + "!")
    print(time.perf_counter() - start)
"""
UNKNOWN_KEYS = """
    import time
    from pruning_spec._loader import parse_json
    text = open({path!r}).read()
    start = time.perf_counter()
    parse_json(text)
    print(time.perf_counter() - start)
"""
HPARAMS_REPORT = """
    from pruning_spec import SpecError, parse_hparams
    flag = open({path!r}).read()
    try:
        parse_hparams(flag)
    except SpecError as error:
        print(len(str(error)))
"""


def hparams_report_size(flag: str) -> int:
    """Characters of the error that `--hparams flag` gets; the flag is malformed."""
    try:
        parse_hparams(flag)
    except SpecError as error:
        return len(str(error))
    raise SystemExit("the benchmark's malformed --hparams was accepted")


def before_and_after_figures(report: Report, quick: bool, folder: Path) -> None:
    tree = baseline_tree(folder / "baseline")
    if tree is None:
        report.note(f"no git history: the {BASELINE_REVISION} baselines are skipped")
        return
    rules = 10_000 if quick else 100_000
    patterns = rules_and_names(rules, 0)[0]
    message = PruningSpec()
    message.weight_sparsity_map.extend(
        WeightSparsityRule(pattern=pattern, sparsity=0.5) for pattern in patterns
    )
    ours = timed(lambda: collect_diagnostics(message))
    old = run_in(tree, VALIDATOR.format(shapes=RULE_SHAPES, rules=rules))
    report.add(
        Figure(
            f"validate {rules:,} rules (Validator): now vs {BASELINE_REVISION}",
            ours,
            old,
            "s",
            old / ours,
            f">= {VALIDATE_SPEEDUP_TARGET:g}x",
            old / ours >= VALIDATE_SPEEDUP_TARGET,
        )
    )
    # The whole path from a spec file; protobuf's text tokenizer is most of what remains.
    spec = folder / "rules.txtpb"
    text = spec_with_rules(rules)
    spec.write_text(text)
    ours = timed(lambda: check_source(parse_textproto(text, "rules.txtpb")))
    old = run_in(tree, VALIDATE.format(path=str(spec)))
    name = f"parse+validate a {rules:,}-rule .txtpb: now vs before"
    report.add(comparison(name, ours, old))

    spaces = 300
    line = "a" + " " * spaces + "!"
    ours = timed(lambda: parse_inventory(line))
    old = run_in(tree, INVENTORY.format(spaces=spaces))
    report.add(comparison(f"--weights line 'a'+{spaces} spaces+'!': now vs before", ours, old))

    keys = 3_000 if quick else 30_000
    document = folder / "keys.json"
    body = "{" + ",".join(f'"k{i}": 1' for i in range(keys)) + "}"
    document.write_text(body)
    ours = timed(lambda: parse_json(body))
    old = run_in(tree, UNKNOWN_KEYS.format(path=str(document)))
    name = f"JSON with {keys:,} unknown keys: now vs before"
    report.add(comparison(name, ours, old))

    flag_path = folder / "flag.txt"
    flag = ",".join(f"x{i}=1" for i in range(1_000 if quick else 3_000))
    flag_path.write_text(flag)
    old_size = run_in(tree, HPARAMS_REPORT.format(path=str(flag_path)))
    name = f"report of a {len(flag) // 1000} KB bad --hparams: now vs before"
    report.add(comparison(name, hparams_report_size(flag), old_size, "bytes"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    report = Report("hostile", args.quick)
    print(f"machine: {machine()} ({load_average()})")
    matching_figures(report, args.quick)
    catastrophic_figures(report, args.quick)
    with tempfile.TemporaryDirectory() as folder:
        before_and_after_figures(report, args.quick, Path(folder))
    report.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
