"""TensorFlow and JAX prune the same model to the same bits, and resume each other's files.

Each run is a process of its own (`parity_run.py`: Keras picks its backend at import),
with the same initial weights, spec and steps, and a learning rate of 0: every mask,
threshold and pruned weight at every update must be equal to the bit. The spec uses every
kernel (element-wise with threshold decay, AVG blocks, a global group with floors, N:M).
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

RUN = Path(__file__).with_name("parity_run.py")
BACKENDS = ("tensorflow", "jax")
EPOCHS = 3  # 8 steps each: updates at steps 3, 6, ..., 24


def _run(backend: str, out: Path, *arguments: str) -> dict[str, np.ndarray]:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if "--data-parallel" in arguments:
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    done = subprocess.run(
        [sys.executable, str(RUN), str(out), *arguments],
        capture_output=True, text=True, env=env, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as record:
        found = {key: record[key] for key in record.files}
    assert str(found.pop("backend")) == backend
    return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, np.ndarray]]:
    """Whole runs on each backend (saved after one epoch), each resumed on the other backend,
    and runs replicated over two devices."""
    directory = tmp_path_factory.mktemp("parity")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        wholes = {
            f"{backend} full": pool.submit(
                _run,
                backend,
                directory / f"{backend}.npz",
                "--epochs",
                str(EPOCHS),
                "--save",
                str(directory / f"{backend}.keras"),
            )
            for backend in BACKENDS
        }
        results = {name: future.result() for name, future in wholes.items()}
        more = {
            f"{first} then {then}": pool.submit(
                _run,
                then,
                directory / f"{first}-{then}.npz",
                "--epochs",
                str(EPOCHS - 1),
                "--resume",
                str(directory / f"{first}.keras"),
            )
            for first, then in (BACKENDS, BACKENDS[::-1])
        }
        more["data parallel"] = pool.submit(
            _run, "jax", directory / "parallel.npz", "--epochs", str(EPOCHS), "--data-parallel"
        )
        more["data parallel, training"] = pool.submit(
            _run,
            "jax",
            directory / "parallel-training.npz",
            "--epochs", str(EPOCHS), "--data-parallel", "--learning-rate", "0.05",
        )  # fmt: skip
        results.update({name: future.result() for name, future in more.items()})
    return results


def _steps(record: dict[str, np.ndarray]) -> list[int]:
    return sorted({int(key.split("/")[0]) for key in record if key.split("/")[0].isdigit()})


def _assert_bit_identical(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert set(got) <= set(expected)
    for key, value in got.items():
        want = expected[key]
        assert value.dtype == want.dtype and value.shape == want.shape, key
        assert value.tobytes() == want.tobytes(), (
            f"{key}: {np.count_nonzero(value != want)} values differ"
        )


def test_every_mask_and_threshold_is_bit_identical_on_tensorflow_and_jax(
    runs: dict[str, dict[str, np.ndarray]],
) -> None:
    tensorflow, jax = runs["tensorflow full"], runs["jax full"]
    assert _steps(tensorflow) == [0, 3, 6, 9, 12, 15, 18, 21, 24]
    assert set(jax) == set(tensorflow)
    _assert_bit_identical(jax, tensorflow)
    # The comparison is worth something: the masks grew sparser, the thresholds moved, and
    # the N:M weight kept 2 of every 4.
    element = [tensorflow[f"{s}/element/kernel/mask"].mean() for s in (3, 12, 24)]
    assert element[0] > element[1] > element[2] > 0
    assert len({float(tensorflow[f"{s}/left/kernel/threshold"]) for s in (3, 12, 24)}) == 3
    assert tensorflow["24/nm/kernel/mask"].mean() == 0.5
    block = tensorflow["24/block/kernel/mask"]
    assert (block.reshape(12, 2, 6, 4) == block.reshape(12, 2, 6, 4)[:, :1, :, :1]).all()
    assert int(tensorflow["iterations"]) == 8 * EPOCHS


@pytest.mark.parametrize(("first", "then"), [BACKENDS, BACKENDS[::-1]])
def test_a_keras_file_saved_on_one_backend_resumes_bit_for_bit_on_the_other(
    runs: dict[str, dict[str, np.ndarray]], first: str, then: str
) -> None:
    resumed = runs[f"{first} then {then}"]
    # Loaded: the masks, thresholds and step of the last update before saving (step 6).
    assert _steps(resumed) == [6, 9, 12, 15, 18, 21, 24]
    # Its epochs 0 and 1 are the whole run's epochs 1 and 2.
    renamed = {
        key.replace("epoch1/", "epoch2/").replace("epoch0/", "epoch1/"): value
        for key, value in resumed.items()
    }
    _assert_bit_identical(renamed, runs[f"{then} full"])
    assert int(resumed["iterations"]) == 8 * EPOCHS


def test_data_parallel_on_two_devices_gives_every_device_the_same_masks(
    runs: dict[str, dict[str, np.ndarray]],
) -> None:
    # Each run checks, at every update, that both devices hold the same bits.
    parallel = runs["data parallel"]
    assert parallel.pop("devices").tolist() == [2]
    assert set(parallel) == set(runs["tensorflow full"]) - {"devices"}
    assert "epoch2/nm/kernel/mask" in parallel
    _assert_bit_identical(parallel, runs["tensorflow full"])


def test_data_parallel_training_keeps_the_pruned_values_at_zero_on_every_device(
    runs: dict[str, dict[str, np.ndarray]],
) -> None:
    training = runs["data parallel, training"]
    assert training.pop("devices").tolist() == [2]
    assert _steps(training) == [0, 3, 6, 9, 12, 15, 18, 21, 24]
    # As each update and each epoch left them (and every step: the mask constraint).
    for when in [*_steps(training)[1:], "epoch0", "epoch1", "epoch2"]:
        for name in ("element", "block", "left", "right", "nm", "out"):
            mask = training[f"{when}/{name}/kernel/mask"]
            weight = training[f"{when}/{name}/kernel/weight"]
            assert (weight[mask == 0] == 0).all(), f"{name} at {when}"
    assert training["24/nm/kernel/mask"].mean() == 0.5
    # It trained: the weights moved away from the run at learning rate 0.
    assert not np.array_equal(
        training["24/element/kernel/weight"], runs["jax full"]["24/element/kernel/weight"]
    )
