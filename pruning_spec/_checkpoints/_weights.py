"""What every reader builds: which variables are weights, which mask goes with which.

A reader lists a format's variables as `Variable`s and `assemble` makes the
`Checkpoint`: float variables of rank >= 1 that are not masks, thresholds or counters
are the weights; masks pair with weights as the package docstring describes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

from pruning_spec._checkpoints._errors import (
    CheckpointError,
    InputError,
    UnknownNameError,
    checkpoint_error,
    unexpected,
)

# A stored value as a reader returns it (a numpy array or scalar): it comes from TensorFlow
# or h5py, which are untyped, and numpy is an optional extra.
StoredValue: TypeAlias = Any

# Leaf names that are never prunable weights, whatever their dtype and shape.
_NOT_WEIGHTS = frozenset({"threshold", "last_mask_update_step", "global_step", "save_counter"})


@dataclasses.dataclass(frozen=True)
class WeightInfo:
    """One prunable candidate: its name as the pruning rules see it, and its shape."""

    name: str
    shape: tuple[int, ...]


@dataclasses.dataclass
class Checkpoint:
    """What `read_checkpoint` found.

    `path` is what was read: the checkpoint prefix a directory resolved to, or the file.
    `masks` maps a weight's name to its mask's name (r1.15-style masks only).
    """

    path: str
    weights: list[WeightInfo]
    step: int | None
    masks: dict[str, str]
    _read: Callable[[str], StoredValue] | None = dataclasses.field(
        default=None, repr=False, compare=False
    )
    # The weights the saved model itself says it prunes (a .keras file of `pks.prune`), or
    # for other Keras files those `pks.prune` chooses by default (`assumed`); None when the
    # format says nothing, and every weight is a candidate.
    pruned: frozenset[str] | None = None
    assumed: bool = False

    @property
    def candidates(self) -> list[WeightInfo]:
        """The weights a spec applies to: the pruned ones when the file says which."""
        if self.pruned is None:
            return self.weights
        return [w for w in self.weights if w.name in self.pruned]

    def values(self, name: str) -> StoredValue:
        """The stored value (a numpy array) of a weight, a mask or any other variable.

        Raises KeyError for a name the checkpoint does not hold, CheckpointError when
        the stored data cannot be read (or exceeds `MAX_TENSOR_BYTES`).
        """
        if self._read is None:
            raise KeyError(f"{name!r}: no values were loaded for {self.path}")
        try:
            return self._read(name)
        except (UnknownNameError, CheckpointError):
            raise
        except InputError as problem:
            raise checkpoint_error(
                f"cannot read {name!r} from checkpoint {self.path}: {problem}"
            ) from None
        except Exception as error:  # whatever a hostile file makes a library raise
            raise checkpoint_error(
                f"cannot read {name!r} from checkpoint {self.path}: {unexpected(error)}"
            ) from None

    def mask_values(self, name: str) -> StoredValue:
        """The stored mask of weight `name` (a numpy array), or None if it has none."""
        mask = self.masks.get(name)
        return None if mask is None else self.values(mask)


@dataclasses.dataclass(frozen=True)
class Variable:
    """A stored variable as a reader lists it, named as the rules will see it."""

    name: str
    shape: tuple[int, ...]
    floating: bool
    excluded: bool = False  # known by its format not to be a weight (optimizer, ...)


def assemble(
    path: str,
    variables: Iterable[Variable],
    step: int | None,
    read: Callable[[str], StoredValue],
    known_masks: Mapping[str, str] | None = None,
    pruned: frozenset[str] | None = None,
    *,
    assumed: bool = False,
) -> Checkpoint:
    """The checkpoint at `path` holding `variables`; `read` gives a variable's value.

    `known_masks` pairs weights with masks the format names (weight -> mask); other
    masks are paired by r1.15's `<scope>/mask` convention. `pruned` names the weights
    the file says are pruned, or (`assumed`) those its reader expects `pks.prune` chose.
    """
    weights, masks = [], []
    for variable in variables:
        leaf = variable.name.rpartition("/")[2]
        if variable.excluded or not variable.floating or not variable.shape:
            continue
        if leaf == "mask":
            masks.append(WeightInfo(variable.name, variable.shape))
        elif leaf not in _NOT_WEIGHTS:
            weights.append(WeightInfo(variable.name, variable.shape))
    weights.sort(key=lambda w: w.name)
    paired = {**pair_masks(weights, masks), **(known_masks or {})}
    return Checkpoint(path, weights, step, paired, read, pruned, assumed)


# As tfmot: a 3x3 depthwise filter has 9 values per channel, pruning them costs accuracy,
# and no sparse kernel speeds them up. A separable convolution's pointwise kernel is pruned.
_NOT_BY_DEFAULT = frozenset({"depthwise_kernel"})
# Keras layers whose `kernel` is a depthwise one (Keras 3 does not say so in its name).
_DEPTHWISE_LAYERS = frozenset({"DepthwiseConv1D", "DepthwiseConv2D"})


def depthwise_kernels(layer: StoredValue) -> list[StoredValue]:
    """The kernels of the depthwise convolutions in a Keras layer or model, itself included.

    `pks.prune` leaves them dense by default; a .keras reader assumes the same.
    """
    return [
        sub.kernel
        for sub in layer._flatten_layers()
        if type(sub).__name__ in _DEPTHWISE_LAYERS and getattr(sub, "kernel", None) is not None
    ]


def is_kernel_name(name: str) -> bool:
    """`pks.prune`'s default choice by name: `kernel`, `recurrent_kernel`, `pointwise_kernel`...

    Biases, embeddings, normalization parameters and depthwise kernels are never chosen
    by default.
    """
    leaf = name.rpartition("/")[2]
    return leaf not in _NOT_BY_DEFAULT and (leaf == "kernel" or leaf.endswith("_kernel"))


def resumed_step(records: Iterable[tuple[int, int]], iterations: int | None) -> int | None:
    """The step a Keras model's pruning resumes at, from its PrunedLayers' step records.

    Each record is (pruning step, optimizer iterations), written together: the pair fixes
    the offset between the two, which stays constant while that optimizer trains. If the
    optimizer now is at or past the recorded iterations it is taken to be the same one,
    restored with the model, and the offset applies; if it is behind, it is a new one (a
    recompile, or a weights-only file) and the recorded step stands. A negative step is
    no record (a layer never trained, or saved before the step was recorded); with no
    record at all the step is the optimizer's, r1.15's global step.
    """
    now = 0 if iterations is None else iterations
    steps = [step + (now - synced if now >= synced else 0) for step, synced in records if step >= 0]
    return max(steps) if steps else iterations


def _scope(name: str) -> str:
    """`layer1/weights`, `layer1/mask` and `layer1//mask` all live in scope `layer1`."""
    return name.rpartition("/")[0].rstrip("/")


def pair_masks(weights: list[WeightInfo], masks: list[WeightInfo]) -> dict[str, str]:
    """Weight name -> mask name, for each mask that only one weight can be paired with."""
    by_name = {w.name: w for w in weights}
    by_scope: dict[str, list[WeightInfo]] = {}
    for weight in weights:
        by_scope.setdefault(_scope(weight.name), []).append(weight)
    claims: dict[str, list[str]] = {}
    for mask in masks:
        scope = _scope(mask.name)
        candidates = [w for w in by_scope.get(scope, []) if w.shape == mask.shape]
        named_after = by_name.get(scope)
        if named_after is not None and named_after.shape == mask.shape:
            candidates.append(named_after)
        if len(candidates) == 1:
            claims.setdefault(candidates[0].name, []).append(mask.name)
    return {weight: found[0] for weight, found in sorted(claims.items()) if len(found) == 1}


def unique(names: Iterable[str]) -> list[str]:
    """`names` in order, a repeated one suffixed `#2`, `#3`, ..."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        count = seen.get(name, 0) + 1
        seen[name] = count
        result.append(name if count == 1 else f"{name}#{count}")
    return result


def scalar(value: StoredValue, kinds: str = "iuf") -> int | None:
    """A stored step counter as an int; None if it is not a scalar of one of `kinds`, or
    not a finite number (a NaN step must not make the whole checkpoint unreadable)."""
    shape = getattr(value, "shape", None)
    if shape is None or tuple(shape) != () or getattr(value, "dtype", None) is None:
        return None
    if value.dtype.kind not in kinds:
        return None
    try:
        return int(value)
    except (ValueError, OverflowError):  # NaN, infinity
        return None
