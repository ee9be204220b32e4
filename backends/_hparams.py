"""`get_pruning_hparams()`: r1.15's HParams object, backed by a validated spec."""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping
from typing import Any

from pruning_spec import NormalizedSpec, _schema, parse_hparams
from pruning_spec._loader import apply_source, apply_values, parse_json, parse_values
from pruning_spec._printers import hparam_value

_SCHEMA_HINT = (
    "the hyperparameters of a pruning spec are the fields of pruning_spec.v1.PruningSpec "
    "(proto/pruning_spec/v1/pruning.proto)"
)


class PruningHParams:
    """Drop-in for the `tf.contrib.training.HParams` r1.15's `get_pruning_hparams()` returned.

    Hyperparameters read as r1.15's did (`h.weight_sparsity_map` is a list of
    `"pattern:value"` strings, `['']` when empty; `h.block_pooling_function` is
    `'AVG'`); the typed, validated spec is `h.spec`. Every change, `parse`,
    `parse_json`, `override_from_dict`, `set_hparam` or plain assignment
    (`h.target_sparsity = 0.9`), is validated with the whole spec before it takes
    effect: it either shows everywhere (`values()`, `str(h)`, `Pruning(h)`) or raises
    `SpecError` and changes nothing.
    """

    __slots__ = ("_spec",)
    _spec: NormalizedSpec

    def __init__(self, spec: NormalizedSpec | None = None) -> None:
        object.__setattr__(self, "_spec", spec if spec is not None else NormalizedSpec())

    @property
    def spec(self) -> NormalizedSpec:
        """The spec these hyperparameters stand for, typed and validated."""
        return self._spec

    # Changing.

    def parse(self, values: str) -> PruningHParams:
        """Applies an hparam string (`name=value,...`) and returns `self`, as r1.15."""
        self._replace(parse_hparams(values, self._spec))
        return self

    def parse_json(self, values_json: str) -> PruningHParams:
        """Applies a JSON object of hyperparameters (r1.15's `to_json()` form); returns `self`."""
        # The loader's reader: bounded nesting, duplicate keys refused, every problem located.
        parsed = parse_json(values_json, source="<parse_json>")
        unknown = [d for d in parsed.diagnostics if d.code == "unknown-field"]
        if unknown:  # r1.15 raised KeyError for an unknown name
            raise KeyError(unknown[0].format(caret=False))
        self._replace(apply_source(self._spec, parsed))
        return self

    def override_from_dict(self, values_dict: Mapping[str, object]) -> PruningHParams:
        """Sets several hyperparameters at once (all or none); returns `self`.

        Values take r1.15's types: an int where a float goes is fine, a string or a
        bool where a number goes is not, and a map is a list of `"pattern:value"`.
        """
        unknown = [name for name in values_dict if name not in _schema.FIELDS]
        if unknown:
            hint = _schema.did_you_mean(unknown[0], _schema.FIELDS)
            raise KeyError(f"unknown hyperparameter {unknown[0]!r}" + (f"; {hint}" if hint else ""))
        plain = {name: _plain(value) for name, value in values_dict.items()}
        self._replace(apply_values(self._spec, plain, source="<hparams object>"))
        return self

    def set_hparam(self, name: str, value: object) -> None:
        """Sets one hyperparameter, as r1.15; validated with the rest of the spec."""
        self.override_from_dict({name: value})

    def __setattr__(self, name: str, value: object) -> None:
        if name not in _schema.FIELDS:
            raise AttributeError(f"cannot set {name!r}: {_SCHEMA_HINT}")
        self.set_hparam(name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete {name!r}: {_SCHEMA_HINT}")

    def add_hparam(self, name: str, value: object) -> None:
        """Refused: the set of hyperparameters is the schema's."""
        raise ValueError(f"cannot add hyperparameter {name!r}: {_SCHEMA_HINT}; add a field there")

    def del_hparam(self, name: str) -> None:
        """Refused: the set of hyperparameters is the schema's."""
        raise ValueError(f"cannot delete hyperparameter {name!r}: {_SCHEMA_HINT}")

    def _replace(self, spec: NormalizedSpec) -> None:
        object.__setattr__(self, "_spec", spec)

    # Reading, with r1.15's types.

    def values(self) -> dict[str, _schema.HParamValue]:
        """A new dict of every hyperparameter, in r1.15's order and types."""
        return self._spec.values()

    def get(self, key: str, default: object = None) -> object:
        """The value of `key`, or `default` when there is no such hyperparameter.

        As r1.15, a default given for an existing key must have a type the key
        accepts (ValueError otherwise).
        """
        if key not in _schema.FIELDS:
            return default
        if default is not None:
            problems = [d for d in parse_values({key: _plain(default)}).diagnostics if d.is_error]
            if problems:
                raise ValueError(
                    f"default {default!r} for {key!r} does not fit it: {problems[0].message}"
                )
        return self._value(key)

    def _value(self, name: str) -> Any:
        """A field's value with r1.15's types, also one `values()` leaves out (not r1.15's)."""
        return hparam_value(_schema.FIELDS[name], getattr(self._spec.proto, name))

    def to_json(
        self,
        indent: int | None = None,
        separators: tuple[str, str] | None = None,
        sort_keys: bool = False,
    ) -> str:
        """`json.dumps(values())`, as r1.15's `to_json`."""
        return json.dumps(self.values(), indent=indent, separators=separators, sort_keys=sort_keys)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not attributes of the class: hyperparameters.
        if name in _schema.FIELDS:
            return self._value(name)
        hint = _schema.did_you_mean(name, _schema.FIELDS)
        raise AttributeError(
            f"no hyperparameter {name!r}" + (f"; {hint}" if hint else f"; {_SCHEMA_HINT}")
        )

    def __contains__(self, key: object) -> bool:
        return key in _schema.FIELDS

    def __str__(self) -> str:
        # r1.15's str() did not parse back for lists; the canonical hparam string does.
        return self._spec.to_hparams()

    def __repr__(self) -> str:
        return f"PruningHParams({self._spec.to_hparams(include_defaults=False)!r})"


def _plain(value: object) -> object:
    """numpy scalars and bytes as the Python values r1.15's type checks accepted."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def get_pruning_hparams() -> PruningHParams:
    """The default pruning hyperparameters, as r1.15's `get_pruning_hparams()`."""
    return PruningHParams()
