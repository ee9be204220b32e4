"""The JAX kernels' tests: skipped, with the reason, where JAX (or TensorFlow) is missing.

They compare the JAX kernels with the TensorFlow kernels in the same process (both
frameworks import side by side), so they need both; `make test` installs both (the
`jax` and `tensorflow` extras). Without one, each test module of this folder is reported
as skipped, whether the suite or this folder is run, and nothing imports it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_NEEDED = {
    "jax": "the JAX kernels need JAX: pip install 'pruning-spec[jax]'",
    "tensorflow": "the JAX kernels are checked against TensorFlow's: the tensorflow extra",
}
MISSING = next(
    (why for name, why in _NEEDED.items() if importlib.util.find_spec(name) is None), None
)


class _Skipped(pytest.File):
    """A test module that is not imported: its collection reports the skip."""

    def collect(self) -> Iterable[Any]:
        pytest.skip(MISSING or "")


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> Any:
    if MISSING is None:
        return None
    return _Skipped.from_parent(parent, path=module_path)
