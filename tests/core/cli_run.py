"""Runs the `pruning-spec` command in-process for the CLI tests, capturing what it prints."""

from __future__ import annotations

import pytest

from pruning_spec._cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `pruning-spec ARGV`."""
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err
