"""The JAX kernels' tests: skipped, with the reason, where JAX (or TensorFlow) is missing.

They compare the JAX kernels with the TensorFlow kernels in the same process (both
frameworks import side by side), so they need both; `make test` installs both (the
`jax` and `tensorflow` extras).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

pytest.importorskip("jax", reason="the JAX kernels need JAX: pip install 'pruning-spec[jax]'")
pytest.importorskip(
    "tensorflow", reason="the JAX kernels are checked against TensorFlow's: the tensorflow extra"
)
