"""The weights stored in a trained model's files, named as the pruning rules see them.

`read_checkpoint(path)` lists the prunable candidates of a checkpoint (name and shape),
the training step it was saved at, and the r1.15 masks next to the weights; the values
are read on demand. It serves `explain --checkpoint` and `verify --checkpoint`.

TensorFlow, Keras, h5py and numpy are imported inside the functions that need them,
never by importing this package (docs/semantics.md, principle 2); without them, reading raises
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
checkpoint does not list), in time and memory bounded by these constants (re-exported
here; the readers look them up in `_limits`, where a test lowers them):

* `MAX_TENSOR_BYTES` (4 GiB): the values of one tensor or HDF5 dataset that `values()`
  reads. A larger one, by its declared dtype and shape, is refused before anything is
  allocated (its name and shape are still listed).
* `MAX_ARCHIVE_BYTES` (2 GiB): the declared uncompressed sizes of all the members of a
  `.keras` archive together, and the declared sizes of all the datasets of its
  `model.weights.h5` together (what Keras would hold in memory). There is no
  compression-ratio bound: pruned weights compress very well, and the absolute bound
  is what bounds memory; zipfile never inflates a member past its declared size.
* `MAX_INDEX_BYTES` (64 MiB): a TensorFlow `.index` file, read whole and checked before
  TensorFlow opens it, and its keys together once expanded from their shared prefixes.
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

Layout, one concept a module: `_errors` (CheckpointError, messages, the optional
frameworks), `_limits` (the constants above), `_weights` (Checkpoint, which variables
are weights, mask pairing), `_regular_files` (only regular files, bounded reads),
`_tensorflow` (prefixes and the state file), `_tf_naming` (keys to weight names, the
step), `_tf_bundle` (the `.index` entries and data shards checked), `_tf_table` (the
`.index` table format), `_keras` and `_keras_zip` (`.keras` archives and their zip
container), `_hdf5_weights` (Keras HDF5 layouts) and `_hdf5` (safe HDF5 access).
"""

from __future__ import annotations

import os
import stat

from pruning_spec._checkpoints._errors import (
    INSTALL_HINT,
    CheckpointError,
    InputError,
    checkpoint_error,
    unexpected,
)
from pruning_spec._checkpoints._hdf5_weights import read_hdf5
from pruning_spec._checkpoints._keras import read_keras_archive
from pruning_spec._checkpoints._limits import (
    MAX_ARCHIVE_BYTES,
    MAX_HDF5_DEPTH,
    MAX_HDF5_LINKS,
    MAX_INDEX_BYTES,
    MAX_METADATA_BYTES,
    MAX_TENSOR_BYTES,
)
from pruning_spec._checkpoints._regular_files import file_type, open_regular, stat_mode
from pruning_spec._checkpoints._tensorflow import read_tensorflow
from pruning_spec._checkpoints._tf_bundle import FILE_SUFFIX
from pruning_spec._checkpoints._weights import Checkpoint, WeightInfo

__all__ = [
    "INSTALL_HINT",
    "MAX_ARCHIVE_BYTES",
    "MAX_HDF5_DEPTH",
    "MAX_HDF5_LINKS",
    "MAX_INDEX_BYTES",
    "MAX_METADATA_BYTES",
    "MAX_TENSOR_BYTES",
    "Checkpoint",
    "CheckpointError",
    "WeightInfo",
    "read_checkpoint",
]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"


def read_checkpoint(path: str) -> Checkpoint:
    """The weights, step and masks stored at `path` (see the package docstring)."""
    path = os.fspath(path)
    try:
        return _read_any(path)
    except CheckpointError:
        raise
    except InputError as problem:
        raise checkpoint_error(f"cannot read checkpoint {path}: {problem}") from None
    except Exception as error:  # whatever a hostile file makes a library raise
        raise checkpoint_error(f"cannot read checkpoint {path}: {unexpected(error)}") from None


def _read_any(path: str) -> Checkpoint:
    mode = stat_mode(path)
    if mode is None:
        if stat_mode(path + ".index") is None:
            raise InputError("no such file or directory")
        return read_tensorflow(path)
    if stat.S_ISDIR(mode):
        return read_tensorflow(path)
    if not stat.S_ISREG(mode):
        raise InputError(f"it is {file_type(mode)}, not a regular file or directory")
    kind = _file_kind(path)
    if kind == "keras":
        return read_keras_archive(path)
    if kind == "hdf5":
        return read_hdf5(path)
    return read_tensorflow(path)


def _file_kind(path: str) -> str:
    """The format of the regular file `path`, by its name, else by its first bytes."""
    lowered = path.lower()
    if lowered.endswith(".keras"):
        return "keras"
    if lowered.endswith((".h5", ".hdf5")):
        return "hdf5"
    if FILE_SUFFIX.search(path) or os.path.basename(path) == "checkpoint":
        return "tensorflow"
    with open_regular(path, "file") as file:
        head = file.read(8)
    if head.startswith(_HDF5_MAGIC):
        return "hdf5"
    if head.startswith(_ZIP_MAGIC):
        return "keras"
    return "tensorflow"
