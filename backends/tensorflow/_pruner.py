"""Pruning in TF2 without Keras: a `tf.Module` for eager code and `tf.function` training loops.

    pruner = Pruner(spec, [dense.kernel, conv.kernel])
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, pruner=pruner)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        pruner.apply_masks()                   # pruned weights stay zero
        pruner.update(optimizer.iterations)    # r1.15's conditional mask update

The update is r1.15's `conditional_mask_update_op` built from the same functions as
graph mode, so the same weights, spec and steps give the same masks and thresholds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import tensorflow as tf

from pruning_spec import NormalizedSpec
from pruning_spec._groups import Group, groups_of, partition

from .._spec_input import SpecInput, coerce_spec
from .._weights import PrunedWeight, check_not_empty, zero_fractions
from .._weights import size as _size
from . import _masking


class MaskUpdater:
    """r1.15's mask update over a set of pruned weights, for eager code and `tf.function`.

    `last_update_steps` are the variables recording the step of the last update
    (one per Keras layer, one for a `Pruner`); they always hold the same value.
    """

    def __init__(
        self,
        spec: NormalizedSpec,
        weights: Sequence[PrunedWeight],
        last_update_steps: Sequence[Any],
    ) -> None:
        self.spec = spec
        self.weights = tuple(weights)
        self.last_update_steps = tuple(last_update_steps)

    def sparsity(self, step: Any, name: str | None = None) -> tf.Tensor:
        """The scheduled sparsity at `step`, globally or for the weight called `name`.

        An N:M weight has no schedule: its sparsity is 1 - n/m at every step.
        """
        if name is not None and self.spec.n_m_rule_for(name) is not None:
            return tf.constant(self.spec.sparsity_at(0, name), tf.float32)
        return _masking.scheduled_sparsity(
            self.spec, _as_step(step), self.spec.target_sparsity_for(name)
        )

    def update_due(self, step: Any) -> tf.Tensor:
        return _masking.update_due(self.spec, _as_step(step), self.last_update_steps[0])

    def conditional_update(self, step: Any) -> tf.Tensor:
        """Updates the masks if r1.15 would at `step`; True when it did."""
        step = _as_step(step)

        def update() -> tf.Tensor:
            with tf.control_dependencies([self.update(step)]):
                return tf.constant(True)

        return tf.cond(self.update_due(step), update, lambda: tf.constant(False))

    def update(self, step: Any) -> tf.Operation:
        """Updates every mask and threshold, zeroes the pruned weights and records the step."""
        step = _as_step(step)
        schedules: dict[float, tf.Tensor] = {}

        def schedule(target: float) -> tf.Tensor:
            if target not in schedules:
                schedules[target] = _masking.scheduled_sparsity(self.spec, step, target)
            return schedules[target]

        by_name = {pruned.name: pruned for pruned in self.weights}
        alone, groups = partition(self.spec, ((p.name, _size(p.weight)) for p in self.weights))
        assigns = []
        for name in alone:
            pruned = by_name[name]
            values = tf.convert_to_tensor(pruned.weight)
            threshold, mask = _masking.threshold_and_mask(
                self.spec,
                name,
                values,
                schedule(self.spec.target_sparsity_for(name)),
                pruned.threshold,
            )
            assigns += _assign_update(pruned, values, threshold, mask)
        for group in groups.values():
            members = [by_name[member.name] for member in group.members]
            values = [tf.convert_to_tensor(pruned.weight) for pruned in members]
            threshold, masks = _masking.group_threshold_and_masks(
                self.spec,
                group,
                values,
                schedule(self.spec.group_target(group.name)),
                members[0].threshold,
            )
            for pruned, value, mask in zip(members, values, masks, strict=True):
                assigns += _assign_update(pruned, value, threshold, mask)
        assigns += [last.assign(tf.cast(step, last.dtype)) for last in self.last_update_steps]
        return tf.group(*assigns)

    def groups(self) -> dict[str, Group]:
        """The global groups the weights form (`pruning_spec._groups`), by name."""
        return groups_of(self.spec, ((p.name, _size(p.weight)) for p in self.weights))

    def apply_masks(self) -> tf.Operation:
        """Zeroes the pruned values of every weight (after an optimizer step, say)."""
        return tf.group(*(p.weight.assign(p.weight * p.mask) for p in self.weights))

    def weight_sparsity(self) -> dict[str, float]:
        return zero_fractions(self.weights)

    def write_summaries(self, step: Any) -> None:
        """Scalars under `pruning/`: the schedule, each weight's sparsity and threshold, and
        each group's (`pruning/group/<name>/`): its overall sparsity and its threshold."""
        step = _as_step(step)
        tf.summary.scalar("pruning/sparsity", self.sparsity(step), step=step)
        tf.summary.scalar(
            "pruning/last_mask_update_step",
            tf.convert_to_tensor(self.last_update_steps[0]),
            step=step,
        )
        for pruned in self.weights:
            tf.summary.scalar(
                f"pruning/{pruned.name}/sparsity", tf.nn.zero_fraction(pruned.weight), step=step
            )
            tf.summary.scalar(f"pruning/{pruned.name}/threshold", pruned.threshold, step=step)
        by_name = {pruned.name: pruned for pruned in self.weights}
        for group in self.groups().values():
            members = [by_name[member.name] for member in group.members]
            tf.summary.scalar(
                f"pruning/group/{group.name}/sparsity",
                _masking.zero_fraction([p.weight for p in members]),
                step=step,
            )
            tf.summary.scalar(
                f"pruning/group/{group.name}/threshold", members[0].threshold, step=step
            )


def _assign_update(
    pruned: PrunedWeight, values: tf.Tensor, threshold: tf.Tensor, mask: tf.Tensor
) -> list[Any]:
    """Stores a weight's new threshold and mask, and zeroes its pruned values."""
    # Not `values * mask`: a pruned NaN or inf times 0 is NaN, not 0.
    kept = tf.not_equal(mask, tf.zeros([], mask.dtype))
    return [
        pruned.threshold.assign(tf.cast(threshold, pruned.threshold.dtype)),
        pruned.mask.assign(mask),
        pruned.weight.assign(tf.where(kept, values, tf.zeros_like(values))),
    ]


def _as_step(step: Any) -> tf.Tensor:
    return tf.cast(step, tf.int64)


class Pruner(tf.Module):  # type: ignore[misc]
    """Masks, thresholds and the last update step of a set of weights, as a `tf.Module`.

    Args:
      spec: a `PruningSpec`, `NormalizedSpec`, spec file path or hparam string
        (None: r1.15's defaults). Invalid specs raise `SpecError`.
      weights: variables to prune now; more can be registered later.
      name: the module's name.

    Save it with `tf.train.Checkpoint(..., pruner=pruner)`; a run restored at
    step N continues with exactly the masks of an uninterrupted run. Masks and
    thresholds are saved under their weight's name (`by_name`), so the order of
    registration does not matter.
    """

    def __init__(
        self, spec: SpecInput = None, weights: Iterable[Any] = (), *, name: str = "pruner"
    ) -> None:
        super().__init__(name=name)
        self._spec = coerce_spec(spec)
        self.last_mask_update_step = tf.Variable(
            0, dtype=tf.int64, trainable=False, name="last_mask_update_step"
        )
        # Tracked by weight name, so a checkpoint restores into a Pruner whatever the order
        # its weights were registered in.
        self.by_name: dict[str, dict[str, tf.Variable]] = {}
        self._registry = _Registry(MaskUpdater(self._spec, (), [self.last_mask_update_step]))
        for weight in weights:
            self.register(weight)

    @property
    def spec(self) -> NormalizedSpec:
        return self._spec

    @property
    def pruned_weights(self) -> tuple[PrunedWeight, ...]:
        return self._registry.updater.weights

    @property
    def masks(self) -> list[Any]:
        """The masks, in the order the weights were registered."""
        return [p.mask for p in self.pruned_weights]

    @property
    def thresholds(self) -> list[Any]:
        return [p.threshold for p in self.pruned_weights]

    def register(self, weight: Any, name: str | None = None) -> PrunedWeight:
        """Starts pruning `weight` (a variable); `name` defaults to its path or name.

        The name is what `weight_sparsity_map` and `block_dims_map` patterns are
        matched against; two rules matching it raise `SpecError`. A name already
        taken gets `_1`, `_2`... as TensorFlow's graph names do (`Variable_1`).
        """
        if any(p.weight is weight for p in self.pruned_weights):
            raise ValueError(f"{variable_name(weight)!r} is already registered with this Pruner")
        name = _unique(name or variable_name(weight), {p.name for p in self.pruned_weights})
        dtype = tf.as_dtype(weight.dtype)
        if not dtype.is_floating:
            raise TypeError(f"only float weights can be pruned; {name!r} is {dtype.name}")
        check_not_empty(name, weight.shape, "do not register it")
        self._spec.rule_index("weight_sparsity_map", name)  # ambiguous rules fail here
        self._spec.rule_index("block_dims_map", name)
        self._spec.group_for(name)
        self._spec.n_m_for(name, weight.shape)  # an N:M rule that does not fit fails here
        with tf.init_scope(), tf.name_scope(self.name):
            mask = tf.Variable(
                tf.ones(weight.shape, dtype), trainable=False, name=f"{_scope(name)}/mask"
            )
            threshold = tf.Variable(
                tf.zeros([], dtype), trainable=False, name=f"{_scope(name)}/threshold"
            )
        self.by_name[name] = {"mask": mask, "threshold": threshold}
        pruned = PrunedWeight(name, weight, mask, threshold)
        self._registry.updater = MaskUpdater(
            self._spec, (*self.pruned_weights, pruned), [self.last_mask_update_step]
        )
        return pruned

    def update(self, step: Any) -> tf.Tensor:
        """r1.15's conditional mask update at `step`; True when the masks were updated."""
        return self._registry.updater.conditional_update(step)

    def force_update(self, step: Any) -> None:
        """Updates the masks at `step` whatever the predicate says (r1.15's `mask_update_op`)."""
        self._registry.updater.update(step)

    def apply_masks(self) -> None:
        """Zeroes the pruned values of every weight; call it after each optimizer step."""
        self._registry.updater.apply_masks()

    def masked(self, weight: Any) -> tf.Tensor:
        """`mask * weight`, for a forward pass that must not see pruned values."""
        for pruned in self.pruned_weights:
            if pruned.weight is weight:
                return pruned.mask * weight
        raise ValueError(f"{variable_name(weight)!r} is not registered with this Pruner")

    def sparsity(self, step: Any, name: str | None = None) -> tf.Tensor:
        """The scheduled sparsity at `step`, globally or for the weight called `name`."""
        return self._registry.updater.sparsity(step, name)

    def weight_sparsity(self) -> dict[str, float]:
        """The fraction of zeros of each registered weight, by name (eager)."""
        return self._registry.updater.weight_sparsity()

    def write_summaries(self, step: Any) -> None:
        """Scalar summaries to the default `tf.summary` writer."""
        self._registry.updater.write_summaries(step)


class _Registry:
    """Holds the weights out of `tf.Module`'s tracking: they belong to the model's checkpoint."""

    def __init__(self, updater: MaskUpdater) -> None:
        self.updater = updater


def variable_name(variable: Any) -> str:
    """A Keras variable's path (`dense_1/kernel`), else a tf.Variable's name without `:0`."""
    path = getattr(variable, "path", None)
    if isinstance(path, str) and path:
        return path
    return str(variable.name).split(":")[0]


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 0
    while candidate in taken:
        number += 1
        candidate = f"{name}_{number}"
    return candidate


def _scope(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-/" else "_" for c in name)
