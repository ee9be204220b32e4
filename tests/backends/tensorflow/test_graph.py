"""The graph-mode API: apply_mask, Pruning, collections, schedules, summaries, specs.

r1.15's names and numbers come from docs/semantics.md §b-§e ([run] results); the fixes
(per-weight curves, k = 0, block alignment, -1 per weight, rules matched on the
weight's own name, any float dtype) from its §b-§c (principle 5). Every test runs in
a fresh `tf.Graph` with a `tf.compat.v1.Session`, once under TF2's defaults and
once with v1 behaviour (see conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import pruning_spec
from pruning_spec import NormalizedSpec, PruningSpec, SpecError, parse_hparams
from pruning_spec.backends import tensorflow as pruning

v1 = tf.compat.v1
LINSPACE = np.linspace(1, 100, 100).astype(np.float32)


def _layer(name, values, dtype=np.float32):
    """A `<name>/weights` variable holding `values`, masked with `apply_mask(w)`."""
    with v1.variable_scope(name):
        weights = v1.get_variable("weights", initializer=tf.constant(np.asarray(values, dtype)))
        return weights, pruning.apply_mask(weights)


class _Stepper:
    """Sets the global step from the test."""

    def __init__(self, global_step):
        self._value = v1.placeholder(global_step.dtype.base_dtype, [])
        self._assign = v1.assign(global_step, self._value)

    def __call__(self, session, step):
        session.run(self._assign, {self._value: step})


def _keep_count(n: int, sparsity: float) -> int:
    return int(np.round(np.float32(n) * (np.float32(1.0) - np.float32(sparsity))))


def _last_update_step(name="model_pruning"):
    (variable,) = [v for v in v1.global_variables() if v.op.name == f"{name}/last_mask_update_step"]
    return variable


def _update_at(step, spec, *, fetches=()):
    """Builds Pruning(spec) and runs `mask_update_op()` at `step`; returns the session values.

    `fetches` is a list, or a callable returning one once Pruning is built.
    """
    global_step = v1.train.get_or_create_global_step()
    p = pruning.Pruning(spec, global_step=global_step)
    update = p.mask_update_op()
    set_step = _Stepper(global_step)
    fetches = list(fetches() if callable(fetches) else fetches)
    with v1.Session() as session:
        session.run(v1.global_variables_initializer())
        set_step(session, step)
        session.run(update)
        return p, session.run(fetches)


# ---------------------------------------------------------------------------------------
# apply_mask: names and collections (docs/semantics.md §d).


def test_apply_mask_names_inside_a_variable_scope(graph) -> None:
    with v1.variable_scope("layer1"):
        weights = v1.get_variable("weights", [3, 4])
        masked = pruning.apply_mask(weights, scope="")
    (mask,) = pruning.get_masks()
    (threshold,) = pruning.get_thresholds()
    assert mask.op.name == "layer1//mask"
    assert threshold.op.name == "layer1//threshold"
    assert mask.name == "layer1//mask:0"
    assert masked.op.name == "layer1/weights/masked_weight"
    assert masked.op.name.endswith(pruning.MASKED_WEIGHT_NAME)
    assert mask.shape.as_list() == [3, 4]
    assert threshold.shape.as_list() == []
    assert mask.dtype.base_dtype == tf.float32
    trainable = v1.trainable_variables()
    assert not any(v is mask or v is threshold for v in trainable)
    with v1.Session() as session:
        session.run(v1.global_variables_initializer())
        mask_value, threshold_value = session.run([mask, threshold])
    np.testing.assert_array_equal(mask_value, np.ones((3, 4)))
    assert threshold_value == 0.0


def test_apply_mask_at_the_root_and_with_a_scope_object(graph) -> None:
    weights = v1.get_variable("weights", [2, 2])
    masked = pruning.apply_mask(weights)
    assert masked.op.name == "weights/masked_weight"
    assert [m.op.name for m in pruning.get_masks()] == ["mask"]
    assert [t.op.name for t in pruning.get_thresholds()] == ["threshold"]
    with v1.variable_scope("conv1") as scope:
        pass
    other = v1.get_variable("other", [2, 2])
    masked_again = pruning.apply_mask(other, scope)
    assert masked_again.op.name == "weights/masked_weight_1"
    assert [m.op.name for m in pruning.get_masks()] == ["mask", "conv1/mask"]


def test_the_four_collections(graph) -> None:
    w1, masked1 = _layer("layer1", np.ones((2, 3)))
    w2, masked2 = _layer("layer2", np.ones(4))
    assert (
        pruning.MASK_COLLECTION,
        pruning.THRESHOLD_COLLECTION,
        pruning.MASKED_WEIGHT_COLLECTION,
        pruning.WEIGHT_COLLECTION,
    ) == ("masks", "thresholds", "masked_weights", "kernel")
    assert [m.op.name for m in v1.get_collection("masks")] == ["layer1//mask", "layer2//mask"]
    assert [t.op.name for t in v1.get_collection("thresholds")] == [
        "layer1//threshold",
        "layer2//threshold",
    ]
    assert v1.get_collection("masked_weights") == [masked1, masked2]
    assert v1.get_collection("kernel") == [w1, w2]
    assert pruning.get_masks() == v1.get_collection("masks")
    assert pruning.get_thresholds() == v1.get_collection("thresholds")
    assert pruning.get_masked_weights() == [masked1, masked2]
    assert pruning.get_weights() == [w1, w2]


def test_apply_mask_twice_in_one_scope_without_reuse_raises(graph) -> None:
    weights = v1.get_variable("weights", [2])
    with v1.variable_scope("layer1"):
        pruning.apply_mask(weights)
    with pytest.raises(ValueError, match="already exists"), v1.variable_scope("layer1"):
        pruning.apply_mask(weights)


def test_auto_reuse_does_not_add_the_mask_again(graph) -> None:
    weights = v1.get_variable("weights", [2, 2])
    for _ in range(3):
        with v1.variable_scope("cell", reuse=v1.AUTO_REUSE):
            pruning.apply_mask(weights)
    assert len(pruning.get_masks()) == 1
    assert len(pruning.get_thresholds()) == 1
    assert len(pruning.get_masked_weights()) == 1
    assert len(pruning.get_weights()) == 1


# ---------------------------------------------------------------------------------------
# The schedule tensor and the update predicate.


def test_schedule_tensor_name_and_r115_values(graph) -> None:
    global_step = v1.train.get_or_create_global_step()
    pruning.Pruning(global_step=global_step)
    sparsity = graph.get_tensor_by_name("model_pruning/sparsity:0")
    assert sparsity.dtype == tf.float32
    set_step = _Stepper(global_step)
    expected = {
        0: 0.0,
        1: 0.014850497,  # r1.15: 0.014850467, its float32 pow one ulp off (see _schedule)
        10: 0.135500044,
        25: 0.2890625,
        50: 0.4375,
        75: 0.4921875,
        99: 0.499999493,
        100: 0.5,
        5000: 0.5,
    }
    with v1.Session() as session:
        session.run(v1.global_variables_initializer())
        got = {}
        for step in expected:
            set_step(session, step)
            got[step] = session.run(sparsity)
    assert got == {step: np.float32(value) for step, value in expected.items()}


def test_cifar10_readme_schedule_under_its_own_name(graph) -> None:
    global_step = v1.train.get_or_create_global_step()
    pruning.Pruning(
        "name=cifar10_pruning,begin_pruning_step=10000,end_pruning_step=100000,"
        "target_sparsity=0.9,sparsity_function_begin_step=10000,sparsity_function_end_step=100000",
        global_step=global_step,
    )
    sparsity = graph.get_tensor_by_name("cifar10_pruning/sparsity:0")
    set_step = _Stepper(global_step)
    # The reference prints 0.7875 and 0.8859375: seven digits of these float32 values.
    expected = {0: 0.0, 10000: 0.0, 32500: 0.5203125, 55000: 0.78749996, 77500: 0.88593745}
    expected.update({100000: 0.9, 200000: 0.9})
    got = {}
    with v1.Session() as session:
        session.run(v1.global_variables_initializer())
        for step in expected:
            set_step(session, step)
            got[step] = session.run(sparsity)
    assert got == {step: np.float32(value) for step, value in expected.items()}


def _conditional_run(spec, steps, values=LINSPACE):
    global_step = v1.train.get_or_create_global_step()
    _layer("layer1", values)
    p = pruning.Pruning(spec, global_step=global_step)
    conditional = p.conditional_mask_update_op()
    last_update = _last_update_step(p.spec.name)
    set_step = _Stepper(global_step)
    ran, last = [], []
    with v1.Session() as session:
        session.run(v1.global_variables_initializer())
        for step in steps:
            set_step(session, step)
            if session.run(conditional):
                ran.append(step)
            last.append(int(session.run(last_update)))
    return ran, last


def test_conditional_updates_at_2_4_6(graph) -> None:
    ran, last = _conditional_run(
        "begin_pruning_step=1,end_pruning_step=6,pruning_frequency=2", range(11)
    )
    assert ran == [2, 4, 6]
    assert last == [0, 0, 2, 2, 4, 4, 6, 6, 6, 6, 6]


def test_conditional_updates_with_the_defaults_at_10_20_30(graph) -> None:
    ran, _ = _conditional_run(None, range(36))
    assert ran == [10, 20, 30]


def test_conditional_update_prunes_with_the_current_sparsity(graph) -> None:
    global_step = v1.train.get_or_create_global_step()
    _, masked = _layer("layer1", LINSPACE)
    p = pruning.Pruning(
        "target_sparsity=0.95,sparsity_function_end_step=10,pruning_frequency=5",
        global_step=global_step,
    )
    conditional = p.conditional_mask_update_op()
    (mask,) = pruning.get_masks()
    set_step = _Stepper(global_step)
    with v1.Session() as session:
        session.run(v1.global_variables_initializer())
        counts = {}
        for step in range(12):
            set_step(session, step)
            session.run(conditional)
            counts[step] = int(session.run(mask).sum())
        masked_value = session.run(masked)
    assert counts[4] == 100  # nothing before the first update at max(begin, frequency) = 5
    assert counts[5] == _keep_count(100, p.spec.sparsity_at(5)) == 17
    assert counts[9] == counts[5]
    assert counts[10] == counts[11] == 5
    np.testing.assert_array_equal(masked_value, np.where(LINSPACE >= 96, LINSPACE, 0))


# ---------------------------------------------------------------------------------------
# mask_update_op: r1.15's numbers through Pruning, and the per-weight fixes.


def test_mask_update_op_on_linspace(graph) -> None:
    _, masked = _layer("layer1", LINSPACE)
    (mask,) = pruning.get_masks()
    (threshold,) = pruning.get_thresholds()
    p, (mask_value, threshold_value, masked_value, sparsities, last) = _update_at(
        7,
        "target_sparsity=0.95,sparsity_function_end_step=1",
        fetches=lambda: [
            mask,
            threshold,
            masked,
            pruning.get_weight_sparsity(),
            _last_update_step(),
        ],
    )
    assert threshold_value == 96.0
    assert mask_value.sum() == 5
    np.testing.assert_array_equal(masked_value, np.where(LINSPACE >= 96, LINSPACE, 0))
    assert sparsities == [pytest.approx(0.95)]
    assert last == 7
    assert p.spec.target_sparsity == 0.95


def test_mask_update_op_keeps_float64_weights_float64(graph) -> None:
    _, masked = _layer("layer1", LINSPACE, dtype=np.float64)
    (mask,) = pruning.get_masks()
    _, (mask_value, masked_value) = _update_at(
        1, "target_sparsity=0.95,sparsity_function_end_step=1", fetches=[mask, masked]
    )
    assert mask_value.dtype == np.float64
    assert mask_value.sum() == 5
    assert masked_value.dtype == np.float64


PER_WEIGHT = (
    "initial_sparsity=0.2,target_sparsity=0.5,weight_sparsity_map=[layer2/:0.8],"
    "sparsity_function_begin_step=10,sparsity_function_end_step=20"
)


@pytest.mark.parametrize("step", [0, 10, 15, 20, 30])
def test_per_weight_sparsity_follows_its_own_polynomial(graph, step) -> None:
    """layer2 follows the schedule with target 0.8; r1.15 scaled it by 0.8/0.5."""
    rng = np.random.default_rng(step)
    _layer("layer1", rng.permutation(LINSPACE))
    _layer("layer2", rng.permutation(LINSPACE))
    spec = parse_hparams(PER_WEIGHT)
    _, counts = _update_at(step, spec, fetches=[tf.reduce_sum(m) for m in pruning.get_masks()])
    expected = [
        _keep_count(100, spec.sparsity_at(step, "layer1/weights")),
        _keep_count(100, spec.sparsity_at(step, "layer2/weights")),
    ]
    assert counts == expected
    if step <= 10:
        assert counts == [80, 80]  # r1.15: layer2 at 0.2 * 0.8 / 0.5 = 0.32 -> 68
    if step >= 20:
        assert counts == [50, 20]


def test_per_weight_sparsity_with_a_zero_global_target(graph) -> None:
    """r1.15 divided by target_sparsity = 0 (NaN, crash); layer2 now reaches its own 0.6."""
    _layer("layer1", LINSPACE)
    _layer("layer2", LINSPACE)
    _, counts = _update_at(
        100,
        "target_sparsity=0,weight_sparsity_map=[layer2:0.6]",
        fetches=[tf.reduce_sum(m) for m in pruning.get_masks()],
    )
    assert counts == [100, 40]


def test_external_sparsity_is_scaled_by_m_over_target(graph) -> None:
    _layer("layer1", LINSPACE)
    _layer("layer2", LINSPACE)
    global_step = v1.train.get_or_create_global_step()
    external = tf.constant(0.3, tf.float32)
    p = pruning.Pruning(
        "target_sparsity=0.5,weight_sparsity_map=[layer1/:0.6]",
        global_step=global_step,
        sparsity=external,
    )
    update = p.mask_update_op()
    assert "model_pruning/sparsity" not in [op.name for op in graph.get_operations()]
    with v1.Session() as session:
        session.run(v1.global_variables_initializer())
        session.run(update)
        counts = session.run([tf.reduce_sum(m) for m in pruning.get_masks()])
    # layer1: 0.3 * 0.6 / 0.5 = 0.36 -> 64 kept; layer2 (no rule): 0.3 -> 70 kept.
    assert counts == [64, 70]


def test_external_sparsity_with_a_map_needs_a_positive_target(graph) -> None:
    global_step = v1.train.get_or_create_global_step()
    with pytest.raises(SpecError):
        pruning.Pruning(
            "target_sparsity=0,weight_sparsity_map=[layer1:0.6]",
            global_step=global_step,
            sparsity=tf.constant(0.3),
        )


@pytest.mark.parametrize(
    ("hparams", "map_name"),
    [
        ("weight_sparsity_map=[layer1:0.6,weights:0.7]", "weight_sparsity_map"),
        ("block_dims_map=[layer1:2x2,weights$:1x2]", "block_dims_map"),
    ],
)
def test_ambiguous_rules_raise_when_the_update_ops_are_built(graph, hparams, map_name) -> None:
    _layer("layer1", np.ones((4, 4)))
    global_step = v1.train.get_or_create_global_step()
    p = pruning.Pruning(hparams, global_step=global_step)  # the spec itself is valid
    with pytest.raises(SpecError) as raised:
        p.mask_update_op()
    (diagnostic,) = raised.value.errors
    assert diagnostic.code == "ambiguous-rule"
    assert "layer1/weights" in diagnostic.message
    assert map_name in diagnostic.message
    assert "layer1" in diagnostic.message and "weights" in diagnostic.message


@pytest.mark.parametrize(
    "spec",
    [
        "target_sparsity=1.5,begin_pruning_step=-1",
        PruningSpec(target_sparsity=1.5, begin_pruning_step=-1),
    ],
    ids=["hparams", "proto"],
)
def test_an_invalid_spec_raises_every_problem_before_any_op(graph, spec) -> None:
    global_step = v1.train.get_or_create_global_step()
    before = len(graph.get_operations())
    with pytest.raises(SpecError) as raised:
        pruning.Pruning(spec, global_step=global_step)
    assert len(graph.get_operations()) == before
    paths = {d.field_path for d in raised.value.errors}
    assert {"target_sparsity", "begin_pruning_step"} <= paths


def test_missing_global_step_is_a_clear_value_error(graph) -> None:
    with pytest.raises(ValueError, match="global step"):
        pruning.Pruning()


# ---------------------------------------------------------------------------------------
# Partitioned variables (docs/semantics.md §c.3).


def _sliced_initializer(values):
    """Initializes each partition with its own slice of `values`."""

    def initialize(shape, dtype=None, partition_info=None):
        offset = partition_info.var_offset if partition_info else [0] * len(shape)
        index = tuple(slice(o, o + n) for o, n in zip(offset, shape, strict=True))
        return tf.constant(values[index], dtype)

    return initialize


def test_partitioned_weights(graph) -> None:
    values = np.random.default_rng(3).standard_normal((10, 6)).astype(np.float32)
    with v1.variable_scope("layer1", partitioner=v1.fixed_size_partitioner(2)):
        weights = v1.get_variable("weights", [10, 6], initializer=_sliced_initializer(values))
        masked = pruning.apply_mask(weights)
    (mask,) = pruning.get_masks()
    (threshold,) = pruning.get_thresholds()
    parts = list(mask)
    assert len(parts) == 2
    assert [p.shape.as_list() for p in parts] == [[5, 6], [5, 6]]
    assert threshold.shape.as_list() == []
    # The rule matches the partitioned weight's own name (r1.15 matched a concat op's).
    _, (full, mask_value, threshold_value, masked_value) = _update_at(
        100,
        "weight_sparsity_map=[layer1/weights$:0.75]",
        fetches=[weights.as_tensor(), mask.as_tensor(), threshold, masked],
    )
    assert any(op.name.endswith("mask_group_assign") for op in graph.get_operations())
    np.testing.assert_array_equal(full, values)
    magnitudes = np.abs(full)
    k = _keep_count(60, 0.75)
    expected_threshold = np.sort(magnitudes, axis=None)[::-1][k - 1]
    assert threshold_value == expected_threshold
    np.testing.assert_array_equal(mask_value, (magnitudes >= expected_threshold).astype(np.float32))
    assert mask_value.sum() == k == 15
    np.testing.assert_array_equal(masked_value, full * mask_value)


# ---------------------------------------------------------------------------------------
# Block pruning through Pruning (docs/semantics.md §c.2, with the fixes).

BLOCK_3X4 = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
LAST_ROW = [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]]


@pytest.mark.parametrize(
    "hparams",
    [
        "block_height=2,block_width=2",
        "block_dims_map=[layer1/weights$:2x2]",  # r1.15 matched the pooled op's name: missed
    ],
)
def test_block_pruning_of_a_2d_weight(graph, hparams) -> None:
    _layer("layer1", BLOCK_3X4)
    _, (mask, threshold) = _update_at(
        1,
        hparams + ",target_sparsity=0.5,sparsity_function_end_step=1",
        fetches=[pruning.get_masks()[0], pruning.get_thresholds()[0]],
    )
    assert threshold == 9.5
    np.testing.assert_array_equal(mask, LAST_ROW)


def test_block_pruning_with_max_pooling(graph) -> None:
    weights = np.array([[10, 0, 3, 3], [0, 0, 3, 3], [-4, 0, 2, 2], [0, 0, 2, -2]], np.float32)
    _layer("layer1", weights)
    _, (mask, threshold) = _update_at(
        1,
        "block_height=2,block_width=2,block_pooling_function=MAX,sparsity_function_end_step=1",
        fetches=[pruning.get_masks()[0], pruning.get_thresholds()[0]],
    )
    assert threshold == 4.0
    np.testing.assert_array_equal(mask, [[1, 1, 0, 0]] * 4)


def test_minus_one_resolves_against_each_weight(graph) -> None:
    """r1.15 pruned the [2, 8] weight with the [2, 4] weight's 1x4 blocks."""
    _layer("layer1", [[1, 1, 1, 1], [2, 2, 2, 2]])
    _layer("layer2", [[10, 10, 10, 10, 0, 0, 0, 0], [6, 6, 6, 6, 6, 6, 6, 6]])
    p, (masks, thresholds) = _update_at(
        1,
        "block_width=-1,sparsity_function_end_step=1",
        fetches=[pruning.get_masks(), pruning.get_thresholds()],
    )
    np.testing.assert_array_equal(masks[0], [[0] * 4, [1] * 4])
    assert thresholds[0] == 2.0
    # 1x8 blocks score 5 and 6: the second row is kept. (1x4 blocks would keep 10, 6, 6.)
    np.testing.assert_array_equal(masks[1], [[0] * 8, [1] * 8])
    assert thresholds[1] == 6.0
    assert p.spec.block_width == -1


def test_block_dims_do_not_apply_to_a_conv_kernel(graph) -> None:
    rng = np.random.default_rng(5)
    values = rng.permutation(np.arange(1, 37, dtype=np.float32)).reshape(3, 3, 2, 2)
    _layer("conv1", values)
    _, (mask,) = _update_at(
        1,
        "block_height=2,block_width=2,sparsity_function_end_step=1",
        fetches=[pruning.get_masks()[0]],
    )
    np.testing.assert_array_equal(mask, (values >= 19).astype(np.float32))


# ---------------------------------------------------------------------------------------
# Summaries and print_hparams (docs/semantics.md §e).


def test_summary_tags_and_values(graph) -> None:
    _layer("layer1", LINSPACE)
    global_step = v1.train.get_or_create_global_step()
    p = pruning.Pruning(
        "target_sparsity=0.95,sparsity_function_end_step=1,weight_sparsity_map=[layer1:0.5]",
        global_step=global_step,
    )
    update = p.mask_update_op()
    p.add_pruning_summaries()
    merged = v1.summary.merge_all()
    set_step = _Stepper(global_step)
    with v1.Session() as session:
        session.run(v1.global_variables_initializer())
        set_step(session, 3)
        session.run(update)
        summary = v1.Summary.FromString(session.run(merged))
    values = {value.tag: value.simple_value for value in summary.value}
    assert values == {
        "model_pruning_summaries/sparsity": pytest.approx(0.95),  # global, not per weight
        "model_pruning_summaries/last_mask_update_step": 3.0,
        "model_pruning_summaries/layer1//mask/sparsity": pytest.approx(0.5),
        "model_pruning_summaries/layer1//threshold/threshold": 51.0,
    }


@pytest.mark.parametrize(
    "hparams",
    [
        "",
        "name=cifar10_pruning,begin_pruning_step=10000,end_pruning_step=100000,"
        "target_sparsity=0.9,sparsity_function_begin_step=10000,"
        "sparsity_function_end_step=100000",
        "weight_sparsity_map=[conv1:0.8,dense.*/kernel:0.6],block_dims_map=[dense1:4x4],"
        "threshold_decay=0.25,block_pooling_function=MAX,sparsity_function_exponent=2.5",
    ],
    ids=["defaults", "cifar10", "maps"],
)
def test_print_hparams_parses_back_to_the_spec(graph, hparams) -> None:
    global_step = v1.train.get_or_create_global_step()
    p = pruning.Pruning(hparams, global_step=global_step)
    text = p.print_hparams()
    assert isinstance(text, str)
    assert parse_hparams(text) == p.spec == parse_hparams(hparams)


# ---------------------------------------------------------------------------------------
# What Pruning(spec=...) accepts.

SPEC_TEXT = (
    'name: "pp"\ntarget_sparsity: 0.8\nweight_sparsity_map { pattern: "conv1" sparsity: 0.6 }\n'
)
SPEC_HPARAMS = "name=pp,target_sparsity=0.8,weight_sparsity_map=[conv1:0.6]"


def _spec_forms(tmp_path):
    path = tmp_path / "pruning.txtpb"
    path.write_text(SPEC_TEXT)
    proto = PruningSpec(name="pp", target_sparsity=0.8)
    proto.weight_sparsity_map.add(pattern="conv1", sparsity=0.6)
    return {
        "proto": proto,
        "normalized": NormalizedSpec(proto),
        "hparams": SPEC_HPARAMS,
        "path": str(path),
        "pathlib": path,
        "get_pruning_hparams": pruning.get_pruning_hparams().parse(SPEC_HPARAMS),
    }


@pytest.mark.parametrize(
    "form", ["proto", "normalized", "hparams", "path", "pathlib", "get_pruning_hparams"]
)
def test_pruning_accepts_every_spec_form(graph, tmp_path, form) -> None:
    spec = _spec_forms(tmp_path)[form]
    global_step = v1.train.get_or_create_global_step()
    p = pruning.Pruning(spec, global_step=global_step)
    assert p.spec == parse_hparams(SPEC_HPARAMS)
    assert p.spec == pruning_spec.load_spec(str(tmp_path / "pruning.txtpb"))
    assert graph.get_tensor_by_name("pp/sparsity:0").dtype == tf.float32


def test_pruning_defaults_and_a_bad_spec_type(graph) -> None:
    global_step = v1.train.get_or_create_global_step()
    assert pruning.Pruning(global_step=global_step).spec == NormalizedSpec()
    with pytest.raises(TypeError, match="spec must be"):
        pruning.Pruning(42, global_step=global_step)


# Resuming from a v1 Saver checkpoint: with threshold decay the next threshold depends on the
# restored one, so the mask, threshold and step variables must all come back.


def _train_graph(steps, checkpoint_in=None, checkpoint_out=None):
    """Trains a masked regression `steps` steps, a mask update after each; returns its state."""
    with tf.Graph().as_default() as graph:
        global_step = v1.train.get_or_create_global_step()
        inputs = tf.constant(np.random.default_rng(3).normal(size=(32, 12)), tf.float32)
        weights, masked = _layer("layer", np.random.default_rng(4).normal(size=(12, 6)))
        loss = tf.reduce_mean(tf.square(tf.matmul(inputs, masked) - 1.0))
        train = v1.train.GradientDescentOptimizer(0.1).minimize(loss, global_step=global_step)
        spec = (
            "begin_pruning_step=0,pruning_frequency=3,target_sparsity=0.8,"
            "sparsity_function_end_step=18,threshold_decay=0.5"
        )
        update = pruning.Pruning(spec, global_step=global_step).conditional_mask_update_op()
        saver = v1.train.Saver()
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            if checkpoint_in is not None:
                saver.restore(session, checkpoint_in)
            for _ in range(steps):
                session.run(train)
                session.run(update)
            if checkpoint_out is not None:
                saver.save(session, checkpoint_out)
            return session.run(
                [weights, pruning.get_masks()[0], pruning.get_thresholds()[0], global_step]
            )


def test_a_run_resumed_from_a_saver_checkpoint_equals_an_uninterrupted_run(tmp_path):
    uninterrupted = _train_graph(20)
    checkpoint = str(tmp_path / "model.ckpt")
    _train_graph(10, checkpoint_out=checkpoint)  # stops between updates 9 and 12
    resumed = _train_graph(10, checkpoint_in=checkpoint)
    for got, want in zip(resumed, uninterrupted, strict=True):
        np.testing.assert_array_equal(got, want)
    assert uninterrupted[2] > 0


def test_a_rule_of_sparsity_zero_keeps_its_weight_dense_from_the_first_update(graph):
    _, _ = _layer("logits", LINSPACE.reshape(10, 10))
    _, _ = _layer("hidden", LINSPACE.reshape(10, 10))
    spec = "initial_sparsity=0.5,target_sparsity=0.8,weight_sparsity_map=[logits:0]"
    _, masks = _update_at(0, spec, fetches=pruning.get_masks)
    names = ["logits", "hidden"]
    sparsities = {name: float(np.mean(mask == 0)) for name, mask in zip(names, masks, strict=True)}
    assert sparsities == {"logits": 0.0, "hidden": 0.5}


def test_an_excluded_weight_keeps_its_mask_of_ones(graph):
    _layer("logits", LINSPACE.reshape(10, 10))
    _layer("hidden", LINSPACE.reshape(10, 10))
    spec = "initial_sparsity=0.5,target_sparsity=0.8,exclude=[logits]"
    _, masks = _update_at(0, spec, fetches=pruning.get_masks)
    assert [float(np.mean(mask == 0)) for mask in masks] == [0.0, 0.5]
