"""Which Keras backends `pruning_spec.backends.keras` runs on, and what it says on the others."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pruning_spec.backends.keras import _backends

MODULES = ("pruning_spec.backends.keras", "pruning_spec.backends.tensorflow.keras")


def _import(module: str, backend: str, script: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-c", f"{script}import {module}"],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("module", MODULES)
def test_keras_backend_torch_fails_at_import_saying_what_is_missing(module: str) -> None:
    done = _import(module, "torch")  # PyTorch is not installed where the tests run
    assert done.returncode == 1
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line == f"ImportError: {_backends.unsupported('torch')}"
    assert "no kernels for Keras's 'torch' backend" in last_line


def test_keras_that_fails_to_load_its_backend_is_reported_with_the_reason() -> None:
    # The backend is a supported one, but its framework is missing (jax, hidden here).
    done = _import(MODULES[0], "jax", "import sys; sys.modules['jax'] = None; ")
    assert done.returncode == 1
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ImportError: pruning_spec.backends.keras needs Keras 3 with")
    assert "failed to load its 'jax' backend" in last_line


def test_a_backend_without_kernels_fails_at_import_saying_what_is_missing() -> None:
    # Keras running on PyTorch (faked: torch is not installed here).
    done = _import(
        MODULES[0], "tensorflow", "import keras; keras.backend.backend = lambda: 'torch'; "
    )
    assert done.returncode == 1
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line == f"ImportError: {_backends.unsupported('torch')}"
    assert "no kernels for Keras's 'torch' backend" in last_line
    assert "KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax" in last_line


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_both_names_import_on_tensorflow_and_jax(backend: str) -> None:
    done = _import(
        MODULES[1],
        backend,
        "import keras, pruning_spec.backends.keras as pks; "
        f"assert keras.backend.backend() == {backend!r}; ",
    )
    assert done.returncode == 0, done.stderr
