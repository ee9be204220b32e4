"""`pruning_spec.backends.keras` under its first name, kept for code written before JAX ran it.

    from pruning_spec.backends.tensorflow import keras as pks   # still works

It is the same module, on whichever Keras backend runs (TensorFlow or JAX); new code
imports `pruning_spec.backends.keras`.
"""

from __future__ import annotations

from ..keras import (
    PrunedLayer,
    PrunedWeight,
    PruningCallback,
    baked_weights,
    export_tflite,
    is_kernel,
    prune,
    prune_now,
    pruned_layers,
    strip,
    weight_sparsity,
)

__all__ = [
    "PrunedLayer",
    "PrunedWeight",
    "PruningCallback",
    "baked_weights",
    "export_tflite",
    "is_kernel",
    "prune",
    "prune_now",
    "pruned_layers",
    "strip",
    "weight_sparsity",
]
