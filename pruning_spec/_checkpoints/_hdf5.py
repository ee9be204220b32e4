"""HDF5 objects reached safely: hard links only, attributes and datasets bounded.

A soft link may dangle and an external one opens any file (a FIFO, a device) by its
name, so only hard links are followed; external and virtual datasets are refused, and
so is a dataset whose values, or chunks, would need more than `MAX_TENSOR_BYTES`.
h5py is passed in by the callers, which import it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, TypeAlias

from pruning_spec._checkpoints import _limits
from pruning_spec._checkpoints._errors import InputError, byte_count

H5Value: TypeAlias = Any  # h5py files, groups, datasets and their numpy values: untyped


def text(value: H5Value) -> str:
    """An HDF5 string attribute's value as text."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def child(group: H5Value, key: str, h5py: H5Value) -> H5Value:
    """`group[key]` through a hard link: a soft link may dangle, an external one opens
    any file (a FIFO, a device) by its name."""
    where = f"{group.name.rstrip('/')}/{key}"
    link = group.get(key, getlink=True)
    if link is None:
        raise InputError(f"HDF5 object {where} does not exist")
    if isinstance(link, h5py.ExternalLink):
        raise InputError(
            f"HDF5 link {where} points into another file ({link.filename}:{link.path}); "
            "only hard links are followed"
        )
    if isinstance(link, h5py.SoftLink):
        raise InputError(
            f"HDF5 link {where} is a soft link to {link.path}; only hard links are followed"
        )
    return group[key]


def has(group: H5Value, key: str) -> bool:
    """Whether `group` has a link `key`, without following it (`in` may follow it)."""
    return group.get(key, getlink=True) is not None


def resolve(group: H5Value, path: str, h5py: H5Value) -> H5Value:
    """The object at `path` below `group` (or the file's root if absolute), hard links only."""
    if path.startswith("/"):
        group = group.file
    for part in path.split("/"):
        if part:
            group = child(group, part, h5py)
    return group


def members(group: H5Value, h5py: H5Value, budget: list[int]) -> Iterator[tuple[str, H5Value]]:
    """The (key, item) pairs of `group`, within the budget of links left to follow."""
    for key in group:
        budget[0] -= 1
        if budget[0] < 0:
            raise InputError(f"more than MAX_HDF5_LINKS ({_limits.MAX_HDF5_LINKS:,}) HDF5 links")
        yield key, child(group, key, h5py)


def attribute(item: H5Value, name: str, default: H5Value) -> H5Value:
    """An attribute's value, if its declared size is small enough to read."""
    if name not in item.attrs:
        return default
    stored = item.attrs.get_id(name)
    count = math.prod(stored.shape or ())
    if count > _limits.MAX_HDF5_LINKS or count * stored.dtype.itemsize > _limits.MAX_METADATA_BYTES:
        raise InputError(
            f"HDF5 attribute {name!r} of {item.name} declares {count:,} values "
            f"of {stored.dtype}: too many"
        )
    return item.attrs[name]


def declared_bytes(dataset: H5Value) -> int:
    """The bytes a dataset's values need in memory, by its declared shape and dtype."""
    return int(math.prod(dataset.shape or ())) * int(dataset.dtype.itemsize)


def dataset_values(dataset: H5Value, h5py: H5Value) -> H5Value:
    """A dataset's values, refused before reading when they would come from other files
    or need more memory than `MAX_TENSOR_BYTES`."""
    name = dataset.name
    if dataset.is_virtual:
        raise InputError(f"HDF5 dataset {name} is virtual (its data is in other files)")
    if dataset.external:
        files = ", ".join(str(entry[0]) for entry in dataset.external)
        raise InputError(f"HDF5 dataset {name} keeps its data in external files ({files})")
    dtype = dataset.dtype
    if dtype.kind not in "biufc" or h5py.check_dtype(vlen=dtype) is not None:
        raise InputError(f"HDF5 dataset {name} holds {dtype} values, not numbers")
    needed = declared_bytes(dataset)
    limit = _limits.MAX_TENSOR_BYTES
    if needed > limit:
        raise InputError(
            f"HDF5 dataset {name} ({dtype}, shape {dataset.shape}) needs {byte_count(needed)}, "
            f"more than MAX_TENSOR_BYTES ({byte_count(limit)})"
        )
    if dataset.chunks:
        # HDF5 inflates a whole chunk to read any of it, and chunks may be larger
        # than the dataset.
        chunk = math.prod(dataset.chunks) * dtype.itemsize
        if chunk > max(needed, 1 << 20):
            raise InputError(
                f"HDF5 dataset {name} of {byte_count(needed)} is stored in chunks of "
                f"{byte_count(chunk)}"
            )
    return dataset[()]
