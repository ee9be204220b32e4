"""TensorFlow checkpoints: which prefix a path stands for, and reading it.

A path may be the prefix, one of its files, a directory (its `checkpoint` state file
names the latest; else a SavedModel's `variables/`) or that state file. The bundle is
checked in Python (`_tf_bundle`) before TensorFlow opens it and before each read.
"""

from __future__ import annotations

import importlib
import os

from pruning_spec._checkpoints._errors import (
    InputError,
    UnknownNameError,
    import_framework,
    summary,
)
from pruning_spec._checkpoints._regular_files import read_whole, stat_mode
from pruning_spec._checkpoints._tf_bundle import FILE_SUFFIX, check_tensor, read_bundle
from pruning_spec._checkpoints._tf_naming import name_variables
from pruning_spec._checkpoints._weights import Checkpoint, StoredValue, assemble


def read_tensorflow(path: str) -> Checkpoint:
    """The TensorFlow checkpoint `path` stands for."""
    tf = import_framework("tensorflow", path)
    prefix = _tensorflow_prefix(path)
    # TensorFlow aborts the process on some malformed indexes: check it first.
    bundle = read_bundle(prefix)
    try:
        reader = tf.compat.v1.train.NewCheckpointReader(prefix)
        shapes = reader.get_variable_to_shape_map()
        dtypes = reader.get_variable_to_dtype_map()
    except Exception as error:
        raise InputError(
            f"not a TensorFlow checkpoint, Keras archive or HDF5 weights file ({summary(error)})"
        ) from None
    if not shapes:
        raise InputError("it holds no variables")

    def get(key: str) -> StoredValue:
        check_tensor(bundle, key, tf)
        return reader.get_tensor(key)

    variables, keys, step = name_variables(get, shapes, dtypes)

    def read(name: str) -> StoredValue:
        key = keys.get(name)
        if key is None:
            raise UnknownNameError(f"{name!r} is not a variable of {prefix}")
        return get(key)

    return assemble(prefix, variables, step, read)


def _tensorflow_prefix(path: str) -> str:
    """The checkpoint prefix that `path` (a prefix, a file of it, a directory) stands for."""
    directory = None
    if os.path.isdir(path):
        directory = path
    elif os.path.basename(path) == "checkpoint" and os.path.isfile(path):
        directory = os.path.dirname(path) or "."
    if directory is not None:
        latest = _latest_checkpoint(directory)
        if latest:
            return latest
        saved_model = os.path.join(directory, "variables", "variables")
        if stat_mode(saved_model + ".index") is not None:
            return saved_model
        raise InputError(
            "no TensorFlow checkpoint in this directory (no 'checkpoint' state file "
            "naming an existing checkpoint, no SavedModel variables); pass the checkpoint "
            "prefix, e.g. DIR/model.ckpt-1000"
        )
    match = FILE_SUFFIX.search(path)
    return path[: match.start()] if match else path


def _latest_checkpoint(directory: str) -> str | None:
    """The prefix the `checkpoint` state file names, if its index exists.

    Parsed here rather than by `tf.train.latest_checkpoint`, which reads the file
    whatever its size or type and globs the path it names.
    """
    state_path = os.path.join(directory, "checkpoint")
    if stat_mode(state_path) is None:
        return None
    text = read_whole(state_path, "'checkpoint' state file", "MAX_METADATA_BYTES")
    text_format = importlib.import_module("google.protobuf.text_format")
    protos = importlib.import_module("tensorflow.python.training.checkpoint_state_pb2")
    state = protos.CheckpointState()
    try:
        text_format.Merge(text.decode("utf-8"), state)
    except Exception as error:
        raise InputError(f"bad 'checkpoint' state file {state_path} ({summary(error)})") from None
    latest = str(state.model_checkpoint_path)
    if not latest:
        raise InputError(f"bad 'checkpoint' state file {state_path}: no model_checkpoint_path")
    prefix = latest if os.path.isabs(latest) else os.path.join(directory, latest)
    return prefix if stat_mode(prefix + ".index") is not None else None
