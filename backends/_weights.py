"""A weight under pruning, and what every backend says of it, framework-neutral."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class PrunedWeight:
    """A weight under pruning: its name for rule matching, and its three variables."""

    name: str
    weight: Any
    mask: Any
    threshold: Any


def check_not_empty(name: str, shape: Any, advice: str) -> None:
    """Refuses a weight of size 0: it has no magnitude to rank and no sparsity (0 of 0)."""
    dims = known_dims(shape)
    if dims is not None and 0 in dims:
        raise ValueError(
            f"cannot prune {name!r}: its shape {list(dims)} has no values (size 0), so "
            f"there is nothing to rank or mask; {advice}"
        )


def known_dims(shape: Any) -> tuple[int | None, ...] | None:
    """A shape's dimensions (None where unknown), or None when even its rank is unknown."""
    try:
        return tuple(None if d is None else int(d) for d in shape)
    except (TypeError, ValueError):  # a TensorShape of unknown rank does not iterate
        return None


def zero_fractions(weights: Iterable[PrunedWeight]) -> dict[str, float]:
    """The fraction of zeros of each weight as it stands (what an export holds), exactly."""
    return {p.name: _zeros(p.weight) / size(p.weight) for p in weights}


def overall_zero_fraction(weights: Sequence[PrunedWeight]) -> float:
    """The fraction of zeros over the weights together."""
    total = sum(size(p.weight) for p in weights)
    return sum(_zeros(p.weight) for p in weights) / total if total else 0.0


def _zeros(variable: Any) -> int:
    value = getattr(variable, "value", None)
    if value is not None and not callable(value):  # a Keras variable: counted where it lives
        import keras  # noqa: PLC0415 - imported already, by whoever made the variable

        return size(variable) - int(keras.ops.count_nonzero(value))
    return size(variable) - int(np.count_nonzero(to_numpy(variable)))


def to_numpy(variable: Any) -> np.ndarray[Any, Any]:
    """A variable's or tensor's value as a numpy array: Keras (any backend), TensorFlow, JAX."""
    value = getattr(variable, "value", None)
    if value is not None and not callable(value):  # a Keras variable: its backend tensor
        variable = value
    numpy = getattr(variable, "numpy", None)  # TensorFlow's; np.asarray would copy twice
    return np.asarray(numpy() if callable(numpy) else variable)


def size(variable: Any) -> int:
    """How many values a variable holds."""
    return math.prod(int(d) for d in variable.shape)
