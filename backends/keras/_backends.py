"""Which Keras backends have kernels, and each one's mask update.

A framework plugs in with one module that turns the spec's decisions
(`backends/_dispatch`) into its own arithmetic and gives a `KerasUpdater` over a model's
pruned weights: `pruning_spec.backends.tensorflow._keras_update` and
`pruning_spec.backends.jax._update`. Adding PyTorch means adding its module here.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import Any, Protocol

from pruning_spec import NormalizedSpec

from .._weights import PrunedWeight

# Keras backend -> (the module with its KerasUpdater, the pip extra that installs it).
UPDATERS = {
    "tensorflow": ("pruning_spec.backends.tensorflow._keras_update", "tensorflow"),
    "jax": ("pruning_spec.backends.jax._update", "jax"),
}

_SUPPORTED = " or ".join(repr(name) for name in UPDATERS)


class KerasUpdater(Protocol):
    """One framework's mask update over a model's pruned weights."""

    spec: NormalizedSpec
    weights: tuple[PrunedWeight, ...]
    last_update_steps: tuple[Any, ...]

    def update(self, step: int) -> None:
        """Updates every mask and threshold at `step`, zeroes the pruned values, records it."""


def check_backend() -> str:
    """The Keras backend, or ImportError saying what is missing for it."""
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen and chosen not in UPDATERS:  # before Keras fails on a framework not installed
        raise ImportError(unsupported(chosen))
    try:
        import keras  # noqa: PLC0415 - a clear error when Keras's backend fails to load
    except ImportError as error:
        backend = os.environ.get("KERAS_BACKEND", "the configured backend")
        raise ImportError(
            f"pruning_spec.backends.keras needs Keras 3 with the {_SUPPORTED} backend, but "
            f"Keras failed to load its {backend!r} backend ({error}); install it "
            "(pip install 'pruning-spec[tensorflow]' or 'pruning-spec[jax]') or set "
            "KERAS_BACKEND"
        ) from None
    backend = str(keras.backend.backend())
    if backend not in UPDATERS:
        raise ImportError(unsupported(backend))
    return backend


def unsupported(backend: str) -> str:
    """What is missing for a Keras backend without kernels."""
    return (
        f"pruning_spec.backends.keras has no kernels for Keras's {backend!r} backend: it "
        f"runs on {_SUPPORTED}. Pruning on {backend!r} needs a kernel module for it "
        f"(as pruning_spec.backends.jax._update is JAX's), which does not exist yet. Set "
        "KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax before importing keras."
    )


def updater(
    spec: NormalizedSpec, weights: Sequence[PrunedWeight], last_update_steps: Sequence[Any]
) -> KerasUpdater:
    """The current Keras backend's update over `weights`."""
    module_name, extra = UPDATERS[check_backend()]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ImportError(
            f"the mask update on Keras's backend needs {module_name} ({error}): "
            f"pip install 'pruning-spec[{extra}]'"
        ) from None
    made: KerasUpdater = module.KerasUpdater(spec, weights, last_update_steps)
    return made
