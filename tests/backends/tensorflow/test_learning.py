"""train(): r1.15's learning.train on MonitoredTrainingSession, the mask update after every step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from pruning_spec.backends import tensorflow as pruning

v1 = tf.compat.v1
SPEC = "begin_pruning_step=2,sparsity_function_begin_step=2,sparsity_function_end_step=6," + (
    "pruning_frequency=2,target_sparsity=0.75"
)


class Model:
    """A masked linear regression, a counter of mask updates, and the ops train() takes."""

    def __init__(self, spec: str = SPEC) -> None:
        self.step = v1.train.get_or_create_global_step()
        inputs = tf.random.stateless_normal([16, 8], seed=[1, 2])
        weights = v1.get_variable("layer/weights", [8, 1])
        masked = pruning.apply_mask(weights, "layer")
        self.loss = tf.reduce_mean(tf.square(tf.matmul(inputs, masked) - 1.0))
        optimize = v1.train.GradientDescentOptimizer(0.05).minimize(
            self.loss, global_step=self.step
        )
        with tf.control_dependencies([optimize]):
            self.train_op = tf.identity(self.loss)
        self.updates = v1.get_variable(
            "mask_updates", [], tf.int32, v1.zeros_initializer(), trainable=False
        )
        pruning_ops = pruning.Pruning(spec, global_step=self.step)
        self.last_update = pruning_ops._last_update_step
        pruning_ops.add_pruning_summaries()
        self.mask_update_op = tf.group(
            pruning_ops.conditional_mask_update_op(), v1.assign_add(self.updates, 1)
        )

    def read(self, logdir: Path) -> dict[str, Any]:
        reader = tf.train.load_checkpoint(str(logdir))
        return {
            "step": int(reader.get_tensor("global_step")),
            "updates": int(reader.get_tensor("mask_updates")),
            "sparsity": float(np.mean(reader.get_tensor("layer/mask") == 0)),
            "last_update": int(reader.get_tensor("model_pruning/last_mask_update_step")),
        }


def test_trains_to_the_step_count_updating_masks_after_every_step(
    graph: tf.Graph, tmp_path: Path
) -> None:
    model = Model()
    loss = pruning.train(model.train_op, str(tmp_path), model.mask_update_op, number_of_steps=7)
    assert isinstance(loss, np.floating | float) and np.isfinite(loss)
    # Seven steps, seven updates; the conditional op pruned at steps 2, 4 and 6 (the last
    # update reached the target), as r1.15's schedule says.
    assert model.read(tmp_path) == {"step": 7, "updates": 7, "sparsity": 0.75, "last_update": 6}
    assert list(tmp_path.glob("events.out.tfevents.*"))
    assert (tmp_path / "checkpoint").exists()


def test_a_second_call_resumes_from_the_checkpoint(graph: tf.Graph, tmp_path: Path) -> None:
    model = Model()
    pruning.train(model.train_op, str(tmp_path), model.mask_update_op, number_of_steps=3)
    pruning.train(model.train_op, str(tmp_path), model.mask_update_op, number_of_steps=5)
    assert model.read(tmp_path)["step"] == 5
    assert model.read(tmp_path)["updates"] == 5


def test_without_logdir_nothing_is_written(
    graph: tf.Graph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    model = Model()
    pruning.train(model.train_op, None, model.mask_update_op, number_of_steps=2)
    assert list(tmp_path.iterdir()) == []


def test_the_end_of_the_input_stops_training_and_nothing_runs_after_it(graph: tf.Graph) -> None:
    model = Model()
    calls: list[int] = []

    def step_fn(sess: Any, train_op: Any, global_step: Any, kwargs: Any) -> tuple[Any, bool]:
        calls.append(len(calls))
        if len(calls) == 4:
            raise tf.errors.OutOfRangeError(None, None, "input exhausted")
        return pruning.train_step(sess, train_op, global_step, kwargs)

    updates: list[int] = []
    counting = tf.py_function(lambda: updates.append(1) or 0, [], tf.int32)
    with tf.control_dependencies([model.mask_update_op]):
        mask_update_op = tf.identity(counting)
    loss = pruning.train(model.train_op, None, mask_update_op, train_step_fn=step_fn)
    assert len(calls) == 4 and len(updates) == 3
    assert np.isfinite(loss)


def test_init_fn_and_custom_step_kwargs(graph: tf.Graph, tmp_path: Path) -> None:
    model = Model()
    seen: dict[str, Any] = {}

    def init_fn(session: Any) -> None:
        seen["initialized"] = session.run(model.step)

    def step_fn(sess: Any, train_op: Any, global_step: Any, kwargs: Any) -> tuple[Any, bool]:
        seen.setdefault("kwargs", kwargs)
        loss = sess.run(train_op)
        return loss, sess.run(global_step) >= 3

    pruning.train(
        model.train_op,
        str(tmp_path),
        model.mask_update_op,
        train_step_fn=step_fn,
        train_step_kwargs={"mine": 1},
        init_fn=init_fn,
    )
    assert seen == {"initialized": 0, "kwargs": {"mine": 1}}
    assert model.read(tmp_path)["step"] == 3


def test_traces_are_written_every_n_steps(graph: tf.Graph, tmp_path: Path) -> None:
    model = Model()
    pruning.train(
        model.train_op,
        str(tmp_path),
        model.mask_update_op,
        number_of_steps=4,
        trace_every_n_steps=2,
    )
    assert sorted(p.name for p in tmp_path.glob("tf_trace-*.json")) == [
        "tf_trace-1.json",
        "tf_trace-3.json",
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"train_op": None}, "train_op cannot be None"),
        ({"mask_update_op": None}, "mask_update_op cannot be None"),
        ({"number_of_steps": 0}, "must be either None or a positive number"),
        ({"logdir": None, "saver": "a saver"}, "Cannot provide saver because logdir=None"),
        ({"logdir": None, "summary_op": "an op"}, "Cannot provide summary_op"),
        ({"logdir": None, "trace_every_n_steps": 2}, "Cannot provide trace_every_n_steps"),
        ({"sync_optimizer": "opt", "startup_delay_steps": 3}, "startup_delay_steps must be zero"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(
    graph: tf.Graph, tmp_path: Path, arguments: dict[str, Any], message: str
) -> None:
    model = Model()
    call: dict[str, Any] = {
        "train_op": model.train_op,
        "logdir": str(tmp_path),
        "mask_update_op": model.mask_update_op,
        **arguments,
    }
    with pytest.raises(ValueError, match=message):
        pruning.train(**call)
    assert list(tmp_path.iterdir()) == []


class _StoppingHooks:
    """Stands in for a sync optimizer: `train` asks it for the session hooks it needs."""

    def make_session_run_hook(self, is_chief: bool) -> Any:
        return v1.train.StopAtStepHook(last_step=3)


def test_nothing_runs_once_a_hook_asks_the_session_to_stop(graph: tf.Graph) -> None:
    model = Model()
    updates: list[int] = []
    counting = tf.py_function(lambda: updates.append(1) or 0, [], tf.int32)
    with tf.control_dependencies([model.mask_update_op]):
        mask_update_op = tf.identity(counting)
    loss = pruning.train(
        model.train_op, None, mask_update_op, number_of_steps=10, sync_optimizer=_StoppingHooks()
    )
    # The hook stopped the session in the run that took step 3: no mask update after it.
    assert len(updates) == 2
    assert np.isfinite(loss)
