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
  `keras.saving.load_model(path, compile=False, safe_mode=True)` and each weight is
  named by its `.path` (`dense_1/kernel`). The step is the saved optimizer's iteration
  count.
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

Hostile input: whatever the files hold, `read_checkpoint`, `Checkpoint.values` and
`Checkpoint.mask_values` raise only `CheckpointError` (and `KeyError` for a name the
checkpoint does not list), in time and memory bounded by these module constants:

* `MAX_TENSOR_BYTES` (4 GiB): the values of one tensor or HDF5 dataset that `values()`
  reads. A larger one, by its declared dtype and shape, is refused before anything is
  allocated (its name and shape are still listed).
* `MAX_ARCHIVE_BYTES` (2 GiB): the declared uncompressed sizes of all the members of a
  `.keras` archive together, and the declared sizes of all the datasets of its
  `model.weights.h5` together (what Keras would hold in memory). There is no
  compression-ratio bound: pruned weights compress very well, and the absolute bound
  is what bounds memory; zipfile never inflates a member past its declared size.
* `MAX_INDEX_BYTES` (64 MiB): a TensorFlow `.index` file, read whole and checked before
  TensorFlow opens it.
* `MAX_METADATA_BYTES` (16 MiB): the other records read whole: a `checkpoint` state
  file, the object graph of an object-based checkpoint, a `.keras` archive's central
  directory, `config.json` and `metadata.json`.
* `MAX_HDF5_LINKS` (100,000): the links followed while walking an HDF5 file and the
  names listed in a legacy file's attributes; groups nest at most `MAX_HDF5_DEPTH`
  (100) deep.

Only regular files are opened: a FIFO, device or socket (or a symlink to one) is
refused before anything opens it, and directories are accepted only where the format
is one. HDF5 soft and external links, external and virtual datasets are never
followed. A TensorFlow `.index` is parsed here before TensorFlow reads it (TensorFlow
aborts the process on some malformed ones): every block within the file, every shape
valid, every tensor's bytes within an existing data shard; the values of partitioned
(sliced) variables are not read. A `.keras` model is built inside a
`keras.StatelessScope`, so its variables are not allocated: sizes in its config cannot
make Keras allocate more than the archive holds.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib
import itertools
import math
import os
import re
import shutil
import stat
import struct
import tempfile
import types
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

INSTALL_HINT = "pip install 'pruning-spec[tensorflow]'"

MAX_TENSOR_BYTES = 4 << 30
MAX_ARCHIVE_BYTES = 2 << 30
MAX_INDEX_BYTES = 64 << 20
MAX_METADATA_BYTES = 16 << 20
MAX_HDF5_LINKS = 100_000
MAX_HDF5_DEPTH = 100

_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_FILE_SUFFIX = re.compile(r"\.(index|meta|data-\d+-of-\d+)$")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
_KERAS_WEIGHTS = "model.weights.h5"
_KERAS_METADATA = ("config.json", "metadata.json")
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


class _InputError(Exception):
    """A problem with the input; `read_checkpoint` and `values` add the path."""


class _UnknownNameError(KeyError):
    """A name the checkpoint does not list: the one KeyError `values` lets through."""


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
        the stored data cannot be read (or exceeds `MAX_TENSOR_BYTES`).
        """
        if self._read is None:
            raise KeyError(f"{name!r}: no values were loaded for {self.path}")
        try:
            return self._read(name)
        except (_UnknownNameError, CheckpointError):
            raise
        except _InputError as problem:
            raise _error(f"cannot read {name!r} from checkpoint {self.path}: {problem}") from None
        except Exception as error:  # whatever a hostile file makes a library raise
            raise _error(
                f"cannot read {name!r} from checkpoint {self.path}: {_unexpected(error)}"
            ) from None

    def mask_values(self, name: str) -> Any:
        """The stored mask of weight `name` (a numpy array), or None if it has none."""
        mask = self.masks.get(name)
        return None if mask is None else self.values(mask)


def read_checkpoint(path: str) -> Checkpoint:
    """The weights, step and masks stored at `path` (see the module docstring)."""
    path = os.fspath(path)
    try:
        return _read_any(path)
    except CheckpointError:
        raise
    except _InputError as problem:
        raise _error(f"cannot read checkpoint {path}: {problem}") from None
    except Exception as error:  # whatever a hostile file makes a library raise
        raise _error(f"cannot read checkpoint {path}: {_unexpected(error)}") from None


# Names in a hostile file may carry terminal escapes, and paths undecodable bytes.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _error(message: str) -> CheckpointError:
    """The error for `message`, on one line and safe to print to a terminal."""
    return CheckpointError(_UNPRINTABLE.sub(lambda m: ascii(m.group())[1:-1], message))


def _read_any(path: str) -> Checkpoint:
    mode = _mode(path)
    if mode is None:
        if _mode(path + ".index") is None:
            raise _InputError("no such file or directory")
        return _read_tensorflow(path)
    if stat.S_ISDIR(mode):
        return _read_tensorflow(path)
    if not stat.S_ISREG(mode):
        raise _InputError(f"it is {_file_type(mode)}, not a regular file or directory")
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
        raise _error(
            f"cannot read checkpoint {path}: {module} is not installed; "
            f"install the tensorflow extra: {INSTALL_HINT}"
        ) from None


def _summary(error: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, without Keras's terminal colours."""
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(error)).split())
    text = text or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unexpected(error: BaseException) -> str:
    """An error a library raised on bad input, with its type: MemoryError says more."""
    return f"{type(error).__name__}: {_summary(error)}"


def _file_kind(path: str) -> str:
    lowered = path.lower()
    if lowered.endswith(".keras"):
        return "keras"
    if lowered.endswith((".h5", ".hdf5")):
        return "hdf5"
    if _FILE_SUFFIX.search(path) or os.path.basename(path) == "checkpoint":
        return "tensorflow"
    with _open_regular(path, "file") as file:
        head = file.read(8)
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


def _size(count: int) -> str:
    return f"{count:,} bytes"


# ---------------------------------------------------------------------------------------
# Files: only regular ones are opened, and what is read whole is bounded.


def _mode(path: str) -> int | None:
    """`path`'s file type and mode (symlinks followed), or None if there is nothing."""
    try:
        return os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise _InputError(f"{path}: {error.strerror or _summary(error)}") from None


def _file_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _require_regular(path: str, what: str) -> os.stat_result:
    """The status of `path`, a regular file; checked before any library opens it,
    because opening a FIFO blocks and reading a device never ends."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise _InputError(f"{what} {path} is missing") from None
    except OSError as error:
        raise _InputError(f"{what} {path}: {error.strerror or _summary(error)}") from None
    if not stat.S_ISREG(info.st_mode):
        raise _InputError(f"{what} {path} is {_file_type(info.st_mode)}, not a regular file")
    return info


def _open_regular(path: str, what: str) -> IO[bytes]:
    """`path` opened for reading, if it is a regular file."""
    _require_regular(path, what)
    # Non-blocking and re-checked: the path may have become a FIFO since the stat.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        raise _InputError(f"{what} {path}: {error.strerror or _summary(error)}") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise _InputError(f"{what} {path} is {_file_type(mode)}, not a regular file")
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _read_bounded(path: str, what: str, limit_name: str) -> bytes:
    """The whole of `path`, if it holds at most the module constant `limit_name` bytes."""
    limit = int(globals()[limit_name])
    with _open_regular(path, what) as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise _InputError(f"{what} {path} holds more than {limit_name} ({_size(limit)})")
    return data


def _read_at(path: str, offset: int, count: int, what: str) -> bytes:
    with _open_regular(path, what) as file:
        file.seek(offset)
        return file.read(count)


# ---------------------------------------------------------------------------------------
# TensorFlow checkpoints.


def _read_tensorflow(path: str) -> Checkpoint:
    tf = _import("tensorflow", path)
    prefix = _tensorflow_prefix(path)
    # TensorFlow aborts the process on some malformed indexes: check it first.
    bundle = _read_bundle(prefix, tf)
    try:
        reader = tf.compat.v1.train.NewCheckpointReader(prefix)
        shapes = reader.get_variable_to_shape_map()
        dtypes = reader.get_variable_to_dtype_map()
    except Exception as error:
        raise _InputError(
            f"not a TensorFlow checkpoint, Keras archive or HDF5 weights file ({_summary(error)})"
        ) from None
    if not shapes:
        raise _InputError("it holds no variables")

    def get(key: str) -> Any:
        _check_tensor(bundle, key, tf)
        return reader.get_tensor(key)

    if _OBJECT_GRAPH_KEY in shapes or any(k.endswith(_VALUE_SUFFIX) for k in shapes):
        variables, keys, step = _object_based(get, shapes, dtypes)
    else:
        variables, keys, step = _name_based(get, shapes, dtypes)

    def read(name: str) -> Any:
        key = keys.get(name)
        if key is None:
            raise _UnknownNameError(f"{name!r} is not a variable of {prefix}")
        return get(key)

    return _assemble(prefix, variables, step, read)


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
        if _mode(saved_model + ".index") is not None:
            return saved_model
        raise _InputError(
            "no TensorFlow checkpoint in this directory (no 'checkpoint' state file "
            "naming an existing checkpoint, no SavedModel variables); pass the checkpoint "
            "prefix, e.g. DIR/model.ckpt-1000"
        )
    match = _FILE_SUFFIX.search(path)
    return path[: match.start()] if match else path


def _latest_checkpoint(directory: str) -> str | None:
    """The prefix the `checkpoint` state file names, if its index exists.

    Parsed here rather than by `tf.train.latest_checkpoint`, which reads the file
    whatever its size or type and globs the path it names.
    """
    state_path = os.path.join(directory, "checkpoint")
    if _mode(state_path) is None:
        return None
    text = _read_bounded(state_path, "'checkpoint' state file", "MAX_METADATA_BYTES")
    text_format = importlib.import_module("google.protobuf.text_format")
    protos = importlib.import_module("tensorflow.python.training.checkpoint_state_pb2")
    state = protos.CheckpointState()
    try:
        text_format.Merge(text.decode("utf-8"), state)
    except Exception as error:
        raise _InputError(f"bad 'checkpoint' state file {state_path} ({_summary(error)})") from None
    latest = str(state.model_checkpoint_path)
    if not latest:
        raise _InputError(f"bad 'checkpoint' state file {state_path}: no model_checkpoint_path")
    prefix = latest if os.path.isabs(latest) else os.path.join(directory, latest)
    return prefix if _mode(prefix + ".index") is not None else None


@dataclasses.dataclass
class _Bundle:
    """A checked `.index`: every entry (a BundleEntryProto) by key, and the shards."""

    prefix: str
    num_shards: int
    entries: dict[bytes, Any]  # keys are bytes: those of a slice are not UTF-8


def _read_bundle(prefix: str, tf: Any) -> _Bundle:
    index = prefix + ".index"
    if _mode(index) is None:
        if _FILE_SUFFIX.search(prefix) is None and _mode(prefix) is not None:
            raise _InputError(
                "not a TensorFlow checkpoint, Keras archive or HDF5 weights file "
                f"(there is no {index})"
            )
        raise _InputError(f"the checkpoint's index file {index} is missing")
    data = _read_bounded(index, "TensorFlow index", "MAX_INDEX_BYTES")
    try:
        rows = _table_rows(data)
    except _InputError as problem:
        raise _InputError(f"corrupt TensorFlow index {index}: {problem}") from None
    protos = importlib.import_module("tensorflow.core.protobuf.tensor_bundle_pb2")
    if not rows or rows[0][0] != b"":
        raise _InputError(f"corrupt TensorFlow index {index}: no header entry")
    try:
        header = protos.BundleHeaderProto.FromString(rows[0][1])
    except Exception as error:
        raise _InputError(f"corrupt TensorFlow index {index}: header ({_summary(error)})") from None
    bundle = _Bundle(prefix, int(header.num_shards), {})
    for key, value in rows[1:]:
        name = _key_text(key)
        try:
            entry = protos.BundleEntryProto.FromString(value)
        except Exception as error:
            raise _InputError(
                f"corrupt TensorFlow index {index}: entry {name!r} ({_summary(error)})"
            ) from None
        _check_entry(name, entry)
        bundle.entries[key] = entry
    _check_shards(bundle)
    return bundle


def _check_entry(name: str, entry: Any) -> None:
    """What TensorFlow would CHECK-fail (abort) on while listing the variables."""
    shape = entry.shape
    if shape.unknown_rank or len(shape.dim) > 254:
        raise _InputError(f"tensor {name!r} has an invalid shape (rank {len(shape.dim)})")
    elements = 1
    for dim in shape.dim:
        elements *= dim.size
        if dim.size < 0 or elements >= 1 << 63:
            sizes = [d.size for d in shape.dim]
            raise _InputError(f"tensor {name!r} has an invalid shape {sizes}")
    slices = [
        tuple((e.start, e.length if e.HasField("length") else -1) for e in s.extent)
        for s in entry.slices
    ]
    if len(set(slices)) != len(slices):
        raise _InputError(f"tensor {name!r} lists the same slice twice")


def _check_shards(bundle: _Bundle) -> None:
    """Every tensor's bytes lie within an existing regular data shard."""
    sizes: dict[int, int] = {}
    for key, entry in bundle.entries.items():
        name = _key_text(key)
        if entry.slices:
            continue  # a partitioned variable's data is in its slices' entries
        shard = int(entry.shard_id)
        if not 0 <= shard < bundle.num_shards:
            raise _InputError(
                f"tensor {name!r} is in shard {shard}, but the checkpoint has "
                f"{bundle.num_shards} shards"
            )
        if shard not in sizes:
            sizes[shard] = _require_regular(_shard_path(bundle, shard), "data shard").st_size
        end = int(entry.offset) + int(entry.size)
        if end > sizes[shard]:
            raise _InputError(
                f"data shard {_shard_path(bundle, shard)} is truncated: it holds "
                f"{_size(sizes[shard])}, tensor {name!r} ends at byte {end:,}"
            )


def _key_text(key: bytes) -> str:
    return key.decode("utf-8", "replace")


def _shard_path(bundle: _Bundle, shard: int) -> str:
    return f"{bundle.prefix}.data-{shard:05d}-of-{bundle.num_shards:05d}"


def _check_tensor(bundle: _Bundle, key: str, tf: Any) -> None:
    """What TensorFlow is about to allocate for `key`, checked before it reads it."""
    entry = bundle.entries.get(key.encode("utf-8", "surrogateescape"))
    if entry is None:
        raise _InputError(f"{key!r} is not in the checkpoint's index")
    if entry.slices:
        raise _InputError(
            f"{key!r} is a partitioned variable saved in {len(entry.slices)} slices; "
            "reading its values is not supported"
        )
    dtype = tf.dtypes.as_dtype(entry.dtype).base_dtype
    shape = [int(d.size) for d in entry.shape.dim]
    if dtype == tf.string and not shape:
        _check_string(bundle, key, entry)
        return
    if (
        not (dtype.is_floating or dtype.is_integer or dtype.is_bool or dtype.is_complex)
        or dtype.is_quantized
    ):
        raise _InputError(f"{key!r} holds {dtype.name} values, not numbers")
    needed = math.prod(shape) * dtype.size
    if needed > MAX_TENSOR_BYTES:
        raise _InputError(
            f"{key!r} ({dtype.name}, shape {shape}) needs {_size(needed)}, more than "
            f"MAX_TENSOR_BYTES ({_size(MAX_TENSOR_BYTES)})"
        )


def _check_string(bundle: _Bundle, key: str, entry: Any) -> None:
    """A scalar string (the object graph): TensorFlow allocates the length it finds
    in the shard, so that length must be the one the entry's size allows."""
    size = int(entry.size)
    if size > MAX_METADATA_BYTES:
        raise _InputError(
            f"{key!r} is {_size(size)}, more than MAX_METADATA_BYTES ({_size(MAX_METADATA_BYTES)})"
        )
    head = _read_at(_shard_path(bundle, int(entry.shard_id)), int(entry.offset), 10, "data shard")
    try:
        length, used = _varint(head, 0, min(len(head), size), 64)
    except _InputError:
        raise _InputError(f"string {key!r} has a corrupt length") from None
    if used + 4 + length != size:  # length, its checksum, the bytes
        raise _InputError(f"string {key!r} claims {_size(length)} in an entry of {_size(size)}")


# The `.index` file is a LevelDB-style table (TensorFlow's lib/io/table): data blocks of
# prefix-compressed entries, an index block of handles to them, a footer of two handles.
_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_BYTES = 48
_TRAILER_BYTES = 5  # after each block: its type (0: not compressed) and a checksum


def _table_rows(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of the table in `data`, exactly as TensorFlow would see them.

    Refused: a block handle outside the file (TensorFlow allocates what it claims), a
    compressed block, restart points TensorFlow could decode differently, data blocks
    that overlap (parsed again and again), keys out of order or repeated.
    """
    if len(data) < _FOOTER_BYTES:
        raise _InputError(f"{_size(len(data))}, too short for a table")
    if int.from_bytes(data[-8:], "little") != _TABLE_MAGIC:
        raise _InputError("no table magic number at its end (truncated?)")
    at = len(data) - _FOOTER_BYTES
    _, at = _handle(data, at, len(data))  # the metaindex block: never read
    index_offset, index_size = _handle(data, at, len(data))[0]
    handles = []
    for _, value in _block(data, index_offset, index_size):
        handles.append(_handle(value, 0, len(value))[0])
    rows: list[tuple[bytes, bytes]] = []
    end = 0
    for offset, size in sorted(handles):
        if offset < end:
            raise _InputError(f"data blocks overlap at byte {offset:,}")
        end = offset + size + _TRAILER_BYTES
    for offset, size in handles:
        rows.extend(_block(data, offset, size))
    for (before, _), (after, _) in itertools.pairwise(rows):
        if before >= after:
            raise _InputError(f"keys out of order or repeated at {after[:80]!r}")
    return rows


def _handle(data: bytes, at: int, end: int) -> tuple[tuple[int, int], int]:
    offset, at = _varint(data, at, end, 64)
    size, at = _varint(data, at, end, 64)
    return (offset, size), at


def _varint(data: bytes, at: int, end: int, bits: int) -> tuple[int, int]:
    """A LevelDB varint; one TensorFlow would read differently (too long) is refused."""
    value = 0
    for shift in range(0, bits, 7):
        if at >= end:
            break
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >> bits:
                break
            return value, at
    raise _InputError("a corrupt or truncated varint")


def _block(data: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    end = offset + size
    if end + _TRAILER_BYTES > len(data):
        raise _InputError(
            f"a block of {_size(size)} at byte {offset:,} runs past the end of the "
            f"{_size(len(data))} file"
        )
    if data[end] != 0:
        raise _InputError(f"the block at byte {offset:,} is compressed (type {data[end]})")
    if size < 4:
        raise _InputError(f"the block at byte {offset:,} is too short")
    count = int.from_bytes(data[end - 4 : end], "little")
    if count > (size - 4) // 4:
        raise _InputError(f"the block at byte {offset:,} claims {count:,} restart points")
    if count == 0:
        return []  # TensorFlow reads no entry from such a block
    limit = end - 4 * (count + 1)
    points = {
        offset + int.from_bytes(data[limit + 4 * i : limit + 4 * i + 4], "little")
        for i in range(count)
    }
    if offset not in points:
        raise _InputError(f"the block at byte {offset:,} does not restart at its start")
    rows, starts, key, at = [], set(), b"", offset
    while at < limit:
        starts.add(at)
        restart = at in points
        shared, at = _varint(data, at, limit, 32)
        unshared, at = _varint(data, at, limit, 32)
        length, at = _varint(data, at, limit, 32)
        if shared > len(key) or (restart and shared) or limit - at < unshared + length:
            raise _InputError(f"a corrupt entry in the block at byte {offset:,}")
        key = key[:shared] + data[at : at + unshared]
        rows.append((key, data[at + unshared : at + unshared + length]))
        at += unshared + length
    if not points <= starts:
        raise _InputError(f"a restart point inside an entry in the block at byte {offset:,}")
    return rows


def _floating(dtype: Any) -> bool:
    return bool(getattr(dtype, "is_floating", False))


def _step_from(get: Callable[[str], Any], key: str, shapes: dict[str, Any]) -> int | None:
    if list(shapes.get(key, [None])) != []:
        return None  # not a scalar: never read, whatever it claims
    return _scalar(get(key))


def _name_based(
    get: Callable[[str], Any], shapes: dict[str, Any], dtypes: dict[str, Any]
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
    step = _step_from(get, "global_step", shapes)
    return variables, {name: name for name in shapes}, step


def _object_based(
    get: Callable[[str], Any], shapes: dict[str, Any], dtypes: dict[str, Any]
) -> tuple[list[_Variable], dict[str, str], int | None]:
    """tf.train.Checkpoint: walk the object graph, or fall back on the keys."""
    found = _walk_object_graph(get, shapes)
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
    step = _step_from(get, step_key, shapes) if step_key is not None else None
    return variables, keys, step


_Records = tuple[list[tuple[str, str, str]], str | None]  # (path, key, full name); step key


def _walk_object_graph(get: Callable[[str], Any], shapes: dict[str, Any]) -> _Records | None:
    """Every variable reachable from the root without entering an optimizer, breadth first.

    Returns None when the object graph is missing or unreadable.
    """
    if _OBJECT_GRAPH_KEY not in shapes:
        return None
    try:
        protos = importlib.import_module("tensorflow.core.protobuf.trackable_object_graph_pb2")
        graph = protos.TrackableObjectGraph.FromString(get(_OBJECT_GRAPH_KEY))
    except _InputError:
        raise
    except Exception:
        return None
    nodes = graph.nodes
    if not nodes:
        return None

    def value_key(node_id: int) -> tuple[str, str] | None:
        if not 0 <= node_id < len(nodes):
            return None
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
            if child.node_id not in seen and 0 <= child.node_id < len(nodes):
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
# Keras archives.

# The zip records that say how large the central directory is (zipfile reads it whole).
_END_RECORD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")


def _read_keras_archive(path: str) -> Checkpoint:
    _import("tensorflow", path)
    keras = _import("keras", path)
    step = _check_archive(path)
    try:
        model, scope = _load_unallocated(keras, path)
        stored = list(model.weights)
    except Exception as error:
        raise _InputError(f"Keras could not load this .keras archive ({_summary(error)})") from None
    names = _unique(str(v.path) for v in stored)
    by_name = dict(zip(names, stored, strict=True))
    variables = [
        _Variable(name, tuple(int(d) for d in v.shape), _keras_floating(v.dtype))
        for name, v in by_name.items()
    ]

    def read(name: str) -> Any:
        if name not in by_name:
            raise _UnknownNameError(f"{name!r} is not a weight of {path}")
        value = scope.get_current_value(by_name[name])
        if value is None:
            raise _InputError("the archive stores no value for it")
        return importlib.import_module("numpy").asarray(value)

    return _assemble(path, variables, step, read)


def _load_unallocated(keras: Any, path: str) -> tuple[Any, Any]:
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


def _keras_floating(dtype: Any) -> bool:
    name = str(getattr(dtype, "name", dtype))
    return name.startswith(("float", "bfloat", "half"))


def _check_archive(path: str) -> int | None:
    """Refuse an archive that would make Keras read or allocate too much; its step.

    Keras reads the central directory, `config.json` and `model.weights.h5` whole and
    every weight of the latter into memory: each is bounded here, by what the archive
    declares, and every member is checked to hold no more than it declares.
    """
    with _open_regular(path, "archive") as file:
        directory = _zip_directory_bytes(file)
        if directory > MAX_METADATA_BYTES:
            raise _InputError(
                f"its zip central directory is {_size(directory)}, more than "
                f"MAX_METADATA_BYTES ({_size(MAX_METADATA_BYTES)})"
            )
        with zipfile.ZipFile(file) as archive:
            _check_members(archive.infolist())
            _check_inflated_sizes(file, archive.infolist())
            if _KERAS_WEIGHTS not in archive.namelist():
                return None
            return _check_archive_weights(archive, path)


def _zip_directory_bytes(file: IO[bytes]) -> int:
    """The size of the central directory, read from the records zipfile reads it by."""
    size = file.seek(0, os.SEEK_END)
    start = max(size - _END_RECORD.size - (1 << 16), 0)
    file.seek(start)
    tail = file.read(size - start)
    at = len(tail) - _END_RECORD.size
    if at < 0 or tail[at : at + 4] != b"PK\x05\x06" or tail[-2:] != b"\0\0":
        at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END_RECORD.size:
        raise _InputError("not a .keras archive: no zip end of central directory record")
    directory = int(_END_RECORD.unpack_from(tail, at)[5])
    record = start + at
    if record >= _ZIP64_LOCATOR.size + _ZIP64_END_RECORD.size:
        file.seek(record - _ZIP64_LOCATOR.size - _ZIP64_END_RECORD.size)
        zip64 = file.read(_ZIP64_END_RECORD.size + _ZIP64_LOCATOR.size)
        locator = _ZIP64_LOCATOR.unpack_from(zip64, _ZIP64_END_RECORD.size)
        if locator[0] == b"PK\x06\x07" and zip64[:4] == b"PK\x06\x06":
            directory = int(_ZIP64_END_RECORD.unpack_from(zip64)[8])
    return directory


def _check_members(members: list[zipfile.ZipInfo]) -> None:
    """The declared sizes, and how each member is stored, before anything is inflated."""
    total = 0
    for member in members:
        name, size = member.filename, member.file_size
        total += size
        if name in _KERAS_METADATA and size > MAX_METADATA_BYTES:
            raise _InputError(
                f"archive member {name!r} declares {_size(size)}, "
                f"more than MAX_METADATA_BYTES ({_size(MAX_METADATA_BYTES)})"
            )
        if total > MAX_ARCHIVE_BYTES:
            raise _InputError(
                f"its members declare more than MAX_ARCHIVE_BYTES "
                f"({_size(MAX_ARCHIVE_BYTES)}) uncompressed; {name!r} alone "
                f"declares {_size(size)}"
            )
        # zipfile inflates bzip2 and lzma members without bounding each step.
        if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _InputError(
                f"archive member {name!r} is compressed with method {member.compress_type}; "
                "only stored and deflated members are read"
            )
        # `read()` reads all the stored bytes at once: as many as declared, no more.
        stored_limit = size if member.compress_type == zipfile.ZIP_STORED else _deflated_limit(size)
        if member.compress_size > stored_limit:
            raise _InputError(
                f"archive member {name!r} stores {_size(member.compress_size)} for {_size(size)}"
            )


def _deflated_limit(size: int) -> int:
    """The most bytes deflate needs for `size` bytes (incompressible data, with room)."""
    return size + size // 1000 + 1024


def _check_inflated_sizes(file: IO[bytes], members: list[zipfile.ZipInfo]) -> None:
    """Every deflated member inflates to no more than it declares.

    zipfile stops returning data at the declared size, but its `read()` of a whole
    member (how Keras reads `config.json`) inflates up to 2 GiB in one step first.
    """
    for member in members:
        if member.compress_type == zipfile.ZIP_DEFLATED:
            file.seek(_member_data_offset(file, member))
            inflated = _inflated_size(file, member.compress_size, member.file_size)
            if inflated > member.file_size:
                raise _InputError(
                    f"archive member {member.filename!r} inflates to more than the "
                    f"{_size(member.file_size)} it declares"
                )


def _member_data_offset(file: IO[bytes], member: zipfile.ZipInfo) -> int:
    """Where zipfile finds a member's data: after its local header, name and extra field."""
    file.seek(member.header_offset)
    header = file.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise _InputError(f"archive member {member.filename!r} has no local header")
    name_length, extra_length = struct.unpack("<2H", header[26:30])
    return int(member.header_offset) + 30 + int(name_length) + int(extra_length)


def _inflated_size(file: IO[bytes], compressed: int, declared: int) -> int:
    """How much `compressed` deflated bytes inflate to, counted up to `declared` + 1 MiB."""
    inflater = zlib.decompressobj(-15)
    inflated = 0
    while inflated <= declared and not inflater.eof:
        data = inflater.unconsumed_tail
        if not data and compressed > 0:
            data = file.read(min(compressed, 1 << 20))
            compressed -= len(data)
        out = inflater.decompress(data, 1 << 20)  # at most 1 MiB at a time
        if not data and not out:
            break
        inflated += len(out)
    return inflated


def _check_archive_weights(archive: zipfile.ZipFile, path: str) -> int | None:
    """Check the weights file's datasets before Keras reads them all; its step."""
    h5py = _import("h5py", path)
    # Copied out once: h5py reads at random offsets, and a zip member only streams.
    with tempfile.TemporaryDirectory(prefix="pruning-spec-") as scratch:
        copy = os.path.join(scratch, _KERAS_WEIGHTS)
        with archive.open(_KERAS_WEIGHTS) as source, open(copy, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        try:
            with h5py.File(copy, "r") as weights:
                _check_dataset_total(weights, h5py)
                return _hdf5_step(weights, h5py)
        except _InputError as problem:
            raise _InputError(f"archive member {_KERAS_WEIGHTS!r}: {problem}") from None
        except Exception as error:
            raise _InputError(
                f"archive member {_KERAS_WEIGHTS!r} is not readable HDF5 ({_summary(error)})"
            ) from None


def _check_dataset_total(file: Any, h5py: Any) -> None:
    total = 0
    count = 0

    def visit(name: str, item: Any) -> None:
        nonlocal total, count
        count += 1
        if count > MAX_HDF5_LINKS:
            raise _InputError(f"it holds more than MAX_HDF5_LINKS ({MAX_HDF5_LINKS:,}) objects")
        if isinstance(item, h5py.Dataset):
            total += _declared_bytes(item)
            if total > MAX_ARCHIVE_BYTES:
                raise _InputError(
                    f"its datasets declare more than MAX_ARCHIVE_BYTES "
                    f"({_size(MAX_ARCHIVE_BYTES)}); /{name} alone declares "
                    f"{_size(_declared_bytes(item))}"
                )

    file.visititems(visit)  # hard links only, each object once


# ---------------------------------------------------------------------------------------
# HDF5 weight files.


def _read_hdf5(path: str) -> Checkpoint:
    h5py = _import("h5py", path)
    _require_regular(path, "file")
    try:
        with h5py.File(path, "r") as file:
            legacy = _legacy_root(file, h5py)
            if legacy is not None:
                variables, datasets = _legacy_variables(legacy, h5py)
                step = _legacy_step(file, h5py)
            else:
                variables, datasets = _keras3_variables(file, h5py)
                step = _hdf5_step(file, h5py)
    except _InputError:
        raise
    except Exception as error:
        raise _InputError(f"not a readable HDF5 weights file ({_summary(error)})") from None

    def read(name: str) -> Any:
        dataset = datasets.get(name)
        if dataset is None:
            raise _UnknownNameError(f"{name!r} is not a weight of {path}")
        _require_regular(path, "file")
        with h5py.File(path, "r") as file:
            return _dataset_values(_resolve(file, dataset, h5py), h5py)

    return _assemble(path, variables, step, read)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _child(group: Any, key: str, h5py: Any) -> Any:
    """`group[key]` through a hard link: a soft link may dangle, an external one opens
    any file (a FIFO, a device) by its name."""
    where = f"{group.name.rstrip('/')}/{key}"
    link = group.get(key, getlink=True)
    if link is None:
        raise _InputError(f"HDF5 object {where} does not exist")
    if isinstance(link, h5py.ExternalLink):
        raise _InputError(
            f"HDF5 link {where} points into another file ({link.filename}:{link.path}); "
            "only hard links are followed"
        )
    if isinstance(link, h5py.SoftLink):
        raise _InputError(
            f"HDF5 link {where} is a soft link to {link.path}; only hard links are followed"
        )
    return group[key]


def _has(group: Any, key: str) -> bool:
    """Whether `group` has a link `key`, without following it (`in` may follow it)."""
    return group.get(key, getlink=True) is not None


def _resolve(group: Any, path: str, h5py: Any) -> Any:
    """The object at `path` below `group` (or the file's root if absolute), hard links only."""
    if path.startswith("/"):
        group = group.file
    for part in path.split("/"):
        if part:
            group = _child(group, part, h5py)
    return group


def _attribute(item: Any, name: str, default: Any) -> Any:
    """An attribute's value, if its declared size is small enough to read."""
    if name not in item.attrs:
        return default
    attribute = item.attrs.get_id(name)
    count = math.prod(attribute.shape or ())
    if count > MAX_HDF5_LINKS or count * attribute.dtype.itemsize > MAX_METADATA_BYTES:
        raise _InputError(
            f"HDF5 attribute {name!r} of {item.name} declares {count:,} values "
            f"of {attribute.dtype}: too many"
        )
    return item.attrs[name]


def _declared_bytes(dataset: Any) -> int:
    return int(math.prod(dataset.shape or ())) * int(dataset.dtype.itemsize)


def _dataset_values(dataset: Any, h5py: Any) -> Any:
    """A dataset's values, refused before reading when they would come from other files
    or need more memory than `MAX_TENSOR_BYTES`."""
    name = dataset.name
    if dataset.is_virtual:
        raise _InputError(f"HDF5 dataset {name} is virtual (its data is in other files)")
    if dataset.external:
        files = ", ".join(str(entry[0]) for entry in dataset.external)
        raise _InputError(f"HDF5 dataset {name} keeps its data in external files ({files})")
    dtype = dataset.dtype
    if dtype.kind not in "biufc" or h5py.check_dtype(vlen=dtype) is not None:
        raise _InputError(f"HDF5 dataset {name} holds {dtype} values, not numbers")
    needed = _declared_bytes(dataset)
    if needed > MAX_TENSOR_BYTES:
        raise _InputError(
            f"HDF5 dataset {name} ({dtype}, shape {dataset.shape}) needs {_size(needed)}, "
            f"more than MAX_TENSOR_BYTES ({_size(MAX_TENSOR_BYTES)})"
        )
    if dataset.chunks:
        # HDF5 inflates a whole chunk to read any of it, and chunks may be larger
        # than the dataset.
        chunk = math.prod(dataset.chunks) * dtype.itemsize
        if chunk > max(needed, 1 << 20):
            raise _InputError(
                f"HDF5 dataset {name} of {_size(needed)} is stored in chunks of {_size(chunk)}"
            )
    return dataset[()]


def _dataset_variable(name: str, dataset: Any) -> _Variable:
    shape = tuple(int(d) for d in dataset.shape or ())
    return _Variable(name, shape, dataset.dtype.kind == "f")


def _groups(group: Any, h5py: Any, budget: list[int]) -> Iterator[tuple[str, Any]]:
    """The (key, item) pairs of `group`, within the budget of links left to follow."""
    for key in group:
        budget[0] -= 1
        if budget[0] < 0:
            raise _InputError(f"more than MAX_HDF5_LINKS ({MAX_HDF5_LINKS:,}) HDF5 links")
        yield key, _child(group, key, h5py)


def _keras3_variables(file: Any, h5py: Any) -> tuple[list[_Variable], dict[str, str]]:
    """Keras 3 layout: an object is a group with a `vars` subgroup (its own variables,
    `0`, `1`, ..., and its `name` as an attribute); other groups (`layers`) hold objects.
    """
    found: list[tuple[str, Any]] = []
    budget = [MAX_HDF5_LINKS]
    seen = {file["/"]}  # hard links may form cycles

    def visit(group: Any, parts: list[str], depth: int) -> None:
        if depth > MAX_HDF5_DEPTH:
            raise _InputError(f"HDF5 groups nest more than MAX_HDF5_DEPTH ({MAX_HDF5_DEPTH}) deep")
        for key, item in _groups(group, h5py, budget):
            if not isinstance(item, h5py.Group) or (depth == 0 and key == "optimizer"):
                continue
            if item in seen:
                continue
            seen.add(item)
            if key == "vars":
                found.extend(
                    ("/".join([*parts, "vars", index]), value)
                    for index, value in _groups(item, h5py, budget)
                )
            elif _has(item, "vars"):
                vars_group = _child(item, "vars", h5py)
                own = _text(_attribute(vars_group, "name", key)) or key
                visit(item, [*parts, own], depth + 1)
            else:
                visit(item, parts, depth + 1)

    visit(file, [], 0)
    names = _unique(name for name, _ in found)
    variables = []
    datasets = {}
    for name, (_, dataset) in zip(names, found, strict=True):
        if isinstance(dataset, h5py.Dataset):
            variables.append(_dataset_variable(name, dataset))
            datasets[name] = dataset.name
    return variables, datasets


def _hdf5_step(file: Any, h5py: Any) -> int | None:
    """Keras 3 saves the optimizer's iteration count as its first variable."""
    try:
        dataset = _resolve(file, "optimizer/vars/0", h5py)
        if not isinstance(dataset, h5py.Dataset) or dataset.shape != ():
            return None
        return _scalar(_dataset_values(dataset, h5py), kinds="iu")
    except Exception:
        return None


def _legacy_root(file: Any, h5py: Any) -> Any:
    """The group listing `layer_names` in a Keras 2 HDF5 file, or None."""
    if "layer_names" in file.attrs:
        return file
    if _has(file, "model_weights"):
        root = _child(file, "model_weights", h5py)
        if isinstance(root, h5py.Group) and "layer_names" in root.attrs:
            return root
    return None


def _legacy_variables(root: Any, h5py: Any) -> tuple[list[_Variable], dict[str, str]]:
    found = []
    budget = MAX_HDF5_LINKS
    for layer in _attribute(root, "layer_names", []):
        group = _resolve(root, _text(layer), h5py)
        if not isinstance(group, h5py.Group):
            continue
        for weight in _attribute(group, "weight_names", []):
            budget -= 1
            if budget < 0:
                raise _InputError(f"more than MAX_HDF5_LINKS ({MAX_HDF5_LINKS:,}) weights")
            dataset = _resolve(group, _text(weight), h5py)
            if isinstance(dataset, h5py.Dataset):
                found.append((re.sub(r":\d+$", "", _text(weight)), dataset))
    names = _unique(name for name, _ in found)
    variables = [_dataset_variable(n, d) for n, (_, d) in zip(names, found, strict=True)]
    return variables, {n: d.name for n, (_, d) in zip(names, found, strict=True)}


def _legacy_step(file: Any, h5py: Any) -> int | None:
    if not _has(file, "optimizer_weights"):
        return None
    steps: list[int] = []
    count = 0

    def visit(name: str, item: Any) -> bool | None:
        nonlocal count
        count += 1
        leaf = re.sub(r":\d+$", "", name.rpartition("/")[2])
        if isinstance(item, h5py.Dataset) and leaf in _LEGACY_ITERATIONS and item.shape == ():
            value = _scalar(_dataset_values(item, h5py), kinds="iu")
            if value is not None:
                steps.append(value)
        # A non-None return stops the walk: at the step, or after too many objects.
        return True if steps or count >= MAX_HDF5_LINKS else None

    try:
        group = _child(file, "optimizer_weights", h5py)
        if isinstance(group, h5py.Group):
            group.visititems(visit)  # hard links only, each object once
    except Exception:
        return None
    return steps[0] if steps else None
