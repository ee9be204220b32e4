"""_masking: the one update predicate and the per-weight kernel choice, shared by every API."""

from __future__ import annotations

import itertools
from unittest import mock

import numpy as np
import tensorflow as tf

from pruning_spec import _schedule, parse_hparams
from pruning_spec.backends.tensorflow import _masking


def test_the_tensorflow_and_python_update_predicates_agree() -> None:
    """Graph mode and Pruner ask TensorFlow, the Keras callback asks Python: one answer."""
    grid = list(
        itertools.product(
            [0, 3, 10],  # begin
            [-1, 0, 3, 10, 25],  # end
            [1, 2, 5],  # frequency
            [0, 3, 9, 12],  # last update
        )
    )
    steps = np.arange(0, 30)
    for begin, end, frequency, last in grid:
        spec = (
            parse_hparams(
                f"begin_pruning_step={begin},end_pruning_step={end},pruning_frequency={frequency}",
            )
            if end < 0 or end > begin
            else None
        )
        if spec is None:
            continue
        due = _masking.update_due(spec, tf.constant(steps, tf.int64), tf.constant(last, tf.int64))
        expected = [
            _schedule.mask_update_due(
                int(step),
                last_update_step=last,
                begin_step=begin,
                end_step=end,
                frequency=frequency,
            )
            for step in steps
        ]
        assert due.numpy().tolist() == expected, (begin, end, frequency, last)


def test_an_ignored_block_rule_is_reported_once_per_weight() -> None:
    spec = parse_hparams("block_dims_map=[conv:2x2]")
    values, half, threshold = tf.ones([3, 3, 2, 4]), tf.constant(0.5), tf.constant(0.0)
    with mock.patch.object(_masking.tf_logging, "warning") as warning:
        for _ in range(3):
            _masking.threshold_and_mask(spec, "conv/kernel", values, half, threshold)
        _masking.threshold_and_mask(spec, "conv2/kernel", values, half, threshold)
    assert [call.args[2] for call in warning.call_args_list] == ["conv/kernel", "conv2/kernel"]


def test_no_block_warning_without_blocks() -> None:
    values, half, threshold = tf.ones([3, 3, 2, 4]), tf.constant(0.5), tf.constant(0.0)
    with mock.patch.object(_masking.tf_logging, "warning") as warning:
        _masking.threshold_and_mask(parse_hparams(""), "conv/kernel", values, half, threshold)
        _masking.threshold_and_mask(
            parse_hparams("block_dims_map=[dense:2x2]"), "conv/kernel", values, half, threshold
        )
    assert warning.call_args_list == []
