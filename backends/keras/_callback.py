"""`PruningCallback`: runs the spec's mask updates during `model.fit`, and logs them."""

from __future__ import annotations

import warnings
import weakref
from typing import Any

import keras

from pruning_spec import NormalizedSpec

from .._spec_input import SpecInput, coerce_spec
from .._weights import overall_zero_fraction, zero_fractions
from . import _backends, _summaries
from ._backends import KerasUpdater
from ._layer import PrunedLayer, pruned_layers, zero_pruned_values
from ._step import PruningClock, scalar


class PruningCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Updates masks on r1.15's schedule during `fit`, and writes TensorBoard scalars.

    The step is the pruning step, r1.15's global step: the optimizer's `iterations`
    for a model pruned before it trained, and carried on by the PrunedLayers across a
    recompile or a weights-only file (`_step`). After training step t the masks
    are updated if r1.15's `conditional_mask_update_op` would have run at step t (as
    step t+1 begins, or at the end of the epoch).
    Adds `sparsity` (the fraction of zeros over all pruned weights) to each epoch's
    logs, so it shows in the progress bar and in `History`.

    Args:
      spec: the spec the model was pruned with (None: the model's own). Given
        and different, `fit` stops at once: switch specs with `prune(model, spec)`.
      log_dir: where to write scalars under `pruning/` (None: no summaries).
      update_freq: `"epoch"`, or write the scalars every this many batches.
    """

    def __init__(
        self, spec: SpecInput = None, log_dir: str | None = None, update_freq: str | int = "epoch"
    ) -> None:
        super().__init__()
        if update_freq != "epoch" and not (isinstance(update_freq, int) and update_freq > 0):
            raise ValueError(f"update_freq must be 'epoch' or a positive int, not {update_freq!r}")
        if log_dir is not None:
            _summaries.check_writer(log_dir)
        self._spec = None if spec is None else coerce_spec(spec)
        self._log_dir = log_dir
        self._update_freq = update_freq
        self._updater: KerasUpdater | None = None
        self._last_update = 0
        # The optimizer's iterations as this epoch began; JAX's fit holds the live value
        # out of the variables between steps (`_step_now`).
        self._epoch_iterations: int | None = None
        self._past_end = False
        self._clock: PruningClock | None = None
        self._writer: Any = None
        self._last_written = -1

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._updater = None
        layers = pruned_layers(self.model)
        if not layers:
            raise ValueError(
                f"model {self.model.name!r} has no pruned layers: call "
                "pruning_spec.backends.keras.prune(model, spec) before fit"
            )
        # The rest waits for the first epoch: other callbacks' on_train_begin (a
        # BackupAndRestore listed after this one) may restore the weights and steps first.

    def _start(self, layers: list[PrunedLayer]) -> KerasUpdater:
        updater = _model_updater(self.model, layers, self._spec)
        self._last_update = scalar(layers[0].last_mask_update_step)
        clock = PruningClock(self.model, layers)
        if clock.step < self._last_update:  # only a file without the step's record
            raise ValueError(
                f"the optimizer is at step {clock.step}, but the masks were last updated at "
                f"step {self._last_update}, and the model's PrunedLayers do not record the "
                "pruning step (saved by pruning-spec 0.1.x): its optimizer state was not "
                "restored, so the pruning schedule would start again. Resume from a .keras "
                "file or a tf.train.Checkpoint with the optimizer, or set "
                f"model.optimizer.iterations.assign({self._last_update}) if that is right"
            )
        clock.record()
        self._clock = clock
        chunk = int(getattr(self.model, "steps_per_execution", 1) or 1)
        if chunk > 1:
            warnings.warn(
                f"the model runs {chunk} steps per execution, and callbacks see only every "
                f"{chunk}th step: a mask update due in between runs at the next one seen, with "
                "that step's sparsity. Compile with steps_per_execution=1 for r1.15's steps.",
                UserWarning,
                stacklevel=2,
            )
        if self._log_dir is not None and _is_chief(self.model):
            self._writer = _summaries.writer(self._log_dir)
        self._updater = updater
        self._past_end = False
        return updater

    def _ready(self) -> KerasUpdater | None:
        """The updater, once every PrunedLayer is built (a subclassed model's, in step 1)."""
        if self._updater is None:
            layers = pruned_layers(self.model)
            if all(layer.built for layer in layers):
                self._start(layers)
        return self._updater

    # Updates run before a step, not after: Keras runs other callbacks' batch-end hooks on a
    # thread of their own unless a callback overrides one. Before step t+1 nothing has changed
    # since step t, and `on_epoch_end` catches the last step.
    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._ready()
        self._epoch_iterations = scalar(self.model.optimizer.iterations)

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._update_if_due(batch)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        step = self._update_if_due(None)
        updater = self._ready()
        if updater is None:
            raise ValueError(f"model {self.model.name!r}: its PrunedLayers were never built")
        if self._clock is not None:
            self._clock.record()
        if logs is not None:
            logs["sparsity"] = overall_zero_fraction(updater.weights)
        if self._update_freq == "epoch":
            self._write(step)

    def _update_if_due(self, batch: int | None) -> int | None:
        """Updates the masks if due before `batch` of this epoch (None: after its last)."""
        updater = self._ready()
        if updater is None or self._clock is None:
            return None
        step = self._step_now(batch, updater.spec)
        if step is None:
            return None
        # One predicate decides, the core's; the framework's updater only updates.
        if updater.spec.mask_update_due(step, self._last_update):
            updater.update(step)
            self._last_update = step
            self._clock.record()
        if isinstance(self._update_freq, int) and step % self._update_freq == 0:
            self._write(step)
        return step

    def _step_now(self, batch: int | None, spec: NormalizedSpec) -> int | None:
        """The pruning step now, or None when nothing can be due and no summary is.

        JAX's fit keeps the variables' live values out of them between steps (reading
        the optimizer's iterations then means putting them back: `jax_state_sync`). The
        step is at most the iterations as the epoch began plus the batch index (an
        optimizer may skip a step, as the loss-scale one does on a non-finite gradient,
        never take more), so the values are put back only when that bound could be due
        or a summary is: before an update, and once past the schedule's end.
        """
        assert self._clock is not None
        if batch is not None and self._epoch_iterations is not None:
            bound = self._epoch_iterations + batch + self._clock.offset
            # The step reaches every multiple of update_freq (it grows by at most 1 a batch):
            # look once the bound has reached the next one after the last summary.
            summary = (
                self._writer is not None
                and isinstance(self._update_freq, int)
                and bound >= self._next_summary()
            )
            could_be_due = (
                not self._past_end
                and bound >= spec.begin_pruning_step
                and bound >= self._last_update + spec.pruning_frequency
            )
            if not (could_be_due or summary):
                return None
        _sync(self.model)
        step = self._clock.step
        if batch is not None and self._epoch_iterations is not None:
            self._epoch_iterations = step - self._clock.offset - batch
        if 0 <= spec.end_pruning_step < step:
            self._past_end = True
        return step

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._clock is not None:
            self._clock.record()
        if self._updater is not None:  # `use_ema` has written its averages by now
            zero_pruned_values(self._updater.weights)
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None

    def _next_summary(self) -> int:
        """The first step after the last summary written at which one is due."""
        assert isinstance(self._update_freq, int)
        return (self._last_written // self._update_freq + 1) * self._update_freq

    def _write(self, step: int | None) -> None:
        if self._writer is None or self._updater is None or step in (None, self._last_written):
            return
        assert step is not None
        self._last_written = step
        last = scalar(self._updater.last_update_steps[0])
        _summaries.write(self._writer, self._updater.spec, self._updater.weights, step, last)


def _sync(model: Any) -> None:
    """Puts JAX's live training state back into the model's variables (elsewhere: nothing)."""
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()


# One updater (its traced or compiled update) per model and set of pruned weights. Keras calls
# on_train_begin at every fit, often with a new callback; tracing again each time cost seconds
# on a large model.
_UPDATERS: weakref.WeakKeyDictionary[Any, tuple[tuple[object, ...], KerasUpdater]] = (
    weakref.WeakKeyDictionary()
)


def prune_now(model: Any, step: int | None = None) -> dict[str, float]:
    """Applies the masks the spec gives at `step`, now, whatever the update predicate says.

    For one-shot and post-training pruning: with `initial_sparsity` equal to
    `target_sparsity` (see examples/one_shot.txtpb) the masks are at the target before
    the first training step, and `PruningCallback` then keeps them there. `step`
    defaults to the model's pruning step (the optimizer's `iterations` for a model that
    never trained with pruning; 0 for one not compiled yet). The step is recorded as the
    last update, as the callback's own updates are, and as the pruning step: the next
    `fit` goes on from it. Returns each pruned weight's sparsity.
    """
    layers = pruned_layers(model)
    if not layers:
        raise ValueError(f"model {model.name!r} has no pruned layers: call prune(model, spec)")
    unbuilt = [layer.name for layer in layers if not layer.built]
    if unbuilt:
        raise ValueError(
            f"model {model.name!r}: {unbuilt[0]!r} is not built, so its weights are unknown; "
            "call the model on an input (or model.build) first"
        )
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise ValueError(f"step must be an integer >= 0, got {step!r}")
    _sync(model)
    updater = _model_updater(model, layers, None)
    clock = PruningClock(model, layers, start=step)
    clock.record()
    updater.update(clock.step)
    return zero_fractions(updater.weights)


def _model_updater(
    model: Any, layers: list[PrunedLayer], given: NormalizedSpec | None
) -> KerasUpdater:
    """The update over every pruned weight of a model's built PrunedLayers, with its spec."""
    weights = [w for layer in layers for w in layer.pruned_weights]
    if not weights:
        raise ValueError(f"model {model.name!r} has no pruned weights: its PrunedLayers chose none")
    spec = _model_spec(layers, given)
    key = (spec.fingerprint, *(id(pruned.weight) for pruned in weights))
    cached = _UPDATERS.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    updater = _backends.updater(spec, weights, [layer.last_mask_update_step for layer in layers])
    _UPDATERS[model] = (key, updater)
    return updater


def weight_sparsity(model: Any) -> dict[str, float]:
    """The fraction of zeros of each pruned weight of a model, by weight name."""
    _sync(model)
    weights = [pruned for layer in pruned_layers(model) for pruned in layer.pruned_weights]
    return zero_fractions(weights)


def _model_spec(layers: list[PrunedLayer], given: NormalizedSpec | None) -> NormalizedSpec:
    specs = {layer.spec.fingerprint: layer.spec for layer in layers}
    if len(specs) > 1:
        raise ValueError(
            "the model's layers were pruned with different specs; "
            "call prune(model, spec) to give them one"
        )
    (own,) = specs.values()
    if given is not None and given.fingerprint != own.fingerprint:
        raise ValueError(
            "PruningCallback was given a spec that differs from the one the model was pruned "
            f"with:\n  model:    {own.to_hparams(include_defaults=False)}\n"
            f"  callback: {given.to_hparams(include_defaults=False)}\n"
            "call prune(model, spec) to switch the model to the new spec (masks are kept)"
        )
    return own


def _is_chief(model: Any) -> bool:
    """Whether this process writes summaries: not a non-chief multi-worker task."""
    strategy = getattr(model, "distribute_strategy", None)
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    task_type, task_id = str(resolver.task_type), int(resolver.task_id or 0)
    return task_type == "chief" or (task_type == "worker" and task_id == 0)
