"""The graph-mode API of tf.contrib.model_pruning (r1.15), on TensorFlow 2.x `tf.compat.v1`.

Variable, op, collection and summary names are r1.15's, so checkpoints,
dashboards and the `masked_weight` strip convention keep working.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from tensorflow.python.ops import variables
from tensorflow.python.platform import tf_logging

from pruning_spec import NormalizedSpec
from pruning_spec._groups import groups_of, partition

from .._spec_input import SpecInput, coerce_spec
from .._weights import check_not_empty
from . import _masking, pruning_utils

v1 = tf.compat.v1
# Not exported by tf.compat.v1; what fixed_size_partitioner makes get_variable return.
_PartitionedVariable = variables.PartitionedVariable

MASK_COLLECTION = "masks"
THRESHOLD_COLLECTION = "thresholds"
MASKED_WEIGHT_COLLECTION = "masked_weights"
WEIGHT_COLLECTION = "kernel"
# The `weights/` prefix is what the quantization tooling and strip_pruning_vars look for.
MASKED_WEIGHT_NAME = "weights/masked_weight"


def apply_mask(x: Any, scope: Any = "") -> tf.Tensor:
    """Creates `mask` and `threshold` for weight `x` in `scope` and returns `mask * x`."""
    check_not_empty(op_name(x), x.get_shape(), "do not call apply_mask on it")
    mask = pruning_utils.weight_mask_variable(x, scope)
    threshold = pruning_utils.weight_threshold_variable(x, scope)
    masked_weights = tf.multiply(mask, x, name=MASKED_WEIGHT_NAME)
    # Reused masks (RNN cells, AUTO_REUSE) must not be updated twice.
    if not any(m is mask for m in v1.get_collection_ref(MASK_COLLECTION)):
        v1.add_to_collection(THRESHOLD_COLLECTION, threshold)
        v1.add_to_collection(MASK_COLLECTION, mask)
        v1.add_to_collection(MASKED_WEIGHT_COLLECTION, masked_weights)
        v1.add_to_collection(WEIGHT_COLLECTION, x)
    return masked_weights


def get_masks() -> list[Any]:
    return list(v1.get_collection(MASK_COLLECTION))


def get_thresholds() -> list[Any]:
    return list(v1.get_collection(THRESHOLD_COLLECTION))


def get_masked_weights() -> list[Any]:
    return list(v1.get_collection(MASKED_WEIGHT_COLLECTION))


def get_weights() -> list[Any]:
    return list(v1.get_collection(WEIGHT_COLLECTION))


def get_weight_sparsity() -> list[tf.Tensor]:
    """The fraction of zeros of each mask."""
    return [tf.nn.zero_fraction(mask) for mask in get_masks()]


def op_name(variable: Any) -> str:
    """A variable's op name (`layer1/mask`); a partitioned variable's own name."""
    if isinstance(variable, _PartitionedVariable) or not hasattr(variable, "op"):
        return str(variable.name).split(":")[0]
    return str(variable.op.name)


class Pruning:
    """r1.15's `Pruning`: builds the schedule, the mask-update ops and the summaries.

    Args:
      spec: a `PruningSpec`, a `NormalizedSpec`, `get_pruning_hparams()` (after
        `.parse(...)`), a spec file path or an hparam string; None for the
        defaults. Invalid specs raise `SpecError` with every diagnostic before
        any op is built.
      global_step: the step tensor or variable; by default the graph's global step.
      sparsity: an external float32 scalar sparsity used instead of the schedule;
        `weight_sparsity_map` values then scale it by `m / target_sparsity`.
    """

    def __init__(
        self, spec: SpecInput = None, global_step: Any = None, sparsity: Any = None
    ) -> None:
        self._spec = coerce_spec(spec, external_sparsity=sparsity is not None)
        self._global_step = self._setup_global_step(global_step)
        self._external_sparsity = sparsity is not None
        self._sparsity = sparsity if sparsity is not None else self._setup_sparsity()
        self._last_update_step = self._setup_last_update_step()
        self._weight_sparsity: dict[float, tf.Tensor] = {}
        self._assign_ops: list[Any] = []

    @property
    def spec(self) -> NormalizedSpec:
        return self._spec

    def _setup_global_step(self, global_step: Any) -> tf.Tensor:
        step = global_step if global_step is not None else v1.train.get_global_step()
        if step is None:
            raise ValueError(
                "Pruning needs a global step: pass global_step= or create one with "
                "tf.compat.v1.train.get_or_create_global_step()"
            )
        return tf.cast(step, tf.int32)

    def _schedule(self, target: float) -> tf.Tensor:
        return _masking.scheduled_sparsity(self._spec, self._global_step, target)

    def _setup_sparsity(self) -> tf.Tensor:
        with tf.name_scope(self._spec.name):
            return tf.identity(self._schedule(self._spec.target_sparsity), name="sparsity")

    def _setup_last_update_step(self) -> Any:
        # Pruning objects with the same name share the variable, as in r1.15.
        # r1.15 passed use_resource=use_tpu; False would force a ref variable, which TF 2's
        # tf.cond cannot assign, so "not asked for" stays the TensorFlow default.
        with v1.variable_scope(
            self._spec.name, use_resource=True if self._spec.use_tpu else None, reuse=v1.AUTO_REUSE
        ):
            return v1.get_variable(
                "last_mask_update_step",
                [],
                initializer=v1.zeros_initializer(),
                trainable=False,
                dtype=tf.int32,
            )

    def _sparsity_for(self, weight_name: str) -> tf.Tensor:
        rule = self._spec.rule_for(weight_name)
        if rule is None:
            return self._sparsity
        if self._external_sparsity:
            scale = rule.sparsity / self._spec.target_sparsity
            return self._sparsity * tf.constant(scale, tf.float32)
        if rule.sparsity not in self._weight_sparsity:
            self._weight_sparsity[rule.sparsity] = self._schedule(rule.sparsity)
        return self._weight_sparsity[rule.sparsity]

    def _group_sparsity(self, group: str) -> tf.Tensor:
        target = self._spec.group_target(group)
        if target == self._spec.target_sparsity:
            return self._sparsity
        if self._external_sparsity:
            return self._sparsity * tf.constant(target / self._spec.target_sparsity, tf.float32)
        if target not in self._weight_sparsity:
            self._weight_sparsity[target] = self._schedule(target)
        return self._weight_sparsity[target]

    def _get_mask_assign_ops(self) -> None:
        if self._assign_ops:
            raise ValueError("Assign op list not empty. _get_mask_assign_ops() called twice?")
        masks, thresholds, weights = get_masks(), get_thresholds(), get_weights()
        if len(masks) != len(thresholds):
            raise ValueError(
                f"Number of masks {len(masks)} and number of thresholds {len(thresholds)} mismatch"
            )
        pruned = {
            op_name(weight): (weight, mask, threshold)
            for mask, threshold, weight in zip(masks, thresholds, weights, strict=False)
        }
        alone, groups = partition(
            self._spec, ((name, _size(weight)) for name, (weight, _, _) in pruned.items())
        )
        for name in alone:
            weight, mask, threshold = pruned[name]
            new_threshold, new_mask = _masking.threshold_and_mask(
                self._spec, name, _values(weight), self._sparsity_for(name), threshold
            )
            self._assign(mask, threshold, new_mask, new_threshold)
        for group in groups.values():
            members = [pruned[member.name] for member in group.members]
            new_threshold, new_masks = _masking.group_threshold_and_masks(
                self._spec,
                group,
                [_values(weight) for weight, _, _ in members],
                self._group_sparsity(group.name),
                members[0][2],
            )
            for (_, mask, threshold), new_mask in zip(members, new_masks, strict=True):
                self._assign(mask, threshold, new_mask, new_threshold)

    def _assign(self, mask: Any, threshold: Any, new_mask: Any, new_threshold: Any) -> None:
        new_threshold = tf.cast(new_threshold, threshold.dtype.base_dtype)
        self._assign_ops.append(pruning_utils.variable_assign(threshold, new_threshold))
        self._assign_ops.append(_assign_mask(mask, new_mask))

    def mask_update_op(self) -> Any:
        """An op that updates every mask and threshold and records the step."""
        with tf.name_scope(self._spec.name):
            if not self._assign_ops:
                self._get_mask_assign_ops()
            step_assign = v1.assign(
                self._last_update_step, self._global_step, name="last_mask_update_step_assign"
            )
            with tf.control_dependencies([step_assign, *self._assign_ops]):
                tf_logging.info("Updating masks.")
                return tf.no_op("mask_update")

    def conditional_mask_update_op(self) -> tf.Tensor:
        """Updates masks on the steps r1.15 did; evaluates to True on those steps."""
        spec = self._spec

        def update() -> tf.Tensor:
            with tf.control_dependencies([self.mask_update_op()]):
                return tf.constant(True)

        with tf.name_scope(spec.name):
            predicate = _masking.update_due(spec, self._global_step, self._last_update_step)
        return tf.cond(predicate, update, lambda: tf.constant(False))

    def add_pruning_summaries(self) -> None:
        """Scalar summaries under `<name>_summaries/`, with r1.15's tags."""
        with tf.name_scope(self._spec.name + "_summaries"):
            v1.summary.scalar("sparsity", self._sparsity)
            v1.summary.scalar("last_mask_update_step", self._last_update_step)
            for mask, threshold in zip(get_masks(), get_thresholds(), strict=False):
                v1.summary.scalar(op_name(mask) + "/sparsity", tf.nn.zero_fraction(mask))
                v1.summary.scalar(op_name(threshold) + "/threshold", threshold)
            self._add_group_summaries()

    def _add_group_summaries(self) -> None:
        """Each group's overall sparsity and threshold, under `group/<name>/`."""
        members = {
            op_name(weight): (mask, threshold)
            for mask, threshold, weight in zip(
                get_masks(), get_thresholds(), get_weights(), strict=False
            )
        }
        sizes = ((name, _size(mask)) for name, (mask, _) in members.items())
        for group in groups_of(self._spec, sizes).values():
            masks = [_values(members[member.name][0]) for member in group.members]
            v1.summary.scalar(f"group/{group.name}/sparsity", _masking.zero_fraction(masks))
            v1.summary.scalar(f"group/{group.name}/threshold", members[group.members[0].name][1])

    def print_hparams(self) -> str:
        """Logs and returns the canonical hparam string; it parses back to this spec."""
        text = self._spec.to_hparams()
        tf_logging.info(text)
        return text


def _values(weight: Any) -> tf.Tensor:
    """A weight's values; a partitioned variable's as one tensor (one weight, one member)."""
    return tf.convert_to_tensor(
        weight.as_tensor() if isinstance(weight, _PartitionedVariable) else weight
    )


def _size(weight: Any) -> int:
    return int(weight.get_shape().num_elements())


def _assign_mask(mask: Any, new_mask: tf.Tensor) -> Any:
    if isinstance(mask, _PartitionedVariable):
        return pruning_utils.partitioned_variable_assign(mask, new_mask)
    return pruning_utils.variable_assign(mask, new_mask)
