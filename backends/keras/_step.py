"""A Keras model's pruning step: counted by the optimizer, kept by its PrunedLayers.

r1.15 pruned on the global step, which Keras calls the optimizer's `iterations`. But a
recompile (a lower learning rate to fine-tune) or a weights-only file starts a new
optimizer at 0, and the schedule would start again. So each PrunedLayer also records
the pruning step together with the optimizer's iterations at that moment
(`_checkpoints._weights.resumed_step` reads them back). While one optimizer trains,
the pruning step is its iterations plus a constant offset, so nothing runs per batch:
the record is written when training begins and ends, at each epoch's end and mask
update, and just before Keras saves the layer, so every file holds the exact step.
"""

from __future__ import annotations

from typing import Any

from pruning_spec._checkpoints._weights import resumed_step

from .._weights import to_numpy


def scalar(value: Any) -> int:
    """A Keras variable's or tensor's integer value, on any backend."""
    return int(to_numpy(value))


def optimizer_iterations(optimizer: Any) -> int | None:
    """An optimizer's step count, or None for no optimizer (a model not compiled)."""
    return None if optimizer is None else scalar(optimizer.iterations)


def recorded_step(layers: list[Any], iterations: int | None) -> int | None:
    """The step the layers' records give with the optimizer at `iterations`."""
    records = [
        (scalar(layer.pruning_step), scalar(layer.pruning_step_iterations)) for layer in layers
    ]
    return resumed_step(records, iterations)


class PruningClock:
    """The pruning step of one model's PrunedLayers, counted by one optimizer.

    Bound to the optimizer the model has now: after a recompile the old clock still
    tells the step training reached, and the next `fit` starts a new one from the record.

    Args:
      model: the model; its optimizer (None: not compiled) counts the steps.
      layers: its PrunedLayers, which keep the record and save it through this clock.
      start: the step to start at (None: where the records say).
    """

    def __init__(self, model: Any, layers: list[Any], start: int | None = None) -> None:
        self._optimizer = getattr(model, "optimizer", None)
        self._layers = layers
        iterations = optimizer_iterations(self._optimizer)
        if start is None:
            start = recorded_step(layers, iterations)
        now = iterations or 0
        self._offset = (now if start is None else start) - now
        for layer in layers:
            layer.pruning_clock = self

    @property
    def offset(self) -> int:
        """The pruning step minus the optimizer's iterations, while this optimizer trains."""
        return self._offset

    @property
    def step(self) -> int:
        return (optimizer_iterations(self._optimizer) or 0) + self._offset

    def record(self) -> None:
        """Writes the current step, with the iterations it goes with, into every layer."""
        iterations = optimizer_iterations(self._optimizer) or 0
        for layer in self._layers:
            layer.pruning_step.assign(iterations + self._offset)
            layer.pruning_step_iterations.assign(iterations)
