"""A TensorFlow tensor bundle (`PREFIX.index` and its data shards), checked in Python.

TensorFlow aborts the process on some malformed bundles, so before it opens one,
`read_bundle` checks its `.index`: every entry parsed, every shape valid, every tensor's
bytes within an existing regular data shard; and before it reads a tensor,
`check_tensor` checks what it is about to allocate. The values of partitioned (sliced)
variables are not read.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
from typing import Any, TypeAlias

from pruning_spec._checkpoints import _limits
from pruning_spec._checkpoints._errors import InputError, byte_count, summary
from pruning_spec._checkpoints._regular_files import read_at, read_whole, require_regular, stat_mode
from pruning_spec._checkpoints._tf_table import table_rows, varint

TFValue: TypeAlias = Any  # TensorFlow's protos and module, imported at run time: untyped

# The files of a checkpoint `PREFIX`: PREFIX.index, PREFIX.meta, PREFIX.data-00000-of-00001.
FILE_SUFFIX = re.compile(r"\.(index|meta|data-\d+-of-\d+)$")


@dataclasses.dataclass
class Bundle:
    """A checked `.index`: every entry (a BundleEntryProto) by key, and the shards."""

    prefix: str
    num_shards: int
    entries: dict[bytes, TFValue]  # keys are bytes: those of a slice are not UTF-8


def read_bundle(prefix: str) -> Bundle:
    """The checked index of the checkpoint `prefix`."""
    index = prefix + ".index"
    if stat_mode(index) is None:
        if FILE_SUFFIX.search(prefix) is None and stat_mode(prefix) is not None:
            raise InputError(
                "not a TensorFlow checkpoint, Keras archive or HDF5 weights file "
                f"(there is no {index})"
            )
        raise InputError(f"the checkpoint's index file {index} is missing")
    data = read_whole(index, "TensorFlow index", "MAX_INDEX_BYTES")
    try:
        rows = table_rows(data)
    except InputError as problem:
        raise InputError(f"corrupt TensorFlow index {index}: {problem}") from None
    protos = importlib.import_module("tensorflow.core.protobuf.tensor_bundle_pb2")
    if not rows or rows[0][0] != b"":
        raise InputError(f"corrupt TensorFlow index {index}: no header entry")
    try:
        header = protos.BundleHeaderProto.FromString(rows[0][1])
    except Exception as error:
        raise InputError(f"corrupt TensorFlow index {index}: header ({summary(error)})") from None
    bundle = Bundle(prefix, int(header.num_shards), {})
    for key, value in rows[1:]:
        name = _key_text(key)
        try:
            entry = protos.BundleEntryProto.FromString(value)
        except Exception as error:
            raise InputError(
                f"corrupt TensorFlow index {index}: entry {name!r} ({summary(error)})"
            ) from None
        _check_entry(name, entry)
        bundle.entries[key] = entry
    _check_shards(bundle)
    return bundle


def _check_entry(name: str, entry: TFValue) -> None:
    """What TensorFlow would CHECK-fail (abort) on while listing the variables."""
    shape = entry.shape
    if shape.unknown_rank or len(shape.dim) > 254:
        raise InputError(f"tensor {name!r} has an invalid shape (rank {len(shape.dim)})")
    elements = 1
    for dim in shape.dim:
        elements *= dim.size
        if dim.size < 0 or elements >= 1 << 63:
            sizes = [d.size for d in shape.dim]
            raise InputError(f"tensor {name!r} has an invalid shape {sizes}")
    slices = [
        tuple((e.start, e.length if e.HasField("length") else -1) for e in s.extent)
        for s in entry.slices
    ]
    if len(set(slices)) != len(slices):
        raise InputError(f"tensor {name!r} lists the same slice twice")


def _check_shards(bundle: Bundle) -> None:
    """Every tensor's bytes lie within an existing regular data shard."""
    sizes: dict[int, int] = {}
    for key, entry in bundle.entries.items():
        name = _key_text(key)
        if entry.slices:
            continue  # a partitioned variable's data is in its slices' entries
        shard = int(entry.shard_id)
        if not 0 <= shard < bundle.num_shards:
            raise InputError(
                f"tensor {name!r} is in shard {shard}, but the checkpoint has "
                f"{bundle.num_shards} shards"
            )
        if shard not in sizes:
            sizes[shard] = require_regular(_shard_path(bundle, shard), "data shard").st_size
        end = int(entry.offset) + int(entry.size)
        if end > sizes[shard]:
            raise InputError(
                f"data shard {_shard_path(bundle, shard)} is truncated: it holds "
                f"{byte_count(sizes[shard])}, tensor {name!r} ends at byte {end:,}"
            )


def _key_text(key: bytes) -> str:
    return key.decode("utf-8", "replace")


def _shard_path(bundle: Bundle, shard: int) -> str:
    return f"{bundle.prefix}.data-{shard:05d}-of-{bundle.num_shards:05d}"


def check_tensor(bundle: Bundle, key: str, tf: TFValue) -> None:
    """What TensorFlow is about to allocate for `key`, checked before it reads it."""
    entry = bundle.entries.get(key.encode("utf-8", "surrogateescape"))
    if entry is None:
        raise InputError(f"{key!r} is not in the checkpoint's index")
    if entry.slices:
        raise InputError(
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
        raise InputError(f"{key!r} holds {dtype.name} values, not numbers")
    needed = math.prod(shape) * dtype.size
    limit = _limits.MAX_TENSOR_BYTES
    if needed > limit:
        raise InputError(
            f"{key!r} ({dtype.name}, shape {shape}) needs {byte_count(needed)}, more than "
            f"MAX_TENSOR_BYTES ({byte_count(limit)})"
        )


def _check_string(bundle: Bundle, key: str, entry: TFValue) -> None:
    """A scalar string (the object graph): TensorFlow allocates the length it finds
    in the shard, so that length must be the one the entry's size allows."""
    size = int(entry.size)
    limit = _limits.MAX_METADATA_BYTES
    if size > limit:
        raise InputError(
            f"{key!r} is {byte_count(size)}, more than MAX_METADATA_BYTES ({byte_count(limit)})"
        )
    head = read_at(_shard_path(bundle, int(entry.shard_id)), int(entry.offset), 10, "data shard")
    try:
        length, used = varint(head, 0, min(len(head), size), 64)
    except InputError:
        raise InputError(f"string {key!r} has a corrupt length") from None
    if used + 4 + length != size:  # length, its checksum, the bytes
        raise InputError(
            f"string {key!r} claims {byte_count(length)} in an entry of {byte_count(size)}"
        )
