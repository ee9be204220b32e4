"""Keras HDF5 weight files: Keras 3 `.weights.h5` and legacy Keras 2 `.h5`.

A Keras 3 file stores no architecture, so a weight is named by its layer chain and
position (`dense_1/vars/0`); a legacy file lists its weights' names in attributes.

Which weights `pks.prune` would have pruned (the candidates, assumed): in a legacy file
the kernels by name; a Keras 3 file has no variable names, but Keras names each layer's
group after the layer's class (`dense`, `conv2d_1`, `separable_conv2d`), so the kernel is
found by its position: the first variable of a Dense, EinsumDense, Conv or ConvTranspose
layer, the second (the pointwise kernel) of a SeparableConv. Other classes (RNN cells,
custom layers, a layer inside a wrapper, whose group is named after the attribute that
holds it) are not recognized: they are no candidates.
Every object is reached through `_hdf5`, hard links only, within `MAX_HDF5_LINKS`
links and `MAX_HDF5_DEPTH` nested groups.
"""

from __future__ import annotations

import re

from pruning_spec._checkpoints import _limits
from pruning_spec._checkpoints._errors import (
    InputError,
    UnknownNameError,
    import_framework,
    summary,
)
from pruning_spec._checkpoints._hdf5 import (
    H5Value,
    attribute,
    child,
    dataset_values,
    has,
    members,
    resolve,
    text,
)
from pruning_spec._checkpoints._regular_files import require_regular
from pruning_spec._checkpoints._weights import (
    Checkpoint,
    Variable,
    assemble,
    is_kernel_name,
    scalar,
    unique,
)

_LEGACY_ITERATIONS = frozenset({"iter", "iteration", "iterations"})


def read_hdf5(path: str) -> Checkpoint:
    """The weights of the HDF5 file `path`, in either layout."""
    h5py = import_framework("h5py", path)
    require_regular(path, "file")
    try:
        with h5py.File(path, "r") as file:
            legacy = _legacy_root(file, h5py)
            if legacy is not None:
                variables, datasets = _legacy_variables(legacy, h5py)
                step = _legacy_step(file, h5py)
                owners: frozenset[str] = frozenset()
            else:
                variables, datasets, owners = _keras3_variables(file, h5py)
                step = hdf5_step(file, h5py)
    except InputError:
        raise
    except Exception as error:
        raise InputError(f"not a readable HDF5 weights file ({summary(error)})") from None

    def read(name: str) -> H5Value:
        dataset = datasets.get(name)
        if dataset is None:
            raise UnknownNameError(f"{name!r} is not a weight of {path}")
        require_regular(path, "file")
        with h5py.File(path, "r") as file:
            return dataset_values(resolve(file, dataset, h5py), h5py)

    if legacy is None:
        kernels = frozenset(
            v.name for v in variables if not v.excluded and len(v.shape) >= 2 and v.name in owners
        )
    else:
        # No layer classes here: a depthwise layer's `kernel` cannot be told apart by name.
        kernels = frozenset(v.name for v in variables if not v.excluded and is_kernel_name(v.name))
    return assemble(path, variables, step, read, pruned=kernels, assumed=True)


# The class keys (Keras's snake_case class name, without a `_N` suffix) of the layers
# whose kernels pks.prune prunes by default, and the kernel's position in `vars`.
_KERAS3_KERNELS = {
    **dict.fromkeys(
        ("dense", "einsum_dense", "conv1d", "conv2d", "conv3d", "conv1d_transpose",
         "conv2d_transpose", "conv3d_transpose"),
        "0",
    ),
    "separable_conv1d": "1",
    "separable_conv2d": "1",
}  # fmt: skip


def _is_kernel(owner: str, index: str) -> bool:
    """Whether `vars/<index>` of the group `owner` (a layer's class key) is its kernel."""
    return _KERAS3_KERNELS.get(re.sub(r"_\d+$", "", owner)) == index


def _dataset_variable(name: str, dataset: H5Value) -> Variable:
    shape = tuple(int(d) for d in dataset.shape or ())
    return Variable(name, shape, dataset.dtype.kind == "f")


def _keras3_variables(
    file: H5Value, h5py: H5Value
) -> tuple[list[Variable], dict[str, str], frozenset[str]]:
    """Keras 3 layout: an object is a group with a `vars` subgroup (its own variables,
    `0`, `1`, ..., and its `name` as an attribute); other groups (`layers`) hold objects.

    Also the names of the variables that are kernels by their layer's class key.
    """
    found: list[tuple[str, H5Value, bool]] = []
    budget = [_limits.MAX_HDF5_LINKS]
    seen = {file["/"]}  # hard links may form cycles

    def visit(group: H5Value, parts: list[str], depth: int, owner: str = "") -> None:
        if depth > _limits.MAX_HDF5_DEPTH:
            raise InputError(
                f"HDF5 groups nest more than MAX_HDF5_DEPTH ({_limits.MAX_HDF5_DEPTH}) deep"
            )
        for key, item in members(group, h5py, budget):
            if not isinstance(item, h5py.Group) or (depth == 0 and key == "optimizer"):
                continue
            if item in seen:
                continue
            seen.add(item)
            if key == "vars":
                found.extend(
                    ("/".join([*parts, "vars", index]), value, _is_kernel(owner, index))
                    for index, value in members(item, h5py, budget)
                )
            elif has(item, "vars"):
                vars_group = child(item, "vars", h5py)
                own = text(attribute(vars_group, "name", key)) or key
                visit(item, [*parts, own], depth + 1, key)
            else:
                visit(item, parts, depth + 1)

    visit(file, [], 0)
    names = unique(name for name, _, _ in found)
    variables = []
    datasets = {}
    kernels = set()
    for name, (_, dataset, kernel) in zip(names, found, strict=True):
        if isinstance(dataset, h5py.Dataset):
            variables.append(_dataset_variable(name, dataset))
            datasets[name] = dataset.name
            if kernel:
                kernels.add(name)
    return variables, datasets, frozenset(kernels)


def hdf5_step(file: H5Value, h5py: H5Value) -> int | None:
    """Keras 3 saves the optimizer's iteration count as its first variable."""
    try:
        dataset = resolve(file, "optimizer/vars/0", h5py)
        if not isinstance(dataset, h5py.Dataset) or dataset.shape != ():
            return None
        return scalar(dataset_values(dataset, h5py), kinds="iu")
    except Exception:
        return None


def _legacy_root(file: H5Value, h5py: H5Value) -> H5Value:
    """The group listing `layer_names` in a Keras 2 HDF5 file, or None."""
    if "layer_names" in file.attrs:
        return file
    if has(file, "model_weights"):
        root = child(file, "model_weights", h5py)
        if isinstance(root, h5py.Group) and "layer_names" in root.attrs:
            return root
    return None


def _legacy_variables(root: H5Value, h5py: H5Value) -> tuple[list[Variable], dict[str, str]]:
    found = []
    budget = _limits.MAX_HDF5_LINKS
    for layer in attribute(root, "layer_names", []):
        group = resolve(root, text(layer), h5py)
        if not isinstance(group, h5py.Group):
            continue
        for weight in attribute(group, "weight_names", []):
            budget -= 1
            if budget < 0:
                raise InputError(f"more than MAX_HDF5_LINKS ({_limits.MAX_HDF5_LINKS:,}) weights")
            dataset = resolve(group, text(weight), h5py)
            if isinstance(dataset, h5py.Dataset):
                found.append((re.sub(r":\d+$", "", text(weight)), dataset))
    named = dict(zip(unique(name for name, _ in found), (d for _, d in found), strict=True))
    variables = [_dataset_variable(n, d) for n, d in named.items()]
    return variables, {n: d.name for n, d in named.items()}


def _legacy_step(file: H5Value, h5py: H5Value) -> int | None:
    if not has(file, "optimizer_weights"):
        return None
    steps: list[int] = []
    count = 0

    def visit(name: str, item: H5Value) -> bool | None:
        nonlocal count
        count += 1
        leaf = re.sub(r":\d+$", "", name.rpartition("/")[2])
        if isinstance(item, h5py.Dataset) and leaf in _LEGACY_ITERATIONS and item.shape == ():
            value = scalar(dataset_values(item, h5py), kinds="iu")
            if value is not None:
                steps.append(value)
        # A non-None return stops the walk: at the step, or after too many objects.
        return True if steps or count >= _limits.MAX_HDF5_LINKS else None

    try:
        group = child(file, "optimizer_weights", h5py)
        if isinstance(group, h5py.Group):
            group.visititems(visit)  # hard links only, each object once
    except Exception:
        return None
    return steps[0] if steps else None
