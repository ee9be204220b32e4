"""explain/verify on real checkpoints written by the graph-mode backend."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from pruning_spec import parse_hparams
from pruning_spec._checkpoints import read_checkpoint
from pruning_spec._cli import main
from pruning_spec.backends import tensorflow as pruning
from pruning_spec.backends.tensorflow import keras as pks

v1 = tf.compat.v1
SPEC = "target_sparsity=0.75,sparsity_function_end_step=10,begin_pruning_step=0,pruning_frequency=5"


def _train_and_save(directory: Path, *, prune: bool, step: int = 20) -> str:
    with tf.Graph().as_default():
        global_step = v1.train.get_or_create_global_step()
        rng = np.random.RandomState(0)
        for scope, shape in (("layer1", (16, 8)), ("layer2", (8, 4))):
            with v1.variable_scope(scope):
                weights = v1.get_variable("weights", initializer=rng.randn(*shape).astype("f"))
                pruning.apply_mask(weights)
        p = pruning.Pruning(SPEC, global_step=global_step)
        update = p.mask_update_op()
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            session.run(v1.assign(global_step, step))
            if prune:
                session.run(update)
            return str(v1.train.Saver().save(session, str(directory / "model.ckpt"), global_step))


@pytest.fixture
def spec_file(tmp_path: Path) -> str:
    path = tmp_path / "spec.txtpb"
    path.write_text("target_sparsity: 0.75\nsparsity_function_end_step: 10\npruning_frequency: 5\n")
    return str(path)


def test_verify_accepts_a_pruned_checkpoint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, spec_file: str
) -> None:
    _train_and_save(tmp_path, prune=True)
    status = main(["verify", spec_file, "--checkpoint", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert out == "2 weights match the spec at step 20\n"


def test_verify_lists_weights_that_were_never_pruned(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, spec_file: str
) -> None:
    _train_and_save(tmp_path, prune=False)
    status = main(["verify", spec_file, "--checkpoint", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 1
    rows = [line.split() for line in out.splitlines()[1:3]]
    assert rows == [
        ["layer1/weights", "0.7500", "0.0000", "sparsity", "off", "by", "more", "than", "0.01"],
        ["layer2/weights", "0.7500", "0.0000", "sparsity", "off", "by", "more", "than", "0.01"],
    ]
    assert out.splitlines()[-1] == "2 of 2 weights do not match the spec at step 20"


def test_explain_reads_weights_from_a_checkpoint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, spec_file: str
) -> None:
    _train_and_save(tmp_path, prune=True)
    assert main(["explain", spec_file, "--checkpoint", str(tmp_path)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [(r[0], r[1], r[5]) for r in rows] == [
        ("layer1/weights", "16x8", "32/128"),
        ("layer2/weights", "8x4", "8/32"),
    ]


def test_checkpoint_problems_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, spec_file: str
) -> None:
    assert main(["verify", spec_file, "--checkpoint", str(tmp_path / "missing")]) == 2
    assert "error[io-error]" in capsys.readouterr().err


def test_verify_checks_block_structure(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _train_and_save(tmp_path, prune=True)  # pruned element-wise
    blocks = tmp_path / "blocks.txtpb"
    blocks.write_text(
        "target_sparsity: 0.75\nsparsity_function_end_step: 10\npruning_frequency: 5\n"
        "block_height: 2\nblock_width: 2\n"
    )
    assert main(["verify", str(blocks), "--checkpoint", str(tmp_path), "--tolerance", "0.1"]) == 1
    out = capsys.readouterr().out
    assert "zeros do not form whole blocks" in out


# A .keras file saved by pks.prune: read in a fresh process, with no custom objects given.


KERAS_SPEC = (
    "begin_pruning_step=0,pruning_frequency=2,target_sparsity=0.75,sparsity_function_end_step=10"
)


def _pruned_keras_file(
    path: Path, epochs: int, recompiled: int = 0, spec: str = KERAS_SPEC
) -> None:
    """Fits `epochs` epochs of 16 steps, recompiles and fits `recompiled` more, saves."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16,))
    hidden = keras.layers.Dense(32, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4, name="out")(hidden))
    model = pks.prune(model, spec)
    data = np.random.RandomState(0).rand(64, 16).astype("f")
    for count in [epochs, recompiled] if recompiled else [epochs]:
        model.compile(optimizer="sgd", loss=keras.losses.MeanSquaredError())
        model.fit(
            data, data[:, :4], batch_size=4, epochs=count, verbose=0,
            callbacks=[pks.PruningCallback(spec)],
        )  # fmt: skip
    model.save(path)


def test_verify_and_explain_check_a_globally_pruned_keras_file(tmp_path: Path) -> None:
    group = KERAS_SPEC + ",pruning_scope=GLOBAL,min_weight_density=0.1"
    path = str(tmp_path / "global.keras")
    _pruned_keras_file(tmp_path / "global.keras", epochs=1, spec=group)
    specs = {"group": group, "per_weight": KERAS_SPEC}
    for name, hparams in specs.items():
        (tmp_path / f"{name}.txtpb").write_text(parse_hparams(hparams).to_textproto())
    done = _cli("verify", str(tmp_path / "group.txtpb"), "--checkpoint", path)
    assert done.returncode == 0, done.stdout + done.stderr
    done = _cli("explain", str(tmp_path / "group.txtpb"), "--checkpoint", path)
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:3]}
    assert set(rows) == {"hidden/kernel", "out/kernel"}, done.stdout + done.stderr
    # Exact from the values: the two kernels end at different sparsities, not both at 0.75.
    exact = pks.weight_sparsity(keras.saving.load_model(path))
    assert exact["hidden/kernel"] != exact["out/kernel"]
    for name, sparsity in exact.items():
        assert f"{sparsity:.4f}" in rows[name], (name, done.stdout)
    # The same file is not what per-weight pruning to 0.75 gives.
    done = _cli("verify", str(tmp_path / "per_weight.txtpb"), "--checkpoint", path)
    assert done.returncode != 0, done.stdout


def test_a_keras_files_step_is_its_pruning_step_also_after_a_recompile(tmp_path: Path) -> None:
    _pruned_keras_file(tmp_path / "pruned.keras", epochs=1, recompiled=1)
    assert read_checkpoint(str(tmp_path / "pruned.keras")).step == 32  # its optimizer's: 16


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "pruning_spec", *args],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip


def test_verify_and_explain_read_a_pruned_keras_file_without_custom_objects(
    tmp_path: Path,
) -> None:
    _pruned_keras_file(tmp_path / "pruned.keras", epochs=1)  # 16 steps, past the schedule
    spec = tmp_path / "spec.txtpb"
    spec.write_text(
        "begin_pruning_step: 0\npruning_frequency: 2\ntarget_sparsity: 0.75\n"
        "sparsity_function_end_step: 10\n"
    )
    done = _cli("verify", str(spec), "--checkpoint", str(tmp_path / "pruned.keras"))
    assert (done.returncode, done.stdout) == (0, "2 weights match the spec at step 16\n"), (
        done.stderr
    )
    # Only the weights pks.prune pruned: not biases, masks or thresholds.
    done = _cli("explain", str(spec), "--checkpoint", str(tmp_path / "pruned.keras"))
    rows = [line.split()[0] for line in done.stdout.splitlines()[1:]]
    assert rows == ["hidden/kernel", "out/kernel"], done.stdout + done.stderr


def test_verify_finds_a_pruned_keras_file_short_of_its_schedule(tmp_path: Path) -> None:
    _pruned_keras_file(tmp_path / "pruned.keras", epochs=1)
    spec = tmp_path / "spec.txtpb"
    spec.write_text("begin_pruning_step: 0\npruning_frequency: 2\ntarget_sparsity: 0.9\n")
    done = _cli("verify", str(spec), "--checkpoint", str(tmp_path / "pruned.keras"))
    assert done.returncode == 1, done.stderr
    offenders = [line.split()[:3] for line in done.stdout.splitlines()[1:3]]
    assert [row[0] for row in offenders] == ["hidden/kernel", "out/kernel"]


def test_a_stripped_model_is_checked_at_the_end_of_its_run(tmp_path: Path) -> None:
    _pruned_keras_file(tmp_path / "pruned.keras", epochs=1)
    stripped = tmp_path / "stripped.keras"
    pks.strip(keras.saving.load_model(tmp_path / "pruned.keras")).save(stripped)
    spec = tmp_path / "spec.txtpb"
    spec.write_text(
        "begin_pruning_step: 0\npruning_frequency: 2\ntarget_sparsity: 0.75\n"
        "sparsity_function_end_step: 10\n"
    )
    # It stores no step: at step 0 nothing would be pruned, and verify says it checked nothing.
    done = _cli("verify", str(spec), "--checkpoint", str(stripped))
    assert done.stdout == "no weight is pruned at step 0: nothing was checked\n", done.stderr
    assert "warning[nothing-checked]" in done.stderr and "pass --final" in done.stderr
    assert "note: checking its Keras kernels" in done.stderr
    done = _cli("verify", str(spec), "--checkpoint", str(stripped), "--final")
    assert (done.returncode, done.stdout) == (0, "2 weights match the spec at the end of the run\n")
    spec.write_text("target_sparsity: 0.9\n")
    done = _cli("verify", str(spec), "--checkpoint", str(stripped), "--final")
    assert done.returncode == 1
    assert [line.split()[0] for line in done.stdout.splitlines()[1:3]] == [
        "hidden/kernel",
        "out/kernel",
    ]
    done = _cli("verify", str(spec), "--checkpoint", str(stripped), "--final", "--step", "3")
    assert done.returncode == 2 and "not allowed with" in done.stderr


def test_keras_files_are_read_with_pks_prunes_default_choice(tmp_path: Path) -> None:
    inputs = keras.Input((6, 6, 2))
    hidden = keras.layers.DepthwiseConv2D(3, name="depthwise")(inputs)
    hidden = keras.layers.SeparableConv2D(4, 3, name="separable")(hidden)
    outputs = keras.layers.Dense(3, name="head")(keras.layers.Flatten()(hidden))
    keras.Model(inputs, outputs).save(tmp_path / "plain.keras")
    spec = tmp_path / "spec.txtpb"
    spec.write_text("target_sparsity: 0.5\n")
    done = _cli("explain", str(spec), "--checkpoint", str(tmp_path / "plain.keras"))
    assert [line.split()[0] for line in done.stdout.splitlines()[1:]] == [
        "head/kernel",
        "separable/pointwise_kernel",
    ], done.stdout + done.stderr
    assert "note: checking its Keras kernels" in done.stderr


# N:M weights: every group of the pattern, in each checkpoint format (issue 17).

N_M_SPEC = """\
begin_pruning_step: 0
pruning_frequency: 5
n_m_map { pattern: "good" n: 2 m: 4 }
n_m_map { pattern: "bad" n: 2 m: 4 }
"""
# The same for `good`, with `bad` left dense: nothing to break.
N_M_GOOD_ONLY = """\
begin_pruning_step: 0
pruning_frequency: 5
n_m_map { pattern: "good" n: 2 m: 4 }
exclude { pattern: "bad" }
"""


TWO_OF_FOUR = np.zeros((8, 4), dtype=bool)
TWO_OF_FOUR[[0, 1, 5, 6], :] = True  # 2 of each group of 4 rows, in every column


def _two_of_four() -> tuple[np.ndarray, np.ndarray]:
    """8x4 kernels, grouped along axis 0 (rows 0-3, 4-7 of each column): 8 groups.

    `good` keeps rows 0, 1 and 5, 6 of every column (TWO_OF_FOUR), 2 of 4, and has one
    natural zero more (row 5 of column 3): sparser than 2:4 in one group, which is no
    offence. `bad` keeps row 2 too in columns 0 to 2: 3 of 4 in 3 of the 8 groups.
    """
    values = np.random.RandomState(0).uniform(0.5, 1.5, (8, 4)).astype("f")
    good = values * TWO_OF_FOUR
    good[5, 3] = 0.0
    bad = good.copy()
    bad[2, :3] = 1.0
    return good, bad


def _n_m_keras_model() -> keras.Model:
    good, bad = _two_of_four()
    inputs = keras.Input((8,))
    layers = [keras.layers.Dense(4, name=name) for name in ("good", "bad")]
    model = keras.Model(inputs, keras.layers.Concatenate()([layer(inputs) for layer in layers]))
    for layer, kernel in zip(layers, (good, bad), strict=True):
        layer.set_weights([kernel, np.ones(4, "f")])
    return model


def _n_m_keras_file(directory: Path) -> str:
    path = directory / "nm.keras"
    _n_m_keras_model().save(path)
    return str(path)


def _n_m_weights_h5(directory: Path) -> str:
    path = directory / "nm.weights.h5"
    _n_m_keras_model().save_weights(path)
    return str(path)


def _n_m_object_checkpoint(directory: Path) -> str:
    good, bad = _two_of_four()
    checkpoint = tf.train.Checkpoint(
        good=tf.Variable(good, name="good/kernel"),
        bad=tf.Variable(bad, name="bad/kernel"),
        step=tf.Variable(20, dtype=tf.int64),
    )
    return str(checkpoint.write(str(directory / "nm")))


@pytest.mark.parametrize(
    ("write", "names", "when"),
    [
        (_n_m_keras_file, ("good/kernel", "bad/kernel"), ["--final"]),
        (_n_m_weights_h5, ("good/vars/0", "bad/vars/0"), ["--final"]),
        (_n_m_object_checkpoint, ("good/kernel", "bad/kernel"), []),
    ],
    ids=["keras", "weights_h5", "tf2_object"],
)
def test_verify_checks_every_group_of_an_n_m_weight(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    write: Callable[[Path], str],
    names: tuple[str, str],
    when: list[str],
) -> None:
    path = write(tmp_path)
    (tmp_path / "nm.txtpb").write_text(N_M_SPEC)
    (tmp_path / "good.txtpb").write_text(N_M_GOOD_ONLY)
    at = "the end of the run" if when else "step 20"
    status = main(["verify", str(tmp_path / "nm.txtpb"), "--checkpoint", path, *when])
    out = capsys.readouterr().out.splitlines()
    assert status == 1, out
    assert [line.split("  ")[0] for line in out] == ["weight", names[1], out[-1]]
    assert [cell.strip() for cell in out[1].split("  ") if cell.strip()] == [
        names[1],
        "2:4 axis 0",
        "3 of 8 groups",
        "keep more than the pattern allows (2 of 4)",
    ]
    assert out[-1] == f"1 of 2 weights do not match the spec at {at}"
    # good keeps 15 of 32 values (a natural zero more than 2:4's 16): that passes.
    status = main(["verify", str(tmp_path / "good.txtpb"), "--checkpoint", path, *when])
    out = capsys.readouterr().out.splitlines()
    assert (status, out) == (
        0,
        [f"2 weights match the spec at {at}, including all 8 groups of the N:M weight"],
    )


def test_verify_reads_an_n_m_weights_r1_15_mask_not_its_values(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, bad = _two_of_four()
    dense = np.random.RandomState(1).uniform(0.5, 1.5, (8, 4)).astype("f")  # no zero at all
    too_sparse = TWO_OF_FOUR.copy()
    too_sparse[4:8, 3] = False  # the second group of column 3 keeps none: 14 of 32 kept
    with tf.Graph().as_default():
        global_step = v1.train.get_or_create_global_step()
        for scope, mask in (("good", TWO_OF_FOUR), ("bad", bad != 0), ("sparse", too_sparse)):
            with v1.variable_scope(scope):
                v1.get_variable("weights", initializer=dense)
                v1.get_variable("mask", initializer=mask.astype("f"))
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            session.run(v1.assign(global_step, 20))
            prefix = v1.train.Saver().save(session, str(tmp_path / "model.ckpt"), global_step)
    spec = tmp_path / "nm.txtpb"
    spec.write_text(N_M_SPEC.replace('"bad"', '"bad|sparse"'))
    status = main(["verify", str(spec), "--checkpoint", str(prefix)])
    out = capsys.readouterr().out
    assert status == 1
    # Values without a zero: each mask decides. good's keeps exactly 2:4, 16 of 32.
    assert out.splitlines() == [
        "weight          expected    actual         problem",
        "bad/weights     2:4 axis 0  3 of 8 groups"
        "              keep more than the pattern allows (2 of 4)",
        "sparse/weights      0.5000         0.5625"
        "  its mask keeps fewer than 2:4 axis 0 by more than 0.01",
        "2 of 3 weights do not match the spec at step 20",
    ]
    assert main(["verify", str(spec), "--checkpoint", str(prefix), "--tolerance", "0.1"]) == 1
    assert "sparse/weights" not in capsys.readouterr().out


def test_a_weights_h5_files_kernels_are_found_by_their_layers_class(tmp_path: Path) -> None:
    # Keras 3 names no variable in a .weights.h5 file, but names each layer's group after
    # its class: dense, dense_1, conv2d, separable_conv2d, depthwise_conv2d, embedding.
    inputs = keras.Input((6,), dtype="int32")
    hidden = keras.layers.Embedding(10, 8, name="emb")(inputs)
    hidden = keras.layers.Reshape((6, 8, 1))(hidden)
    hidden = keras.layers.DepthwiseConv2D(3, name="depthwise")(hidden)
    hidden = keras.layers.SeparableConv2D(4, 3, name="separable")(hidden)
    hidden = keras.layers.Conv2D(4, 1, name="conv")(hidden)
    hidden = keras.layers.Dense(3, name="first")(keras.layers.Flatten()(hidden))
    keras.Model(inputs, keras.layers.Dense(2, name="second")(hidden)).save_weights(
        tmp_path / "model.weights.h5"
    )
    checkpoint = read_checkpoint(str(tmp_path / "model.weights.h5"))
    assert checkpoint.assumed
    # Dense and Conv: their first variable; SeparableConv: the pointwise kernel, its second.
    # Not the embedding, the depthwise kernels, biases.
    assert [w.name for w in checkpoint.candidates] == [
        "conv/vars/0",
        "first/vars/0",
        "second/vars/0",
        "separable/vars/1",
    ]
    assert {w.name: w.shape for w in checkpoint.candidates}["separable/vars/1"] == (1, 1, 1, 4)
