"""pruning-spec: one schema for magnitude pruning.

Load a spec from a file, override it from a flag, validate it (every problem,
with where it is) and print it back, without TensorFlow:

    from pruning_spec import load_spec
    spec = load_spec("examples/cifar10.txtpb", overrides="target_sparsity=0.95")
    spec.to_hparams()
"""

from pruning_spec._diagnostics import Diagnostic, Severity, Span, SpecError
from pruning_spec._flags import (
    add_argparse_flags,
    define_absl_flags,
    spec_from_absl_flags,
    spec_from_args,
)
from pruning_spec._loader import (
    SUFFIXES,
    check_source,
    load_spec,
    parse_hparams,
    parse_spec_text,
    read_source,
)
from pruning_spec._spec import NMPattern, NormalizedSpec
from pruning_spec._validate import Validator, collect_diagnostics, validate
from pruning_spec._version import __version__
from pruning_spec.v1.pruning_pb2 import (
    BlockDimsRule,
    ExcludeRule,
    GlobalGroup,
    NMSparsityRule,
    PruningSpec,
    WeightSparsityRule,
)

__all__ = [
    "SUFFIXES",
    "BlockDimsRule",
    "Diagnostic",
    "ExcludeRule",
    "GlobalGroup",
    "NMPattern",
    "NMSparsityRule",
    "NormalizedSpec",
    "PruningSpec",
    "Severity",
    "Span",
    "SpecError",
    "Validator",
    "WeightSparsityRule",
    "__version__",
    "add_argparse_flags",
    "check_source",
    "collect_diagnostics",
    "define_absl_flags",
    "load_spec",
    "parse_hparams",
    "parse_spec_text",
    "read_source",
    "spec_from_absl_flags",
    "spec_from_args",
    "validate",
]
