"""The mask update of Keras models on Keras's JAX backend (`backends/keras`).

`backends/_dispatch` decides each weight's kernel, as it does for TensorFlow; this module
gives it the JAX kernels (`_kernels`, `_n_m`, bit-identical to TensorFlow's) and compiles
one update over all of a model's pruned weights with `jax.jit`. The schedule's sparsity
is computed on the host, where it equals TensorFlow's to the bit, and passed in, so the
update compiles once, not once per step.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pruning_spec import NormalizedSpec
from pruning_spec._groups import partition

from .. import _dispatch
from .._weights import PrunedWeight, size
from . import _kernels, _n_m

Array = jax.Array


def _block_ignored(name: str, dims: tuple[int, int], shape: list[int | None]) -> None:
    # Traced once per compiled update: TensorFlow's backend warns once per trace too.
    warnings.warn(
        f"Block dims {list(dims)} do not apply to {name} of shape {shape} (not rank 2 "
        "after squeezing); it is pruned element-wise.",
        UserWarning,
        stacklevel=2,
    )


KERNELS = _dispatch.Kernels.of(
    _kernels,
    _n_m,
    zero_threshold=lambda dtype: jnp.zeros((), dtype),
    cast=lambda value, dtype: _kernels._tf_cast(jnp.asarray(value), np.dtype(dtype)),
    block_ignored=_block_ignored,
)


class KerasUpdater:
    """`backends.keras._backends.KerasUpdater` on JAX: one compiled update of every weight."""

    def __init__(
        self,
        spec: NormalizedSpec,
        weights: Sequence[PrunedWeight],
        last_update_steps: Sequence[Any],
    ) -> None:
        self.spec = spec
        self.weights = tuple(weights)
        self.last_update_steps = tuple(last_update_steps)
        self._alone, groups = partition(spec, ((p.name, size(p.weight)) for p in self.weights))
        self._groups = list(groups.values())
        targets = [spec.target_sparsity_for(name) for name in self._alone]
        targets += [spec.group_target(group.name) for group in self._groups]
        self._targets = list(dict.fromkeys(targets))
        # Not donating the old buffers (which would halve a large weight's update): a Keras
        # variable may share its array with the caller's (`assign` keeps it), and donation
        # would delete the caller's array.
        self._compiled = jax.jit(self._compute)

    def update(self, step: int) -> None:
        sparsities = [np.float32(self.spec.schedule_at(step, target)) for target in self._targets]
        thresholds, masks, values = self._compiled(
            [p.weight.value for p in self.weights],
            [p.mask.value for p in self.weights],
            [p.threshold.value for p in self.weights],
            sparsities,
        )
        for pruned, threshold, mask, value in zip(
            self.weights, thresholds, masks, values, strict=True
        ):
            pruned.threshold.assign(threshold)
            pruned.mask.assign(mask)
            pruned.weight.assign(value)
        for last in self.last_update_steps:
            last.assign(step)

    def _compute(
        self,
        weights: list[Array],
        masks: list[Array],
        thresholds: list[Array],
        sparsities: list[Array],
    ) -> tuple[list[Array], list[Array], list[Array]]:
        """(thresholds, masks, weights) after the update, in the order of `self.weights`."""
        schedule = dict(zip(self._targets, sparsities, strict=True))
        # The values TensorFlow's backend ranks: its optimizer's constraint has zeroed the
        # pruned ones after every step (here the forward pass masks them instead).
        values = {
            p.name: _zeroed(weight, mask)
            for p, weight, mask in zip(self.weights, weights, masks, strict=True)
        }
        old = {p.name: threshold for p, threshold in zip(self.weights, thresholds, strict=True)}
        results: dict[str, tuple[Array, Array]] = {}
        for name in self._alone:
            results[name] = _dispatch.threshold_and_mask(
                KERNELS,
                self.spec,
                name,
                values[name],
                schedule[self.spec.target_sparsity_for(name)],
                old[name],
            )
        for group in self._groups:
            names = [member.name for member in group.members]
            threshold, group_masks = _dispatch.group_threshold_and_masks(
                KERNELS,
                self.spec,
                group,
                [values[name] for name in names],
                schedule[self.spec.group_target(group.name)],
                old[names[0]],
            )
            for name, mask in zip(names, group_masks, strict=True):
                results[name] = (threshold, mask)
        new_thresholds, new_masks, new_weights = [], [], []
        for pruned, threshold in zip(self.weights, thresholds, strict=True):
            new_threshold, mask = results[pruned.name]
            new_thresholds.append(KERNELS.cast(new_threshold, threshold.dtype))
            new_masks.append(mask)
            new_weights.append(_zeroed(values[pruned.name], mask))
        return new_thresholds, new_masks, new_weights


def _zeroed(values: Array, mask: Array) -> Array:
    # Not `values * mask`: a pruned NaN or inf times 0 is NaN, not 0.
    return jnp.where(mask != 0, values, jnp.zeros_like(values))
