"""`pruning_spec.backends.keras` under its first name, kept for code written before JAX ran it.

    from pruning_spec.backends.tensorflow import keras as pks   # still works

It is the same module, on whichever Keras backend runs (TensorFlow or JAX); new code
imports `pruning_spec.backends.keras`.
"""

from __future__ import annotations

from .. import keras as _keras
from ..keras import *  # noqa: F403

__all__ = list(_keras.__all__)
