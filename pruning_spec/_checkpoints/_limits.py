"""The bounds on what a hostile checkpoint can make the readers read or allocate.

The package re-exports them; the readers look them up here when they run, so a test
lowers one with `monkeypatch.setattr(_limits, "MAX_TENSOR_BYTES", ...)`. What each one
bounds is listed in the package docstring.
"""

from __future__ import annotations

MAX_TENSOR_BYTES = 4 << 30
MAX_ARCHIVE_BYTES = 2 << 30
MAX_INDEX_BYTES = 64 << 20
MAX_METADATA_BYTES = 16 << 20
MAX_HDF5_LINKS = 100_000
MAX_HDF5_DEPTH = 100
