"""Reading weights, steps and masks from checkpoints (pruning_spec._checkpoints).

Every format is built for real under a temporary directory: an r1.15-style graph saved
by `tf.compat.v1.train.Saver`, `tf.train.Checkpoint`s, Keras 3 `.keras` archives,
`.weights.h5` files and legacy Keras `.h5` files. TensorFlow, Keras, h5py and numpy are
imported inside the tests that need them (skipped without the tensorflow extra), so the
pure-Python tests run in the core's environment too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from pruning_spec import _checkpoints
from pruning_spec._checkpoints import (
    INSTALL_HINT,
    Checkpoint,
    CheckpointError,
    WeightInfo,
    read_checkpoint,
)

ROOT = Path(__file__).resolve().parents[2]


def _tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = pytest.importorskip("tensorflow")
    tf.get_logger().setLevel("ERROR")
    return tf


def _np() -> Any:
    return pytest.importorskip("numpy")


def _keras() -> Any:
    _tf()
    return pytest.importorskip("keras")


def _assert_values(checkpoint: Checkpoint, expected: dict[str, Any]) -> None:
    np = _np()
    for name, value in expected.items():
        np.testing.assert_array_equal(checkpoint.values(name), value, err_msg=name)


# ---------------------------------------------------------------------------------------
# The module itself.


def test_import_loads_no_framework() -> None:
    code = (
        "import sys\n"
        "import pruning_spec._checkpoints\n"
        "heavy = ('tensorflow', 'keras', 'h5py', 'numpy')\n"
        "print(sorted(m for m, v in sys.modules.items() if v and m.split('.')[0] in heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _variable(name: str, shape: tuple[int, ...], **kwargs: Any) -> _checkpoints._Variable:
    return _checkpoints._Variable(name, shape, kwargs.pop("floating", True), **kwargs)


def test_only_float_tensors_of_rank_one_or_more_are_weights() -> None:
    variables = [
        _variable("dense/kernel", (3, 4)),
        _variable("dense/bias", (4,)),
        _variable("dense/mask", (3, 4)),
        _variable("dense/threshold", ()),
        _variable("dense/threshold_table", (4,)),
        _variable("conv/threshold", (4,)),  # a threshold, whatever its shape
        _variable("model_pruning/last_mask_update_step", ()),
        _variable("pruning/last_mask_update_step", (1,)),
        _variable("global_step", (1,)),
        _variable("scale", ()),
        _variable("counts", (3,), floating=False),
        _variable("dense/kernel/Adam", (3, 4), excluded=True),
    ]
    checkpoint = _checkpoints._assemble("ckpt", reversed(variables), 7, lambda name: name)
    assert checkpoint.weights == [
        WeightInfo("dense/bias", (4,)),
        WeightInfo("dense/kernel", (3, 4)),
        WeightInfo("dense/threshold_table", (4,)),
    ]
    assert checkpoint.masks == {"dense/kernel": "dense/mask"}
    assert checkpoint.step == 7
    assert checkpoint.mask_values("dense/kernel") == "dense/mask"
    assert checkpoint.mask_values("dense/bias") is None


def _pair(weights: dict[str, tuple[int, ...]], masks: dict[str, tuple[int, ...]]) -> Any:
    return _checkpoints._pair_masks(
        [WeightInfo(n, s) for n, s in weights.items()], [WeightInfo(n, s) for n, s in masks.items()]
    )


def test_a_mask_pairs_with_the_weight_of_its_shape_in_its_scope() -> None:
    weights = {"layer1/weights": (3, 4), "layer1/biases": (4,), "layer2/weights": (4, 2)}
    masks = {"layer1//mask": (3, 4), "layer2/mask": (4, 2)}
    assert _pair(weights, masks) == {
        "layer1/weights": "layer1//mask",
        "layer2/weights": "layer2/mask",
    }


def test_a_mask_named_after_its_weight_or_at_the_top_pairs() -> None:
    weights = {"layer1/weights": (3, 4), "w": (2,)}
    assert _pair(weights, {"layer1/weights/mask": (3, 4), "mask": (2,)}) == {
        "layer1/weights": "layer1/weights/mask",
        "w": "mask",
    }


@pytest.mark.parametrize(
    ("weights", "masks"),
    [
        ({"layer/a": (2, 2), "layer/b": (2, 2)}, {"layer//mask": (2, 2)}),  # two candidates
        ({"layer/a": (2, 2)}, {"layer//mask": (2, 2), "layer/mask": (2, 2)}),  # two masks
        ({"layer/a": (2, 2)}, {"layer/mask": (2, 3)}),  # no weight of that shape
        ({"outer/inner/a": (2, 2)}, {"outer/mask": (2, 2)}),  # not in the same scope
    ],
    ids=["two-weights", "two-masks", "other-shape", "deeper-scope"],
)
def test_an_ambiguous_mask_stays_unpaired(weights: Any, masks: Any) -> None:
    assert _pair(weights, masks) == {}


def test_values_of_an_unknown_name_raise_key_error() -> None:
    checkpoint = Checkpoint("ckpt", [], None, {})
    with pytest.raises(KeyError):
        checkpoint.values("dense/kernel")


# ---------------------------------------------------------------------------------------
# Errors.


def test_missing_path(tmp_path: Path) -> None:
    path = str(tmp_path / "nowhere" / "model.ckpt-100")
    with pytest.raises(CheckpointError, match="no such file or directory") as caught:
        read_checkpoint(path)
    assert path in str(caught.value)


def test_a_text_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    _tf()
    path = tmp_path / "notes.txt"
    path.write_text("target_sparsity: 0.9\n")
    with pytest.raises(CheckpointError, match="not a TensorFlow checkpoint") as caught:
        read_checkpoint(str(path))
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message


def test_a_directory_without_checkpoint(tmp_path: Path) -> None:
    _tf()
    with pytest.raises(CheckpointError, match="no TensorFlow checkpoint in this directory"):
        read_checkpoint(str(tmp_path))


def test_a_broken_keras_archive(tmp_path: Path) -> None:
    _keras()
    path = tmp_path / "model.keras"
    path.write_text("not a zip")
    with pytest.raises(CheckpointError, match="Keras could not load") as caught:
        read_checkpoint(str(path))
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_broken_weights_file(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    path = tmp_path / "model.weights.h5"
    path.write_text("not hdf5")
    with pytest.raises(CheckpointError, match="not a readable HDF5 weights file"):
        read_checkpoint(str(path))


@pytest.mark.parametrize(
    ("module", "filename"),
    [("tensorflow", "model.ckpt-1"), ("h5py", "model.weights.h5"), ("keras", "model.keras")],
)
def test_missing_framework_asks_for_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, filename: str
) -> None:
    path = tmp_path / filename
    path.write_text("anything")
    # A None entry in sys.modules makes the import fail, as if not installed.
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(CheckpointError, match=f"{module} is not installed") as caught:
        read_checkpoint(str(path))
    assert INSTALL_HINT in str(caught.value)
    assert INSTALL_HINT == "pip install 'pruning-spec[tensorflow]'"


# ---------------------------------------------------------------------------------------
# tf.compat.v1.train.Saver, r1.15 style.


@pytest.fixture(scope="module")
def graph_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A graph built like r1.15 code, trained one Adam step, saved at step 100.

    Returns the directory and the value of every variable at save time.
    """
    tf = _tf()
    np = _np()
    pruning = pytest.importorskip("pruning_spec.backends.tensorflow")
    v1 = tf.compat.v1
    directory = tmp_path_factory.mktemp("graph")
    rng = np.random.default_rng(0)

    def variable(name: str, shape: tuple[int, ...]) -> Any:
        return v1.get_variable(name, initializer=rng.normal(size=shape).astype(np.float32))

    with tf.Graph().as_default():
        global_step = v1.train.get_or_create_global_step()
        with v1.variable_scope("layer1"):
            weights1 = variable("weights", (3, 4))
            biases1 = variable("biases", (4,))
            masked1 = pruning.apply_mask(weights1)  # layer1//mask
        with v1.variable_scope("layer2"):
            weights2 = variable("weights", (4, 2))
        masked2 = pruning.apply_mask(weights2, "layer2")  # layer2/mask
        with v1.variable_scope("layer3"):  # two weights of the mask's shape: ambiguous
            a = variable("a", (2, 2))
            b = variable("b", (2, 2))
            masked3 = pruning.apply_mask(a)
        with v1.variable_scope("extras"):
            v1.get_variable("counts", initializer=tf.constant([1, 2, 3]))
            v1.get_variable("flags", initializer=tf.constant([True, False]))
            v1.get_variable("scale", initializer=tf.constant(2.0))
        pruning.Pruning("target_sparsity=0.5", global_step=global_step)
        loss = (
            tf.reduce_sum(masked1)
            + tf.reduce_sum(biases1)
            + tf.reduce_sum(masked2)
            + tf.reduce_sum(masked3)
            + tf.reduce_sum(b)
        )
        train = v1.train.AdamOptimizer(0.1).minimize(loss, global_step=global_step)
        average = v1.train.ExponentialMovingAverage(0.9).apply([weights1])
        (mask1, mask2, _) = pruning.get_masks()
        saver = v1.train.Saver()
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            session.run([train, average])
            session.run(v1.assign(global_step, 100))
            session.run(v1.assign(mask1, [[1, 0, 1, 0]] * 3))
            session.run(v1.assign(mask2, [[0, 1]] * 4))
            saver.save(session, str(directory / "model.ckpt"), global_step=global_step)
            names = [v.op.name for v in v1.global_variables()]
            values = dict(zip(names, session.run(v1.global_variables()), strict=True))
    return directory, values


@pytest.mark.parametrize(
    "form", ["prefix", "directory", "index", "data", "state-file", "relative-prefix"]
)
def test_graph_checkpoint_any_path_form(
    graph_checkpoint: tuple[Path, dict[str, Any]], form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, _ = graph_checkpoint
    prefix = str(directory / "model.ckpt-100")
    if form == "relative-prefix":
        monkeypatch.chdir(directory)
    path = {
        "prefix": prefix,
        "directory": str(directory),
        "index": prefix + ".index",
        "data": prefix + ".data-00000-of-00001",
        "state-file": str(directory / "checkpoint"),
        "relative-prefix": "model.ckpt-100",
    }[form]
    checkpoint = read_checkpoint(path)
    assert checkpoint.path == ("model.ckpt-100" if form == "relative-prefix" else prefix)
    assert checkpoint.step == 100
    assert [w.name for w in checkpoint.weights] == [
        "layer1/biases",
        "layer1/weights",
        "layer2/weights",
        "layer3/a",
        "layer3/b",
    ]


def test_graph_checkpoint_weights_masks_and_values(
    graph_checkpoint: tuple[Path, dict[str, Any]],
) -> None:
    tf = _tf()
    directory, values = graph_checkpoint
    stored = dict(tf.train.list_variables(str(directory)))
    # What must be left out is really there.
    left_out = [
        "global_step",
        "beta1_power",
        "layer1/weights/Adam",
        "layer1/weights/Adam_1",
        "layer1/weights/ExponentialMovingAverage",
        "layer1//mask",
        "layer1//threshold",
        "model_pruning/last_mask_update_step",
        "extras/counts",
        "extras/flags",
        "extras/scale",
    ]
    assert set(left_out) <= set(stored)

    checkpoint = read_checkpoint(str(directory))
    assert checkpoint.weights == [
        WeightInfo("layer1/biases", (4,)),
        WeightInfo("layer1/weights", (3, 4)),
        WeightInfo("layer2/weights", (4, 2)),
        WeightInfo("layer3/a", (2, 2)),
        WeightInfo("layer3/b", (2, 2)),
    ]
    assert checkpoint.masks == {"layer1/weights": "layer1//mask", "layer2/weights": "layer2/mask"}
    _assert_values(checkpoint, {w.name: values[w.name] for w in checkpoint.weights})
    _assert_values(checkpoint, {"layer1//threshold": values["layer1//threshold"]})
    np = _np()
    np.testing.assert_array_equal(checkpoint.mask_values("layer1/weights"), [[1, 0, 1, 0]] * 3)
    np.testing.assert_array_equal(checkpoint.mask_values("layer2/weights"), [[0, 1]] * 4)
    assert checkpoint.mask_values("layer1/biases") is None
    assert checkpoint.mask_values("layer3/a") is None  # ambiguous: layer3/b has its shape
    with pytest.raises(KeyError):
        checkpoint.values("layer9/weights")


# ---------------------------------------------------------------------------------------
# tf.train.Checkpoint (object-based).


def test_object_checkpoint_of_a_keras_model(tmp_path: Path) -> None:
    tf = _tf()
    keras = _keras()
    np = _np()
    model = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(3, name="dense_1"),
            keras.layers.Dense(2, name="out"),
        ]
    )
    optimizer = keras.optimizers.Adam()
    model.compile(optimizer, "mse")
    model.fit(np.ones((4, 5)), np.ones((4, 2)), verbose=0)
    step = tf.Variable(42, dtype=tf.int64)
    path = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step).save(
        str(tmp_path / "ckpt")
    )
    keys = [k for k, _ in tf.train.list_variables(path)]
    assert any("optimizer/_variables" in k for k in keys)  # Adam's slots are stored

    checkpoint = read_checkpoint(path)
    expected = {w.path: w.numpy() for w in model.weights}
    assert [w.name for w in checkpoint.weights] == sorted(expected)
    # Keras's own names: `<model>/dense_1/kernel` (the model's part is numbered per process).
    (kernel,) = [name for name in expected if name.endswith("/dense_1/kernel")]
    assert kernel.startswith("sequential")
    assert {w.name: w.shape for w in checkpoint.weights}[kernel] == (5, 3)
    assert checkpoint.step == 42
    assert checkpoint.masks == {}
    _assert_values(checkpoint, expected)


def _module_checkpoint(tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """A tf.Module with default-named variables, trained two steps by a Keras SGD."""
    tf = _tf()
    keras = _keras()

    net = tf.Module()
    net.kernel = tf.Variable(tf.reshape(tf.range(6.0), [2, 3]))
    net.bias = tf.Variable(tf.ones([3]))
    net.calls = tf.Variable([0, 0])  # integer: not a weight
    net.inner = tf.Module()
    net.inner.table = tf.Variable(tf.fill([4, 2], 0.5))
    trainable = [net.kernel, net.bias, net.inner.table]
    optimizer = keras.optimizers.SGD(momentum=0.9)
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = sum(tf.reduce_sum(v) for v in trainable)
        optimizer.apply_gradients(zip(tape.gradient(loss, trainable), trainable, strict=True))
    path = tf.train.Checkpoint(net=net, optimizer=optimizer).save(str(tmp_path / "module"))
    values = {
        "net/bias": net.bias.numpy(),
        "net/inner/table": net.inner.table.numpy(),
        "net/kernel": net.kernel.numpy(),
    }
    return str(path), values


@pytest.mark.parametrize("source", ["object-graph", "keys"])
def test_object_checkpoint_names_by_object_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    path, values = _module_checkpoint(tmp_path)
    if source == "keys":  # no usable object graph: the keys alone
        monkeypatch.setattr(_checkpoints, "_walk_object_graph", lambda reader, shapes: None)
    checkpoint = read_checkpoint(path)
    assert checkpoint.weights == [
        WeightInfo("net/bias", (3,)),
        WeightInfo("net/inner/table", (4, 2)),
        WeightInfo("net/kernel", (2, 3)),
    ]
    assert checkpoint.step == 2  # the optimizer's iterations
    _assert_values(checkpoint, values)


def test_saved_model_directory(tmp_path: Path) -> None:
    tf = _tf()
    module = tf.Module()
    module.w = tf.Variable(tf.ones([2, 3]), name="dense/kernel")
    module.b = tf.Variable(tf.zeros([3]), name="dense/bias")
    tf.saved_model.save(module, str(tmp_path / "saved"))
    checkpoint = read_checkpoint(str(tmp_path / "saved"))
    assert checkpoint.path == str(tmp_path / "saved" / "variables" / "variables")
    assert checkpoint.weights == [
        WeightInfo("dense/bias", (3,)),
        WeightInfo("dense/kernel", (2, 3)),
    ]
    assert checkpoint.step is None


# ---------------------------------------------------------------------------------------
# Keras 3 files.


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A functional model with a nested Sequential, fitted one step, saved three ways."""
    keras = _keras()
    np = _np()
    directory = tmp_path_factory.mktemp("keras")
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(3, name="dense_1")(inputs)
    block = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="inner")], name="block")
    model = keras.Model(inputs, block(hidden), name="top")
    model.compile(keras.optimizers.Adam(), "mse")
    model.fit(np.ones((4, 5)), np.ones((4, 2)), verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras's own numpy 2 and "legacy format" warnings
        model.save(directory / "model.keras")
        model.save_weights(directory / "model.weights.h5")
        model.save(directory / "legacy.h5")
    return directory, model


def test_keras_archive(keras_files: tuple[Path, Any]) -> None:
    keras = _keras()
    directory, model = keras_files
    path = str(directory / "model.keras")
    checkpoint = read_checkpoint(path)
    loaded = keras.saving.load_model(path, compile=False)
    expected = {w.path: w.numpy() for w in loaded.weights}
    assert [w.name for w in checkpoint.weights] == sorted(expected)
    assert {w.name: w.shape for w in checkpoint.weights}["dense_1/kernel"] == (5, 3)
    assert checkpoint.step == 1
    assert checkpoint.path == path
    _assert_values(checkpoint, expected)
    _assert_values(checkpoint, {"dense_1/kernel": model.get_layer("dense_1").kernel.numpy()})


def test_keras_weights_file(keras_files: tuple[Path, Any]) -> None:
    directory, model = keras_files
    checkpoint = read_checkpoint(str(directory / "model.weights.h5"))
    assert checkpoint.weights == [
        WeightInfo("block/inner/vars/0", (3, 2)),
        WeightInfo("block/inner/vars/1", (2,)),
        WeightInfo("dense_1/vars/0", (5, 3)),
        WeightInfo("dense_1/vars/1", (3,)),
    ]
    assert checkpoint.step == 1
    dense, inner = model.get_layer("dense_1"), model.get_layer("block").get_layer("inner")
    expected = {
        "dense_1/vars/0": dense.kernel.numpy(),
        "dense_1/vars/1": dense.bias.numpy(),
        "block/inner/vars/0": inner.kernel.numpy(),
        "block/inner/vars/1": inner.bias.numpy(),
    }
    _assert_values(checkpoint, expected)


def test_legacy_keras_h5_file(keras_files: tuple[Path, Any]) -> None:
    directory, model = keras_files
    checkpoint = read_checkpoint(str(directory / "legacy.h5"))
    expected = {w.path: w.numpy() for w in model.weights}
    assert [w.name for w in checkpoint.weights] == sorted(expected)
    assert checkpoint.step == 1
    _assert_values(checkpoint, expected)


def test_hdf5_content_is_recognised_without_its_suffix(
    keras_files: tuple[Path, Any], tmp_path: Path
) -> None:
    directory, _ = keras_files
    renamed = tmp_path / "weights.bin"
    renamed.write_bytes((directory / "model.weights.h5").read_bytes())
    checkpoint = read_checkpoint(str(renamed))
    assert checkpoint.weights[0] == WeightInfo("block/inner/vars/0", (3, 2))
    assert checkpoint.step == 1
