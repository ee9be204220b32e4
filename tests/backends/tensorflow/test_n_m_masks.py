"""N:M masks in TensorFlow (`_n_m.n_m_mask`) against the numpy reference `_n_m.keep_mask`.

Eagerly unless said otherwise; each shape and rule is an XLA compilation (~0.1 s), so the
hypothesis tests draw modest numbers of examples.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from pruning_spec import _n_m as reference
from pruning_spec.backends.tensorflow import _n_m

BFLOAT16 = tf.bfloat16.as_numpy_dtype
DTYPES = (np.float16, BFLOAT16, np.float32, np.float64)
NAN, INF = float("nan"), float("inf")


def _check(values: np.ndarray, n: int, m: int, axis: int, remainder: str, got: object) -> None:
    mask = np.asarray(got)
    assert mask.dtype == values.dtype and mask.shape == values.shape
    assert set(np.unique(mask.astype(np.float64)).tolist()) <= {0.0, 1.0}
    expected = reference.keep_mask(values, n, m, axis, remainder)
    np.testing.assert_array_equal(
        mask.astype(bool), expected, err_msg=f"{n}:{m} axis {axis} {remainder} {values!r}"
    )


# --- hand-checked cases


def test_two_of_four_along_axis_0_of_an_8x3_weight() -> None:
    # The same weight as tests/core/test_n_m.py, whose expected mask is checked by hand there.
    rows = [[1, -5, 3], [2, 2, -2], [0, 1, 4], [-4, 2, 0.5], [1, 0, 1], [0, -7, 0], [3, 2, 1]]
    weights = np.array([*rows, [1, 2, 3]], np.float32)
    mask = _n_m.n_m_mask(tf.constant(weights), 2, 4, 0, "REJECT")
    assert mask.dtype == tf.float32
    want = reference.keep_mask(weights, 2, 4, 0, "REJECT")
    assert mask.numpy().tolist() == want.astype(np.float32).tolist()
    assert int(mask.numpy().sum()) == 12


TINY = float(np.finfo(np.float32).smallest_subnormal)
GROUPS = [
    ([5, 5, 5, 5], 2, [1, 1, 0, 0]),
    ([1, 3, 3, 2], 1, [0, 1, 0, 0]),
    ([4, 1, 2, 2], 2, [1, 0, 1, 0]),
    ([-0.0, 0.0, 0.0, -0.0], 1, [1, 0, 0, 0]),
    ([NAN, 0.0, NAN, -0.0], 2, [0, 1, 0, 1]),
    ([NAN, NAN, NAN, 1.0], 2, [1, 0, 0, 1]),
    ([1e38, -INF, 3.0, INF], 2, [0, 1, 0, 1]),
    ([TINY, 0.0, 2 * TINY, -0.0], 2, [1, 0, 1, 0]),
    ([-TINY, 0.0, TINY, 0.0], 1, [1, 0, 0, 0]),
]


@pytest.mark.parametrize("method", _n_m.METHODS)
def test_one_group_by_each_method(method: str) -> None:
    """Ties, -0, NaN, inf and subnormals, each group a column of one weight."""
    values = np.array([group for group, _, _ in GROUPS], np.float32).T.copy()
    for n in (1, 2):
        columns = [i for i, (_, count, _) in enumerate(GROUPS) if count == n]
        got = _mask(values[:, columns], n, 4, 0, "REJECT", method)
        assert got.T.astype(int).tolist() == [GROUPS[i][2] for i in columns]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_subnormals_of_every_dtype(dtype: type) -> None:
    """Halves are widened to float32 inside XLA: their subnormals must stay exact."""
    tiny = np.finfo(dtype).smallest_subnormal
    values = np.array([tiny, 0, 3 * tiny, -2 * tiny, tiny, -tiny, 0, tiny], dtype)
    got = _n_m.n_m_mask(tf.constant(values), 2, 4, 0, "REJECT").numpy().astype(int).tolist()
    assert got == [0, 0, 1, 1, 1, 1, 0, 0]


def test_nan_payloads_tie() -> None:
    patterns = np.array([0x7FC00001, 0xFFFFFFFF, 0x7F800001, 0x7FC00000], np.uint32)
    nans = patterns.view(np.float32)
    for values in (nans, nans[::-1].copy()):
        assert _n_m.n_m_mask(tf.constant(values), 2, 4, 0, "REJECT").numpy().tolist() == [
            1, 1, 0, 0,
        ]  # fmt: skip


@pytest.mark.parametrize(
    ("remainder", "kept"),
    [("DENSE", [0, 1, 1, 0, 1, 1, 1]), ("KEEP_N", [0, 1, 1, 0, 0, 1, 1])],
)
def test_partial_groups(remainder: str, kept: list[int]) -> None:
    values = np.array([1, 4, 3, 2, 0, -1, 0.5], np.float32)
    assert _n_m.n_m_mask(tf.constant(values), 2, 4, 0, remainder).numpy().tolist() == kept
    # Padding ranks below NaN: a partial group of NaNs keeps its first n.
    nans = np.array([1, 4, 3, 2, NAN, NAN, NAN], np.float32)
    got = _n_m.n_m_mask(tf.constant(nans), 2, 4, 0, remainder).numpy().tolist()
    assert got[4:] == ([1, 1, 1] if remainder == "DENSE" else [1, 1, 0])


def test_remainder_reject_raises() -> None:
    with pytest.raises(ValueError, match=r"axis 1 has extent 6, not a multiple of m=4"):
        _n_m.n_m_mask(tf.ones([3, 6]), 2, 4, 1, "REJECT")


def test_a_static_shape_is_required() -> None:
    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)], autograph=False)
    def unknown(weights: tf.Tensor) -> tf.Tensor:
        return _n_m.n_m_mask(weights, 2, 4, 1, "REJECT")

    with pytest.raises(ValueError, match=r"static shape, not \(None, 4\)"):
        unknown.get_concrete_function()


def test_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="not int32"):
        _n_m.n_m_mask(tf.ones([4], tf.int32), 2, 4, 0, "REJECT")
    with pytest.raises(ValueError, match="1 <= n < m <= 64"):
        _n_m.n_m_mask(tf.ones([4]), 4, 4, 0, "REJECT")
    with pytest.raises(ValueError, match="axis 1 is not an axis"):
        _n_m.n_m_mask(tf.ones([4]), 2, 4, 1, "REJECT")
    with pytest.raises(ValueError, match="remainder must be one of"):
        _n_m.n_m_mask(tf.ones([4]), 2, 4, 0, "PAD")


def test_empty_weights() -> None:
    for shape in ((0, 4), (4, 0)):
        mask = _n_m.n_m_mask(tf.zeros(shape, tf.float16), 1, 2, 1, "REJECT")
        assert mask.dtype == tf.float16 and mask.shape == shape


def test_methods_by_layout() -> None:
    assert _n_m.choose_method(4, 4096) == "broadcast"
    assert _n_m.choose_method(8, 16) == "broadcast"
    assert _n_m.choose_method(4, 1) == "columns"
    assert _n_m.choose_method(8, 15) == "columns"
    assert _n_m.choose_method(16, 4096) == "roll"
    assert _n_m.choose_method(64, 1) == "roll"


@pytest.mark.parametrize(
    ("shape", "n", "m", "axis"),
    [
        ((3, 3, 64, 32), 2, 4, 2),  # a conv kernel along its input channels: broadcast
        ((96, 64), 2, 4, 1),  # columns
        ((64, 40), 4, 8, 0),  # broadcast
        ((40, 130), 3, 64, 1),  # roll, with a partial group
        ((200, 3), 1, 2, 0),  # columns
    ],
)
def test_larger_random_weights(shape: tuple[int, ...], n: int, m: int, axis: int) -> None:
    """Sizes where XLA's loops are vectorized, with a few specials scattered in."""
    rng = np.random.default_rng(math.prod(shape))
    values = rng.standard_normal(shape).astype(np.float32)
    flat = values.reshape(-1)
    flat[rng.integers(0, flat.size, 20)] = rng.choice([NAN, INF, -0.0, 0.0, TINY], 20)
    flat[rng.integers(0, flat.size, 200)] = 0.5  # ties
    _check(values, n, m, axis, "KEEP_N", _n_m.n_m_mask(tf.constant(values), n, m, axis, "KEEP_N"))


# --- properties


def _palette(dtype: type, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    finfo = np.finfo(dtype)
    special = [0.0, -0.0, 1.0, -1.0, 2.0, NAN, -NAN, INF, -INF, float(finfo.tiny)]
    subnormals = [float(finfo.smallest_subnormal), -3 * float(finfo.smallest_subnormal)]
    scaled = rng.standard_normal(16) * 10.0 ** rng.integers(-4, 5, size=16)
    with np.errstate(over="ignore"):
        return np.concatenate(
            [np.array(special + subnormals, dtype), scaled.astype(dtype), [finfo.max]]
        ).astype(dtype)


@st.composite
def cases(draw: st.DrawFn, rules: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, ...]:
    """Weights of rank 1-4 (few distinct values: ties) and an N:M rule that fits them."""
    n, m = draw(st.sampled_from(rules))
    rank = draw(st.integers(1, 4))
    axis = draw(st.integers(0, rank - 1))
    shape = [draw(st.integers(1, 3)) for _ in range(rank)]
    shape[axis] = draw(st.integers(1, 2 * m + 3))
    remainder = draw(st.sampled_from(reference.REMAINDERS))
    if remainder == "REJECT":
        shape[axis] = max(m, shape[axis] // m * m)
    palette = _palette(draw(st.sampled_from(DTYPES)), draw(st.integers(0, 2**32 - 1)))
    choices = draw(st.integers(1, palette.size))
    size = math.prod(shape)
    picks = draw(st.lists(st.integers(0, choices - 1), min_size=size, max_size=size))
    return palette[np.array(picks, int)].reshape(shape), n, m, axis, remainder


RULES = ((1, 2), (2, 4), (4, 8), (3, 8), (1, 3), (5, 16), (3, 64))


@settings(max_examples=60, deadline=None)
@given(case=cases(RULES))
def test_masks_equal_the_reference(case: tuple[np.ndarray, int, int, int, str]) -> None:
    values, n, m, axis, remainder = case
    _check(values, n, m, axis, remainder, _n_m.n_m_mask(tf.constant(values), n, m, axis, remainder))


def _mask(values: np.ndarray, n: int, m: int, axis: int, remainder: str, method: str) -> np.ndarray:
    rule = {"n": n, "m": m, "axis": axis, "remainder": remainder, "method": method}
    return np.asarray(_n_m._compiled(tf.constant(values), **rule))


@pytest.mark.parametrize("method", _n_m.METHODS)
@settings(max_examples=15, deadline=None)
@given(case=cases(((1, 2), (2, 4), (3, 5), (4, 8))))
def test_every_method_equals_the_reference(
    method: str, case: tuple[np.ndarray, int, int, int, str]
) -> None:
    values, n, m, axis, remainder = case
    _check(values, n, m, axis, remainder, _mask(values, n, m, axis, remainder, method))


@settings(max_examples=10, deadline=None)
@given(case=cases(((2, 4), (3, 8))), method=st.sampled_from(_n_m.METHODS))
def test_the_same_ops_without_xla_equal_the_reference(
    case: tuple[np.ndarray, int, int, int, str], method: str
) -> None:
    values, n, m, axis, remainder = case
    _check(values, n, m, axis, remainder, _n_m.mask(tf.constant(values), *case[1:], method))


# --- modes


def test_same_eager_and_in_tf_function() -> None:
    rng = np.random.default_rng(3)
    weights = {
        "dense": np.round(rng.standard_normal((12, 8)) * 2).astype(np.float32),
        "conv": np.round(rng.standard_normal((3, 3, 10, 4)) * 2).astype(BFLOAT16),
        "long": rng.standard_normal((4, 70)).astype(np.float64),
    }
    rules = {"dense": (2, 4, 0, "REJECT"), "conv": (4, 8, 2, "DENSE"), "long": (3, 64, 1, "KEEP_N")}

    def masks(tensors: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {name: _n_m.n_m_mask(tensors[name], *rule) for name, rule in rules.items()}

    tensors = {name: tf.constant(values) for name, values in weights.items()}
    eager, traced = masks(tensors), tf.function(masks)(tensors)
    for name, values in weights.items():
        np.testing.assert_array_equal(np.asarray(traced[name]), np.asarray(eager[name]))
        _check(values, *rules[name], traced[name])


def test_in_a_v1_session(graph: tf.Graph) -> None:
    """TF2's graph mode and v1 behaviour (ref variables), as graph-mode pruning runs it."""
    values = np.random.default_rng(4).standard_normal((16, 6)).astype(np.float32)
    weights = tf.compat.v1.get_variable("weights", initializer=values)
    masks = [_n_m.n_m_mask(weights, 2, 4, 0, "REJECT"), _n_m.n_m_mask(weights, 1, 4, 1, "DENSE")]
    with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        by_axis_0, by_axis_1 = session.run(masks)
    _check(values, 2, 4, 0, "REJECT", by_axis_0)
    _check(values, 1, 4, 1, "DENSE", by_axis_1)


MIRRORED = """
import numpy as np
import tensorflow as tf
from pruning_spec import _n_m as reference
from pruning_spec.backends.tensorflow import _n_m

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
values = np.random.default_rng(5).standard_normal((2, 8, 6)).astype(np.float32)
with strategy.scope():
    weights = tf.Variable(values)

@tf.function
def step():
    def replica():
        index = tf.distribute.get_replica_context().replica_id_in_sync_group
        return _n_m.n_m_mask(tf.gather(weights, index), 2, 4, 0, "REJECT")
    return strategy.run(replica)

masks = strategy.experimental_local_results(step())
assert len(masks) == 2
for index, mask in enumerate(masks):
    expected = reference.keep_mask(values[index], 2, 4, 0, "REJECT")
    np.testing.assert_array_equal(mask.numpy().astype(bool), expected)
print("replicas agree")
"""


def test_in_mirrored_replicas() -> None:
    """Two replicas on two logical CPUs: a process of its own (devices are fixed at start)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(MIRRORED)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0 and "replicas agree" in done.stdout, done.stderr[-3000:]
