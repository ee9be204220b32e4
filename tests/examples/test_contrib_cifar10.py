"""The contrib cifar10 example at a tiny size, and its refusal of bad flags before TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contrib_cifar10.py"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
# r1.15's README flag, with steps small enough for a test.
HPARAMS = (
    "name=cifar10_pruning,begin_pruning_step=20,end_pruning_step=100,target_sparsity=0.9,"
    "sparsity_function_begin_step=20,sparsity_function_end_step=100,pruning_frequency=10"
)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True, text=True, env=ENV, check=False, timeout=300,
    )  # fmt: skip


def test_a_tiny_run_prunes_every_mask_to_the_target_and_exports_it(tmp_path: Path) -> None:
    train_dir, output_dir = tmp_path / "train", tmp_path / "out"
    done = run(
        f"--pruning_hparams={HPARAMS}",
        "--max_steps=120",
        "--batch_size=16",
        "--image_size=8",
        "--width=0.125",
        "--log_every_n_steps=20",
        f"--train_dir={train_dir}",
        f"--output_dir={output_dir}",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {
        line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if "/mask" in line
    }
    # Sparsity as r1.15 rounds the kept count, k = round_half_even(n * 0.1): 153.6 -> 154 of
    # local3's 1536 and 115.2 -> 115 of local4's 1152; the stripped weights have the same zeros.
    assert rows == {
        "conv1/mask": ["5x5x3x8", "600", "90.00%", "90.00%", "90.00%"],
        "conv2/mask": ["5x5x8x8", "1600", "90.00%", "90.00%", "90.00%"],
        "local3/mask": ["32x48", "1536", "89.97%", "90.00%", "89.97%"],
        "local4/mask": ["48x24", "1152", "90.02%", "90.00%", "90.02%"],
        "softmax_linear/mask": ["24x10", "240", "90.00%", "90.00%", "90.00%"],
    }
    # The masks follow the schedule: untouched before step 20, the target from step 100.
    steps = {line.split()[1]: line.split()[-2] for line in done.stdout.splitlines()
             if line.startswith("step ")}  # fmt: skip
    assert steps["20"] == "0.00%" and steps["120"] == "90.00%"
    assert "OK: all 5 masks at their target sparsity" in done.stdout
    assert "MISS:" not in done.stderr
    assert (output_dir / "pruning_stripped.pb").stat().st_size > 0
    assert (train_dir / "checkpoint").is_file()
    assert (train_dir / "model.ckpt-120.index").is_file()
    assert list(train_dir.glob("events.out.tfevents.*"))


def test_a_bad_hparam_stops_before_tensorflow_loads_with_its_location() -> None:
    bad = HPARAMS.replace("target_sparsity=0.9", "target_sparsity=1.5")
    # Run in-process in a fresh interpreter, to see which modules the refusal loaded.
    probe = (
        "import runpy, sys\n"
        f"sys.argv = [{str(EXAMPLE)!r}, {'--pruning_hparams=' + bad!r}]\n"
        "try:\n"
        f"    runpy.run_path({str(EXAMPLE)!r}, run_name='__main__')\n"
        "except SystemExit as stop:\n"
        "    print('exit', stop.code, 'tensorflow' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True, text=True, env=ENV, check=False, timeout=60,
    )  # fmt: skip
    assert done.stdout.splitlines()[-1] == "exit 2 False", done.stdout + done.stderr
    offset = bad.index("1.5")  # hparam strings are located by 0-based character offset
    assert f"<hparams>:{offset}: error[out-of-range]: target_sparsity" in done.stderr
    assert "1.5" in done.stderr
    assert "images:" not in done.stdout
    # The same refusal as a plain command: argparse's exit status 2.
    assert run(f"--pruning_hparams={bad}").returncode == 2


def test_a_bad_size_flag_is_refused_like_a_bad_hparam() -> None:
    done = run("--image_size=3")
    assert done.returncode == 2
    assert "--image_size must be at least 5, got 3" in done.stderr
