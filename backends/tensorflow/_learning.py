"""`train(train_op, logdir, mask_update_op, ...)`: r1.15's `learning.train`, on our own loop.

r1.15 wrapped `slim.learning.train` (a `Supervisor` loop) so that the mask
update ran after every training step. This keeps its signature and behaviour on
`tf.compat.v1.train.MonitoredTrainingSession` instead of the `tf-slim` package:
tf-slim's last release is from 2020 and its loop is built on the deprecated
`Supervisor`; r1.15's wrapper also unpacked slim's return value, a float, as a
pair, so it failed after the last step. Here the loop stops at
`number_of_steps`, runs the mask update after every step (the last one
included), saves checkpoints and summaries from the chief, and runs nothing
once a hook has asked the session to stop.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import tensorflow as tf
from tensorflow.python.client import timeline
from tensorflow.python.platform import tf_logging

v1 = tf.compat.v1

# slim's "use the default" marker, distinct from None, which means "none" for several arguments.
_USE_DEFAULT: Any = 0

TrainStepFn = Callable[[Any, Any, Any, Mapping[str, Any]], tuple[Any, bool]]


def train_step(
    sess: Any, train_op: Any, global_step: Any, train_step_kwargs: Mapping[str, Any]
) -> tuple[Any, bool]:
    """One gradient step, slim's contract: returns (loss, whether training should stop).

    `train_step_kwargs` may hold the boolean tensors `should_stop`, `should_log` and
    `should_trace` (with `logdir`, and optionally `summary_writer`), as `train` makes them.
    """
    started = time.time()
    options, metadata, traced_step = None, None, 0
    if "should_trace" in train_step_kwargs:
        if "logdir" not in train_step_kwargs:
            raise ValueError("logdir must be present in train_step_kwargs when should_trace is")
        should_trace, step_before = sess.run([train_step_kwargs["should_trace"], global_step])
        if should_trace:
            options = v1.RunOptions(trace_level=v1.RunOptions.FULL_TRACE)
            metadata = v1.RunMetadata()
            traced_step = int(step_before) + 1  # named after the step the run completes
    total_loss, step = sess.run([train_op, global_step], options=options, run_metadata=metadata)
    elapsed = time.time() - started
    if _stop_requested(sess):
        return total_loss, True
    if metadata is not None:
        _write_trace(metadata, traced_step, train_step_kwargs)
    if "should_log" in train_step_kwargs and sess.run(train_step_kwargs["should_log"]):
        tf_logging.info("global step %d: loss = %.4f (%.3f sec/step)", step, total_loss, elapsed)
    should_stop = (
        bool(sess.run(train_step_kwargs["should_stop"]))
        if ("should_stop" in train_step_kwargs)
        else False
    )
    return total_loss, should_stop


def train(
    train_op: Any,
    logdir: str | None,
    mask_update_op: Any,
    train_step_fn: TrainStepFn = train_step,
    train_step_kwargs: Mapping[str, Any] = _USE_DEFAULT,
    log_every_n_steps: int = 1,
    graph: tf.Graph | None = None,
    master: str = "",
    is_chief: bool = True,
    global_step: Any = None,
    number_of_steps: int | None = None,
    init_op: Any = _USE_DEFAULT,
    init_feed_dict: Mapping[Any, Any] | None = None,
    local_init_op: Any = _USE_DEFAULT,
    init_fn: Callable[[Any], None] | None = None,
    ready_op: Any = _USE_DEFAULT,
    summary_op: Any = _USE_DEFAULT,
    save_summaries_secs: int = 600,
    summary_writer: Any = _USE_DEFAULT,
    startup_delay_steps: int = 0,
    saver: Any = None,
    save_interval_secs: int = 600,
    sync_optimizer: Any = None,
    session_config: Any = None,
    trace_every_n_steps: int | None = None,
) -> Any:
    """Trains until `number_of_steps` (or the input ends), updating masks after every step.

    r1.15's `learning.train` arguments, with slim's meaning: `init_op`, `local_init_op`,
    `ready_op`, `summary_op` and `summary_writer` left at their default are made
    for you, and `None` means none; with `logdir=None` nothing is written.
    `init_fn(session)` runs once after initialization. Returns the last loss.
    """
    _check_arguments(
        train_op, logdir, mask_update_op, summary_op, saver, trace_every_n_steps, number_of_steps
    )
    optimizers = _as_list(sync_optimizer)
    if optimizers and startup_delay_steps > 0:
        raise ValueError("startup_delay_steps must be zero when sync_optimizer is supplied.")
    graph = graph or v1.get_default_graph()
    with graph.as_default():
        step = global_step if global_step is not None else v1.train.get_or_create_global_step()
        if train_step_kwargs is _USE_DEFAULT:
            train_step_kwargs = _default_step_kwargs(
                step, number_of_steps, log_every_n_steps, is_chief, trace_every_n_steps, logdir
            )
        scaffold = _scaffold(init_op, init_feed_dict, local_init_op, init_fn, ready_op, saver)
        hooks = [opt.make_session_run_hook(is_chief) for opt in optimizers]
        chief_hooks = _chief_hooks(logdir, scaffold, save_interval_secs)
        summaries = v1.summary.merge_all() if summary_op is _USE_DEFAULT else summary_op
        writer = _summary_writer(logdir, summary_writer)
        if summaries is not None and save_summaries_secs and writer is not None:
            chief_hooks.append(
                v1.train.SummarySaverHook(
                    save_secs=save_summaries_secs, summary_writer=writer, summary_op=summaries
                )
            )
        with v1.train.MonitoredTrainingSession(
            master=master,
            is_chief=is_chief,
            checkpoint_dir=logdir,
            scaffold=scaffold,
            hooks=hooks,
            chief_only_hooks=chief_hooks,
            save_checkpoint_secs=None,
            save_checkpoint_steps=None,
            save_summaries_steps=None,
            save_summaries_secs=None,
            log_step_count_steps=None,
            config=session_config,
        ) as sess:
            if not is_chief and startup_delay_steps > 0:
                _wait_for_step(sess, step, min(startup_delay_steps, number_of_steps or sys.maxsize))
            return _loop(sess, train_step_fn, train_op, step, train_step_kwargs, mask_update_op)


def _loop(
    sess: Any,
    train_step_fn: TrainStepFn,
    train_op: Any,
    step: Any,
    train_step_kwargs: Mapping[str, Any],
    mask_update_op: Any,
) -> Any:
    total_loss = None
    try:
        while not sess.should_stop():
            total_loss, should_stop = train_step_fn(sess, train_op, step, train_step_kwargs)
            if _stop_requested(sess):
                break  # a hook asked to stop: the session runs nothing more
            sess.run(mask_update_op)
            if should_stop:
                tf_logging.info("Stopping Training.")
                break
    except tf.errors.OutOfRangeError as error:  # the input ran out: a normal end, as slim's
        tf_logging.info("Caught OutOfRangeError. Stopping Training. %s", error)
    return total_loss


def _check_arguments(
    train_op: Any,
    logdir: str | None,
    mask_update_op: Any,
    summary_op: Any,
    saver: Any,
    trace_every_n_steps: int | None,
    number_of_steps: int | None,
) -> None:
    if train_op is None:
        raise ValueError("train_op cannot be None.")
    if mask_update_op is None:
        raise ValueError(
            "mask_update_op cannot be None: pass Pruning(...).conditional_mask_update_op()"
        )
    if logdir is None:
        if summary_op is not _USE_DEFAULT and summary_op is not None:
            raise ValueError("Cannot provide summary_op because logdir=None")
        if saver is not None:
            raise ValueError("Cannot provide saver because logdir=None")
        if trace_every_n_steps is not None:
            raise ValueError("Cannot provide trace_every_n_steps because logdir=None")
    if number_of_steps is not None and number_of_steps <= 0:
        raise ValueError("`number_of_steps` must be either None or a positive number.")


def _as_list(sync_optimizer: Any) -> list[Any]:
    if sync_optimizer is None:
        return []
    if isinstance(sync_optimizer, Sequence):
        return list(sync_optimizer)
    return [sync_optimizer]


def _default_step_kwargs(
    step: Any,
    number_of_steps: int | None,
    log_every_n_steps: int,
    is_chief: bool,
    trace_every_n_steps: int | None,
    logdir: str | None,
) -> dict[str, Any]:
    with tf.name_scope("train_step"):
        kwargs: dict[str, Any] = {
            "should_stop": tf.greater_equal(step, number_of_steps)
            if number_of_steps
            else tf.constant(False)
        }
        if log_every_n_steps > 0:
            kwargs["should_log"] = tf.equal(tf.math.floormod(step, log_every_n_steps), 0)
        if is_chief and trace_every_n_steps is not None:
            kwargs["should_trace"] = tf.equal(tf.math.floormod(step, trace_every_n_steps), 0)
            kwargs["logdir"] = logdir
    return kwargs


def _scaffold(
    init_op: Any,
    init_feed_dict: Mapping[Any, Any] | None,
    local_init_op: Any,
    init_fn: Callable[[Any], None] | None,
    ready_op: Any,
    saver: Any,
) -> Any:
    """slim's defaults are the Scaffold's; slim's None ("none") is an op that does nothing."""

    def chosen(value: Any, none: Callable[[], Any]) -> Any:
        if value is _USE_DEFAULT:
            return None
        return none() if value is None else value

    return v1.train.Scaffold(
        init_op=chosen(init_op, tf.no_op),
        init_feed_dict=init_feed_dict,
        init_fn=(lambda _scaffold, session: init_fn(session)) if init_fn else None,
        ready_op=chosen(ready_op, lambda: tf.constant([], dtype=tf.string)),
        local_init_op=chosen(local_init_op, tf.no_op),
        saver=saver,
    )


def _chief_hooks(logdir: str | None, scaffold: Any, save_interval_secs: int) -> list[Any]:
    if not logdir or not save_interval_secs:
        return []
    return [v1.train.CheckpointSaverHook(logdir, save_secs=save_interval_secs, scaffold=scaffold)]


def _summary_writer(logdir: str | None, summary_writer: Any) -> Any:
    """The writer summaries go to: the given one, the logdir's (by default), or None."""
    if summary_writer is not _USE_DEFAULT:
        return summary_writer
    return v1.summary.FileWriterCache.get(logdir) if logdir else None


def _stop_requested(sess: Any) -> bool:
    should_stop = getattr(sess, "should_stop", None)
    return bool(should_stop()) if callable(should_stop) else False


def _wait_for_step(sess: Any, step: Any, target: int) -> None:
    """A non-chief worker waits until the chief has taken `target` steps."""
    while int(sess.run(step)) < target:
        time.sleep(1.0)


def _write_trace(metadata: Any, step: int, train_step_kwargs: Mapping[str, Any]) -> None:
    trace = timeline.Timeline(metadata.step_stats).generate_chrome_trace_format()
    path = os.path.join(train_step_kwargs["logdir"], f"tf_trace-{step}.json")
    tf_logging.info("Writing trace to %s", path)
    with tf.io.gfile.GFile(path, "w") as trace_file:
        trace_file.write(trace)
    writer = train_step_kwargs.get("summary_writer")
    if writer is not None:
        writer.add_run_metadata(metadata, f"run_metadata-{step}")
