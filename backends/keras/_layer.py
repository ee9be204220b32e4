"""`PrunedLayer` and `prune`: which Keras 3 weights are pruned, and where their masks live.

A `PrunedLayer` wraps one layer and owns, for each pruned weight of it, a mask and
a threshold, plus the step of the last mask update and the record of the pruning
step (`_step`): all Keras weights, so `.keras` and `.weights.h5` files (and
`tf.train.Checkpoint` on TensorFlow) save and restore them. The pruned weights
themselves are zeroed in place at each mask update, and by a constraint the optimizer
applies after every step (on JAX too: `_MaskConstraint`), so the forward pass, a
checkpoint and an export all see exactly the masked values.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np

from pruning_spec import Diagnostic, NormalizedSpec, SpecError
from pruning_spec._checkpoints._weights import depthwise_kernels, is_kernel_name
from pruning_spec._inventory import Weight, plan_weights
from pruning_spec._lints import inventory_lints

from .._spec_input import SpecInput, coerce_spec
from .._weights import PrunedWeight, check_not_empty

VariableFilter = Callable[[Any], bool]

_LEAVE_OUT = "leave it out with prune(..., select=...)"

# The initial values of a PrunedLayer's last two variables (pruning_step and
# pruning_step_iterations), which files of pruning-spec 0.1 do not have.
_NO_RECORD = (-1, 0)  # their initial values

try:  # Keras 3 does not export the class of `keras.Model(inputs, outputs)`.
    from keras.src.models.functional import Functional
except ImportError:  # pragma: no cover - a future Keras that moved it
    Functional = keras.Model

try:  # Nor whether a StatelessScope is open (`keras.StatelessScope` is public).
    from keras.src.backend.common.stateless_scope import get_stateless_scope
except ImportError:  # pragma: no cover - a future Keras that moved it

    def get_stateless_scope() -> Any:
        return None


# The models `prune` and `strip` rebuild with `keras.models.clone_model`.
GRAPH_MODELS = (keras.Sequential, Functional)


def is_kernel(variable: Any) -> bool:
    """The default choice: trainable kernels (`kernel`, `recurrent_kernel`, `pointwise_kernel`…).

    Biases, embeddings, normalization parameters and depthwise kernels are never chosen
    by default (as tfmot); `select=` opts them in.
    """
    return bool(variable.trainable) and is_kernel_name(str(variable.name))


class _MaskConstraint:
    """Re-applies a mask after every optimizer step, after the layer's own constraint.

    JAX's training step is stateless: the optimizer applies constraints in a scope that
    maps only the trainable and optimizer variables, so the mask variable cannot be read
    there (it would read as its initial ones, or as a constant of the trace). The forward
    pass of the same step hands over the mask's value from its own scope (`step_mask`,
    set by `PrunedLayer.call`), so the pruned values are zeroed after each step on JAX
    exactly as on TensorFlow.
    """

    def __init__(self, mask: Any, inner: Callable[[Any], Any] | None) -> None:
        self.mask = mask
        self.inner = inner
        self.step_mask: Any = None
        self._warned = False

    def __call__(self, value: Any) -> Any:
        if self.inner is not None:
            value = self.inner(value)
        scope = get_stateless_scope()
        if scope is None or scope.get_current_value(self.mask) is not None:
            return value * self.mask
        if _live(self.step_mask):
            return value * self.step_mask
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"the optimizer step of {self.mask.path!r} ran in a stateless scope without "
                "the forward pass of the same step: its pruned values are not held at zero "
                "after the step. Call the model (stateless_call) and the optimizer "
                "(stateless_apply) in one traced function, as Keras's fit does.",
                UserWarning,
                stacklevel=2,
            )
        return value


def _live(value: Any) -> bool:
    """Whether a value may be used now: not None, and not a tracer of a finished trace."""
    if value is None:
        return False
    if getattr(value, "_trace", None) is None:  # not a JAX tracer
        return True
    from ..jax._tracing import traced_here  # noqa: PLC0415 - only JAX has tracers

    return traced_here(value)


@keras.saving.register_keras_serializable(package="pruning_spec")
class PrunedLayer(keras.layers.Wrapper):  # type: ignore[misc]
    """A layer whose chosen weights are pruned by the spec's schedule.

    Args:
      layer: the layer to prune (built or not).
      spec: anything `prune` accepts; kept in the layer's config, so a saved
        model remembers what it was pruned with.
      pruned: the weights to prune, as paths relative to the layer
        (`kernel`, `forward_lstm/lstm_cell/kernel`); None chooses when the layer
        is built, with `select` (default: its kernels).
      select: a predicate on a Keras variable, used when `pruned` is None.

      scope: the names of the models the layer sits in, outermost first, below the
        model `prune` was given (`encoder/` for a layer of sub-model `encoder`).

    Rules match the weight's name, `<scope><layer name>/<weight path in the layer>`
    (`dense_1/kernel`, `encoder/proj/kernel`, `lstm/lstm_cell/recurrent_kernel`): the
    wrapped layer's own path, stable across saving and loading (Keras prefixes
    `sequential/` to the paths of a Sequential model built from an `Input`, but not of a
    loaded one).
    """

    def __init__(
        self,
        layer: Any,
        spec: SpecInput = None,
        pruned: list[str] | None = None,
        select: VariableFilter | None = None,
        scope: str = "",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", f"pruned_{layer.name}")
        # The wrapped layer's policy, not the global one: a float32 layer in a
        # mixed-precision model must keep float32 inputs.
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(layer, **kwargs)
        self.spec = coerce_spec(_required(spec, "PrunedLayer"))
        self.scope = scope
        self._pruned_keys = None if pruned is None else list(pruned)
        self._select = select or is_kernel
        self.supports_masking = bool(getattr(layer, "supports_masking", False))
        self.pruning_clock: Any = None  # a `_step.PruningClock` while one counts

    def build(self, input_shape: Any = None) -> None:
        super().build(input_shape)
        variables = dict(_relative_variables(self.layer))
        if self._pruned_keys is None:
            self._pruned_keys = chosen_keys(self.layer, self.spec, self._select, self.scope)
        missing = [key for key in self._pruned_keys if key not in variables]
        if missing:
            raise ValueError(
                f"{self.name}: layer {self.layer.name!r} has no weight {missing[0]!r} to prune; "
                f"it has {sorted(variables)}"
            )
        for key in self._pruned_keys:
            check_not_empty(
                weight_name(self.layer, key, self.scope), variables[key].shape, _LEAVE_OUT
            )
            check_n_m(self.spec, self.layer, key, variables[key], self.scope)
        for key in self._pruned_keys:
            variable = variables[key]
            slot = _slot(key)
            mask = self.add_weight(
                name=f"{slot}_mask",
                shape=variable.shape,
                dtype=variable.dtype,
                initializer="ones",
                trainable=False,
            )
            threshold = self.add_weight(
                name=f"{slot}_threshold",
                shape=(),
                dtype=variable.dtype,
                initializer="zeros",
                trainable=False,
            )
            # Attributes, not a list: tf.train.Checkpoint tracks attributes of Keras layers.
            setattr(self, f"{slot}_mask", mask)
            setattr(self, f"{slot}_threshold", threshold)
            own = variable.constraint
            if isinstance(own, _MaskConstraint):  # the layer was pruned before: this takes over
                warnings.warn(
                    f"{weight_name(self.layer, key, self.scope)!r} was already pruned by another "
                    "PrunedLayer; its mask no longer applies. Prune the pruned model, not the "
                    "original twice.",
                    UserWarning,
                    stacklevel=2,
                )
                own = own.inner
            variable.constraint = _MaskConstraint(mask, own)
        # "int", as the optimizer's iterations: int64 on TensorFlow, int32 on JAX (which has
        # no int64 without x64); the steps of a spec fit in int32 (`_spec_input`).
        self.last_mask_update_step = self.add_weight(
            name="last_mask_update_step",
            shape=(),
            dtype="int",
            initializer="zeros",
            trainable=False,
        )
        # The pruning step, recorded with the optimizer's iterations (`_step`): -1 is
        # no record yet. Created last: files saved before they existed lack only these two.
        self.pruning_step = self.add_weight(
            name="pruning_step",
            shape=(),
            dtype="int",
            initializer=keras.initializers.Constant(_NO_RECORD[0]),
            trainable=False,
        )
        self.pruning_step_iterations = self.add_weight(
            name="pruning_step_iterations",
            shape=(),
            dtype="int",
            initializer=keras.initializers.Constant(_NO_RECORD[1]),
            trainable=False,
        )

    def save_own_variables(self, store: Any) -> None:
        if self.pruning_clock is not None:  # the step as of now, not of the last record
            self.pruning_clock.record()
        super().save_own_variables(store)

    def load_own_variables(self, store: Any) -> None:
        """Loads a file, also one saved before the step was recorded (no record then)."""
        keys = list(store.keys())
        if len(keys) == len(self._own_variables()) - len(_NO_RECORD):
            store = {**{key: store[key] for key in keys}, **self._no_record(len(keys))}
        super().load_own_variables(store)

    def _own_variables(self) -> list[Any]:
        return [v for v in self.weights if not any(v is w for w in self.layer.weights)]

    @staticmethod
    def _no_record(first: int) -> dict[str, Any]:
        return {str(first + i): np.array(value, np.int64) for i, value in enumerate(_NO_RECORD)}

    def call(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if get_stateless_scope() is not None:  # JAX's steps: see `_MaskConstraint`
            for pruned in self.pruned_weights:
                constraint = pruned.weight.constraint
                if isinstance(constraint, _MaskConstraint):
                    constraint.step_mask = pruned.mask.value
        return self.layer(inputs, *args, **kwargs)

    def compute_output_spec(self, *args: Any, **kwargs: Any) -> Any:
        return self.layer.compute_output_spec(*args, **kwargs)

    def compute_output_shape(self, *args: Any, **kwargs: Any) -> Any:
        return self.layer.compute_output_shape(*args, **kwargs)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return self.layer.compute_mask(inputs, mask)

    @property
    def pruned_weights(self) -> tuple[PrunedWeight, ...]:
        """Each pruned weight with its mask and threshold (the Keras variables)."""
        if not self.built or self._pruned_keys is None:
            return ()
        variables = dict(_relative_variables(self.layer))
        return tuple(
            PrunedWeight(
                weight_name(self.layer, key, self.scope),
                variables[key],
                getattr(self, f"{_slot(key)}_mask"),
                getattr(self, f"{_slot(key)}_threshold"),
            )
            for key in self._pruned_keys
        )

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config["spec"] = self.spec.to_hparams(include_defaults=False)
        config["pruned"] = self._pruned_keys
        config["scope"] = self.scope
        return config


def zero_pruned_values(weights: tuple[PrunedWeight, ...]) -> None:
    """Sets the pruned values to 0 in place: after what writes weights past the constraint.

    An optimizer with `use_ema=True` writes its moving averages into the weights when
    `fit` ends, after the last step's constraint.
    """
    for pruned in weights:
        value, mask = pruned.weight.value, pruned.mask.value
        # Not `value * mask`, which would keep a pruned NaN or inf as NaN.
        zeroed = keras.ops.where(keras.ops.not_equal(mask, 0), value, keras.ops.zeros_like(value))
        pruned.weight.assign(zeroed)


def _required(spec: SpecInput, caller: str) -> SpecInput:
    """A spec, never None: None would silently prune with the defaults (target 0.5)."""
    if spec is None:
        raise TypeError(
            f"{caller} needs a spec: a spec file path, an hparam string, a PruningSpec or a "
            "NormalizedSpec (NormalizedSpec() for r1.15's defaults)"
        )
    return spec


def chosen_keys(
    layer: Any, spec: NormalizedSpec, select: VariableFilter, scope: str = ""
) -> list[str]:
    """The weights of a built layer to prune: chosen by `select`, unless the spec keeps them dense.

    A weight the spec keeps dense (a rule of sparsity 0) would keep a mask of ones
    forever, so it gets none.
    """
    return [
        key
        for key, _ in _selected_variables(layer, select)
        if not spec.keeps_dense(weight_name(layer, key, scope))
    ]


def _selected_variables(layer: Any, select: VariableFilter) -> Iterator[tuple[str, Any]]:
    """(key, variable) of each weight of a layer that `select` chooses."""
    # Keras 3 names a DepthwiseConv2D's kernel `kernel`: the layer class decides.
    skipped = {id(k) for k in depthwise_kernels(layer)} if select is is_kernel else set()
    for key, variable in _relative_variables(layer):
        if select(variable) and id(variable) not in skipped:
            yield key, variable


# Layers whose kernel's axis -2 (an N:M rule's default) is not the axis it reduces over.
_OTHER_REDUCTION_AXIS = {
    "EinsumDense": "its equation decides which axes it reduces over (in attention, axis -2 "
    "runs across the heads)",
    "Conv1DTranspose": "a transposed convolution's kernel is [..., filters, channels in]: "
    "it reduces over its last axis (axis: -1)",
    "Conv2DTranspose": "a transposed convolution's kernel is [..., filters, channels in]: "
    "it reduces over its last axis (axis: -1)",
    "Conv3DTranspose": "a transposed convolution's kernel is [..., filters, channels in]: "
    "it reduces over its last axis (axis: -1)",
    "DepthwiseConv1D": "a depthwise kernel reduces over its spatial axes only, each channel "
    "on its own",
    "DepthwiseConv2D": "a depthwise kernel reduces over its spatial axes only, each channel "
    "on its own",
}


def check_n_m(spec: NormalizedSpec, layer: Any, key: str, variable: Any, scope: str = "") -> None:
    """Raises `SpecError` unless the spec's N:M rule for this weight (if any) fits it.

    Besides the shape (`NormalizedSpec.n_m_for`), the layer: a rule that leaves its axis
    to the default (-2, the reduction axis of Dense and convolution kernels) is refused
    on a kernel whose reduction axis is another, rather than grouping the wrong values.
    """
    name = weight_name(layer, key, scope)
    rule = spec.n_m_rule_for(name)
    if rule is None:
        return
    owner = _owner(layer, variable)
    reason = _OTHER_REDUCTION_AXIS.get(type(owner).__name__)
    if reason is not None and not rule.HasField("axis"):
        index = spec.rule_index("n_m_map", name)
        raise SpecError(
            [
                Diagnostic(
                    "n-m-axis",
                    f"weight {name!r} of {type(owner).__name__} {owner.name!r} is grouped "
                    f"along axis -2 by default, but {reason}",
                    f"n_m_map[{index}]",
                    hint="give this rule the axis to group along",
                )
            ]
        )
    spec.n_m_for(name, tuple(int(d) for d in variable.shape))


def _owner(layer: Any, variable: Any) -> Any:
    """The innermost layer of `layer` (itself included) that owns `variable`."""
    owner = layer
    for sub in layer._flatten_layers(include_self=True):
        if any(own is variable for own in sub._trainable_variables + sub._non_trainable_variables):
            owner = sub
    return owner


def weight_name(layer: Any, key: str, scope: str = "") -> str:
    """What rules match and summaries show: `<scope><layer name>/<path in the layer>`."""
    return f"{scope}{layer.name}/{key}"


def _relative_variables(layer: Any) -> Iterator[tuple[str, Any]]:
    """(path relative to the layer, variable) of each of its float weights."""
    prefix = f"{layer.path}/" if layer.path else ""
    for variable in layer.weights:
        path = str(variable.path)
        yield (path[len(prefix) :] if path.startswith(prefix) else path), variable


def _slot(key: str) -> str:
    return key.replace("/", "__")


def prune(model: Any, spec: SpecInput, *, select: VariableFilter | None = None) -> Any:
    """Returns `model` with the spec's pruning attached.

    `model` may be a built Sequential or Functional model (its layers are reused,
    wrapped in `PrunedLayer` where they have weights to prune; compile the
    result), a layer (wrapped, for subclassed models' constructors), or a model
    already pruned (its spec is replaced; masks and steps are kept).

    Raises `SpecError` when two rules claim one weight, and `ValueError` when
    nothing would be pruned. Warns about rules that match no weight and weights
    too small for their sparsity.
    """
    normalized = coerce_spec(_required(spec, "prune()"))
    choose = select or is_kernel
    if isinstance(model, PrunedLayer):
        _check_new_spec(model, normalized)
        model.spec = normalized
        return model
    if not isinstance(model, keras.Model):
        if not isinstance(model, keras.layers.Layer):
            raise TypeError(f"prune() takes a Keras model or layer, not {type(model).__name__}")
        return PrunedLayer(model, normalized, select=choose)
    already = pruned_layers(model)
    if already:
        for layer in already:
            _check_new_spec(layer, normalized)
        for layer in already:
            layer.spec = normalized
        return model
    if not isinstance(model, GRAPH_MODELS):
        raise TypeError(
            f"prune() rewrites Sequential and Functional models; {type(model).__name__} is "
            "subclassed. Wrap its layers instead, e.g. "
            "`self.dense = pks.prune(keras.layers.Dense(10), spec)` in its constructor."
        )
    if not model.built:
        raise ValueError(
            f"model {model.name!r} is not built, so its weights are unknown: give it an "
            "Input, or call model.build(input_shape) before prune()"
        )
    _check_choice(model, normalized, choose)
    return _wrap(model, normalized, choose)


def _wrap(model: Any, spec: NormalizedSpec, select: VariableFilter, scope: str = "") -> Any:
    def wrap(layer: Any) -> Any:
        if not isinstance(layer, keras.layers.Layer):  # keras.ops calls in a Functional graph
            return layer
        if isinstance(layer, GRAPH_MODELS):
            return _wrap(layer, spec, select, f"{scope}{layer.name}/")
        keys = chosen_keys(layer, spec, select, scope) if layer.built else []
        return PrunedLayer(layer, spec, pruned=keys, scope=scope) if keys else layer

    return keras.models.clone_model(model, clone_function=wrap)


def _check_new_spec(layer: PrunedLayer, spec: NormalizedSpec) -> None:
    """Raises `SpecError` when a new spec's N:M rules do not fit a pruned layer's weights."""
    if not layer.built:
        return  # build() checks
    variables = dict(_relative_variables(layer.layer))
    for key in layer._pruned_keys or []:
        check_n_m(spec, layer.layer, key, variables[key], layer.scope)


def _check_choice(model: Any, spec: NormalizedSpec, select: VariableFilter) -> None:
    layers = list(_leaf_layers(model))
    inventory = [
        Weight(weight_name(layer, key, scope), tuple(int(d) for d in variable.shape))
        for scope, layer in layers
        for key, variable in _selected_variables(layer, select)
    ]
    twice = sorted(name for name, count in Counter(w.name for w in inventory).items() if count > 1)
    if twice:
        raise ValueError(
            f"two weights of model {model.name!r} would both be called {twice[0]!r}: "
            "rename one of their layers (names must tell weights apart for rules and summaries)"
        )
    for weight in inventory:  # before planning, which only warns of an empty weight
        check_not_empty(weight.name, weight.shape, _LEAVE_OUT)
    for scope, layer in layers:
        for key, variable in _selected_variables(layer, select):
            check_n_m(spec, layer, key, variable, scope)
    plans, problems = plan_weights(spec, inventory)
    if problems:
        raise SpecError(problems)
    if not any(chosen_keys(layer, spec, select, scope) for scope, layer in layers):
        raise ValueError(
            f"nothing to prune in model {model.name!r}: no weight is chosen (default: trainable "
            "kernels whose sparsity is not 0); pass select= to choose others"
        )
    for diagnostic in inventory_lints(spec, inventory, plans):
        warnings.warn(diagnostic.format(), UserWarning, stacklevel=3)


def _leaf_layers(model: Any, scope: str = "") -> Iterator[tuple[str, Any]]:
    """(scope, layer) of every layer that is not itself a Sequential or Functional model."""
    seen: set[int] = set()
    for layer in model.layers:
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, GRAPH_MODELS):
            yield from _leaf_layers(layer, f"{scope}{layer.name}/")
        else:
            yield scope, layer


def pruned_layers(model: Any) -> list[PrunedLayer]:
    """Every `PrunedLayer` in a model: in nested models, subclassed models, custom layers,
    RNN cells and wrappers (`TimeDistributed`, `Bidirectional`) too."""
    if isinstance(model, PrunedLayer):
        return [model]
    flatten = getattr(model, "_flatten_layers", None)  # Keras's walk of every sublayer
    if flatten is None:
        return []
    return [layer for layer in flatten(include_self=False) if isinstance(layer, PrunedLayer)]
