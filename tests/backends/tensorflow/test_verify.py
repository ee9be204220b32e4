"""explain/verify on real checkpoints written by the graph-mode backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from pruning_spec._cli import main
from pruning_spec.backends import tensorflow as pruning

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
