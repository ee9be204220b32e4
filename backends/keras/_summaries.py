"""PruningCallback's TensorBoard scalars, computed on the host, so every backend writes the same.

They are written with `tf.summary`, as `keras.callbacks.TensorBoard` writes them on every
Keras backend: summaries need TensorFlow and TensorBoard installed, whatever the backend.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

from pruning_spec import NormalizedSpec
from pruning_spec._groups import groups_of

from .._weights import PrunedWeight, overall_zero_fraction, size, to_numpy, zero_fractions


def check_writer(log_dir: str) -> None:
    """ImportError now, not after the first epoch, when what writes summaries is missing."""
    needed = ("tensorflow", "tensorboard")
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(
            f"PruningCallback(log_dir={log_dir!r}) writes TensorBoard summaries with tf.summary "
            f"(as keras.callbacks.TensorBoard does on every backend), but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed: pip install "
            "'pruning-spec[tensorflow]' (or tensorflow-cpu and tensorboard), or leave log_dir out"
        )


def writer(log_dir: str) -> Any:
    """A `tf.summary` file writer for `log_dir`."""
    import tensorflow as tf  # noqa: PLC0415 - summaries only

    return tf.summary.create_file_writer(log_dir)


def write(
    writer: Any,
    spec: NormalizedSpec,
    weights: Sequence[PrunedWeight],
    step: int,
    last_update_step: int,
) -> None:
    """Scalars under `pruning/`: the schedule, each weight's sparsity and threshold, and
    each global group's (`pruning/group/<name>/`): its overall sparsity and its threshold."""
    import tensorflow as tf  # noqa: PLC0415 - summaries only

    values = {
        "pruning/sparsity": spec.sparsity_at(step),
        "pruning/last_mask_update_step": float(last_update_step),
    }
    sparsities = zero_fractions(weights)
    for pruned in weights:
        values[f"pruning/{pruned.name}/sparsity"] = sparsities[pruned.name]
        values[f"pruning/{pruned.name}/threshold"] = _float(pruned.threshold)
    by_name = {pruned.name: pruned for pruned in weights}
    for group in groups_of(spec, ((p.name, size(p.weight)) for p in weights)).values():
        members = [by_name[member.name] for member in group.members]
        values[f"pruning/group/{group.name}/sparsity"] = overall_zero_fraction(members)
        values[f"pruning/group/{group.name}/threshold"] = _float(members[0].threshold)
    with writer.as_default():
        for tag, value in values.items():
            tf.summary.scalar(tag, value, step=step)


def _float(variable: Any) -> float:
    return float(to_numpy(variable))
