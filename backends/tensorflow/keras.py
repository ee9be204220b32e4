"""Pruning for Keras 3 (on the TensorFlow backend) from one spec.

    import keras
    from pruning_spec import load_spec
    from pruning_spec.backends.tensorflow import keras as pks

    spec = load_spec("examples/digits.txtpb", overrides=flags.pruning_hparams)
    model = pks.prune(model, spec)           # wraps the layers with weights to prune
    model.compile(...)
    model.fit(x, y, callbacks=[pks.PruningCallback(spec, log_dir="logs")])
    pks.strip(model).save("pruned.keras")    # a plain Keras model, zeros baked in

A weight is named `<layer name>/<weight path in the layer>` (`dense_1/kernel`,
`lstm/lstm_cell/recurrent_kernel`), its `variable.path` in a Functional model:
that is what `weight_sparsity_map` and `block_dims_map` patterns are matched
against (`re.search`) and what the summaries are called. By default every trainable
kernel is pruned; biases, embeddings and normalization parameters never are.

A pruned model saves and loads like any Keras model (`.keras`, `.weights.h5`,
`tf.train.Checkpoint`), masks, thresholds and the last update step included,
once this module has been imported (it registers `PrunedLayer`).
"""

from __future__ import annotations

import os as _os

_NEEDS_TENSORFLOW = (
    "pruning_spec.backends.tensorflow.keras runs on Keras's TensorFlow backend, but Keras {} "
    "(KERAS_BACKEND or ~/.keras/keras.json). JAX and PyTorch are not supported yet: set "
    "KERAS_BACKEND=tensorflow before importing keras."
)

try:
    import keras as _keras
except ImportError as _error:
    _backend = _os.environ.get("KERAS_BACKEND", "the configured backend")
    raise ImportError(
        _NEEDS_TENSORFLOW.format(f"failed to load its {_backend!r} backend ({_error})")
    ) from None

if _keras.backend.backend() != "tensorflow":
    raise ImportError(_NEEDS_TENSORFLOW.format(f"is using {_keras.backend.backend()!r}"))

from ._keras_callback import PruningCallback, prune_now, weight_sparsity  # noqa: E402
from ._keras_export import baked_weights, export_tflite, strip  # noqa: E402
from ._keras_layer import PrunedLayer, is_kernel, prune, pruned_layers  # noqa: E402
from ._pruner import PrunedWeight  # noqa: E402

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
