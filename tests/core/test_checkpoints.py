"""Reading weights, steps and masks from checkpoints (pruning_spec._checkpoints).

Every format is built for real under a temporary directory: an r1.15-style graph saved
by `tf.compat.v1.train.Saver`, `tf.train.Checkpoint`s, Keras 3 `.keras` archives,
`.weights.h5` files and legacy Keras `.h5` files. TensorFlow, Keras, h5py and numpy are
imported inside the tests that need them (skipped without the tensorflow extra), so the
pure-Python tests run in the core's environment too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import subprocess
import sys
import time
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import checkpoint_bundle
import checkpoint_zip
import pytest

from pruning_spec import _checkpoints
from pruning_spec._checkpoints import (
    INSTALL_HINT,
    Checkpoint,
    CheckpointError,
    WeightInfo,
    _errors,
    _limits,
    _tf_naming,
    _tf_table,
    _weights,
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


def _variable(name: str, shape: tuple[int, ...], **kwargs: Any) -> _weights.Variable:
    return _weights.Variable(name, shape, kwargs.pop("floating", True), **kwargs)


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
    checkpoint = _weights.assemble("ckpt", reversed(variables), 7, lambda name: name)
    assert checkpoint.weights == [
        WeightInfo("dense/bias", (4,)),
        WeightInfo("dense/kernel", (3, 4)),
        WeightInfo("dense/threshold_table", (4,)),
    ]
    assert checkpoint.masks == {"dense/kernel": "dense/mask"}
    assert checkpoint.step == 7
    assert checkpoint.mask_values("dense/kernel") == "dense/mask"
    assert checkpoint.mask_values("dense/bias") is None


def test_a_step_must_be_a_finite_scalar() -> None:
    np = _np()
    assert _weights.scalar(np.array(7.0)) == 7
    assert _weights.scalar(np.array(7, dtype=np.int64), kinds="iu") == 7
    assert _weights.scalar(np.array(7.0), kinds="iu") is None
    assert _weights.scalar(np.array([7])) is None
    assert _weights.scalar(np.array(np.nan)) is None
    assert _weights.scalar(np.array(np.inf)) is None


def _pair(weights: dict[str, tuple[int, ...]], masks: dict[str, tuple[int, ...]]) -> Any:
    return _weights.pair_masks(
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
    with pytest.raises(CheckpointError, match=r"not a \.keras archive") as caught:
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
        monkeypatch.setattr(_tf_naming, "_walk_object_graph", lambda reader, shapes: None)
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
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
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


# ---------------------------------------------------------------------------------------
# Hostile input: every problem is a CheckpointError, in bounded time and memory.


def test_values_turn_any_library_error_into_checkpoint_error() -> None:
    def failing(error: BaseException) -> Any:
        def read(name: str) -> Any:
            raise error

        return read

    for error in (MemoryError(), RecursionError("deep"), OSError(5, "I/O"), KeyError("x")):
        checkpoint = Checkpoint("ckpt", [], None, {}, failing(error))
        with pytest.raises(CheckpointError, match=type(error).__name__) as caught:
            checkpoint.values("dense/kernel")
        assert "'dense/kernel'" in str(caught.value)
        assert "ckpt" in str(caught.value)
    unknown = Checkpoint("ckpt", [], None, {}, failing(_errors.UnknownNameError("w")))
    with pytest.raises(KeyError):
        unknown.values("w")


def test_read_checkpoint_turns_any_library_error_into_checkpoint_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(path: str) -> Checkpoint:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(_checkpoints, "_read_any", explode)
    with pytest.raises(CheckpointError, match="RecursionError") as caught:
        read_checkpoint(str(tmp_path))
    assert str(tmp_path) in str(caught.value)


@contextlib.contextmanager
def _fifo(path: Path, rescue_after: float = 5.0) -> Iterator[Path]:
    """A FIFO at `path`. A writer opens it after `rescue_after` seconds, so that code
    blocked reading it (the bug under test) wakes up instead of hanging the run."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    os.mkfifo(path)
    script = 'sleep "$1"; : > "$2"'
    rescuer = subprocess.Popen(["sh", "-c", script, "sh", str(rescue_after), str(path)])
    try:
        yield path
    finally:
        rescuer.kill()
        rescuer.wait()


def _refused_quickly(path: str, match: str) -> str:
    start = time.monotonic()
    with pytest.raises(CheckpointError, match=match) as caught:
        read_checkpoint(path)
    assert time.monotonic() - start < 3, "blocked on the file"
    return str(caught.value)


@pytest.mark.parametrize("name", ["model.weights.h5", "model.keras", "model.ckpt-1", "weights"])
def test_a_fifo_is_refused_without_opening_it(tmp_path: Path, name: str) -> None:
    with _fifo(tmp_path / name) as fifo:
        message = _refused_quickly(str(fifo), "FIFO")
    assert str(fifo) in message


def test_a_symlink_to_a_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "model.weights.h5"
    link.symlink_to("/dev/zero")
    _refused_quickly(str(link), "character device")


def _copy_graph_checkpoint(source: Path, target: Path) -> Path:
    target.mkdir()
    for file in source.glob("model.ckpt-100*"):
        shutil.copy(file, target / file.name)
    (target / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-100"\n')
    return target


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("checkpoint", "'checkpoint' state file .* FIFO"),
        ("model.ckpt-100.index", "TensorFlow index .* FIFO"),
        ("model.ckpt-100.data-00000-of-00001", "data shard .* FIFO"),
    ],
)
def test_a_fifo_inside_a_tensorflow_checkpoint_is_refused(
    graph_checkpoint: tuple[Path, dict[str, Any]], tmp_path: Path, name: str, match: str
) -> None:
    directory = _copy_graph_checkpoint(graph_checkpoint[0], tmp_path / "ckpt")
    (directory / name).unlink()
    with _fifo(directory / name):
        _refused_quickly(str(directory), match)


def test_a_state_file_linked_to_a_device_is_refused(
    graph_checkpoint: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    directory = _copy_graph_checkpoint(graph_checkpoint[0], tmp_path / "ckpt")
    (directory / "checkpoint").unlink()
    (directory / "checkpoint").symlink_to("/dev/zero")
    _refused_quickly(str(directory), "character device")


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ("model_checkpoint_path: 42 {", "bad 'checkpoint' state file"),
        ("all_model_checkpoint_paths: 'model.ckpt-100'", "no model_checkpoint_path"),
        ('model_checkpoint_path: "model.ckpt-*"', "no TensorFlow checkpoint in this directory"),
        ("\xff\xfe", "bad 'checkpoint' state file"),
    ],
    ids=["garbage", "no-path", "glob", "not-utf8"],
)
def test_a_bad_state_file(
    graph_checkpoint: tuple[Path, dict[str, Any]], tmp_path: Path, state: str, match: str
) -> None:
    directory = _copy_graph_checkpoint(graph_checkpoint[0], tmp_path / "ckpt")
    (directory / "checkpoint").write_bytes(state.encode("latin-1"))
    _refused_quickly(str(directory), match)


def test_a_state_file_above_the_limit_is_not_read_whole(
    graph_checkpoint: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = _copy_graph_checkpoint(graph_checkpoint[0], tmp_path / "ckpt")
    monkeypatch.setattr(_limits, "MAX_METADATA_BYTES", 20)
    _refused_quickly(
        str(directory), r"'checkpoint' state file .* more than MAX_METADATA_BYTES \(20 bytes\)"
    )


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("truncate-index", "corrupt TensorFlow index .*magic"),
        ("garbage-index", "corrupt TensorFlow index"),
        ("empty-index", "too short for a table"),
        ("missing-shard", r"data shard .*\.data-00000-of-00001 is missing"),
        ("truncated-shard", r"data shard .* is truncated: it holds 10 bytes"),
        ("missing-index", r"index file .*model\.ckpt-100\.index is missing"),
    ],
)
def test_a_damaged_tensorflow_checkpoint(
    graph_checkpoint: tuple[Path, dict[str, Any]], tmp_path: Path, damage: str, match: str
) -> None:
    directory = _copy_graph_checkpoint(graph_checkpoint[0], tmp_path / "ckpt")
    index = directory / "model.ckpt-100.index"
    shard = directory / "model.ckpt-100.data-00000-of-00001"
    if damage == "truncate-index":
        index.write_bytes(index.read_bytes()[:-20])
    elif damage == "garbage-index":
        index.write_bytes(os.urandom(4096))
    elif damage == "empty-index":
        index.write_bytes(b"")
    elif damage == "missing-shard":
        shard.unlink()
    elif damage == "truncated-shard":
        shard.write_bytes(shard.read_bytes()[:10])
    else:
        index.unlink()
    path = str(shard if damage == "missing-index" else directory / "model.ckpt-100")
    message = _refused_quickly(path, match)
    assert "\n" not in message


def test_an_index_above_the_limit_is_not_read(
    graph_checkpoint: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_limits, "MAX_INDEX_BYTES", 100)
    _refused_quickly(
        str(graph_checkpoint[0]), r"TensorFlow index .* more than MAX_INDEX_BYTES \(100 bytes\)"
    )


# Hand-made tensor bundles: an index TensorFlow would never write.


def _entry(dtype: int, shape: list[int], offset: int, size: int, **fields: Any) -> Any:
    _tf()
    protos = pytest.importorskip("tensorflow.core.protobuf.tensor_bundle_pb2")
    entry = protos.BundleEntryProto(dtype=dtype, offset=offset, size=size, **fields)
    for dim in shape:
        entry.shape.dim.add(size=dim)
    return entry


def _bundle(
    directory: Path, entries: dict[str, Any], data: bytes, *, index_handle: bytes | None = None
) -> str:
    """A checkpoint at `directory/ckpt` with these BundleEntryProtos and one data shard."""
    _tf()
    protos = pytest.importorskip("tensorflow.core.protobuf.tensor_bundle_pb2")
    header = protos.BundleHeaderProto(num_shards=1)
    header.version.producer = 1
    rows = [(b"", header.SerializeToString())]
    rows += [(name.encode(), entry.SerializeToString()) for name, entry in sorted(entries.items())]
    directory.mkdir(exist_ok=True)
    prefix = directory / "ckpt"
    Path(f"{prefix}.index").write_bytes(checkpoint_bundle.table(rows, index_handle=index_handle))
    Path(f"{prefix}.data-00000-of-00001").write_bytes(data)
    return str(prefix)


_FLOAT, _STRING = 1, 7
_KERNEL = bytes(range(48))  # 12 float32 values


def _kernel_entry() -> Any:
    return _entry(_FLOAT, [3, 4], 0, 48, crc32c=checkpoint_bundle.masked_crc32c(_KERNEL))


def test_a_hand_made_bundle_reads_like_a_real_one(tmp_path: Path) -> None:
    np = _np()
    prefix = _bundle(tmp_path, {"dense/kernel": _kernel_entry()}, _KERNEL)
    checkpoint = read_checkpoint(prefix)
    assert checkpoint.weights == [WeightInfo("dense/kernel", (3, 4))]
    expected = np.frombuffer(_KERNEL, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(checkpoint.values("dense/kernel"), expected)


def test_many_variables_span_several_index_blocks(tmp_path: Path) -> None:
    tf = _tf()
    module = tf.Module()
    module.layers = [tf.Variable(tf.fill([2, 2], float(i))) for i in range(300)]
    path = tf.train.Checkpoint(net=module).write(str(tmp_path / "many"))
    assert os.path.getsize(path + ".index") > 3 * 4096  # TensorFlow's blocks hold 4 KiB
    checkpoint = read_checkpoint(path)
    assert len(checkpoint.weights) == 300
    _assert_values(checkpoint, {"net/layers/299": [[299.0, 299.0]] * 2})


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ([-5, 4], r"invalid shape \[-5, 4\]"),
        ([-1], r"invalid shape \[-1\]"),
        ([10**10, 10**10], "invalid shape"),
        ([1] * 255, "invalid shape .rank 255"),
    ],
    ids=["negative", "unknown", "overflow", "rank"],
)
def test_a_shape_tensorflow_would_abort_on_is_refused(
    tmp_path: Path, shape: list[int], match: str
) -> None:
    # TensorFlow CHECK-fails (SIGABRT) on these while listing the variables.
    entries = {"dense/kernel": _kernel_entry(), "x": _entry(_FLOAT, shape, 0, 48)}
    message = _refused_quickly(_bundle(tmp_path, entries, _KERNEL), match)
    assert "'x'" in message


def test_a_block_handle_past_the_end_of_the_index_is_refused(tmp_path: Path) -> None:
    # TensorFlow allocates what the handle claims before reading: std::bad_alloc.
    handle = checkpoint_bundle.handle(0, 1 << 60)
    prefix = _bundle(tmp_path, {"dense/kernel": _kernel_entry()}, _KERNEL, index_handle=handle)
    _refused_quickly(prefix, "runs past the end of the")


def test_keys_expanding_past_the_index_limit_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each key shares all of the previous one and adds a byte: a small index whose keys,
    # expanded, take quadratic time and memory (1 MiB keys: hours for a 2 MiB index).
    rows = [(b"k" * 1000 + b"x" * i, b"") for i in range(200)]
    index = checkpoint_bundle.table(rows, shared_prefixes=True)
    assert _tf_table.table_rows(index) == rows  # well formed: refused for its size only
    _tf()
    prefix = tmp_path / "ckpt"
    Path(f"{prefix}.index").write_bytes(index)
    assert len(index) < 10_000 < sum(len(key) for key, _ in rows)
    monkeypatch.setattr(_limits, "MAX_INDEX_BYTES", 10_000)
    _refused_quickly(
        str(prefix),
        r"corrupt TensorFlow index .*: its keys, expanded from their shared prefixes, "
        r"hold more than MAX_INDEX_BYTES \(10,000 bytes\)",
    )


def test_a_repeated_slice_is_refused(tmp_path: Path) -> None:
    # TensorFlow CHECK-fails on two equal slices of one variable.
    entry = _entry(_FLOAT, [3, 4], 0, 48)
    for _ in range(2):
        entry.slices.add().extent.add(start=0, length=3)
    _refused_quickly(_bundle(tmp_path, {"w": entry}, _KERNEL), "lists the same slice twice")


def _huge_is_listed_but_refused(checkpoint: Checkpoint, name: str, where: str) -> None:
    """`name`, declaring 10^6 x 10^6 float32 values (4 TB), is listed with its shape,
    and its values are refused at once, the message naming it (`where`) and its size."""
    assert WeightInfo(name, (10**6, 10**6)) in checkpoint.weights
    start = time.monotonic()
    with pytest.raises(CheckpointError, match="MAX_TENSOR_BYTES") as caught:
        checkpoint.values(name)
    assert time.monotonic() - start < 1
    assert where in str(caught.value)
    assert "4,000,000,000,000 bytes" in str(caught.value)


def test_a_tensor_claiming_too_many_elements_is_refused_before_reading(tmp_path: Path) -> None:
    entries = {"dense/kernel": _kernel_entry(), "huge": _entry(_FLOAT, [10**6, 10**6], 0, 48)}
    checkpoint = read_checkpoint(_bundle(tmp_path, entries, _KERNEL))
    _huge_is_listed_but_refused(checkpoint, "huge", "'huge'")


def test_the_tensor_limit_applies_to_real_checkpoints(
    graph_checkpoint: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = read_checkpoint(str(graph_checkpoint[0]))
    monkeypatch.setattr(_limits, "MAX_TENSOR_BYTES", 47)  # layer1/weights: 48 bytes
    with pytest.raises(CheckpointError, match="needs 48 bytes, more than MAX_TENSOR_BYTES"):
        checkpoint.values("layer1/weights")
    assert checkpoint.values("layer1/biases").shape == (4,)


def test_a_string_claiming_a_huge_length_is_refused(tmp_path: Path) -> None:
    # TensorFlow sizes the string by the length in the shard: a segmentation fault.
    length = 1 << 50
    checksum = checkpoint_bundle.masked_crc32c(struct.pack("<Q", length)).to_bytes(4, "little")
    data = _KERNEL + checkpoint_bundle.varint(length) + checksum + b"abc"
    graph = _entry(_STRING, [], len(_KERNEL), len(data) - len(_KERNEL))
    entries = {"dense/kernel": _kernel_entry(), "_CHECKPOINTABLE_OBJECT_GRAPH": graph}
    message = _refused_quickly(_bundle(tmp_path, entries, data), "claims")
    assert f"{length:,} bytes" in message


def test_a_tensor_outside_its_shard_is_refused(tmp_path: Path) -> None:
    entries = {"dense/kernel": _kernel_entry(), "far": _entry(_FLOAT, [3], 1 << 62, 12)}
    _refused_quickly(_bundle(tmp_path, entries, _KERNEL), "'far' ends at byte")


def test_a_tensor_in_a_shard_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    entries = {"dense/kernel": _kernel_entry(), "w": _entry(_FLOAT, [3], 0, 12, shard_id=7)}
    _refused_quickly(_bundle(tmp_path, entries, _KERNEL), "'w' is in shard 7, but the checkpoint")


def test_strings_and_partitioned_variables_are_listed_but_not_read(tmp_path: Path) -> None:
    tf = _tf()
    v1 = tf.compat.v1
    with tf.Graph().as_default():
        v1.get_variable(
            "emb", shape=[6, 2], partitioner=v1.fixed_size_partitioner(2), use_resource=False
        )
        v1.get_variable("names", initializer=tf.constant(["a", "b"]))
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            path = v1.train.Saver().save(session, str(tmp_path / "model.ckpt"))
    checkpoint = read_checkpoint(path)
    assert checkpoint.weights == [WeightInfo("emb", (6, 2))]
    with pytest.raises(CheckpointError, match="partitioned variable saved in 2 slices"):
        checkpoint.values("emb")
    with pytest.raises(CheckpointError, match="holds string values, not numbers"):
        checkpoint.values("names")


# Keras archives.


def _bomb_archive(keras_files: tuple[Path, Any], path: Path, bomb: str, mebibytes: int) -> None:
    """The fixture's archive with member `bomb` replaced by deflated zeros."""
    members = checkpoint_zip.members_of(keras_files[0] / "model.keras")
    zeros = checkpoint_zip.deflated_zeros(mebibytes)
    members = [m for m in members if m.name != bomb]
    members.append(checkpoint_zip.Member(bomb, zeros, zipfile.ZIP_DEFLATED, mebibytes << 20, 0))
    checkpoint_zip.write(path, members)


@pytest.mark.parametrize(
    ("bomb", "mebibytes", "match"),
    [
        ("assets/zeros.bin", 3529, "MAX_ARCHIVE_BYTES"),  # 3.7 GB from 3.7 MB
        ("model.weights.h5", 3529, "MAX_ARCHIVE_BYTES"),
        ("config.json", 3529, "MAX_ARCHIVE_BYTES|MAX_METADATA_BYTES"),
        ("config.json", 20, "MAX_METADATA_BYTES"),  # Keras parses it whole
    ],
)
def test_a_zip_bomb_is_refused_before_inflating(
    keras_files: tuple[Path, Any], tmp_path: Path, bomb: str, mebibytes: int, match: str
) -> None:
    path = tmp_path / "bomb.keras"
    _bomb_archive(keras_files, path, bomb, mebibytes)
    assert path.stat().st_size < 4 << 20
    message = _refused_quickly(str(path), match)
    assert f"{bomb!r}" in message
    assert f"{mebibytes << 20:,} bytes" in message


def test_zipfile_stops_a_chunked_read_at_the_declared_size(tmp_path: Path) -> None:
    # What copying a member out relies on. A whole `read()`, however, first inflates
    # up to 2 GiB: hence the archive check inflating every member itself.
    path = tmp_path / "liar.zip"
    zeros = checkpoint_zip.deflated_zeros(3529)  # 3.7 GB inflated, 10 bytes declared
    member = checkpoint_zip.Member("m", zeros, zipfile.ZIP_DEFLATED, 10, zlib.crc32(bytes(10)))
    checkpoint_zip.write(path, [member])
    start = time.monotonic()
    with zipfile.ZipFile(path) as archive, archive.open("m") as stream:
        assert stream.read(1 << 20) == bytes(10)
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("name", ["config.json", "model.weights.h5"])
def test_a_member_inflating_past_its_declared_size_is_refused(
    keras_files: tuple[Path, Any], tmp_path: Path, name: str
) -> None:
    members = checkpoint_zip.members_of(keras_files[0] / "model.keras")
    real = next(m for m in members if m.name == name)
    # The real content, then 3.7 GB of zeros; 4 MiB declared, more than is stored.
    stream = checkpoint_zip.deflated_zeros(3529, head=real.data)
    lying = checkpoint_zip.Member(name, stream, zipfile.ZIP_DEFLATED, 4 << 20, real.crc)
    path = tmp_path / "liar.keras"
    checkpoint_zip.write(path, [m if m is not real else lying for m in members])
    message = _refused_quickly(str(path), "inflates to more than the 4,194,304 bytes it declares")
    assert f"{name!r}" in message


@pytest.mark.parametrize(
    ("method", "stored", "match"),
    [
        (zipfile.ZIP_STORED, bytes(10), "stores 10 bytes for 5 bytes"),
        (zipfile.ZIP_DEFLATED, os.urandom(2000), "stores 2,000 bytes for 5 bytes"),
        (zipfile.ZIP_BZIP2, bytes(5), "compressed with method 12"),
    ],
    ids=["stored", "deflated", "bzip2"],
)
def test_a_member_not_stored_as_keras_stores_it_is_refused(
    keras_files: tuple[Path, Any], tmp_path: Path, method: int, stored: bytes, match: str
) -> None:
    # zipfile reads all the stored bytes of a member at once, and inflates bzip2 and
    # lzma without a bound on each step.
    members = checkpoint_zip.members_of(keras_files[0] / "model.keras")
    odd = checkpoint_zip.Member("assets/odd", stored, method, 5)
    checkpoint_zip.write(tmp_path / "odd.keras", [*members, odd])
    _refused_quickly(str(tmp_path / "odd.keras"), match)


def test_a_large_central_directory_is_refused_before_zipfile_reads_it(
    keras_files: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = checkpoint_zip.members_of(keras_files[0] / "model.keras")
    members += [checkpoint_zip.stored(f"assets/{i:04d}", b"") for i in range(100)]
    checkpoint_zip.write(tmp_path / "many.keras", members)
    monkeypatch.setattr(_limits, "MAX_METADATA_BYTES", 5000)
    message = _refused_quickly(str(tmp_path / "many.keras"), "central directory")
    assert "MAX_METADATA_BYTES (5,000 bytes)" in message


def test_weights_declaring_more_than_the_archive_limit_are_refused(
    keras_files: tuple[Path, Any], tmp_path: Path
) -> None:
    h5py = pytest.importorskip("h5py")
    members = checkpoint_zip.members_of(keras_files[0] / "model.keras")
    weights = next(m for m in members if m.name == "model.weights.h5")
    bloated = tmp_path / "bloated.h5"
    bloated.write_bytes(weights.data)
    with h5py.File(bloated, "a") as file:  # 3 GiB declared, nothing stored
        file.create_dataset("extra", shape=(3 << 28,), dtype="f4", chunks=(1 << 16,))
    replaced = checkpoint_zip.stored(weights.name, bloated.read_bytes())
    path = tmp_path / "bloated.keras"
    checkpoint_zip.write(path, [m if m is not weights else replaced for m in members])
    message = _refused_quickly(str(path), "datasets declare more than MAX_ARCHIVE_BYTES")
    assert "/extra alone declares 3,221,225,472 bytes" in message


def test_a_keras_config_declaring_huge_layers_allocates_nothing(tmp_path: Path) -> None:
    keras = _keras()
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, name="dense")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras's own numpy 2 warning
        model.save(tmp_path / "small.keras")
    members = checkpoint_zip.members_of(tmp_path / "small.keras")
    config = next(m for m in members if m.name == "config.json")
    text = config.data.decode()
    assert '"units": 3' in text and "[null, 5]" in text
    # A kernel of 10^6 x 10^6 floats: 4 TB, which TensorFlow retries for 10 s to allocate.
    huge = text.replace('"units": 3', '"units": 1000000').replace("[null, 5]", "[null, 1000000]")
    members = [
        m if m is not config else checkpoint_zip.stored(m.name, huge.encode()) for m in members
    ]
    checkpoint_zip.write(tmp_path / "huge.keras", members)
    message = _refused_quickly(str(tmp_path / "huge.keras"), "Keras could not load")
    assert "(1000000, 1000000)" in message  # the shape Keras checked before any value
    state = pytest.importorskip("keras.src.backend.common.global_state")
    pending = state.get_global_attribute("uninitialized_variables", None) or []
    assert not [v for v in pending if tuple(v.shape) == (1000000, 1000000)]


def test_keras_archives_load_in_safe_mode(
    keras_files: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    keras = _keras()
    calls: list[dict[str, Any]] = []
    load_model = keras.saving.load_model

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return load_model(*args, **kwargs)

    monkeypatch.setattr(keras.saving, "load_model", spy)
    read_checkpoint(str(keras_files[0] / "model.keras"))
    assert calls == [{"compile": False, "safe_mode": True}]


# HDF5 weight files.


def _weights_file(path: Path, make_kernel: Any) -> str:
    """A Keras 3 `.weights.h5` layout holding one layer `dense`, its kernel made by
    `make_kernel(vars_group)`."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as file:
        variables = file.create_group("layers/dense/vars")
        variables.attrs["name"] = "dense"
        make_kernel(variables)
        variables["1"] = [1.0, 2.0]
    return str(path)


def test_a_dataset_too_large_is_refused_by_its_declared_size(tmp_path: Path) -> None:
    def huge(group: Any) -> None:  # 4 TB declared, nothing stored
        group.create_dataset("0", shape=(10**6, 10**6), dtype="f4", chunks=(1, 1024))

    checkpoint = read_checkpoint(_weights_file(tmp_path / "huge.weights.h5", huge))
    _huge_is_listed_but_refused(checkpoint, "dense/vars/0", "/layers/dense/vars/0")


def test_the_tensor_limit_applies_to_hdf5_datasets(
    keras_files: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = read_checkpoint(str(keras_files[0] / "model.weights.h5"))
    monkeypatch.setattr(_limits, "MAX_TENSOR_BYTES", 59)  # dense_1's kernel: 60 bytes
    with pytest.raises(CheckpointError, match="needs 60 bytes, more than MAX_TENSOR_BYTES"):
        checkpoint.values("dense_1/vars/0")
    assert checkpoint.values("dense_1/vars/1").shape == (3,)


def test_chunks_larger_than_their_dataset_are_refused(tmp_path: Path) -> None:
    def chunked(group: Any) -> None:  # 8 bytes of data in chunks of 16 MiB
        group.create_dataset("0", data=[1.0, 2.0], maxshape=(None,), chunks=(1 << 21,))

    checkpoint = read_checkpoint(_weights_file(tmp_path / "chunks.weights.h5", chunked))
    with pytest.raises(CheckpointError, match="chunks of 16,777,216 bytes"):
        checkpoint.values("dense/vars/0")


def test_a_hard_link_cycle_is_walked_once(tmp_path: Path) -> None:
    def cyclic(group: Any) -> None:
        group["0"] = [[1.0]]
        group.file["layers/dense/loop"] = group.file["layers/dense"]
        group.file["layers/dense/root"] = group.file["/"]

    checkpoint = read_checkpoint(_weights_file(tmp_path / "cycle.weights.h5", cyclic))
    assert [w.name for w in checkpoint.weights] == ["dense/vars/0", "dense/vars/1"]


@pytest.mark.parametrize(
    ("limit", "match"),
    [
        ("MAX_HDF5_LINKS", r"more than MAX_HDF5_LINKS \(5\) HDF5 links"),
        ("MAX_HDF5_DEPTH", r"HDF5 groups nest more than MAX_HDF5_DEPTH \(5\) deep"),
    ],
)
def test_hdf5_walks_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str, match: str
) -> None:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "deep.weights.h5"
    with h5py.File(path, "w") as file:  # 11 groups, each inside the previous one
        file.create_group("layers/" + "/".join(f"g{i}" for i in range(10)))
    assert read_checkpoint(str(path)).weights == []  # within the default limits
    monkeypatch.setattr(_limits, limit, 5)
    _refused_quickly(str(path), match)


def _other_file(path: Path) -> Path:
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as file:
        file["secret"] = [[42.0]]
    path.with_suffix(".raw").write_bytes(bytes(8))
    return path


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("dangling-soft", r"/layers/dense/vars/0 is a soft link to /nowhere"),
        ("soft", r"/layers/dense/vars/0 is a soft link to /secret"),
        ("external", r"/layers/dense/vars/0 points into another file .*other\.h5:/secret"),
        ("external-group", r"/layers/dense points into another file"),
    ],
)
def test_hdf5_links_other_than_hard_ones_are_not_followed(
    tmp_path: Path, kind: str, match: str
) -> None:
    h5py = pytest.importorskip("h5py")
    other = _other_file(tmp_path / "other.h5")
    path = tmp_path / "links.weights.h5"
    with h5py.File(path, "w") as file:
        file["secret"] = [[1.0]]
        if kind == "external-group":
            file["layers/dense"] = h5py.ExternalLink(str(other), "/")
        else:
            target = {
                "dangling-soft": h5py.SoftLink("/nowhere"),
                "soft": h5py.SoftLink("/secret"),
                "external": h5py.ExternalLink(str(other), "/secret"),
            }[kind]
            file.create_group("layers/dense/vars")["0"] = target
    _refused_quickly(str(path), match)


def test_an_hdf5_external_link_to_a_fifo_is_not_opened(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "fifo-link.weights.h5"
    with _fifo(tmp_path / "pipe.h5") as fifo:
        with h5py.File(path, "w") as file:
            file.create_group("layers/dense/vars")["0"] = h5py.ExternalLink(str(fifo), "/x")
        _refused_quickly(str(path), "points into another file")


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("external-storage", r"keeps its data in external files \(.*other\.raw\)"),
        ("virtual", "is virtual"),
        ("strings", "not numbers"),
    ],
)
def test_datasets_whose_values_are_not_numbers_in_this_file_are_not_read(
    tmp_path: Path, kind: str, match: str
) -> None:
    h5py = pytest.importorskip("h5py")
    other = _other_file(tmp_path / "other.h5")

    def kernel(group: Any) -> None:
        if kind == "external-storage":
            raw = (str(other.with_suffix(".raw")), 0, 8)
            group.create_dataset("0", shape=(2,), dtype="f4", external=[raw])
        elif kind == "virtual":
            layout = h5py.VirtualLayout(shape=(1, 1), dtype="f8")
            layout[:] = h5py.VirtualSource(str(other), "secret", shape=(1, 1))
            group.create_virtual_dataset("0", layout)
        else:
            group.create_dataset("0", data=["a", "b"], dtype=h5py.string_dtype())

    checkpoint = read_checkpoint(_weights_file(tmp_path / f"{kind}.weights.h5", kernel))
    with pytest.raises(CheckpointError, match=match):
        checkpoint.values("dense/vars/0")


def test_messages_are_one_line_without_terminal_escapes(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "escapes\n.weights.h5"
    with h5py.File(path, "w") as file:
        file.create_group("layers/\x1b[2Jevil/vars")["0"] = h5py.SoftLink("/\x9bnowhere")
    message = _refused_quickly(str(path), "soft link")
    assert "\x1b" not in message and "\x9b" not in message and "\n" not in message
    assert r"/layers/\x1b[2Jevil/vars/0 is a soft link to /\x9bnowhere" in message
    assert r"escapes\n.weights.h5" in message


# The pruning step a Keras model resumes at, from its PrunedLayers' (step, iterations) records.


@pytest.mark.parametrize(
    ("records", "iterations", "step"),
    [
        ([], 7, 7),  # no PrunedLayer records: r1.15's global step
        ([], None, None),  # nor an optimizer
        ([(-1, 0), (-1, 0)], 7, 7),  # never recorded (a file of pruning-spec 0.1)
        ([(30, 10), (30, 10)], 10, 30),  # saved with its optimizer
        ([(30, 10)], 14, 34),  # the same optimizer, 4 steps later
        ([(30, 10)], 0, 30),  # a new optimizer: a recompile or a weights-only file
        ([(30, 10)], None, 30),  # no optimizer
        ([(30, 10), (-1, 0)], 10, 30),  # a layer added since
        ([(30, 10), (20, 10)], 12, 32),  # records that disagree: the furthest
    ],
)
def test_the_resumed_step_follows_the_records_and_their_optimizer(
    records: list[tuple[int, int]], iterations: int | None, step: int | None
) -> None:
    assert _weights.resumed_step(records, iterations) == step
