"""Command-line flags for training scripts: `--pruning_spec FILE` and `--pruning_hparams STR`.

The file is the base, the hparam string is applied on top (r1.15's
`get_pruning_hparams().parse(FLAGS.pruning_hparams)`), and the result is
validated. Works with argparse and with absl.flags (absl is optional).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, NoReturn

from pruning_spec._diagnostics import SpecError
from pruning_spec._loader import load_spec, parse_hparams
from pruning_spec._spec import NormalizedSpec

if TYPE_CHECKING:
    from absl import flags as absl_flags

SPEC_FLAG = "pruning_spec"
HPARAMS_FLAG = "pruning_hparams"
_SPEC_HELP = "Pruning spec file (.txtpb, .json or .pb); the defaults when empty."
_HPARAMS_HELP = (
    "Pruning hparams applied on top of --pruning_spec, in tf.contrib HParams syntax, "
    "e.g. 'target_sparsity=0.9,weight_sparsity_map=[conv1:0.8]'."
)


def spec_from_values(spec_file: str | None, hparams: str | None) -> NormalizedSpec:
    """The validated spec for a file (optional) with an hparam string (optional) on top."""
    if spec_file:
        return load_spec(spec_file, overrides=hparams or None)
    return parse_hparams(hparams or "")


def add_argparse_flags(parser: argparse.ArgumentParser) -> None:
    """Adds `--pruning_spec` and `--pruning_hparams` to an argparse parser."""
    parser.add_argument(f"--{SPEC_FLAG}", default="", metavar="FILE", help=_SPEC_HELP)
    parser.add_argument(f"--{HPARAMS_FLAG}", default="", metavar="HPARAMS", help=_HPARAMS_HELP)


def spec_from_args(
    args: argparse.Namespace, parser: argparse.ArgumentParser | None = None
) -> NormalizedSpec:
    """The spec the parsed flags describe.

    With `parser`, a bad spec ends the program the argparse way (usage and
    every diagnostic on stderr, exit status 2) instead of raising `SpecError`.
    """
    try:
        return spec_from_values(getattr(args, SPEC_FLAG), getattr(args, HPARAMS_FLAG))
    except SpecError as error:
        if parser is None:
            raise
        _exit_with(parser, error)


def _exit_with(parser: argparse.ArgumentParser, error: SpecError) -> NoReturn:
    parser.error(f"invalid pruning spec:\n{error}")


def define_absl_flags(flag_values: absl_flags.FlagValues | None = None) -> None:
    """Defines `--pruning_spec` and `--pruning_hparams` with absl, validated at flag parsing.

    A bad spec is reported by absl like any other bad flag value, with every
    diagnostic in the message.
    """
    from absl import flags  # noqa: PLC0415 - absl is optional for the core

    values = flag_values if flag_values is not None else flags.FLAGS
    flags.DEFINE_string(SPEC_FLAG, "", _SPEC_HELP, flag_values=values)
    flags.DEFINE_string(HPARAMS_FLAG, "", _HPARAMS_HELP, flag_values=values)

    def check(given: dict[str, str]) -> bool:
        try:
            spec_from_values(given[SPEC_FLAG], given[HPARAMS_FLAG])
        except SpecError as error:
            raise flags.ValidationError(f"invalid pruning spec:\n{error}") from None
        return True

    flags.register_multi_flags_validator([SPEC_FLAG, HPARAMS_FLAG], check, flag_values=values)  # type: ignore[no-untyped-call]


def spec_from_absl_flags(flag_values: absl_flags.FlagValues | None = None) -> NormalizedSpec:
    """The spec the parsed absl flags describe (call after `app.run` parsed them)."""
    from absl import flags  # noqa: PLC0415 - absl is optional for the core

    values = flag_values if flag_values is not None else flags.FLAGS
    return spec_from_values(values[SPEC_FLAG].value, values[HPARAMS_FLAG].value)
