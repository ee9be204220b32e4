"""Bad weights through every API: size 0, NaN and infinite values.

The rule (README, "Differences from tf.contrib.model_pruning"): a NaN magnitude ranks
below every number, zero included, so a NaN value is always pruned; the threshold is the
k-th largest magnitude among the numbers, or 0 when k exceeds how many numbers there are
(every number is then kept). +inf and -inf have magnitude +inf, above every finite value.
With k = 0 the threshold is just above the largest number's magnitude and at least the
smallest normal value, or +inf when that is infinite. A block's AVG or MAX score is NaN
when the block holds a NaN. Threshold decay never multiplies an infinite threshold by 0.
A weight of size 0 is refused, by name.

`reference_*` implement the rule in numpy; the `top_k` sort (small tensors), radix select
(large tensors, and small ones when called directly) and every API are checked against it.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from pruning_spec import NormalizedSpec, parse_hparams
from pruning_spec.backends import tensorflow as pruning
from pruning_spec.backends.tensorflow import Pruner, _kernels
from pruning_spec.backends.tensorflow import keras as pks

v1 = tf.compat.v1
BFLOAT16 = tf.bfloat16.as_numpy_dtype
DTYPES = (np.float16, BFLOAT16, np.float32, np.float64)
UNSIGNED = {2: np.uint16, 4: np.uint32, 8: np.uint64}
# Quiet and signalling NaNs of both signs; the first ones of float32 and float64 share
# the top 16 bits with +inf (their payload lies in the lower bits only).
NAN_BITS = {
    "float16": [0x7C01, 0x7E00, 0xFE00, 0x7FFF],
    "bfloat16": [0x7F81, 0x7FC0, 0xFFC0, 0x7FFF],
    "float32": [0x7F800001, 0x7F80FFFF, 0x7FC00000, 0xFFC00000, 0x7FFFFFFF],
    "float64": [0x7FF0000000000001, 0x7FF0000100000000, 0x7FF8000000000000, 0xFFF8000000000000],
}
INF = math.inf
# The small weights here are far from any sparsity; the spec's lints would say so.
pytestmark = pytest.mark.filterwarnings("ignore:.*weight-too-small:UserWarning")


def dtype_id(dtype: Any) -> str:
    return np.dtype(dtype).name


def nans(dtype: Any, count: int) -> np.ndarray:
    bits = NAN_BITS[dtype_id(dtype)]
    unsigned = UNSIGNED[np.dtype(dtype).itemsize]
    return np.array([bits[i % len(bits)] for i in range(count)], unsigned).view(dtype)


def of(dtype: Any, values: list[float]) -> np.ndarray:
    return np.asarray(values, np.float64).astype(dtype)


def next_up(value: Any, dtype: Any) -> Any:
    """The next representable value above a non-negative finite `value` of `dtype`."""
    unsigned = UNSIGNED[np.dtype(dtype).itemsize]
    return (np.array([value], dtype).view(unsigned) + 1).view(dtype)[0]


def keep_count(n: int, sparsity: float) -> int:
    """r1.15's k = round_half_even(float32(n) * (1 - float32(s))), in numpy float32."""
    return int(np.round(np.float32(n) * (np.float32(1.0) - np.float32(sparsity))))


# ---------------------------------------------------------------------------------------
# The documented rule, in numpy.


def widened(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # a signalling NaN raises "invalid" when converted
        return np.asarray(values).astype(np.float64)


def reference_kth(values: np.ndarray, k: int) -> float:
    """The k-th largest magnitude, NaN below every number; 0 when k exceeds the numbers."""
    magnitudes = np.abs(widened(values).ravel())
    numbers = np.sort(magnitudes[~np.isnan(magnitudes)])[::-1]
    return float(numbers[k - 1]) if k <= numbers.size else 0.0


def reference_threshold(
    scores: np.ndarray, sparsity: float, old: float, decay: float, dtype: Any
) -> Any:
    """The new threshold from the scores (|w|, or the pooled block scores)."""
    k = keep_count(scores.size, sparsity)
    if k:
        current = dtype(reference_kth(scores, k))
    else:
        magnitudes = np.abs(widened(scores).ravel())
        numbers = magnitudes[~np.isnan(magnitudes)]
        largest = dtype(numbers.max() if numbers.size else 0.0)
        normal = np.finfo(dtype).tiny  # subnormals may compare as 0
        current = largest if np.isinf(largest) else dtype(max(next_up(largest, dtype), normal))
    if decay == 0.0:
        return current
    return dtype(current * dtype(1.0 - decay)) + dtype(dtype(old) * dtype(decay))


def reference_pool(
    weights: np.ndarray, block: tuple[int, int], pooling: str, dtype: Any
) -> np.ndarray:
    """Block scores aligned at index 0; a NaN in a block makes its score NaN."""
    magnitudes = np.abs(widened(weights))
    (height, width), (bh, bw) = magnitudes.shape, block
    rows, cols = -(-height // bh), -(-width // bw)
    pooled = np.empty((rows, cols))
    for i in range(rows):
        for j in range(cols):
            cell = magnitudes[i * bh : (i + 1) * bh, j * bw : (j + 1) * bw]
            with np.errstate(invalid="ignore"):  # NaN is the expected score of a NaN block
                pooled[i, j] = cell.max() if pooling == "MAX" else cell.mean()
    return pooled.astype(dtype)


def reference_update(
    weights: np.ndarray,
    sparsity: float,
    old: float,
    decay: float,
    block: tuple[int, int] | None = None,
    pooling: str = "AVG",
) -> tuple[Any, np.ndarray]:
    """(threshold, mask) of one mask update, element-wise or by blocks."""
    dtype = weights.dtype.type
    if block is None:
        threshold = reference_threshold(weights, sparsity, old, decay, dtype)
        return threshold, (np.abs(weights) >= threshold).astype(dtype)
    pooled = reference_pool(weights, block, pooling, dtype)
    threshold = reference_threshold(pooled, sparsity, old, decay, dtype)
    kept = (pooled >= threshold).astype(dtype)
    mask = np.kron(kept, np.ones(block, dtype))[: weights.shape[0], : weights.shape[1]]
    return threshold, mask.astype(dtype)


def same_value(got: Any, want: Any) -> bool:
    """Equal, NaN only equal to NaN (a threshold must never be NaN where the rule says not)."""
    got, want = float(got), float(want)
    return got == want or (math.isnan(got) and math.isnan(want))


# ---------------------------------------------------------------------------------------
# Selection: both paths follow the rule for every k.


def nonfinite_cases(dtype: Any, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    mixed = rng.standard_normal(60).astype(dtype)
    planted = np.concatenate([nans(dtype, 7), of(dtype, [INF, -INF, INF, 0.0, -0.0, 0.0, INF])])
    mixed[rng.choice(60, planted.size, replace=False)] = planted
    ties = np.concatenate([of(dtype, [INF, -INF, INF, 2.0, -2.0, 2.0, 0.0, 0.0]), nans(dtype, 2)])
    return [
        ("mixed", mixed),
        ("all NaN", nans(dtype, 9)),
        ("all inf", of(dtype, [INF, -INF, INF, -INF, INF])),
        ("NaN and inf", rng.permutation(np.concatenate([nans(dtype, 5), of(dtype, [INF, -INF])]))),
        ("ties", rng.permutation(ties)),
        ("one NaN", nans(dtype, 1)),
        ("NaN and zeros", rng.permutation(np.concatenate([nans(dtype, 2), of(dtype, [0, -0.0])]))),
        ("largest finite", of(dtype, [float(np.finfo(dtype).max), 1.0, -INF])),
    ]


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_sort_and_radix_select_rank_nan_below_every_number_and_inf_above(
    tf2_graph: tf.Graph, dtype: Any
) -> None:
    rng = np.random.default_rng(11)
    values = v1.placeholder(dtype, [None])
    k = v1.placeholder(tf.int64, [])
    paths = {
        "sort": _kernels.sorted_kth_largest(values, k),
        "radix": _kernels.radix_kth_largest(values, k),
    }
    wrong, checked = [], 0
    with v1.Session() as session:
        for name, data in nonfinite_cases(dtype, rng):
            for rank in range(1, data.size + 1):
                expected = reference_kth(data, rank)
                for path, got in session.run(paths, {values: data, k: rank}).items():
                    checked += 1
                    assert got.dtype == dtype
                    if not same_value(got, expected):
                        wrong.append((path, name, rank, expected, float(got)))
    assert checked == 2 * 99
    assert not wrong, f"(path, case, k, expected, got): {wrong[:6]}"


def large_cases(dtype: Any, rng: np.random.Generator) -> Iterator[tuple[str, np.ndarray]]:
    size = _kernels.SORT_BELOW + 999
    mixed = rng.standard_normal(size).astype(dtype)
    planted = np.concatenate([nans(dtype, 300), of(dtype, [INF, -INF] * 20)])
    mixed[rng.choice(size, planted.size, replace=False)] = planted
    yield "mixed", mixed
    yield "all NaN", nans(dtype, size)
    all_inf = of(dtype, [INF] * size)
    all_inf[::7] = -INF
    yield "all inf", all_inf
    half = nans(dtype, size)
    half[::2] = of(dtype, [INF, 3.0])[np.arange(size)[::2] % 2]
    yield "half NaN", half


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_a_large_tensor_takes_radix_select_and_follows_the_rule(
    graph: tf.Graph, dtype: Any
) -> None:
    rng = np.random.default_rng(12)
    rank = v1.placeholder(tf.int64, [])
    values = v1.placeholder(dtype, [_kernels.SORT_BELOW + 999])  # a known, large size
    kth = _kernels.kth_largest(values, rank)
    wrong = []
    with v1.Session() as session:
        for name, data in large_cases(dtype, rng):
            magnitudes = np.abs(widened(data))
            numbers = int(np.count_nonzero(~np.isnan(magnitudes)))
            infs = int(np.count_nonzero(np.isinf(magnitudes)))
            ks = {1, infs, infs + 1, numbers - 1, numbers, numbers + 1, data.size, data.size // 2}
            for k in sorted(x for x in ks if 1 <= x <= data.size):
                got = session.run(kth, {values: data, rank: k})
                if not same_value(got, reference_kth(data, k)):
                    wrong.append((name, k, reference_kth(data, k), float(got)))
    assert any(
        op.type == "DenseBincount" for op in tf.compat.v1.get_default_graph().get_operations()
    )
    assert not wrong, f"(case, k, expected, got): {wrong[:6]}"


# ---------------------------------------------------------------------------------------
# Masks and thresholds: element-wise and blocks, k = 0 and decay.

DECAYS = [(0.0, 0.0), (0.0, INF), (0.25, 1.5), (0.25, INF)]  # (decay, old threshold)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_element_masks_follow_the_rule_on_both_paths(tf2_graph: tf.Graph, dtype: Any) -> None:
    cases = nonfinite_cases(dtype, np.random.default_rng(13))
    sparsity = v1.placeholder(tf.float32, [])
    old = v1.placeholder(dtype, [])
    unknown_size = v1.placeholder(dtype, [None])  # no size when tracing: radix select
    known_size = {data.size: v1.placeholder(dtype, [data.size]) for _, data in cases}  # sort
    paths = {
        (size, decay): {
            "sort": _kernels.element_mask(known, sparsity, old, decay),
            "radix": _kernels.element_mask(unknown_size, sparsity, old, decay),
        }
        for size, known in known_size.items()
        for decay in {decay for decay, _ in DECAYS}
    }
    wrong, checked = [], 0
    with v1.Session() as session:
        for (name, data), (decay, old_value), s in itertools.product(
            cases, DECAYS, (0.0, 0.3, 0.5, 0.9, 0.99)
        ):
            feed = {known_size[data.size]: data, unknown_size: data, sparsity: s, old: old_value}
            want_threshold, want_mask = reference_update(data, s, old_value, decay)
            for path, (threshold, mask) in session.run(paths[data.size, decay], feed).items():
                checked += 1
                if not (same_value(threshold, want_threshold) and np.array_equal(mask, want_mask)):
                    wrong.append((path, name, s, decay, old_value, want_threshold, threshold))
    assert checked == 2 * 8 * 4 * 5
    assert not wrong, f"(path, case, s, decay, old, threshold, got): {wrong[:4]}"


def block_weights(dtype: Any, rng: np.random.Generator) -> np.ndarray:
    """5x6 small integers (exact AVG in every dtype), with NaN and inf in some blocks."""
    weights = rng.integers(-8, 9, size=(5, 6)).astype(dtype)
    weights[0, 0], weights[2, 3], weights[4, 5] = nans(dtype, 3)
    weights[0, 3], weights[3, 0], weights[3, 1] = of(dtype, [INF, -INF, INF])
    weights[2, 2] = of(dtype, [INF])[0]  # with the NaN at [2, 3]: a NaN block
    return weights


@pytest.mark.parametrize("pooling", ["AVG", "MAX"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_block_masks_score_a_block_with_a_nan_as_nan(
    tf2_graph: tf.Graph, dtype: Any, pooling: str
) -> None:
    rng = np.random.default_rng(14)
    data = block_weights(dtype, rng)
    weights = v1.placeholder(dtype, data.shape)
    sparsity = v1.placeholder(tf.float32, [])
    old = v1.placeholder(dtype, [])
    wrong = []
    with v1.Session() as session:
        for decay, old_value in DECAYS:
            op = _kernels.block_mask(weights, sparsity, old, decay, (2, 2), pooling)
            for s in (0.0, 0.2, 0.5, 0.8, 0.95):
                feed = {weights: data, sparsity: s, old: old_value}
                threshold, mask = session.run(op, feed)
                want_threshold, want_mask = reference_update(
                    data, s, old_value, decay, (2, 2), pooling
                )
                if not same_value(threshold, want_threshold) or not np.array_equal(mask, want_mask):
                    wrong.append((s, decay, old_value, want_threshold, float(threshold)))
    assert not wrong, f"(s, decay, old, threshold, got): {wrong[:4]}"


def element_mask(weights: np.ndarray, sparsity: float, old: float = 0.0, decay: float = 0.0) -> Any:
    """(threshold, mask) of the element-wise path, run in the current graph."""
    op = _kernels.element_mask(
        tf.constant(weights), tf.constant(sparsity), tf.constant(old, weights.dtype), decay
    )
    with v1.Session() as session:
        return session.run(op)


def test_nan_is_pruned_inf_is_kept_and_past_the_numbers_the_threshold_is_zero(
    tf2_graph: tf.Graph,
) -> None:
    weights = np.array([np.nan, 1.0, -INF, 0.0, -3.0, np.nan], np.float32)
    for sparsity, threshold, mask in [
        (0.85, 1.0 * INF, [0, 0, 1, 0, 0, 0]),  # k = 1: the largest magnitude is inf
        (0.5, 1.0, [0, 1, 1, 0, 1, 0]),  # k = 3
        (0.2, 0.0, [0, 1, 1, 1, 1, 0]),  # k = 5 > 4 numbers: every number is kept
    ]:
        got_threshold, got_mask = element_mask(weights, sparsity)
        assert got_threshold == threshold
        np.testing.assert_array_equal(got_mask, mask)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_k_zero_gives_a_threshold_above_the_numbers_never_nan(
    tf2_graph: tf.Graph, dtype: Any
) -> None:
    cases = [
        (np.concatenate([of(dtype, [1.0, -3.0, 2.0]), nans(dtype, 1)]), next_up(dtype(3.0), dtype)),
        (of(dtype, [1.0, INF, 2.0, 3.0]), dtype(INF)),  # nothing is above inf: it is kept
        (nans(dtype, 4), np.finfo(dtype).tiny),  # normal: CPUs may compare subnormals as 0
        (of(dtype, [0.0, -0.0, 0.0]), np.finfo(dtype).tiny),
    ]
    for weights, expected in cases:
        threshold, mask = element_mask(weights, 0.9)  # k = 0
        assert float(threshold) == float(expected)
        np.testing.assert_array_equal(mask, np.isinf(widened(weights)))


def test_decay_never_multiplies_an_infinite_threshold_by_zero(tf2_graph: tf.Graph) -> None:
    weights = np.array([5.0, -1.0, 2.0, 0.5], np.float32)
    # decay 0 with an infinite old threshold: r1.15's `old * 0` was NaN.
    threshold, mask = element_mask(weights, 0.5, INF, 0.0)
    assert threshold == 2.0
    np.testing.assert_array_equal(mask, [1, 0, 1, 0])
    # float16 rounds 1 - d to 0: the current threshold (inf) has no weight, not a NaN one.
    infinite = np.array([INF, -INF, 1.0, 2.0], np.float16)
    decay = 1.0 - 1e-9
    threshold, _ = element_mask(infinite, 0.5, 3.0, decay)
    assert threshold == np.float16(3.0)


# ---------------------------------------------------------------------------------------
# Every API gives the same masks and thresholds, and the rule's.

UPDATES = (1, 2, 3)
BASE = "begin_pruning_step=1,pruning_frequency=1,target_sparsity=0.6,sparsity_function_end_step=1"
API_SPECS = {
    "element": BASE,
    "element decay": BASE + ",threshold_decay=0.3",
    "block MAX": BASE + ",block_height=2,block_width=2,block_pooling_function=MAX",
    "block AVG decay": BASE + ",block_height=2,block_width=2,threshold_decay=0.3",
}


def api_weights(dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """`first`: its k-th largest is finite; `second`: mostly inf, its k-th largest is inf."""
    rng = np.random.default_rng(15)
    first = rng.standard_normal((6, 4)).astype(dtype)
    first[0, 0], first[3, 2], first[5, 3] = nans(dtype, 3)
    first[1, 1], first[4, 0] = INF, -INF
    second = np.full((4, 4), INF, dtype)
    second[::3, 1] = -INF
    second[0, 0], second[2, 2] = nans(dtype, 2)
    second[1, 0], second[3, 3] = 0.5, -7.0
    return {"first": first, "second": second}


def reference_history(
    spec: NormalizedSpec, values: dict[str, np.ndarray], zeroes_pruned: bool
) -> list[dict[str, Any]]:
    """The rule, update after update; Pruner and Keras zero the pruned values in place."""
    values = {name: value.copy() for name, value in values.items()}
    thresholds = dict.fromkeys(values, 0.0)
    history = []
    for step in UPDATES:
        snapshot: dict[str, Any] = {}
        for name, value in values.items():
            block = spec.block_dims_for(name, value.shape)
            threshold, mask = reference_update(
                value,
                spec.sparsity_at(step),
                thresholds[name],
                spec.threshold_decay,
                None if block == (1, 1) else block,
                spec.block_pooling_function,
            )
            thresholds[name] = threshold
            snapshot[f"{name} mask"], snapshot[f"{name} threshold"] = mask, threshold
            if zeroes_pruned:
                values[name] = np.where(mask != 0, value, 0).astype(value.dtype)
                snapshot[f"{name} weight"] = values[name]
        history.append(snapshot)
    return history


def graph_history(spec: str, values: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    history = []
    with tf.Graph().as_default():
        step = v1.train.get_or_create_global_step()
        for name, value in values.items():
            pruning.apply_mask(v1.get_variable(name, initializer=tf.constant(value)), name)
        update = pruning.Pruning(spec, global_step=step).conditional_mask_update_op()
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            for t in UPDATES:
                session.run(step.assign(t))
                assert session.run(update)
                masks, thresholds = session.run([pruning.get_masks(), pruning.get_thresholds()])
                history.append(
                    {
                        **{f"{n} mask": m for n, m in zip(values, masks, strict=True)},
                        **{f"{n} threshold": t for n, t in zip(values, thresholds, strict=True)},
                    }
                )
    return history


def pruner_history(
    spec: str, values: dict[str, np.ndarray], wrap: Callable[[Any], Any]
) -> list[dict[str, Any]]:
    weights = [tf.Variable(value, name=name) for name, value in values.items()]
    pruner = Pruner(spec, weights)
    update = wrap(pruner.update)
    history = []
    for t in UPDATES:
        assert bool(update(tf.constant(t, tf.int64)))
        history.append(
            {
                f"{p.name} {key}": getattr(p, key).numpy()
                for p in pruner.pruned_weights
                for key in ("mask", "threshold", "weight")
            }
        )
    return history


def keras_history(
    spec: str, values: dict[str, np.ndarray], model: keras.Model | None = None
) -> tuple[keras.Model, list[dict[str, Any]]]:
    """The pruned model, and what the callback's updates leave, driven step by step.

    Not by `fit`: training would spread the NaNs to every weight.
    """
    if model is None:
        dtype = np.dtype(next(iter(values.values())).dtype).name
        inputs = keras.Input((6,))
        hidden = keras.layers.Dense(4, name="first", dtype=dtype)(inputs)
        model = keras.Model(inputs, keras.layers.Dense(4, name="second", dtype=dtype)(hidden))
    model = pks.prune(model, spec)
    model.compile(optimizer="sgd", loss="mse")
    pruned = {
        w.name.split("/")[0]: w for layer in pks.pruned_layers(model) for w in layer.pruned_weights
    }
    for name, value in values.items():
        pruned[name].weight.assign(value)
    callback = pks.PruningCallback(spec)
    callback.set_model(model)
    callback.on_train_begin()
    history = []
    for t in UPDATES:
        model.optimizer.iterations.assign(t)
        callback.on_train_batch_begin(0)
        history.append(
            {
                f"{name} {key}": getattr(p, key).numpy()
                for name, p in pruned.items()
                for key in ("mask", "threshold", "weight")
            }
        )
    return model, history


def assert_history(got: list[dict[str, Any]], want: list[dict[str, Any]], api: str) -> None:
    for step, (got_step, want_step) in zip(UPDATES, zip(got, want, strict=True), strict=True):
        for key, value in want_step.items():
            assert key in got_step, f"{api}: no {key}"
            if np.ndim(value) == 0:
                assert same_value(got_step[key], value), (
                    f"{api}: {key} at step {step}: {got_step[key]} != {value}"
                )
            else:
                np.testing.assert_array_equal(
                    got_step[key], value, err_msg=f"{api}: {key} at step {step}"
                )


# Every dtype but where AVG's sum in a half float would round differently from the reference.
API_CASES = [
    pytest.param(spec, dtype, id=f"{name}-{dtype_id(dtype)}")
    for name, spec in API_SPECS.items()
    for dtype in (DTYPES if "AVG" not in name else (np.float32,))
]


@pytest.mark.parametrize(("spec", "dtype"), API_CASES)
def test_every_api_gives_the_rules_masks_and_thresholds(spec: str, dtype: Any) -> None:
    values = api_weights(dtype)
    normalized = parse_hparams(spec)
    graph = graph_history(spec, values)
    assert_history(graph, reference_history(normalized, values, zeroes_pruned=False), "graph")
    in_place = reference_history(normalized, values, zeroes_pruned=True)
    assert_history(pruner_history(spec, values, lambda f: f), in_place, "eager")
    assert_history(pruner_history(spec, values, tf.function), in_place, "tf.function")
    assert_history(keras_history(spec, values)[1], in_place, "keras")
    # Zeroing pruned values in place does not change what later updates keep here (k never
    # exceeds the numbers), so graph mode's masks and thresholds are the same as well.
    masks_and_thresholds = [
        {key: value for key, value in step.items() if not key.endswith("weight")}
        for step in in_place
    ]
    assert_history(graph, masks_and_thresholds, "graph vs in place")
    last = in_place[-1]
    assert 0 < float(np.mean(last["first mask"])) < 1
    assert float(last["second threshold"]) == INF
    assert not np.isnan(last["first weight"]).any()  # the pruned NaNs are zeros now


@pytest.mark.parametrize("pooling", ["AVG", "MAX"])
def test_block_scores_are_the_same_eager_in_tf_function_and_in_a_session(pooling: str) -> None:
    # Graph optimizations once made graph mode's AVG scores an ulp below eager mode's.
    rng = np.random.default_rng(16)
    draws = [block_weights(np.float32, rng) for _ in range(20)]

    def update(weights: Any) -> Any:
        return _kernels.block_mask(
            weights, tf.constant(0.5), tf.constant(0.0), 0.0, (2, 2), pooling
        )

    traced = tf.function(update)
    with tf.Graph().as_default():
        placeholder = v1.placeholder(tf.float32, draws[0].shape)
        op = update(placeholder)
        with v1.Session() as session:
            in_session = [session.run(op, {placeholder: data}) for data in draws]
    for data, graph in zip(draws, in_session, strict=True):
        want_threshold, want_mask = reference_update(data, 0.5, 0.0, 0.0, (2, 2), pooling)
        for api, (threshold, mask) in [
            ("eager", update(data)),
            ("tf.function", traced(data)),
            ("session", graph),
        ]:
            assert float(threshold) == float(want_threshold), api
            np.testing.assert_array_equal(mask, want_mask, err_msg=api)


def test_strip_exports_zeros_where_a_step_turned_pruned_values_nan() -> None:
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(4, name="first")(inputs))
    values = {"first": api_weights()["first"]}
    model, history = keras_history(BASE, values, model)
    pruned = history[-1]["first mask"] == 0
    (layer,) = pks.pruned_layers(model)
    # A diverging step: the optimizer writes NaN, and the mask constraint's NaN * 0 keeps it.
    diverged = np.where(pruned, np.nan, history[-1]["first weight"]).astype(np.float32)
    layer.pruned_weights[0].weight.assign(diverged)
    exported = pks.strip(model).get_layer("first").kernel.numpy()
    np.testing.assert_array_equal(exported, np.where(pruned, 0, diverged))


# ---------------------------------------------------------------------------------------
# A weight of size 0 is refused, by name, by every API.

EMPTY = "has no values"


@pytest.mark.parametrize("shape", [[0, 4], [3, 0], [0]])
def test_apply_mask_refuses_a_weight_of_size_0(graph: tf.Graph, shape: list[int]) -> None:
    with v1.variable_scope("layer1"):
        weight = v1.get_variable("weights", shape)
    with pytest.raises(
        ValueError, match=rf"'layer1/weights'.*shape {re.escape(str(shape))}.*{EMPTY}"
    ):
        pruning.apply_mask(weight, "layer1")
    assert pruning.get_masks() == [] and pruning.get_weights() == []


@pytest.mark.parametrize(
    "spec", ["", "block_height=-1,block_width=-1"], ids=["element", "-1 blocks"]
)
def test_pruning_refuses_a_weight_of_size_0_in_its_collections(graph: tf.Graph, spec: str) -> None:
    # Code that fills r1.15's collections itself, without apply_mask.
    weight = v1.get_variable("weights", [3, 0])
    v1.add_to_collection(pruning.MASK_COLLECTION, v1.get_variable("mask", [3, 0]))
    v1.add_to_collection(pruning.THRESHOLD_COLLECTION, v1.get_variable("threshold", []))
    v1.add_to_collection(pruning.WEIGHT_COLLECTION, weight)
    p = pruning.Pruning(spec, global_step=v1.train.get_or_create_global_step())
    with pytest.raises(ValueError, match=rf"'weights'.*shape \[3, 0\].*{EMPTY}"):
        p.conditional_mask_update_op()


def test_pruner_refuses_a_weight_of_size_0() -> None:
    empty = tf.Variable(tf.zeros([0, 4]), name="dense/kernel")
    with pytest.raises(ValueError, match=rf"'dense/kernel'.*shape \[0, 4\].*{EMPTY}"):
        Pruner("block_height=-1,block_width=-1", [empty])
    pruner = Pruner(None, [tf.Variable(tf.ones([2, 2]), name="fine")])
    with pytest.raises(ValueError, match=rf"'dense/kernel'.*{EMPTY}"):
        pruner.register(empty)
    assert [p.name for p in pruner.pruned_weights] == ["fine"]
    assert pruner.weight_sparsity() == {"fine": 0.0}


def empty_input_model() -> keras.Model:
    inputs = keras.Input((0,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))


@pytest.mark.parametrize(
    "spec", ["", "block_height=-1,block_width=-1"], ids=["element", "-1 blocks"]
)
def test_keras_prune_refuses_a_weight_of_size_0(spec: str) -> None:
    with pytest.raises(ValueError, match=rf"'hidden/kernel'.*shape \[0, 4\].*{EMPTY}.*select="):
        pks.prune(empty_input_model(), spec)
    # Whatever its rule: select= is the way to leave it out.
    with pytest.raises(ValueError, match=rf"'hidden/kernel'.*{EMPTY}"):
        pks.prune(empty_input_model(), f"{spec},weight_sparsity_map=[hidden:0]".lstrip(","))
    chosen = pks.prune(empty_input_model(), spec, select=lambda v: v.path == "out/kernel")
    assert [w.name for w in pks.pruned_layers(chosen)[0].pruned_weights] == ["out/kernel"]
    # A layer wrapped before it is built (a subclassed model's) is checked when it is built.
    layer = pks.prune(keras.layers.Dense(4, name="late"), spec)
    with pytest.raises(ValueError, match=rf"'late/kernel'.*shape \[0, 4\].*{EMPTY}"):
        layer.build((None, 0))
