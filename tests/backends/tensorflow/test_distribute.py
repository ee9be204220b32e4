"""Keras pruning under tf.distribute: masks agree on every replica and with a single device.

Each run happens in a subprocess (`distributed_run.py`): TensorFlow fixes its devices when
it first initializes, so two logical CPUs for `MirroredStrategy` cannot be configured in
the pytest process (it has initialized TensorFlow already), and each
`MultiWorkerMirroredStrategy` worker must be a process of its own with its own `TF_CONFIG`.
All runs start together when the module's first test asks for one; they write `.npz`
files of masks, thresholds and weights (at the end, and after every step) that the tests
compare bit for bit.

Training with a learning rate > 0 on one and on two replicas differs in the last bits
(gradients are summed in another order), so runs are compared with a single-device run at
learning rate 0, where the weights change only by the pruning's own zeroing; runs at a
learning rate > 0 are compared replica with replica.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).with_name("distributed_run.py")
# Seconds for each run (both workers of a multi-worker run together); ten processes share
# the machine's cores.
TIMEOUT = 240.0
LEARNING_RATE = 0.05

# What distributed_run.py's spec and data give ("begin_pruning_step=0,pruning_frequency=4,
# target_sparsity=0.75,sparsity_function_end_step=40"; 8 steps an epoch, 6 epochs).
SHAPES = {"hidden/kernel": (16, 32), "output/kernel": (32, 4)}
TARGET = 0.75
FREQUENCY = 4
END_STEP = 40
STEPS = 48
EPOCHS = 6

Results = dict[str, np.ndarray]
GLOBAL = "-global"  # runs of distributed_run.GLOBAL_SPEC: one threshold over both kernels
GLOBAL_FLOOR = 0.1  # its min_weight_density
N_M = "-n_m"  # runs of distributed_run.N_M_SPEC: the hidden kernel 2:4 along its inputs


@dataclasses.dataclass
class Launch:
    """One run: a process, or the two workers of a multi-worker run."""

    label: str
    processes: list[subprocess.Popen[bytes]]
    outputs: list[Path]
    logs: list[Path]
    deadline: float
    _results: list[Results] | None = None

    def results(self) -> list[Results]:
        """What each process saved; fails with every process's stderr if one did not finish."""
        if self._results is None:
            self._results = self._wait()
        return self._results

    def _wait(self) -> list[Results]:
        # Polled, not waited on in turn: a worker whose peer died waits for it forever.
        while True:
            codes = [process.poll() for process in self.processes]
            if any(code for code in codes):
                self.stop()
                pytest.fail(
                    f"{self.label}: exit codes {codes} (None: still running, so stopped)\n"
                    f"{self._stderr()}"
                )
            if all(code == 0 for code in codes):
                break
            if time.monotonic() > self.deadline:
                self.stop()
                pytest.fail(f"{self.label}: no result within {TIMEOUT:.0f} s\n{self._stderr()}")
            time.sleep(0.1)
        results = []
        for output in self.outputs:
            with np.load(output) as data:
                results.append({key: data[key] for key in data.files})
        return results

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    def _stderr(self, limit: int = 6000) -> str:
        parts = []
        for index, log in enumerate(self.logs):
            text = log.read_text(errors="replace") if log.exists() else "(no stderr file)"
            if len(text) > limit:
                text = f"[... {len(text) - limit} characters cut; all in {log}]\n{text[-limit:]}"
            parts.append(f"--- stderr of process {index} ---\n{text}")
        return "\n".join(parts)


def _environment(tf_config: dict[str, object] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["KERAS_BACKEND"] = "tensorflow"
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
        for proxy in ("http_proxy", "https_proxy", "grpc_proxy", "all_proxy"):
            env.pop(proxy, None)  # the workers talk over localhost only (gRPC honours these)
            env.pop(proxy.upper(), None)
    return env


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("localhost", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _launch(directory: Path, mode: str, learning_rate: float, scope: str = "") -> Launch:
    label = f"{mode}-lr{learning_rate}{scope}"
    if mode == "multiworker":
        cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
        configs: list[dict[str, object] | None] = [
            {"cluster": cluster, "task": {"type": "worker", "index": index}} for index in (0, 1)
        ]
    else:
        configs = [None]
    processes, outputs, logs = [], [], []
    for index, config in enumerate(configs):
        output = directory / f"{label}-{index}.npz"
        log = directory / f"{label}-{index}.stderr"
        command = [sys.executable, str(SCRIPT), mode, "--lr", str(learning_rate)]
        command += {GLOBAL: ["--global"], N_M: ["--n-m"]}.get(scope, [])
        with log.open("wb") as stderr:
            processes.append(
                subprocess.Popen(
                    [*command, "--out", str(output)],
                    env=_environment(config),
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            )
        outputs.append(output)
        logs.append(log)
    return Launch(label, processes, outputs, logs, time.monotonic() + TIMEOUT)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Launch]]:
    """Every run, started at once (they mostly wait on imports): label -> `Launch`."""
    directory = tmp_path_factory.mktemp("distribute")
    launches: dict[str, Launch] = {}
    try:
        for mode, learning_rate, scope in [
            ("single", 0.0, ""),
            ("mirrored", 0.0, ""),
            ("mirrored", LEARNING_RATE, ""),
            ("multiworker", 0.0, ""),
            ("multiworker", LEARNING_RATE, ""),
            ("mirrored", 0.0, GLOBAL),
            ("multiworker", 0.0, GLOBAL),
            ("mirrored", LEARNING_RATE, N_M),
        ]:
            launch = _launch(directory, mode, learning_rate, scope)
            launches[launch.label] = launch
        yield launches
    finally:
        for launch in launches.values():
            launch.stop()


def _single(runs: dict[str, Launch]) -> Results:
    (results,) = runs["single-lr0.0"].results()
    return results


def _mirrored(runs: dict[str, Launch], learning_rate: float) -> Results:
    (results,) = runs[f"mirrored-lr{learning_rate}"].results()
    return results


def _workers(runs: dict[str, Launch], learning_rate: float) -> list[Results]:
    return runs[f"multiworker-lr{learning_rate}"].results()


# Comparisons.


def assert_bit_identical(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Same dtype, shape and bytes (so 0.0 and -0.0 differ, and NaN equals itself)."""
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if actual.tobytes() == expected.tobytes():
        return
    size = max(actual.size, 1)
    differ = np.frombuffer(actual.tobytes(), np.uint8).reshape(size, -1) != np.frombuffer(
        expected.tobytes(), np.uint8
    ).reshape(size, -1)
    where = np.flatnonzero(differ.any(axis=1))
    first = int(where[0])
    pytest.fail(
        f"{what}: {where.size} of {actual.size} values differ; first at flat index {first}: "
        f"{actual.reshape(-1)[first]!r} != {expected.reshape(-1)[first]!r}"
    )


def per_replica(results: Results, replica: int) -> dict[str, np.ndarray]:
    """The values a process saved for one of its replicas, by name without the replica."""
    suffix = f"/{replica}"
    values = {key[: -len(suffix)]: value for key, value in results.items() if key.endswith(suffix)}
    assert values, f"no values saved for replica {replica}"
    return values


def shared(results: Results) -> dict[str, np.ndarray]:
    """What a process saved once, not per replica (minus the replica counts)."""
    return {
        key: value
        for key, value in results.items()
        if not key.rsplit("/", 1)[-1].isdigit() and key not in ("num_replicas", "local_replicas")
    }


def assert_same_run(
    actual: Results,
    actual_replica: int,
    expected: Results,
    expected_replica: int,
    what: str,
    *,
    signed_zeros: bool = True,
) -> None:
    """Every mask, threshold, weight, trace and step of two replicas' runs, bit for bit.

    `signed_zeros=False` compares -0.0 as 0.0: across devices a pruned weight's zero takes
    the sign of `-0 * gradient`, and a gradient summed in another order may be -0.0 or +0.0.
    """
    for mine, theirs in [
        (per_replica(actual, actual_replica), per_replica(expected, expected_replica)),
        (shared(actual), shared(expected)),
    ]:
        assert sorted(mine) == sorted(theirs), what
        for key in sorted(mine):
            a, b = mine[key], theirs[key]
            if not signed_zeros and a.dtype.kind == "f" and b.dtype.kind == "f":
                a, b = a + a.dtype.type(0), b + b.dtype.type(0)
            assert_bit_identical(a, b, f"{what}: {key}")


def assert_pruned_per_spec(results: Results, replica: int, learning_rate: float) -> None:
    """One replica's pruning did what the spec says, at every step and at the end."""
    values = per_replica(results, replica)
    assert int(results["iterations"]) == STEPS
    steps = np.arange(1, STEPS + 1)
    expected_updates = steps // FREQUENCY * FREQUENCY  # an update at every 4th step
    np.testing.assert_array_equal(values["trace/last_mask_update_step"], expected_updates)
    for layer in ("hidden", "output"):
        assert int(values[f"sequential/pruned_{layer}/last_mask_update_step"]) == STEPS
    np.testing.assert_array_equal(
        results["history_sparsity"][-1], TARGET, err_msg="the callback's logged sparsity"
    )
    assert results["history_sparsity"].shape == (EPOCHS,)

    for name, shape in SHAPES.items():
        mask, weight = values[f"{name}/mask"], values[f"{name}/weight"]
        threshold = values[f"{name}/threshold"]
        size = int(np.prod(shape))
        pruned = round(TARGET * size)
        assert mask.shape == weight.shape == shape, name
        assert set(np.unique(mask).tolist()) == {0.0, 1.0}, name
        assert int((mask == 0).sum()) == pruned, f"{name}: {(mask == 0).sum()} of {size} pruned"
        assert float(results[f"weight_sparsity/{name}"]) == TARGET, name
        assert not weight[mask == 0].any(), f"{name}: pruned weights are not zero"
        assert weight[mask == 1].all(), f"{name}: a kept weight is zero"
        assert threshold > 0, name
        assert (np.abs(weight[mask == 1]) >= threshold).all(), f"{name}: kept below threshold"

        masks, weights = values[f"trace/{name}/mask"], values[f"trace/{name}/weight"]
        assert masks.shape == weights.shape == (STEPS, *shape), name
        for step, (step_mask, step_weight) in enumerate(zip(masks, weights, strict=True), 1):
            assert not step_weight[step_mask == 0].any(), f"{name}: pruned weight at step {step}"
        zeros = (masks == 0).sum(axis=(1, 2))
        changed = steps[1:][(masks[1:] != masks[:-1]).any(axis=(1, 2))]
        assert set(changed.tolist()) <= set(range(0, STEPS + 1, FREQUENCY)), (name, changed)
        assert len(changed) >= 5, f"{name}: the mask changed only at steps {changed}"
        assert (np.diff(zeros) >= 0).all(), f"{name}: pruned counts {zeros}"
        assert zeros[END_STEP - 1] == pruned, f"{name}: at step {END_STEP}, {zeros}"
        assert 0 < zeros[FREQUENCY - 1] < pruned, f"{name}: after the first update, {zeros}"

        if learning_rate == 0.0:
            # The weights only lose pruned values, so the mask is the top 25% of the initial
            # magnitudes, and the threshold the smallest magnitude kept.
            magnitudes = np.abs(results[f"initial/{name}"])
            kept = size - pruned
            kth_largest = np.sort(magnitudes, axis=None)[size - kept]
            assert_bit_identical(threshold, kth_largest, f"{name}: threshold")
            assert_bit_identical(
                mask, (magnitudes >= kth_largest).astype(np.float32), f"{name}: mask"
            )
            # Kept values are the initial ones; pruned ones are zero (of either sign: the
            # optimizer's `w - 0 * g` may flip a -0.0, so zeros are compared as +0.0).
            expected = np.where(mask == 1, results[f"initial/{name}"], np.float32(0))
            assert_bit_identical(weight + np.float32(0), expected, f"{name}: weight")


# MirroredStrategy over two logical CPUs.


def test_mirrored_run_has_two_local_replicas(runs: dict[str, Launch]) -> None:
    for learning_rate in (0.0, LEARNING_RATE):
        results = _mirrored(runs, learning_rate)
        assert int(results["num_replicas"]) == 2
        assert int(results["local_replicas"]) == 2


@pytest.mark.parametrize("learning_rate", [0.0, LEARNING_RATE])
def test_mirrored_replicas_are_bit_identical(runs: dict[str, Launch], learning_rate: float) -> None:
    results = _mirrored(runs, learning_rate)
    assert_same_run(results, 1, results, 0, "replica 1 vs replica 0")


@pytest.mark.parametrize("learning_rate", [0.0, LEARNING_RATE])
def test_mirrored_pruning_follows_the_spec(runs: dict[str, Launch], learning_rate: float) -> None:
    results = _mirrored(runs, learning_rate)
    for replica in (0, 1):
        assert_pruned_per_spec(results, replica, learning_rate)


def test_mirrored_matches_a_single_device(runs: dict[str, Launch]) -> None:
    single, mirrored = _single(runs), _mirrored(runs, 0.0)
    assert int(single["num_replicas"]) == 1
    assert_pruned_per_spec(single, 0, 0.0)
    for replica in (0, 1):
        assert_same_run(
            mirrored,
            replica,
            single,
            0,
            f"mirrored replica {replica} vs single",
            signed_zeros=False,
        )


# MultiWorkerMirroredStrategy: two worker processes on localhost, one replica each.


def test_multi_worker_run_has_two_workers_of_one_replica(runs: dict[str, Launch]) -> None:
    for learning_rate in (0.0, LEARNING_RATE):
        for results in _workers(runs, learning_rate):
            assert int(results["num_replicas"]) == 2  # one cluster, not two lone workers
            assert int(results["local_replicas"]) == 1


@pytest.mark.parametrize("learning_rate", [0.0, LEARNING_RATE])
def test_multi_worker_workers_are_bit_identical(
    runs: dict[str, Launch], learning_rate: float
) -> None:
    first, second = _workers(runs, learning_rate)
    assert_same_run(second, 0, first, 0, "worker 1 vs worker 0")


@pytest.mark.parametrize("learning_rate", [0.0, LEARNING_RATE])
def test_multi_worker_pruning_follows_the_spec(
    runs: dict[str, Launch], learning_rate: float
) -> None:
    for results in _workers(runs, learning_rate):
        assert_pruned_per_spec(results, 0, learning_rate)


def test_multi_worker_matches_a_single_device(runs: dict[str, Launch]) -> None:
    single = _single(runs)
    for index, results in enumerate(_workers(runs, 0.0)):
        assert_same_run(results, 0, single, 0, f"worker {index} vs single", signed_zeros=False)


# The runs at a learning rate > 0 really train (their agreement is not that of fixed weights).


@pytest.mark.parametrize("mode", ["mirrored", "multiworker"])
def test_training_moves_the_kept_weights(runs: dict[str, Launch], mode: str) -> None:
    (trained, *_), (fixed, *_) = (
        runs[f"{mode}-lr{LEARNING_RATE}"].results(),
        runs[f"{mode}-lr0.0"].results(),
    )
    for name in SHAPES:
        initial = trained[f"initial/{name}"]
        assert_bit_identical(initial, fixed[f"initial/{name}"], f"{name}: initial")
        mask, weight = trained[f"{name}/mask/0"], trained[f"{name}/weight/0"]
        kept = mask == 1
        assert (weight[kept] != initial[kept]).mean() > 0.9, f"{name}: barely trained"
        assert trained[f"{name}/threshold/0"] != fixed[f"{name}/threshold/0"], name


# Global magnitude pruning: one threshold over both kernels, found the same on every replica.


def test_global_pruning_is_bit_identical_on_every_replica_and_worker(
    runs: dict[str, Launch],
) -> None:
    (mirrored,) = runs[f"mirrored-lr0.0{GLOBAL}"].results()
    assert_same_run(mirrored, 1, mirrored, 0, "global: replica 1 vs replica 0")
    for index, worker in enumerate(runs[f"multiworker-lr0.0{GLOBAL}"].results()):
        assert_same_run(
            worker, 0, mirrored, 0, f"global: worker {index} vs mirrored", signed_zeros=False
        )


def test_global_pruning_ranks_both_kernels_together(runs: dict[str, Launch]) -> None:
    """At learning rate 0 the masks are the group's top values of the initial weights."""
    (results,) = runs[f"mirrored-lr0.0{GLOBAL}"].results()
    values = per_replica(results, 0)
    initial = {name: np.abs(results[f"initial/{name}"]).astype(np.float64) for name in SHAPES}
    total = sum(m.size for m in initial.values())
    floors = {name: int(np.ceil(m.size * GLOBAL_FLOOR)) for name, m in initial.items()}
    floor_thresholds = {
        name: np.sort(m, axis=None)[::-1][floors[name] - 1] for name, m in initial.items()
    }
    pooled = np.sort(
        np.concatenate([m[m < floor_thresholds[name]] for name, m in initial.items()]), axis=None
    )[::-1]
    kept = round(total * (1 - TARGET)) - sum(floors.values())
    threshold = pooled[kept - 1]
    thresholds = set()
    for name, magnitudes in initial.items():
        want = (magnitudes >= threshold) | (magnitudes >= floor_thresholds[name])
        assert_bit_identical(values[f"{name}/mask"], want.astype(np.float32), f"{name}: mask")
        thresholds.add(float(values[f"{name}/threshold"]))
    assert thresholds == {float(np.float32(threshold))}
    sparsities = [float(results[f"weight_sparsity/{name}"]) for name in SHAPES]
    assert len(set(sparsities)) == 2  # each kernel as its magnitudes say, not both at 0.75


# N:M: the top 2 of every 4, chosen the same on both replicas while the weights train.


def test_n_m_pruning_is_bit_identical_on_both_replicas_and_keeps_its_pattern(
    runs: dict[str, Launch],
) -> None:
    (results,) = runs[f"mirrored-lr{LEARNING_RATE}{N_M}"].results()
    assert int(results["num_replicas"]) == 2
    assert_same_run(results, 1, results, 0, "n_m: replica 1 vs replica 0")
    values = per_replica(results, 0)
    masks = values["trace/hidden/kernel/mask"]  # after every step; updates every 4th
    groups = masks.reshape(STEPS, SHAPES["hidden/kernel"][0] // 4, 4, -1).sum(axis=2)
    # Dense until the first update (step 4: r1.15's last update 0, plus the frequency).
    assert (groups[: FREQUENCY - 1] == 4).all(), "pruned before the first update"
    assert (groups[FREQUENCY - 1 :] == 2).all(), "a group of 4 does not keep exactly 2"
    assert float(results["weight_sparsity/hidden/kernel"]) == 0.5
    assert float(results["weight_sparsity/output/kernel"]) == TARGET  # still the schedule
