"""Pruning for Keras 3 from one spec, on the TensorFlow and JAX backends.

    import keras
    from pruning_spec import load_spec
    from pruning_spec.backends import keras as pks

    spec = load_spec("examples/digits.txtpb", overrides=flags.pruning_hparams)
    model = pks.prune(model, spec)           # wraps the layers with weights to prune
    model.compile(...)
    model.fit(x, y, callbacks=[pks.PruningCallback(spec, log_dir="logs")])
    pks.strip(model).save("pruned.keras")    # a plain Keras model, zeros baked in

The same code runs on Keras's TensorFlow and JAX backends (KERAS_BACKEND), with the
same masks and thresholds to the bit; a `.keras` file saved on one loads and resumes on
the other. Each framework brings only its kernels (`pruning_spec.backends.tensorflow`,
`pruning_spec.backends.jax`); PyTorch has none yet.

A weight is named `<layer name>/<weight path in the layer>` (`dense_1/kernel`,
`lstm/lstm_cell/recurrent_kernel`), its `variable.path` in a Functional model:
that is what `weight_sparsity_map` and `block_dims_map` patterns are matched
against (`re.search`) and what the summaries are called. By default every trainable
kernel is pruned; biases, embeddings and normalization parameters never are.

A pruned model saves and loads like any Keras model (`.keras`, `.weights.h5`, and
`tf.train.Checkpoint` on TensorFlow), masks, thresholds and the last update step
included, once this module has been imported (it registers `PrunedLayer`).
"""

from __future__ import annotations

from ._backends import check_backend

check_backend()

from .._weights import PrunedWeight  # noqa: E402
from ._callback import PruningCallback, prune_now, weight_sparsity  # noqa: E402
from ._export import baked_weights, export_tflite, strip  # noqa: E402
from ._layer import PrunedLayer, is_kernel, prune, pruned_layers  # noqa: E402

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
