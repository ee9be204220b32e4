"""The weights stored in a trained model's files, named as the pruning rules see them.

`read_checkpoint(path)` lists the prunable candidates of a checkpoint (name and shape),
the training step it was saved at, and the r1.15 masks next to the weights; the values
are read on demand. It serves `explain --checkpoint` and `verify --checkpoint`.

TensorFlow, Keras, h5py and numpy are imported inside the functions that need them,
never by importing this module (DESIGN.md principle 2); without them, reading raises
`CheckpointError` asking for the `tensorflow` extra.

Formats, detected by what the path is:

* **TensorFlow name-based checkpoints** (`tf.compat.v1.train.Saver`, r1.15 graphs): the
  prefix (`.../model.ckpt-100`), one of its files (`.index`, `.meta`, `.data-*`), the
  directory holding them (its `checkpoint` state file gives the latest) or that state
  file. Names are the variable names (`layer1/weights`); the step is `global_step`.
* **TensorFlow object-based checkpoints** (`tf.train.Checkpoint(...).write/save`, Keras 2
  `save_weights`, a SavedModel directory's `variables/`): the variables reachable from
  the root object without going through an optimizer (an object with an iteration
  counter and slots or a learning rate). A weight is named by the name it had when
  saved (the object graph's `full_name`, e.g. Keras `dense_1/kernel`) when every
  candidate has a distinct one other than TensorFlow's default `Variable`, `Variable_1`;
  otherwise every name is the object path (`model/layer_with_weights-0/kernel`, the key
  without `/.ATTRIBUTES/VARIABLE_VALUE`). The step is a top-level `step` or
  `global_step` variable, else the optimizer's `iter`/`iterations`. Without a readable
  object graph, the keys alone: every variable outside `optimizer/` and its slots.
* **Keras 3 `.keras` archives**: the model is loaded with
  `keras.saving.load_model(path, compile=False)` and each weight is named by its
  `.path` (`dense_1/kernel`). The step is the saved optimizer's iteration count.
* **Keras 3 `.weights.h5` files** (any `.h5`/`.hdf5` file or HDF5 content): no
  architecture, so variables have no names, only their position in their layer. A
  weight is named `<layer>/vars/<index>`, where `<layer>` is the chain of layer names
  (the `name` attribute Keras stores, not the group name), outermost model excluded:
  `dense_1/vars/0` (the kernel of a Dense layer named `dense_1`), `mha/query/vars/1`,
  `block/inner_dense/vars/0` for a layer inside the nested model `block`. The step is
  the optimizer's first variable (its iteration count). Legacy Keras 2 HDF5 files
  (`layer_names`/`weight_names` attributes) keep their stored names (`dense_1/kernel`).

In every format, `weights` holds float variables of rank >= 1 (biases included: the
rules decide what is pruned), sorted by name, and excludes masks, thresholds,
`last_mask_update_step`, step and iteration counters, optimizer variables (slots of
Adam, Momentum, ..., moving averages), integer, boolean and string variables and
scalars. Names that repeat get `#2`, `#3`, ... (never seen in well-formed files).

Masks: a float variable named `<scope>/mask` (`<scope>//mask` when r1.15's `apply_mask`
ran with an empty scope inside a variable scope, plain `mask` at the top) is paired
with the weight of the same shape that lives in that scope (`<scope>/<leaf>`) or is
named `<scope>` itself. When there is no such weight, or more than one, or two masks
claim the same weight, the mask stays unpaired: a wrong pairing would make `verify`
check the wrong tensor.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib
import os
import re
import types
import warnings
import zipfile
from collections.abc import Callable, Iterable
from typing import Any

INSTALL_HINT = "pip install 'pruning-spec[tensorflow]'"

_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_FILE_SUFFIX = re.compile(r"\.(index|meta|data-\d+-of-\d+)$")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
# Leaf names that are never prunable weights, whatever their dtype and shape.
_NOT_WEIGHTS = frozenset({"threshold", "last_mask_update_step", "global_step", "save_counter"})
# tf.compat.v1 optimizer slots (`<var>/Adam_1`), Keras 2 graph-mode slots
# (`training/Adam/<var>/m`) and moving averages (`<var>/ExponentialMovingAverage`).
_V1_OPTIMIZER_COMPONENT = re.compile(
    r"(Adam|Adamax|Nadam|LazyAdam|Momentum|RMSProp|Adagrad|AdagradDA|ProximalAdagrad|"
    r"ProximalGradientDescent|Adadelta|Ftrl|LARS|ExponentialMovingAverage)(_\d+)?"
)
_DEFAULT_VARIABLE_NAME = re.compile(r"Variable(_\d+)?")
_ITERATION_CHILDREN = frozenset({"iter", "iterations", "_iterations"})
_OPTIMIZER_CHILDREN = frozenset({"learning_rate", "_learning_rate", "lr", "_variables"})
_TOP_LEVEL_STEPS = ("step", "global_step")
_LEGACY_ITERATIONS = frozenset({"iter", "iteration", "iterations"})


@dataclasses.dataclass(frozen=True)
class WeightInfo:
    """One prunable candidate: its name as the pruning rules see it, and its shape."""

    name: str
    shape: tuple[int, ...]


class CheckpointError(Exception):
    """A checkpoint that cannot be read; the message names the path and the problem."""


@dataclasses.dataclass
class Checkpoint:
    """What `read_checkpoint` found.

    `path` is what was read: the checkpoint prefix a directory resolved to, or the file.
    `masks` maps a weight's name to its mask's name (r1.15-style masks only).
    """

    path: str
    weights: list[WeightInfo]
    step: int | None
    masks: dict[str, str]
    _read: Callable[[str], Any] | None = dataclasses.field(default=None, repr=False, compare=False)

    def values(self, name: str) -> Any:
        """The stored value (a numpy array) of a weight, a mask or any other variable.

        Raises KeyError for a name the checkpoint does not hold, CheckpointError when
        the stored data cannot be read.
        """
        if self._read is None:
            raise KeyError(f"{name!r}: no values were loaded for {self.path}")
        return self._read(name)

    def mask_values(self, name: str) -> Any:
        """The stored mask of weight `name` (a numpy array), or None if it has none."""
        mask = self.masks.get(name)
        return None if mask is None else self.values(mask)


def read_checkpoint(path: str) -> Checkpoint:
    """The weights, step and masks stored at `path` (see the module docstring)."""
    path = os.fspath(path)
    if not os.path.exists(path) and not os.path.exists(path + ".index"):
        raise CheckpointError(f"cannot read checkpoint {path}: no such file or directory")
    if os.path.isfile(path):
        kind = _file_kind(path)
        if kind == "keras":
            return _read_keras_archive(path)
        if kind == "hdf5":
            return _read_hdf5(path)
    return _read_tensorflow(path)


# ---------------------------------------------------------------------------------------
# Shared: what is a weight, which mask goes with which weight.


@dataclasses.dataclass(frozen=True)
class _Variable:
    name: str
    shape: tuple[int, ...]
    floating: bool
    excluded: bool = False  # known by its format not to be a weight (optimizer, ...)


def _assemble(
    path: str, variables: Iterable[_Variable], step: int | None, read: Callable[[str], Any]
) -> Checkpoint:
    weights, masks = [], []
    for variable in variables:
        leaf = variable.name.rpartition("/")[2]
        if variable.excluded or not variable.floating or not variable.shape:
            continue
        if leaf == "mask":
            masks.append(WeightInfo(variable.name, variable.shape))
        elif leaf not in _NOT_WEIGHTS:
            weights.append(WeightInfo(variable.name, variable.shape))
    weights.sort(key=lambda w: w.name)
    return Checkpoint(path, weights, step, _pair_masks(weights, masks), read)


def _scope(name: str) -> str:
    """`layer1/weights`, `layer1/mask` and `layer1//mask` all live in scope `layer1`."""
    return name.rpartition("/")[0].rstrip("/")


def _pair_masks(weights: list[WeightInfo], masks: list[WeightInfo]) -> dict[str, str]:
    by_name = {w.name: w for w in weights}
    by_scope: dict[str, list[WeightInfo]] = {}
    for weight in weights:
        by_scope.setdefault(_scope(weight.name), []).append(weight)
    claims: dict[str, list[str]] = {}
    for mask in masks:
        scope = _scope(mask.name)
        candidates = [w for w in by_scope.get(scope, []) if w.shape == mask.shape]
        named_after = by_name.get(scope)
        if named_after is not None and named_after.shape == mask.shape:
            candidates.append(named_after)
        if len(candidates) == 1:
            claims.setdefault(candidates[0].name, []).append(mask.name)
    return {weight: found[0] for weight, found in sorted(claims.items()) if len(found) == 1}


def _unique(names: Iterable[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        count = seen.get(name, 0) + 1
        seen[name] = count
        unique.append(name if count == 1 else f"{name}#{count}")
    return unique


def _import(module: str, path: str) -> types.ModuleType:
    # TensorFlow's C++ start-up chatter is not useful in a CLI's output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return importlib.import_module(module)
    except ImportError:
        raise CheckpointError(
            f"cannot read checkpoint {path}: {module} is not installed; "
            f"install the tensorflow extra: {INSTALL_HINT}"
        ) from None


def _summary(error: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, without Keras's terminal colours."""
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(error)).split())
    text = text or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _file_kind(path: str) -> str:
    lowered = path.lower()
    if lowered.endswith(".keras"):
        return "keras"
    if lowered.endswith((".h5", ".hdf5")):
        return "hdf5"
    if _FILE_SUFFIX.search(path) or os.path.basename(path) == "checkpoint":
        return "tensorflow"
    try:
        with open(path, "rb") as file:
            head = file.read(8)
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {_summary(error)}") from None
    if head.startswith(_HDF5_MAGIC):
        return "hdf5"
    if head.startswith(_ZIP_MAGIC):
        return "keras"
    return "tensorflow"


def _scalar(value: Any, kinds: str = "iuf") -> int | None:
    """A stored step counter as an int; None if it is not a scalar of one of `kinds`."""
    shape = getattr(value, "shape", None)
    if shape is None or tuple(shape) != () or getattr(value, "dtype", None) is None:
        return None
    if value.dtype.kind not in kinds:
        return None
    return int(value)


# ---------------------------------------------------------------------------------------
# TensorFlow checkpoints.


def _read_tensorflow(path: str) -> Checkpoint:
    tf = _import("tensorflow", path)
    prefix = _tensorflow_prefix(path, tf)
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
        dtypes = reader.get_variable_to_dtype_map()
    except Exception as error:
        raise CheckpointError(
            f"cannot read checkpoint {path}: not a TensorFlow checkpoint, Keras archive or "
            f"HDF5 weights file ({_summary(error)})"
        ) from None
    if not shapes:
        raise CheckpointError(f"cannot read checkpoint {path}: it holds no variables")
    if _OBJECT_GRAPH_KEY in shapes or any(k.endswith(_VALUE_SUFFIX) for k in shapes):
        variables, keys, step = _object_based(reader, shapes, dtypes)
    else:
        variables, keys, step = _name_based(reader, shapes, dtypes)

    def read(name: str) -> Any:
        key = keys.get(name)
        if key is None:
            raise KeyError(f"{name!r} is not a variable of {prefix}")
        try:
            return reader.get_tensor(key)
        except Exception as error:
            raise CheckpointError(
                f"cannot read {name!r} from checkpoint {prefix}: {_summary(error)}"
            ) from None

    return _assemble(prefix, variables, step, read)


def _tensorflow_prefix(path: str, tf: Any) -> str:
    """The checkpoint prefix that `path` (a prefix, a file of it, a directory) stands for."""
    directory = None
    if os.path.isdir(path):
        directory = path
    elif os.path.basename(path) == "checkpoint" and os.path.isfile(path):
        directory = os.path.dirname(path) or "."
    if directory is not None:
        try:
            latest = tf.train.latest_checkpoint(directory)
        except Exception as error:
            raise CheckpointError(
                f"cannot read checkpoint {path}: bad 'checkpoint' state file ({_summary(error)})"
            ) from None
        if latest:
            return str(latest)
        saved_model = os.path.join(directory, "variables", "variables")
        if os.path.exists(saved_model + ".index"):
            return saved_model
        raise CheckpointError(
            f"cannot read checkpoint {path}: no TensorFlow checkpoint in this directory "
            "(no 'checkpoint' state file naming an existing checkpoint, no SavedModel "
            "variables); pass the checkpoint prefix, e.g. DIR/model.ckpt-1000"
        )
    match = _FILE_SUFFIX.search(path)
    if match and os.path.exists(path[: match.start()] + ".index"):
        return path[: match.start()]
    return path


def _floating(dtype: Any) -> bool:
    return bool(getattr(dtype, "is_floating", False))


def _name_based(
    reader: Any, shapes: dict[str, Any], dtypes: dict[str, Any]
) -> tuple[list[_Variable], dict[str, str], int | None]:
    """tf.compat.v1.train.Saver: names are the variable names."""
    variables = []
    for name in sorted(shapes):
        parent, _, leaf = name.rpartition("/")
        # A slot or moving average is named after its variable: `layer1/weights/Adam`.
        slot = leaf != "mask" and (
            parent in shapes or any(_V1_OPTIMIZER_COMPONENT.fullmatch(c) for c in parent.split("/"))
        )
        shape = tuple(int(d) for d in shapes[name])
        variables.append(_Variable(name, shape, _floating(dtypes[name]), excluded=slot))
    step = _scalar(reader.get_tensor("global_step")) if "global_step" in shapes else None
    return variables, {name: name for name in shapes}, step


def _object_based(
    reader: Any, shapes: dict[str, Any], dtypes: dict[str, Any]
) -> tuple[list[_Variable], dict[str, str], int | None]:
    """tf.train.Checkpoint: walk the object graph, or fall back on the keys."""
    found = _walk_object_graph(reader, shapes)
    if found is None:
        found = _walk_keys(shapes)
    records, step_key = found
    candidates = [
        (path, full) for path, key, full in records if _floating(dtypes[key]) and shapes[key]
    ]
    full_names = [full for _, full in candidates]
    use_full_names = (
        bool(candidates)
        and all(full and not _DEFAULT_VARIABLE_NAME.fullmatch(full) for full in full_names)
        and len(set(full_names)) == len(full_names)
    )
    chosen = dict(candidates) if use_full_names else {}
    names = _unique(chosen.get(path, path) for path, _, _ in records)
    keys: dict[str, str] = {}
    variables = []
    for name, (path, key, _) in zip(names, records, strict=True):
        variables.append(
            _Variable(name, tuple(int(d) for d in shapes[key]), _floating(dtypes[key]))
        )
        keys[name] = key
        keys.setdefault(path, key)  # the object path works too
    step = _scalar(reader.get_tensor(step_key)) if step_key is not None else None
    return variables, keys, step


_Records = tuple[list[tuple[str, str, str]], str | None]  # (path, key, full name); step key


def _walk_object_graph(reader: Any, shapes: dict[str, Any]) -> _Records | None:
    """Every variable reachable from the root without entering an optimizer, breadth first.

    Returns None when the object graph is missing or unreadable.
    """
    if _OBJECT_GRAPH_KEY not in shapes:
        return None
    try:
        protos = importlib.import_module("tensorflow.core.protobuf.trackable_object_graph_pb2")
        graph = protos.TrackableObjectGraph.FromString(reader.get_tensor(_OBJECT_GRAPH_KEY))
    except Exception:
        return None
    nodes = graph.nodes
    if not nodes:
        return None

    def value_key(node_id: int) -> tuple[str, str] | None:
        for attribute in nodes[node_id].attributes:
            if attribute.name == "VARIABLE_VALUE" and attribute.checkpoint_key in shapes:
                return attribute.checkpoint_key, re.sub(r":\d+$", "", attribute.full_name)
        return None

    def is_optimizer(node: Any) -> bool:
        children = {c.local_name for c in node.children}
        return bool(children & _ITERATION_CHILDREN) and bool(
            node.slot_variables or children & _OPTIMIZER_CHILDREN
        )

    records: list[tuple[str, str, str]] = []
    step_key = None
    for child in nodes[0].children:
        if child.local_name in _TOP_LEVEL_STEPS and step_key is None:
            found = value_key(child.node_id)
            step_key = found[0] if found else None
    iteration_key = None
    seen = {0}
    queue: collections.deque[tuple[int, str]] = collections.deque([(0, "")])
    while queue:
        node_id, path = queue.popleft()
        node = nodes[node_id]
        found = value_key(node_id)
        if found is not None and path:
            records.append((path, found[0], found[1]))
        if is_optimizer(node):
            for child in node.children:
                if child.local_name in _ITERATION_CHILDREN and iteration_key is None:
                    iterations = value_key(child.node_id)
                    iteration_key = iterations[0] if iterations else None
            continue
        for child in node.children:
            if child.node_id not in seen and child.node_id < len(nodes):
                seen.add(child.node_id)
                queue.append((child.node_id, f"{path}/{child.local_name}".lstrip("/")))
    return records, step_key or iteration_key


def _walk_keys(shapes: dict[str, Any]) -> _Records:
    """Without an object graph: every `.../VARIABLE_VALUE` key outside `optimizer/`."""
    records: list[tuple[str, str, str]] = []
    step_key = None
    for key in sorted(shapes):
        if not key.endswith(_VALUE_SUFFIX) or ".OPTIMIZER_SLOT" in key:
            continue
        path = key[: -len(_VALUE_SUFFIX)]
        if path.startswith("optimizer/"):
            if path.rpartition("/")[2] in _ITERATION_CHILDREN and step_key is None:
                step_key = key
            continue
        records.append((path, key, ""))
    for name in reversed(_TOP_LEVEL_STEPS):
        if name + _VALUE_SUFFIX in shapes:
            step_key = name + _VALUE_SUFFIX
    return records, step_key


# ---------------------------------------------------------------------------------------
# Keras archives and HDF5 weight files.


def _read_keras_archive(path: str) -> Checkpoint:
    _import("tensorflow", path)
    keras = _import("keras", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = keras.saving.load_model(path, compile=False)
        stored = list(model.weights)
    except Exception as error:
        raise CheckpointError(
            f"cannot read checkpoint {path}: Keras could not load this .keras archive "
            f"({_summary(error)})"
        ) from None
    names = _unique(str(v.path) for v in stored)
    by_name = dict(zip(names, stored, strict=True))
    variables = [
        _Variable(name, tuple(int(d) for d in v.shape), _keras_floating(v.dtype))
        for name, v in by_name.items()
    ]

    def read(name: str) -> Any:
        if name not in by_name:
            raise KeyError(f"{name!r} is not a weight of {path}")
        np = importlib.import_module("numpy")
        return np.asarray(by_name[name].numpy())

    return _assemble(path, variables, _keras_archive_step(path), read)


def _keras_floating(dtype: Any) -> bool:
    name = str(getattr(dtype, "name", dtype))
    return name.startswith(("float", "bfloat", "half"))


def _keras_archive_step(path: str) -> int | None:
    """The iteration count of the optimizer saved in the archive's `model.weights.h5`."""
    try:
        h5py = importlib.import_module("h5py")
        with (
            zipfile.ZipFile(path) as archive,
            archive.open("model.weights.h5") as stream,
            h5py.File(stream, "r") as file,
        ):
            return _hdf5_step(file)
    except Exception:
        return None


def _read_hdf5(path: str) -> Checkpoint:
    h5py = _import("h5py", path)
    try:
        with h5py.File(path, "r") as file:
            legacy = _legacy_root(file)
            if legacy is not None:
                variables, datasets = _legacy_variables(legacy, h5py)
                step = _legacy_step(file, h5py)
            else:
                variables, datasets = _keras3_variables(file, h5py)
                step = _hdf5_step(file)
    except CheckpointError:
        raise
    except Exception as error:
        raise CheckpointError(
            f"cannot read checkpoint {path}: not a readable HDF5 weights file ({_summary(error)})"
        ) from None

    def read(name: str) -> Any:
        dataset = datasets.get(name)
        if dataset is None:
            raise KeyError(f"{name!r} is not a weight of {path}")
        try:
            with h5py.File(path, "r") as file:
                return file[dataset][()]
        except Exception as error:
            raise CheckpointError(
                f"cannot read {name!r} from checkpoint {path}: {_summary(error)}"
            ) from None

    return _assemble(path, variables, step, read)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _dataset_variable(name: str, dataset: Any) -> _Variable:
    return _Variable(name, tuple(int(d) for d in dataset.shape), dataset.dtype.kind == "f")


def _keras3_variables(file: Any, h5py: Any) -> tuple[list[_Variable], dict[str, str]]:
    """Keras 3 layout: an object is a group with a `vars` subgroup (its own variables,
    `0`, `1`, ..., and its `name` as an attribute); other groups (`layers`) hold objects.
    """
    found: list[tuple[str, Any]] = []

    def visit(group: Any, parts: list[str], top: bool) -> None:
        for key in group:
            item = group[key]
            if not isinstance(item, h5py.Group) or (top and key == "optimizer"):
                continue
            if key == "vars":
                found.extend(("/".join([*parts, "vars", index]), item[index]) for index in item)
            elif "vars" in item:
                own = _text(item["vars"].attrs.get("name", key)) or key
                visit(item, [*parts, own], False)
            else:
                visit(item, parts, False)

    visit(file, [], True)
    names = _unique(name for name, _ in found)
    variables = []
    datasets = {}
    for name, (_, dataset) in zip(names, found, strict=True):
        if isinstance(dataset, h5py.Dataset):
            variables.append(_dataset_variable(name, dataset))
            datasets[name] = dataset.name
    return variables, datasets


def _hdf5_step(file: Any) -> int | None:
    """Keras 3 saves the optimizer's iteration count as its first variable."""
    try:
        return _scalar(file["optimizer"]["vars"]["0"][()], kinds="iu")
    except Exception:
        return None


def _legacy_root(file: Any) -> Any:
    """The group listing `layer_names` in a Keras 2 HDF5 file, or None."""
    if "layer_names" in file.attrs:
        return file
    if "model_weights" in file and "layer_names" in file["model_weights"].attrs:
        return file["model_weights"]
    return None


def _legacy_variables(root: Any, h5py: Any) -> tuple[list[_Variable], dict[str, str]]:
    found = []
    for layer in root.attrs["layer_names"]:
        group = root[_text(layer)]
        for weight in group.attrs.get("weight_names", []):
            dataset = group[_text(weight)]
            if isinstance(dataset, h5py.Dataset):
                found.append((re.sub(r":\d+$", "", _text(weight)), dataset))
    names = _unique(name for name, _ in found)
    variables = [_dataset_variable(n, d) for n, (_, d) in zip(names, found, strict=True)]
    return variables, {n: d.name for n, (_, d) in zip(names, found, strict=True)}


def _legacy_step(file: Any, h5py: Any) -> int | None:
    if "optimizer_weights" not in file:
        return None
    steps: list[int] = []

    def visit(name: str, item: Any) -> None:
        leaf = re.sub(r":\d+$", "", name.rpartition("/")[2])
        if isinstance(item, h5py.Dataset) and leaf in _LEGACY_ITERATIONS and not steps:
            value = _scalar(item[()], kinds="iu")
            if value is not None:
                steps.append(value)

    file["optimizer_weights"].visititems(visit)
    return steps[0] if steps else None
