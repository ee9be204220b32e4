"""The digits demo end to end (shortened), and its refusal of a bad flag before TensorFlow loads."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

DEMO = Path(__file__).resolve().parents[2] / "examples" / "train_digits.py"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run(*args: str, backend: str = "tensorflow") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMO), *args],
        capture_output=True, text=True, env={**ENV, "KERAS_BACKEND": backend}, check=False,
        timeout=300,
    )  # fmt: skip


# `make demo` and `KERAS_BACKEND=jax make demo`: the same table and checks on both.
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_short_run_prunes_to_the_spec_and_reports_it(tmp_path: Path, backend: str) -> None:
    done = run(
        "--dense-epochs=4",
        "--pruning-epochs=4",
        "--pruning_hparams=sparsity_function_end_step=90,pruning_frequency=10",
        f"--output-dir={tmp_path}",
        backend=backend,
    )
    assert done.returncode in (0, 1), done.stderr
    assert f"on its {backend} backend" in done.stdout
    assert "3 weights match the spec at the end of the run" in done.stdout
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if "/kernel" in line}
    assert rows["hidden_1/kernel"][1:] == ["64x256", "16384", "92.00%", "92.00%"]
    assert rows["hidden_2/kernel"][1:] == ["256x128", "32768", "92.00%", "92.00%"]
    assert rows["logits/kernel"][1:] == ["128x10", "1280", "80.00%", "80.00%"]
    assert "91.70%" in done.stdout
    # The verdict matches the exit status, and a miss is never hidden.
    assert ("OK: 91.70% sparse" in done.stdout) == (done.returncode == 0)
    assert ("MISS:" in done.stderr) == (done.returncode == 1)
    for name in ("dense.keras", "dense.keras.gz", "pruned.keras", "pruned.keras.gz"):
        assert (tmp_path / name).stat().st_size > 0
    # Sparse TensorFlow Lite: the 91.7%-sparse model is several times smaller.
    tflite = {name: (tmp_path / f"{name}.tflite").stat().st_size for name in ("dense", "pruned")}
    assert tflite["pruned"] * 3 < tflite["dense"]
    assert ".tflite (bytes)" in done.stdout
    assert (tmp_path / "pruned.keras.gz").stat().st_size < (
        tmp_path / "dense.keras.gz"
    ).stat().st_size
    assert list((tmp_path / "logs").glob("events.out.tfevents.*"))


def test_a_bad_override_stops_before_training_with_its_location() -> None:
    done = run("--pruning_hparams=target_sparsity=1.5,pruning_frequncy=10")
    assert done.returncode == 2
    assert "target_sparsity" in done.stderr and "1.5" in done.stderr
    assert "did you mean 'pruning_frequency'" in done.stderr
    assert "digits:" not in done.stdout


def test_the_global_mode_reaches_the_same_overall_sparsity_with_one_threshold(
    tmp_path: Path,
) -> None:
    done = run(
        "--global",
        "--dense-epochs=4",
        "--pruning-epochs=4",
        "--pruning_hparams=sparsity_function_end_step=90,pruning_frequency=10",
        f"--output-dir={tmp_path}",
    )
    assert done.returncode in (0, 1), done.stderr
    assert "pruning_scope=GLOBAL" in done.stdout  # the spec line: digits_global.txtpb
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if "/kernel" in line}
    sparsities = {name: float(row[3].rstrip("%")) for name, row in rows.items()}
    # The same 4,188 values kept as the per-weight run, shared as the magnitudes say.
    assert "all pruned                     50432    91.70%" in done.stdout
    assert len(set(sparsities.values())) == 3
    assert sparsities["logits/kernel"] <= 95.0  # min_weight_density 0.05


def test_the_n_m_mode_prunes_the_hidden_layers_2_4_and_verifies_the_saved_model(
    tmp_path: Path,
) -> None:
    done = run(
        "--n-m",
        "--dense-epochs=4",
        "--pruning-epochs=2",
        "--pruning_hparams=sparsity_function_end_step=60,pruning_frequency=10",
        f"--output-dir={tmp_path}",
    )
    assert done.returncode in (0, 1), done.stderr
    assert "n_m_map=[^hidden_:2/4]" in done.stdout  # the spec line: digits_2_4.txtpb
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if "/kernel" in line}
    assert rows["hidden_1/kernel"][1:] == ["64x256", "16384", "50.00%", "50.00%"]
    assert rows["hidden_2/kernel"][1:] == ["256x128", "32768", "50.00%", "50.00%"]
    assert rows["logits/kernel"][1:] == ["128x10", "1280", "80.00%", "80.00%"]
    assert "3 weights match the spec at the end of the run" in done.stdout
    assert ("OK: 50.76% sparse (target >= 50%)" in done.stdout) == (done.returncode == 0)
    # The saved model itself: every 4 inputs of a hidden unit keep exactly 2 weights.
    model = keras.saving.load_model(tmp_path / "pruned.keras", compile=False)
    kernel = np.asarray(model.get_layer("hidden_2").kernel.numpy())
    assert ((kernel.reshape(64, 4, 128) != 0).sum(axis=1) == 2).all()


def test_a_failing_verify_is_a_miss_even_when_sparsity_and_accuracy_are_met(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = importlib.util.spec_from_file_location("train_digits", DEMO)
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    rows = [demo.Row("hidden/kernel", "8x4", 32, 0.5, 0.5)]
    assert demo.check(rows, 0.9, 0.9, 0.5, True) == 0
    assert demo.check(rows, 0.9, 0.9, 0.5, False) == 1
    assert "MISS: pruning-spec verify fails on the saved pruned model" in capsys.readouterr().err
