"""`get_pruning_hparams()`: r1.15's HParams object, backed by a validated spec."""

from __future__ import annotations

from typing import Any

from pruning_spec import NormalizedSpec, parse_hparams
from pruning_spec._schema import HParamValue


class PruningHParams:
    """Drop-in for the `tf.contrib.training.HParams` r1.15's `get_pruning_hparams()` returned.

    `parse(s)` applies an hparam string in place and returns `self`, as HParams did;
    hparams are read as attributes; `values()` and `to_json()` match r1.15's.
    The spec is validated on every parse, so a bad flag fails here, with every
    diagnostic, instead of later in `Pruning()`.
    """

    def __init__(self, spec: NormalizedSpec | None = None) -> None:
        self._spec = spec if spec is not None else NormalizedSpec()

    @property
    def spec(self) -> NormalizedSpec:
        return self._spec

    def parse(self, values: str) -> PruningHParams:
        self._spec = parse_hparams(values, self._spec)
        return self

    def values(self) -> dict[str, HParamValue]:
        return self._spec.values()

    def to_json(self, indent: int | None = None) -> str:
        return self._spec.to_json(indent=indent)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._spec, name)

    def __contains__(self, name: str) -> bool:
        return name in self.values()

    def __str__(self) -> str:
        return self._spec.to_hparams()

    def __repr__(self) -> str:
        return f"PruningHParams({self._spec.to_hparams(include_defaults=False)!r})"


def get_pruning_hparams() -> PruningHParams:
    """The default pruning hyperparameters, as r1.15's `get_pruning_hparams()`."""
    return PruningHParams()
