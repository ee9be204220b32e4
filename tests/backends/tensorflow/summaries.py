"""Reads back what `tf.summary` wrote, for the tests of the summaries."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf


def read_scalars(log_dir: Path) -> dict[str, float]:
    """The last value of each scalar tag in a directory's event files."""
    found: dict[str, float] = {}
    for event_file in sorted(log_dir.rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                found[value.tag] = float(tf.make_ndarray(value.tensor))
    return found
