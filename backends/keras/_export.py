"""`strip`: a pruned Keras model as a plain one, with the zeros baked in; `export_tflite`."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from typing import Any

import keras
import numpy as np

from pruning_spec._files import write_atomically

from .._weights import to_numpy
from ._layer import GRAPH_MODELS, PrunedLayer, pruned_layers


def strip(model: Any) -> Any:
    """A new model of plain Keras layers with the pruned weights' values times their masks.

    It has no pruning variables, no mask constraints and no `PrunedLayer`, so it
    saves and loads without this package; the original model is left as it is.
    A single `PrunedLayer` gives a copy of its inner layer.
    """
    if isinstance(model, PrunedLayer):
        return _copy_layer(model)
    if not isinstance(model, GRAPH_MODELS):
        raise TypeError(
            f"strip() rebuilds Sequential and Functional models, not {type(model).__name__}; "
            "for a subclassed model, strip each PrunedLayer with strip(layer)"
        )
    sources: dict[int, Any] = {}

    def plain(layer: Any) -> Any:
        if isinstance(layer, GRAPH_MODELS):
            return strip(layer)
        inner = layer.layer if isinstance(layer, PrunedLayer) else layer
        copy = inner.__class__.from_config(inner.get_config())
        sources[id(copy)] = layer
        return copy

    stripped = keras.models.clone_model(model, clone_function=plain)
    for copy in _all_layers(stripped):
        if id(copy) in sources:
            copy.set_weights(baked_weights(sources[id(copy)]))
    return stripped


def _copy_layer(layer: PrunedLayer) -> Any:
    inner = layer.layer
    copy = inner.__class__.from_config(inner.get_config())
    copy.build_from_config(inner.get_build_config())
    copy.set_weights(baked_weights(layer))
    return copy


def baked_weights(layer: Any) -> list[np.ndarray]:
    """A layer's weights as numpy arrays, each pruned one 0 where its mask is 0."""
    if not isinstance(layer, PrunedLayer):
        return [np.asarray(v) for v in layer.get_weights()]
    masks = {id(p.weight): to_numpy(p.mask) for p in layer.pruned_weights}
    return [_masked(to_numpy(v), masks.get(id(v))) for v in layer.layer.weights]


def _masked(value: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if mask is None:
        return value
    # Not `value * mask`: a pruned NaN or inf (a diverging step's) times 0 is NaN, not 0.
    return np.where(mask != 0, value, np.zeros_like(value))


def _all_layers(model: Any) -> list[Any]:
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, GRAPH_MODELS):
            found += _all_layers(layer)
    return found


def export_tflite(model: Any, path: str | os.PathLike[str], *, sparse: bool = True) -> int:
    """Strips `model`, converts it to TensorFlow Lite and writes it to `path`; returns its size.

    With `sparse` (the default) the converter stores the pruned weights sparsely
    (`tf.lite.Optimize.EXPERIMENTAL_SPARSITY`), so the file shrinks with the sparsity;
    the model computes the same outputs. The file is written atomically. Run it with
    LiteRT (`ai_edge_litert`), the interpreter TensorFlow points to.

    TensorFlow's converter takes only models of Keras's TensorFlow backend. On JAX the
    stripped model is saved to a temporary `.keras` file and converted in a process on
    the TensorFlow backend (`_tflite`): TensorFlow must be installed, as for Keras's own
    LiteRT export, which refuses JAX models.
    """
    plain = strip(model) if pruned_layers(model) else model
    if keras.backend.backend() != "tensorflow":
        return _export_in_tensorflow(plain, path, sparse)
    import tensorflow as tf  # noqa: PLC0415 - only this function needs TensorFlow

    converter = tf.lite.TFLiteConverter.from_keras_model(plain)
    if sparse:
        converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    flatbuffer = converter.convert()
    write_atomically(path, flatbuffer)
    return len(flatbuffer)


def _export_in_tensorflow(plain: Any, path: str | os.PathLike[str], sparse: bool) -> int:
    if importlib.util.find_spec("tensorflow") is None:
        raise ImportError(
            f"export_tflite converts with TensorFlow's TFLiteConverter, which is not installed "
            f"(the model is on Keras's {keras.backend.backend()!r} backend): pip install "
            "'pruning-spec[tensorflow]'"
        )
    with tempfile.TemporaryDirectory(prefix="pruning-spec-tflite-") as directory:
        saved = os.path.join(directory, "stripped.keras")
        plain.save(saved)
        command = [sys.executable, "-m", "pruning_spec.backends.keras._tflite", saved]
        command += [os.fspath(path), *([] if sparse else ["--dense"])]
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        last = lines[-1] if lines else "no output"
        reason = next((line for line in reversed(lines) if "Error" in line), last)
        raise RuntimeError(
            "export_tflite: converting the stripped model in a process on Keras's TensorFlow "
            f"backend failed: {reason}\nThat process loads the model from a .keras file: a "
            "custom layer must be registered (keras.saving.register_keras_serializable) in a "
            "module that process can import. Its output:\n" + done.stderr.strip()[-3000:]
        )
    return int(done.stdout.strip().splitlines()[-1])
