"""--pruning_spec / --pruning_hparams for argparse and absl.flags scripts."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from absl import flags

from pruning_spec import (
    NormalizedSpec,
    SpecError,
    add_argparse_flags,
    define_absl_flags,
    spec_from_absl_flags,
    spec_from_args,
)

CIFAR10_FLAG = (
    "name=cifar10_pruning,begin_pruning_step=10000,end_pruning_step=100000,target_sparsity=0.9,"
    "weight_sparsity_map=[conv1:0.8,conv.*/kernel:0.6],block_dims_map=[dense1:4x4]"
)


@pytest.fixture
def base_file(tmp_path: Path) -> Path:
    path = tmp_path / "base.txtpb"
    path.write_text('name: "base"\ntarget_sparsity: 0.7\n')
    return path


def _argparse(argv: list[str]) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="train")
    add_argparse_flags(parser)
    return parser, parser.parse_args(argv)


def test_argparse_defaults_are_get_pruning_hparams() -> None:
    _, args = _argparse([])
    assert spec_from_args(args) == NormalizedSpec()


def test_argparse_hparams_only() -> None:
    _, args = _argparse([f"--pruning_hparams={CIFAR10_FLAG}"])
    spec = spec_from_args(args)
    assert spec.name == "cifar10_pruning"
    assert [r.pattern for r in spec.weight_sparsity_map] == ["conv1", "conv.*/kernel"]


def test_argparse_file_then_hparams(base_file: Path) -> None:
    _, args = _argparse(
        ["--pruning_spec", str(base_file), "--pruning_hparams", "target_sparsity=0.95"]
    )
    spec = spec_from_args(args)
    assert (spec.name, spec.target_sparsity) == ("base", 0.95)


def test_argparse_bad_spec_raises_or_exits(capsys: pytest.CaptureFixture[str]) -> None:
    parser, args = _argparse(["--pruning_hparams=target_sparsty=0.9"])
    with pytest.raises(SpecError):
        spec_from_args(args)
    with pytest.raises(SystemExit) as exited:
        spec_from_args(args, parser)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "usage: train" in err
    assert "did you mean 'target_sparsity'?" in err
    assert "^^^^" in err


def test_absl_flags_validated_at_parse_time(base_file: Path) -> None:
    values = flags.FlagValues()
    define_absl_flags(values)
    values(["train", f"--pruning_spec={base_file}", "--pruning_hparams=target_sparsity=0.8"])
    spec = spec_from_absl_flags(values)
    assert (spec.name, spec.target_sparsity) == ("base", 0.8)


def test_absl_bad_spec_is_a_flag_error() -> None:
    values = flags.FlagValues()
    define_absl_flags(values)
    with pytest.raises(flags.IllegalFlagValueError, match=r"out-of-range.*target_sparsity"):
        values(["train", "--pruning_hparams=target_sparsity=1.5"])
