"""The tf.Module API: eager and tf.function equal graph mode; checkpoints resume exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from summaries import read_scalars

from pruning_spec import SpecError
from pruning_spec.backends import tensorflow as pruning
from pruning_spec.backends.tensorflow import Pruner

ELEMENT_SPEC = (
    "begin_pruning_step=2,pruning_frequency=3,target_sparsity=0.8,initial_sparsity=0.1,"
    "sparsity_function_begin_step=2,sparsity_function_end_step=20,threshold_decay=0.3,"
    "weight_sparsity_map=[second:0.5]"
)
BLOCK_SPEC = (
    "begin_pruning_step=0,pruning_frequency=4,target_sparsity=0.75,"
    "sparsity_function_end_step=16,block_height=2,block_width=3,block_pooling_function=MAX"
)
STEPS = 24


def weight_values(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(seed)
    return {
        "first": rng.randn(12, 10).astype(np.float32),
        "second": rng.randn(7, 9).astype(np.float32),
    }


def graph_mode_history(spec: str, values: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Masks and thresholds after each step 1..STEPS, from the r1.15-style graph API."""
    history = []
    with tf.Graph().as_default():
        step = tf.compat.v1.train.get_or_create_global_step()
        for name, value in values.items():
            weight = tf.compat.v1.get_variable(name, initializer=tf.constant(value))
            pruning.apply_mask(weight, name)
        update = pruning.Pruning(spec, global_step=step).conditional_mask_update_op()
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for t in range(1, STEPS + 1):
                session.run(step.assign(t))
                session.run(update)
                history.append(
                    _snapshot(session.run(pruning.get_masks() + pruning.get_thresholds()))
                )
    return history


def _snapshot(arrays: list[Any]) -> dict[str, np.ndarray]:
    half = len(arrays) // 2
    return {
        **{f"mask{i}": np.asarray(a) for i, a in enumerate(arrays[:half])},
        **{f"threshold{i}": np.asarray(a) for i, a in enumerate(arrays[half:])},
    }


def tf2_history(
    spec: str, values: dict[str, np.ndarray], wrap: Callable[[Any], Any]
) -> list[dict[str, np.ndarray]]:
    weights = [tf.Variable(value, name=name) for name, value in values.items()]
    pruner = Pruner(spec, weights)
    update = wrap(pruner.update)
    history = []
    for t in range(1, STEPS + 1):
        update(tf.constant(t, tf.int64))
        history.append(_snapshot([v.numpy() for v in pruner.masks + pruner.thresholds]))
    return history


@pytest.mark.parametrize("spec", [ELEMENT_SPEC, BLOCK_SPEC], ids=["element", "block"])
@pytest.mark.parametrize("wrap", [lambda f: f, tf.function], ids=["eager", "tf.function"])
def test_masks_and_thresholds_equal_graph_mode_at_every_step(
    spec: str, wrap: Callable[[Any], Any]
) -> None:
    values = weight_values()
    expected = graph_mode_history(spec, values)
    actual = tf2_history(spec, values, wrap)
    assert any(0 < float(np.mean(s["mask0"])) < 1 for s in actual)  # pruning happened
    for step, (want, got) in enumerate(zip(expected, actual, strict=True), start=1):
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{key} at step {step}")


def test_update_runs_on_r115_steps_and_reports_them() -> None:
    weight = tf.Variable(weight_values()["first"])
    pruner = Pruner("begin_pruning_step=5,end_pruning_step=20,pruning_frequency=4", [weight])
    updated = [t for t in range(0, 30) if bool(pruner.update(t))]
    assert updated == [5, 9, 13, 17]
    assert int(pruner.last_mask_update_step.numpy()) == 17


def test_update_zeroes_the_pruned_values_of_the_weight() -> None:
    weight = tf.Variable(weight_values()["first"])
    spec = (
        "begin_pruning_step=0,pruning_frequency=1,target_sparsity=0.5,sparsity_function_end_step=1"
    )
    pruner = Pruner(spec, [weight])
    pruner.update(1)
    mask = pruner.masks[0].numpy()
    assert float(np.mean(mask == 0)) == 0.5
    np.testing.assert_array_equal(weight.numpy(), weight_values()["first"] * mask)


def train(
    pruner: Pruner, weight: tf.Variable, optimizer: Any, steps: int, watch: list[float] | None
) -> None:
    data = tf.constant(np.random.RandomState(1).randn(32, 12).astype(np.float32))

    @tf.function
    def step() -> None:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(data @ pruner.masked(weight) - 1.0))
        optimizer.apply_gradients([(tape.gradient(loss, weight), weight)])
        pruner.apply_masks()
        pruner.update(optimizer.iterations)

    for _ in range(steps):
        step()
        if watch is not None:  # the largest pruned value, after every step
            watch.append(float(np.max(np.abs(weight.numpy() * (1 - pruner.masks[0].numpy())))))


SPEC = "begin_pruning_step=0,pruning_frequency=5,target_sparsity=0.7,sparsity_function_end_step=30"


def fresh(seed: int = 0, spec: str = SPEC) -> tuple[tf.Variable, Pruner, Any]:
    weight = tf.Variable(weight_values(seed)["first"], name="dense/kernel")
    optimizer = tf.keras.optimizers.SGD(0.01, momentum=0.9)
    return weight, Pruner(spec, [weight]), optimizer


def test_the_optimizer_cannot_revive_pruned_weights_between_updates() -> None:
    weight, pruner, optimizer = fresh()
    largest_pruned: list[float] = []
    train(pruner, weight, optimizer, 40, largest_pruned)
    assert largest_pruned == [0.0] * 40  # momentum keeps pushing them; apply_masks wins
    assert pruner.weight_sparsity() == {"dense/kernel": float(np.mean(weight.numpy() == 0))}
    assert float(np.mean(weight.numpy() == 0)) == pytest.approx(0.7, abs=1 / 120)


# With threshold decay the next threshold depends on the restored one, so a checkpoint
# without thresholds would resume differently.
@pytest.mark.parametrize("decay", [0.0, 0.5])
def test_a_run_resumed_from_a_checkpoint_equals_an_uninterrupted_run(
    tmp_path: Path, decay: float
) -> None:
    spec = f"{SPEC},threshold_decay={decay}"
    weight, pruner, optimizer = fresh(spec=spec)
    train(pruner, weight, optimizer, 40, None)
    uninterrupted = [weight.numpy(), pruner.masks[0].numpy(), pruner.thresholds[0].numpy()]

    weight, pruner, optimizer = fresh(spec=spec)
    train(pruner, weight, optimizer, 17, None)  # stop between two updates (15 and 20)
    checkpoint = tf.train.Checkpoint(weight=weight, pruner=pruner, optimizer=optimizer)
    path = checkpoint.save(str(tmp_path / "ckpt"))

    weight, pruner, optimizer = fresh(seed=5, spec=spec)  # restoring must replace the values
    optimizer.build([weight])
    tf.train.Checkpoint(weight=weight, pruner=pruner, optimizer=optimizer).restore(
        path
    ).assert_consumed()
    assert int(pruner.last_mask_update_step.numpy()) == 15
    train(pruner, weight, optimizer, 23, None)
    resumed = [weight.numpy(), pruner.masks[0].numpy(), pruner.thresholds[0].numpy()]
    for got, want in zip(resumed, uninterrupted, strict=True):
        np.testing.assert_array_equal(got, want)


def test_summaries_report_the_weights_own_sparsity(tmp_path: Path) -> None:
    weight, pruner, optimizer = fresh()
    train(pruner, weight, optimizer, 30, None)
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        pruner.write_summaries(optimizer.iterations)
    writer.flush()
    scalars = read_scalars(tmp_path)
    assert scalars["pruning/dense/kernel/sparsity"] == pytest.approx(
        float(np.mean(weight.numpy() == 0)), abs=1e-7
    )
    assert scalars["pruning/dense/kernel/threshold"] == pytest.approx(
        float(pruner.thresholds[0].numpy())
    )
    assert scalars["pruning/last_mask_update_step"] == 30
    assert scalars["pruning/sparsity"] == pytest.approx(0.7)


def test_register_rejects_what_cannot_be_pruned() -> None:
    weight = tf.Variable(weight_values()["first"], name="w")
    pruner = Pruner(None, [weight])
    with pytest.raises(ValueError, match="'w' is already registered"):
        pruner.register(weight)
    same_name = pruner.register(tf.Variable(weight_values()["second"], name="w"))
    assert [p.name for p in pruner.pruned_weights] == ["w", "w_1"] and same_name.name == "w_1"
    with pytest.raises(TypeError, match=r"only float weights.*int32"):
        pruner.register(tf.Variable([1, 2, 3], name="counts"))
    with pytest.raises(ValueError, match="not registered"):
        pruner.masked(tf.Variable(1.0, name="other"))
    ambiguous = Pruner("weight_sparsity_map=[dense:0.5,kernel:0.6]")
    with pytest.raises(SpecError, match="matches both"):
        ambiguous.register(tf.Variable(weight_values()["first"], name="dense/kernel"))


def test_a_custom_loop_under_mirrored_strategy_keeps_replicas_identical() -> None:
    script = Path(__file__).with_name("pruner_mirrored_run.py")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True, text=True, env=env, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "replicas": 2,
        "masks_equal": True,
        "weights_equal": True,
        "sparsity": 0.75,
        "largest_pruned": 0.0,
        "last_update": 12,
        "steps": 12,
    }


def test_a_checkpoint_restores_masks_by_name_whatever_the_order(tmp_path: Path) -> None:
    first, second = (tf.Variable(np.ones((4, 4), np.float32), name=n) for n in ("a", "b"))
    saved = Pruner(None, [first, second])
    saved.by_name["a"]["mask"].assign(np.zeros((4, 4), np.float32))
    path = tf.train.Checkpoint(pruner=saved).save(str(tmp_path / "ckpt"))
    restored = Pruner(None, [second, first])  # registered the other way round
    tf.train.Checkpoint(pruner=restored).restore(path).assert_consumed()
    assert float(restored.by_name["a"]["mask"].numpy().sum()) == 0.0
    assert float(restored.by_name["b"]["mask"].numpy().sum()) == 16.0


# force_update and sparsity: the update r1.15's `mask_update_op` does, and the schedule.
FORCE_SPEC = (
    "begin_pruning_step=100,pruning_frequency=1000,initial_sparsity=0.1,target_sparsity=0.9,"
    "sparsity_function_begin_step=0,sparsity_function_end_step=50,"
    "sparsity_function_exponent=2,weight_sparsity_map=[second:0.4]"
)


def reference_mask(values: np.ndarray, sparsity: float) -> tuple[np.ndarray, np.float32]:
    """The element-wise mask and threshold at `sparsity`, in numpy: keep the k largest |w|."""
    magnitudes = np.abs(values).ravel()
    keep = int(np.round(np.float32(magnitudes.size) * (np.float32(1) - np.float32(sparsity))))
    assert 0 < keep < magnitudes.size  # the test values are chosen so that something is pruned
    threshold = np.sort(magnitudes)[::-1][keep - 1]
    mask = (np.abs(values) >= threshold).astype(values.dtype)
    assert int(mask.sum()) == keep  # no ties in the random values
    return mask, threshold


def test_force_update_prunes_at_the_scheduled_sparsity_whatever_the_predicate() -> None:
    values = weight_values()
    weights = [tf.Variable(value, name=name) for name, value in values.items()]
    pruner = Pruner(FORCE_SPEC, weights)
    spec = pruner.spec
    for step in (20, 33):  # before begin_pruning_step, and only 13 steps after the last
        assert not bool(pruner.update(step))  # r1.15's predicate says no
        pruner.force_update(step)
        assert int(pruner.last_mask_update_step.numpy()) == step
        for pruned in pruner.pruned_weights:
            sparsity = spec.sparsity_at(step, pruned.name)
            mask, threshold = reference_mask(values[pruned.name], sparsity)
            np.testing.assert_array_equal(pruned.mask.numpy(), mask, err_msg=pruned.name)
            assert pruned.threshold.numpy() == threshold
            np.testing.assert_array_equal(pruned.weight.numpy(), values[pruned.name] * mask)
    assert spec.sparsity_at(33, "first") != spec.sparsity_at(33, "second")


def test_force_update_works_inside_tf_function() -> None:
    values = weight_values()
    weight = tf.Variable(values["first"], name="first")
    pruner = Pruner(FORCE_SPEC, [weight])
    tf.function(pruner.force_update)(tf.constant(40, tf.int64))
    mask, _ = reference_mask(values["first"], pruner.spec.sparsity_at(40))
    np.testing.assert_array_equal(pruner.masks[0].numpy(), mask)
    assert int(pruner.last_mask_update_step.numpy()) == 40


@pytest.mark.parametrize("name", [None, "first", "second"])
def test_sparsity_is_the_specs_schedule_bit_for_bit(name: str | None) -> None:
    weights = [tf.Variable(value, name=n) for n, value in weight_values().items()]
    pruner = Pruner(FORCE_SPEC, weights)
    steps = [*range(-3, 60), 10_000]
    scheduled = [pruner.sparsity(step, name) for step in steps]
    assert all(value.dtype == tf.float32 for value in scheduled)
    expected = [pruner.spec.sparsity_at(step, name) for step in steps]
    assert [float(value.numpy()) for value in scheduled] == expected
    traced = tf.function(lambda step: pruner.sparsity(step, name))
    assert [float(traced(tf.constant(step, tf.int64)).numpy()) for step in steps] == expected


def test_a_rule_of_sparsity_zero_keeps_its_weight_dense_in_a_one_shot_spec() -> None:
    dense = tf.Variable(weight_values(1)["first"], name="logits/kernel")
    pruned = tf.Variable(weight_values(2)["first"], name="hidden/kernel")
    pruner = Pruner(
        "initial_sparsity=0.5,target_sparsity=0.5,weight_sparsity_map=[logits:0]", [dense, pruned]
    )
    pruner.update(10)  # the first update r1.15 runs: max(begin_pruning_step, pruning_frequency)
    sparsity = pruner.weight_sparsity()
    assert sparsity["logits/kernel"] == 0.0
    assert sparsity["hidden/kernel"] == pytest.approx(0.5, abs=0.01)
