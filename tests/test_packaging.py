"""Release metadata agrees with itself: one version, a complete sdist, pinned dev tools."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import pruning_spec

ROOT = Path(__file__).resolve().parents[1]


def _text(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def test_readme_pre_commit_rev_is_the_version() -> None:
    revs = re.findall(r"^\s*rev:\s*(\S+)\s*$", _text("README.md"), flags=re.MULTILINE)
    assert revs, "README.md has no pre-commit `rev:` line"
    assert set(revs) == {f"v{pruning_spec.__version__}"}, (
        f"README.md's pre-commit rev {revs} is not v{pruning_spec.__version__} "
        "(pruning_spec/_version.py)"
    )


def test_version_is_read_from_version_module_only() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads(_text("pyproject.toml"))
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    attr = pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "pruning_spec._version.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+", pruning_spec.__version__)


def test_changelog_has_an_entry_for_the_version() -> None:
    version = re.escape(pruning_spec.__version__)
    assert re.search(rf"^## \[{version}\] - \d{{4}}-\d{{2}}-\d{{2}}$", _text("CHANGELOG.md"), re.M)


def test_manifest_ships_the_protos_but_not_generated_code() -> None:
    lines = [line.split("#")[0].split() for line in _text("MANIFEST.in").splitlines()]
    commands = [line for line in lines if line]
    assert ["graft", "proto"] in commands, "MANIFEST.in must include proto/ (the sdist compiles it)"
    excluded = {p for c in commands if c[0] in {"exclude", "global-exclude"} for p in c[1:]}
    assert {"*_pb2.py", "*_pb2.pyi"} <= excluded
    included = {p for c in commands if c[0] == "include" for p in c[1:]}
    assert {"README.md", "LICENSE", "CHANGELOG.md"} <= included
    assert _text("LICENSE").startswith("Copyright 2026 The pruning-spec Authors\n")


@pytest.mark.parametrize("extra_name", ["tensorflow", "jax"])
def test_constraints_satisfy_the_backend_extras(extra_name: str) -> None:
    tomllib = pytest.importorskip("tomllib")
    pins = dict(
        line.split("==")
        for line in _text("constraints.txt").splitlines()
        if line.strip() and not line.startswith("#")
    )
    extra = tomllib.loads(_text("pyproject.toml"))["project"]["optional-dependencies"][extra_name]
    for requirement in extra:
        match = re.fullmatch(r"([\w-]+)(?:\[[\w,]+\])?>=([\d.]+),<([\d.]+)", requirement)
        assert match, f"{requirement!r}: expected a >=,< range"
        name, low, high = match.groups()
        pinned = tuple(int(part) for part in pins[name].split("."))
        assert (
            tuple(int(part) for part in low.split("."))
            <= pinned
            < tuple(int(part) for part in high.split("."))
        ), f"constraints.txt pins {name}=={pins[name]}, outside {requirement}"
