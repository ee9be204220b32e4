"""Which kernel each weight's mask update runs, for every framework: decided once, here.

A framework gives its kernels (`Kernels`: TensorFlow's in `backends/tensorflow/_masking`,
JAX's in `backends/jax/_update`); this module reads the spec (the core's decisions: N:M
pattern, block dims, pooling, groups and their floors) and calls them. So graph mode,
`Pruner` and Keras on any framework run the same decisions, and a new framework is one
kernel module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pruning_spec import NormalizedSpec
from pruning_spec._groups import Group

from ._weights import check_not_empty, known_dims


class Kernels(Protocol):
    """One framework's mask arithmetic (each function as in `backends/tensorflow/_kernels`)."""

    def element_mask(
        self, values: Any, sparsity: Any, threshold: Any, decay: float
    ) -> tuple[Any, Any]: ...

    def block_mask(
        self,
        values: Any,
        sparsity: Any,
        threshold: Any,
        decay: float,
        block: tuple[int, int],
        pooling: str,
    ) -> tuple[Any, Any]: ...

    def n_m_mask(self, values: Any, n: int, m: int, axis: int, remainder: str) -> Any: ...

    def zero_threshold(self, dtype: Any) -> Any: ...

    def cast(self, value: Any, dtype: Any) -> Any: ...

    def group_keep_count(self, size: int, sparsity: Any) -> Any: ...

    def group_thresholds(self, values: list[Any], keep: Any, floors: Sequence[int]) -> Any: ...

    def smooth(self, current: Any, old_threshold: Any, decay: float) -> Any: ...

    def group_masks(self, values: list[Any], thresholds: Any) -> list[Any]: ...

    def block_ignored(self, name: str, dims: tuple[int, int], shape: list[int | None]) -> None:
        """Tells the user, once, that a weight's block dims do not apply to its shape."""


def threshold_and_mask(
    kernels: Kernels,
    spec: NormalizedSpec,
    name: str,
    values: Any,
    sparsity: Any,
    threshold: Any,
) -> tuple[Any, Any]:
    """(new threshold, new mask) of weight `name` with the given values and sparsity."""
    check_not_empty(name, values.shape, "leave it out of pruning")
    shape: list[Any] = list(known_dims(values.shape) or ())
    n_m = spec.n_m_for(name, shape)
    if n_m is not None:
        # No one threshold selects an N:M mask: the variable stays at 0, and the schedule's
        # sparsity does not apply.
        mask = kernels.n_m_mask(values, n_m.n, n_m.m, n_m.axis, n_m.remainder)
        return kernels.zero_threshold(values.dtype), mask
    decay = spec.threshold_decay
    block = spec.block_dims_for(name, shape)
    if block == (1, 1):
        dims = spec.configured_block_dims(name)
        if dims != (1, 1):
            kernels.block_ignored(name, dims, shape)
        return kernels.element_mask(values, sparsity, threshold, decay)
    pooling = spec.block_pooling_function
    return kernels.block_mask(values, sparsity, threshold, decay, block, pooling)


def group_threshold_and_masks(
    kernels: Kernels,
    spec: NormalizedSpec,
    group: Group,
    values: list[Any],
    sparsity: Any,
    threshold: Any,
) -> tuple[Any, list[Any]]:
    """(new group threshold, each member's mask) of a group whose members hold `values`.

    `threshold` is the group's previous threshold (every member's threshold variable
    holds it), smoothed with the new one by threshold_decay. The floors are fixed by
    the members' sizes, so they are computed once, when the ops are built.
    """
    keep = kernels.group_keep_count(group.size, sparsity)
    floors = [member.floor for member in group.members]
    selected = kernels.group_thresholds(values, keep, floors)
    old = kernels.cast(threshold, selected.threshold.dtype)
    smoothed = kernels.smooth(selected.threshold, old, spec.threshold_decay)
    return smoothed, kernels.group_masks(values, selected._replace(threshold=smoothed))
