"""The mask update of Keras models on Keras's TensorFlow backend (`backends/keras`).

`MaskUpdater.update`, the same ops as graph mode and `Pruner`, traced once with
`tf.function` per updater (the Keras package keeps one per model and set of weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from pruning_spec import NormalizedSpec

from .._weights import PrunedWeight
from ._pruner import MaskUpdater


class KerasUpdater:
    """`backends.keras._backends.KerasUpdater` on TensorFlow."""

    def __init__(
        self,
        spec: NormalizedSpec,
        weights: Sequence[PrunedWeight],
        last_update_steps: Sequence[Any],
    ) -> None:
        self._updater = MaskUpdater(spec, weights, last_update_steps)
        self.spec = spec
        self.weights = self._updater.weights
        self.last_update_steps = self._updater.last_update_steps
        self._traced = tf.function(self._update)

    def _update(self, step: tf.Tensor) -> None:
        self._updater.update(step)

    def update(self, step: int) -> None:
        self._traced(tf.constant(step, tf.int64))
