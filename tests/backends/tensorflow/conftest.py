"""Shared set-up for the TensorFlow backend tests: quiet logs, one fresh graph per test.

Every graph test runs in `tf.compat.v1` graph mode in two flavours, because code
migrated from `tf.contrib.model_pruning` runs either way on TensorFlow 2.x:

* `tf2`: a fresh `tf.Graph()` under TensorFlow 2's defaults (resource variables,
  control flow v2), as with `with tf.Graph().as_default(): ... tf.compat.v1.Session()`;
* `v1`: the same after `tf.compat.v1.disable_v2_behavior()` (ref variables, v1
  control flow), the migration guide's recipe. It is switched back on afterwards,
  so nothing leaks into other tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest
import tensorflow as tf

tf.get_logger().setLevel("ERROR")

GRAPH_MODES = ("tf2", "v1")


@pytest.fixture(params=GRAPH_MODES)
def graph(request: pytest.FixtureRequest) -> Iterator[tf.Graph]:
    """A fresh default graph, in TF2's graph mode or with v1 behaviour."""
    v1_behaviour = request.param == "v1"
    if v1_behaviour:
        tf.compat.v1.disable_v2_behavior()
    try:
        with tf.Graph().as_default() as fresh:
            yield fresh
    finally:
        if v1_behaviour:
            # Eager code of earlier tests may have created the global default graph;
            # with it, v2 behaviour cannot come back ("must be called at program startup").
            tf.compat.v1.reset_default_graph()
            tf.compat.v1.enable_v2_behavior()


@pytest.fixture
def tf2_graph() -> Iterator[tf.Graph]:
    """A fresh default graph under TF2's defaults (for the pure kernels)."""
    with tf.Graph().as_default() as fresh:
        yield fresh
