"""What `Pruning(spec=...)` accepts, turned into a validated `NormalizedSpec`."""

from __future__ import annotations

import os
from typing import TypeAlias

from pruning_spec import (
    Diagnostic,
    NormalizedSpec,
    PruningSpec,
    SpecError,
    _schema,
    load_spec,
    parse_hparams,
)
from pruning_spec._loader import SUFFIXES

from ._hparams import PruningHParams

# What `Pruning(spec=...)` and the other entry points accept (None: r1.15's defaults).
SpecInput: TypeAlias = NormalizedSpec | PruningSpec | PruningHParams | str | os.PathLike[str] | None

_INT32_MAX = 2**31 - 1
# r1.15 casts the global step to int32; the fields counted in steps are compared with it.
_STEP_FIELDS = tuple(f.name for f in _schema.SPEC.fields if _schema.rules_of(f).step)


def coerce_spec(spec: SpecInput, *, external_sparsity: bool = False) -> NormalizedSpec:
    """A NormalizedSpec from a spec message, NormalizedSpec, hparams object, path or hparams."""
    if isinstance(spec, PruningHParams):
        spec = spec.spec
    if spec is None:
        normalized = NormalizedSpec(external_sparsity=external_sparsity)
    elif isinstance(spec, NormalizedSpec):
        normalized = NormalizedSpec(spec.proto, external_sparsity=external_sparsity)
    elif isinstance(spec, PruningSpec):
        normalized = NormalizedSpec(spec, external_sparsity=external_sparsity)
    elif isinstance(spec, str | os.PathLike):
        normalized = _from_string(os.fspath(spec), external_sparsity)
    else:
        raise TypeError(
            "spec must be a PruningSpec, a NormalizedSpec, get_pruning_hparams(), a spec file "
            f"path or an hparam string, not {type(spec).__name__}"
        )
    _check_int32_steps(normalized)
    return normalized


def _from_string(text: str, external_sparsity: bool) -> NormalizedSpec:
    if text.lower().endswith(SUFFIXES) or os.path.isfile(text):
        return load_spec(text, external_sparsity=external_sparsity)
    return parse_hparams(text, external_sparsity=external_sparsity)


def _check_int32_steps(spec: NormalizedSpec) -> None:
    problems = [
        Diagnostic(
            "step-beyond-int32",
            f"is {getattr(spec, name)}, but the backends count steps in int32, as r1.15 did",
            name,
            hint=f"use a value of at most {_INT32_MAX}",
        )
        for name in _STEP_FIELDS
        if abs(getattr(spec, name)) > _INT32_MAX
    ]
    if problems:
        raise SpecError(problems)
