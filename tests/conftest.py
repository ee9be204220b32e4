"""Facts about r1.15 that tests in several folders compare against."""

from __future__ import annotations

import json
from typing import Any

import pytest

# docs/semantics.md §e: what r1.15's print_hparams logged for the default spec [run].
R115_DEFAULT_JSON = (
    '{"name": "model_pruning", "begin_pruning_step": 0, "end_pruning_step": -1, '
    '"weight_sparsity_map": [""], "block_dims_map": [""], "threshold_decay": 0.0, '
    '"pruning_frequency": 10, "nbins": 256, "block_height": 1, "block_width": 1, '
    '"block_pooling_function": "AVG", "initial_sparsity": 0.0, "target_sparsity": 0.5, '
    '"sparsity_function_begin_step": 0, "sparsity_function_end_step": 100, '
    '"sparsity_function_exponent": 3.0, "use_tpu": false}'
)


@pytest.fixture
def r115_default_json() -> str:
    return R115_DEFAULT_JSON


@pytest.fixture
def r115_defaults() -> dict[str, Any]:
    """r1.15's `get_pruning_hparams().values()`, in insertion order."""
    values: dict[str, Any] = json.loads(R115_DEFAULT_JSON)
    return values
