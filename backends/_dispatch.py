"""Which kernel each weight's mask update runs, for every framework: decided once, here.

A framework gives its kernels (`Kernels`: TensorFlow's in `backends/tensorflow/_masking`,
JAX's in `backends/jax/_update`); this module reads the spec (the core's decisions: N:M
pattern, block dims, pooling, groups and their floors) and calls them. So graph mode,
`Pruner` and Keras on any framework run the same decisions, and a new framework is one
kernel module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from pruning_spec import NormalizedSpec
from pruning_spec._groups import Group

from ._weights import check_not_empty, known_dims


@dataclasses.dataclass(frozen=True)
class Kernels:
    """One framework's mask arithmetic, each function as in `backends/tensorflow/_kernels`.

    `of` takes them from a framework's kernel module and N:M module, which name them alike;
    the framework adds the three things only it knows.
    """

    element_mask: Callable[..., tuple[Any, Any]]
    block_mask: Callable[..., tuple[Any, Any]]
    n_m_mask: Callable[..., Any]
    group_keep_count: Callable[..., Any]
    group_thresholds: Callable[..., Any]
    smooth: Callable[..., Any]
    group_masks: Callable[..., list[Any]]
    zero_threshold: Callable[[Any], Any]  # a scalar 0 of a dtype
    cast: Callable[[Any, Any], Any]  # a value in a dtype, as TensorFlow's CPU casts it
    # Tells the user, once, that a weight's block dims do not apply to its shape.
    block_ignored: Callable[[str, tuple[int, int], list[Any]], None]

    @classmethod
    def of(
        cls,
        kernels: Any,
        n_m: Any,
        *,
        zero_threshold: Callable[[Any], Any],
        cast: Callable[[Any, Any], Any],
        block_ignored: Callable[[str, tuple[int, int], list[Any]], None],
    ) -> Kernels:
        return cls(
            element_mask=kernels.element_mask,
            block_mask=kernels.block_mask,
            n_m_mask=n_m.n_m_mask,
            group_keep_count=kernels.group_keep_count,
            group_thresholds=kernels.group_thresholds,
            smooth=kernels.smooth,
            group_masks=kernels.group_masks,
            zero_threshold=zero_threshold,
            cast=cast,
            block_ignored=block_ignored,
        )


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
