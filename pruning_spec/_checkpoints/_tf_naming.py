"""How the keys of a TensorFlow checkpoint become weight names, and which key is the step.

Name-based checkpoints (`tf.compat.v1.train.Saver`) are named by their keys;
object-based ones (`tf.train.Checkpoint`) by walking the object graph from the root
without entering an optimizer, or by their keys when the graph is unreadable. The
package docstring gives the rules.
"""

from __future__ import annotations

import collections
import importlib
import re
from collections.abc import Callable
from typing import Any, TypeAlias

from pruning_spec._checkpoints._errors import InputError
from pruning_spec._checkpoints._weights import Variable, scalar, unique

# TensorFlow's checkpoint reader and what it returns (tensors, shapes, dtypes): untyped.
TFValue: TypeAlias = Any

_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
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

# The variables (each named as the rules see it), the checkpoint key of each name, the step.
Named = tuple[list[Variable], dict[str, str], int | None]
_Records = tuple[list[tuple[str, str, str]], str | None]  # (path, key, full name); step key


def name_variables(
    get: Callable[[str], TFValue], shapes: dict[str, TFValue], dtypes: dict[str, TFValue]
) -> Named:
    """The variables of a checkpoint with these keys; `get` reads a key's value."""
    if _OBJECT_GRAPH_KEY in shapes or any(k.endswith(_VALUE_SUFFIX) for k in shapes):
        return _object_based(get, shapes, dtypes)
    return _name_based(get, shapes, dtypes)


def _floating(dtype: TFValue) -> bool:
    return bool(getattr(dtype, "is_floating", False))


def _step_from(get: Callable[[str], TFValue], key: str, shapes: dict[str, TFValue]) -> int | None:
    if list(shapes.get(key, [None])) != []:
        return None  # not a scalar: never read, whatever it claims
    return scalar(get(key))


def _name_based(
    get: Callable[[str], TFValue], shapes: dict[str, TFValue], dtypes: dict[str, TFValue]
) -> Named:
    """tf.compat.v1.train.Saver: names are the variable names."""
    variables = []
    for name in sorted(shapes):
        parent, _, leaf = name.rpartition("/")
        # A slot or moving average is named after its variable: `layer1/weights/Adam`.
        slot = leaf != "mask" and (
            parent in shapes or any(_V1_OPTIMIZER_COMPONENT.fullmatch(c) for c in parent.split("/"))
        )
        shape = tuple(int(d) for d in shapes[name])
        variables.append(Variable(name, shape, _floating(dtypes[name]), excluded=slot))
    step = _step_from(get, "global_step", shapes)
    return variables, {name: name for name in shapes}, step


def _object_based(
    get: Callable[[str], TFValue], shapes: dict[str, TFValue], dtypes: dict[str, TFValue]
) -> Named:
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
    names = unique(chosen.get(path, path) for path, _, _ in records)
    keys: dict[str, str] = {}
    variables = []
    for name, (path, key, _) in zip(names, records, strict=True):
        variables.append(Variable(name, tuple(int(d) for d in shapes[key]), _floating(dtypes[key])))
        keys[name] = key
        keys.setdefault(path, key)  # the object path works too
    step = _step_from(get, step_key, shapes) if step_key is not None else None
    return variables, keys, step


def _walk_object_graph(
    get: Callable[[str], TFValue], shapes: dict[str, TFValue]
) -> _Records | None:
    """Every variable reachable from the root without entering an optimizer, breadth first.

    Returns None when the object graph is missing or unreadable.
    """
    if _OBJECT_GRAPH_KEY not in shapes:
        return None
    try:
        protos = importlib.import_module("tensorflow.core.protobuf.trackable_object_graph_pb2")
        graph = protos.TrackableObjectGraph.FromString(get(_OBJECT_GRAPH_KEY))
    except InputError:
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

    def is_optimizer(node: TFValue) -> bool:
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


def _walk_keys(shapes: dict[str, TFValue]) -> _Records:
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
