"""Keras 3 `.keras` archives: checked, then loaded without allocating their variables.

The archive's zip container (`_keras_zip`) and the datasets of its `model.weights.h5`
are checked against the limits first; the model is then loaded with
`keras.saving.load_model(path, compile=False, safe_mode=True)` inside a
`keras.StatelessScope`, so sizes in its config cannot make Keras allocate more than
the archive holds. Each weight is named by its `.path` (`dense_1/kernel`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import tempfile
import warnings
import zipfile
from typing import Any, TypeAlias

from pruning_spec._checkpoints import _limits
from pruning_spec._checkpoints._errors import (
    InputError,
    UnknownNameError,
    byte_count,
    import_framework,
    summary,
)
from pruning_spec._checkpoints._hdf5 import declared_bytes
from pruning_spec._checkpoints._hdf5_weights import hdf5_step
from pruning_spec._checkpoints._keras_zip import (
    KERAS_WEIGHTS,
    check_inflated_sizes,
    check_members,
    zip_directory_bytes,
)
from pruning_spec._checkpoints._regular_files import open_regular
from pruning_spec._checkpoints._weights import (
    Checkpoint,
    Variable,
    assemble,
    depthwise_kernels,
    is_kernel_name,
    resumed_step,
    scalar,
    unique,
)

ExternalValue: TypeAlias = Any  # Keras and h5py objects and numpy values: untyped


def read_keras_archive(path: str) -> Checkpoint:
    """The weights of the `.keras` archive `path`, and its step.

    The step is the pruning step its PrunedLayers record, which a recompile does not
    reset (`backends/keras/_step.py`), else its optimizer's iterations.
    """
    import_framework("tensorflow", path)
    keras = import_framework("keras", path)
    step = _check_archive(path)
    _register_pruned_layer()
    try:
        model, scope = _load_unallocated(keras, path)
        stored = list(model.weights)
    except Exception as error:
        raise InputError(f"Keras could not load this .keras archive ({summary(error)})") from None
    names = unique(str(v.path) for v in stored)
    by_name = dict(zip(names, stored, strict=True))
    masks, pruning_state = _pruning_variables(model)
    step = resumed_step(_step_records(model, scope), step)
    variables = [
        Variable(
            name,
            tuple(int(d) for d in v.shape),
            _keras_floating(v.dtype),
            excluded=name in pruning_state,
        )
        for name, v in by_name.items()
    ]

    def read(name: str) -> ExternalValue:
        if name not in by_name:
            raise UnknownNameError(f"{name!r} is not a weight of {path}")
        value = scope.get_current_value(by_name[name])
        if value is None:
            raise InputError("the archive stores no value for it")
        return importlib.import_module("numpy").asarray(value)

    pruned = frozenset(masks) if masks else None
    if pruned is None:  # pks.prune's default choice: kernels, not depthwise ones
        kernels = {v.name for v in variables if not v.excluded and is_kernel_name(v.name)}
        pruned = frozenset(kernels - {str(k.path) for k in depthwise_kernels(model)})
        return assemble(path, variables, step, read, pruned=pruned, assumed=True)
    return assemble(path, variables, step, read, known_masks=masks, pruned=pruned)


def _register_pruned_layer() -> None:
    """Makes `PrunedLayer` (what `pks.prune` saves) loadable without the user's custom objects."""
    with contextlib.suppress(ImportError):
        importlib.import_module("pruning_spec.backends.keras._layer")


def _pruning_variables(model: ExternalValue) -> tuple[dict[str, str], set[str]]:
    """Each pruned weight's mask (weight path -> mask path), and every pruning variable's path.

    Masks and thresholds are the pruning's own state, not weights to prune.
    """
    masks: dict[str, str] = {}
    state: set[str] = set()
    for layer in model._flatten_layers():
        for pruned in getattr(layer, "pruned_weights", None) or []:
            weight, mask = str(pruned.weight.path), str(pruned.mask.path)
            masks[weight] = mask
            state |= {mask, str(pruned.threshold.path)}
    return masks, state


def _step_records(model: ExternalValue, scope: ExternalValue) -> list[tuple[int, int]]:
    """Each PrunedLayer's (pruning step, optimizer iterations) record, as the archive holds it."""
    numpy = importlib.import_module("numpy")

    def stored(layer: ExternalValue, name: str) -> int | None:
        variable = getattr(layer, name, None)
        value = None if variable is None else scope.get_current_value(variable)
        return None if value is None else scalar(numpy.asarray(value), kinds="i")

    records = []
    for layer in model._flatten_layers():
        step, iterations = stored(layer, "pruning_step"), stored(layer, "pruning_step_iterations")
        if step is not None and iterations is not None:
            records.append((step, iterations))
    return records


def _load_unallocated(keras: ExternalValue, path: str) -> tuple[ExternalValue, ExternalValue]:
    """The model, its variables never allocated, and the scope holding their values.

    Inside a stateless scope Keras only records each variable's shape; `load_model`
    then assigns the stored values to the scope, after checking their shapes. So a
    config declaring huge layers costs nothing: the load fails on the first mismatch.
    """
    try:
        state = importlib.import_module("keras.src.backend.common.global_state")
        pending = list(state.get_global_attribute("uninitialized_variables", None) or [])
    except Exception:  # another Keras layout: nothing to tidy
        state = None
    try:
        with (
            warnings.catch_warnings(),
            keras.StatelessScope(initialize_variables=False) as scope,
        ):
            warnings.simplefilter("ignore")
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
    finally:
        # Keras would allocate the variables left pending when some later stateless
        # scope closes; ours keep their values in `scope` and are never allocated.
        if state is not None:
            state.set_global_attribute("uninitialized_variables", pending)
    return model, scope


def _keras_floating(dtype: ExternalValue) -> bool:
    name = str(getattr(dtype, "name", dtype))
    return name.startswith(("float", "bfloat", "half"))


def _check_archive(path: str) -> int | None:
    """Refuse an archive that would make Keras read or allocate too much; its step.

    Keras reads the central directory, `config.json` and `model.weights.h5` whole and
    every weight of the latter into memory: each is bounded here, by what the archive
    declares, and every member is checked to hold no more than it declares.
    """
    with open_regular(path, "archive") as file:
        directory = zip_directory_bytes(file)
        limit = _limits.MAX_METADATA_BYTES
        if directory > limit:
            raise InputError(
                f"its zip central directory is {byte_count(directory)}, more than "
                f"MAX_METADATA_BYTES ({byte_count(limit)})"
            )
        with zipfile.ZipFile(file) as archive:
            check_members(archive.infolist())
            check_inflated_sizes(file, archive.infolist())
            if KERAS_WEIGHTS not in archive.namelist():
                return None
            return _check_archive_weights(archive, path)


def _check_archive_weights(archive: zipfile.ZipFile, path: str) -> int | None:
    """Check the weights file's datasets before Keras reads them all; its step."""
    h5py = import_framework("h5py", path)
    # Copied out once: h5py reads at random offsets, and a zip member only streams.
    with tempfile.TemporaryDirectory(prefix="pruning-spec-") as scratch:
        copy = os.path.join(scratch, KERAS_WEIGHTS)
        with archive.open(KERAS_WEIGHTS) as source, open(copy, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        try:
            with h5py.File(copy, "r") as weights:
                _check_dataset_total(weights, h5py)
                return hdf5_step(weights, h5py)
        except InputError as problem:
            raise InputError(f"archive member {KERAS_WEIGHTS!r}: {problem}") from None
        except Exception as error:
            raise InputError(
                f"archive member {KERAS_WEIGHTS!r} is not readable HDF5 ({summary(error)})"
            ) from None


def _check_dataset_total(file: ExternalValue, h5py: ExternalValue) -> None:
    """All the datasets of the weights file together declare at most MAX_ARCHIVE_BYTES."""
    total = 0
    count = 0

    def visit(name: str, item: ExternalValue) -> None:
        nonlocal total, count
        count += 1
        if count > _limits.MAX_HDF5_LINKS:
            raise InputError(
                f"it holds more than MAX_HDF5_LINKS ({_limits.MAX_HDF5_LINKS:,}) objects"
            )
        if isinstance(item, h5py.Dataset):
            total += declared_bytes(item)
            if total > _limits.MAX_ARCHIVE_BYTES:
                raise InputError(
                    f"its datasets declare more than MAX_ARCHIVE_BYTES "
                    f"({byte_count(_limits.MAX_ARCHIVE_BYTES)}); /{name} alone declares "
                    f"{byte_count(declared_bytes(item))}"
                )

    file.visititems(visit)  # hard links only, each object once
