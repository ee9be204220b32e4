"""Global groups in every API (graph mode, `Pruner`, Keras): one threshold over many weights.

Each API's masks are compared with a reference that sorts the concatenation of the
group's magnitudes, on values with ties across weights, with floors and without, and
the APIs with each other (also with threshold decay, where the reference would only
restate the arithmetic).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from pruning_spec import NormalizedSpec, SpecError, parse_hparams
from pruning_spec._groups import floor_count, keep_count
from pruning_spec.backends import tensorflow as pruning
from pruning_spec.backends.tensorflow import keras as pks

v1 = tf.compat.v1

# Three weights of different sizes; values on a 0.25 grid, so that magnitudes tie within
# and across weights, and a small one that global pruning would empty without a floor.
RNG = np.random.RandomState(3)
SHAPES = {"big": (16, 12), "mid": (12, 8), "small": (8, 2)}
VALUES = {
    "big": np.round(RNG.randn(*SHAPES["big"]) * 4) / 4,
    "mid": np.round(RNG.randn(*SHAPES["mid"]) * 2) / 4,
    "small": (RNG.permutation(16).reshape(SHAPES["small"]) - 7.5) / 256,  # distinct
}
SPEC = (
    "pruning_scope=GLOBAL,begin_pruning_step=0,pruning_frequency=1,"
    "sparsity_function_end_step=4,target_sparsity=0.8"
)
STEP = 4  # at the target


def reference_masks(
    values: dict[str, np.ndarray], sparsity: float, density: float
) -> dict[str, np.ndarray]:
    """Floors first (each member's own top f_i), then the top of the rest, by sorting."""
    magnitudes = {name: np.abs(v).astype(np.float64) for name, v in values.items()}
    floors = {name: floor_count(m.size, density) for name, m in magnitudes.items()}
    floor_thresholds = {
        name: np.sort(m.ravel())[::-1][floors[name] - 1] if floors[name] else np.inf
        for name, m in magnitudes.items()
    }
    pooled = np.sort(
        np.concatenate([m[m < floor_thresholds[name]] for name, m in magnitudes.items()])
    )[::-1]
    rest = keep_count(sum(m.size for m in magnitudes.values()), sparsity) - sum(floors.values())
    threshold = pooled[rest - 1] if rest > 0 else np.inf
    return {
        name: ((m >= threshold) | (m >= floor_thresholds[name])).astype(np.float32)
        for name, m in magnitudes.items()
    }


def pruner_masks(spec: NormalizedSpec, steps: list[int]) -> tuple[dict[str, Any], list[float]]:
    weights = {name: tf.Variable(v.astype(np.float32), name=name) for name, v in VALUES.items()}
    pruner = pruning.Pruner(spec)
    for name, weight in weights.items():
        pruner.register(weight, name)
    for step in steps:
        pruner.force_update(step)
    masks = {p.name: p.mask.numpy() for p in pruner.pruned_weights}
    return masks, [float(p.threshold.numpy()) for p in pruner.pruned_weights]


def graph_masks(spec: NormalizedSpec, steps: list[int]) -> tuple[dict[str, Any], list[float]]:
    with tf.Graph().as_default():
        masked = {}
        for name, values in VALUES.items():
            with v1.variable_scope(name):
                weights = v1.get_variable("weights", initializer=values.astype(np.float32))
                masked[name] = pruning.apply_mask(weights)
        global_step = v1.train.get_or_create_global_step()
        update = pruning.Pruning(spec, global_step=global_step).mask_update_op()
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            for step in steps:
                session.run(v1.assign(global_step, step))
                session.run(update)
            masks = dict(zip(VALUES, session.run(pruning.get_masks()), strict=True))
            thresholds = [float(t) for t in session.run(pruning.get_thresholds())]
    return masks, thresholds


def keras_masks(spec: NormalizedSpec, steps: list[int]) -> tuple[dict[str, Any], list[float]]:
    inputs = keras.Input((SHAPES["big"][0],))
    hidden = inputs
    for name in VALUES:
        hidden = keras.layers.Dense(SHAPES[name][1], use_bias=False, name=name)(hidden)
    model = keras.Model(inputs, hidden)
    for name, values in VALUES.items():
        model.get_layer(name).kernel.assign(values.astype(np.float32))
    model = pks.prune(model, spec)
    for step in steps:
        pks.prune_now(model, step)
    found = {
        pruned.name.split("/")[0]: pruned
        for layer in pks.pruned_layers(model)
        for pruned in layer.pruned_weights
    }
    masks = {name: found[name].mask.numpy() for name in VALUES}
    return masks, [float(found[name].threshold.numpy()) for name in VALUES]


API = {"pruner": pruner_masks, "graph": graph_masks, "keras": keras_masks}


@pytest.mark.parametrize("api", API)
@pytest.mark.parametrize("density", [0.0, 0.25])
def test_every_api_keeps_what_sorting_the_concatenation_keeps(api: str, density: float) -> None:
    spec = parse_hparams(f"{SPEC},min_weight_density={density}")
    masks, thresholds = API[api](spec, [STEP])
    want = reference_masks(VALUES, 0.8, density)
    for name in VALUES:
        np.testing.assert_array_equal(masks[name], want[name], err_msg=name)
    assert len(set(thresholds)) == 1  # every member holds the group's threshold


def test_the_reference_has_ties_across_weights_and_a_floor_that_binds() -> None:
    """The case above is not an easy one: without the floor `small` would be emptied."""
    flat = np.concatenate([np.abs(v).ravel() for v in VALUES.values()])
    assert len(np.unique(flat)) < flat.size / 4
    assert reference_masks(VALUES, 0.8, 0.0)["small"].sum() == 0
    assert reference_masks(VALUES, 0.8, 0.25)["small"].sum() == floor_count(16, 0.25)


def test_the_apis_agree_bit_for_bit_with_threshold_decay_over_several_updates() -> None:
    spec = parse_hparams(f"{SPEC},threshold_decay=0.5,min_weight_density=0.1")
    results = {api: run(spec, [1, 2, 3, 4]) for api, run in API.items()}
    masks, thresholds = results["pruner"]
    for api, (other_masks, other_thresholds) in results.items():
        assert other_thresholds == thresholds, api
        for name in VALUES:
            np.testing.assert_array_equal(other_masks[name], masks[name], err_msg=(api, name))


def test_named_groups_and_map_rules_each_rank_their_own_weights() -> None:
    spec = parse_hparams(
        "begin_pruning_step=0,pruning_frequency=1,sparsity_function_end_step=4,"
        "target_sparsity=0.5,global_group=[big|mid:pair@0.75],weight_sparsity_map=[small:0.5]"
    )
    masks, thresholds = pruner_masks(spec, [STEP])
    pair = reference_masks({n: VALUES[n] for n in ("big", "mid")}, 0.75, 0.0)
    for name in ("big", "mid"):
        np.testing.assert_array_equal(masks[name], pair[name])
    assert thresholds[0] == thresholds[1]
    # `small` alone: r1.15's per-weight count, float32 arithmetic.
    assert masks["small"].sum() == round(np.float32(16) * np.float32(0.5))


def test_a_weight_two_rules_claim_is_refused_before_any_update() -> None:
    spec = parse_hparams(f"{SPEC},global_group=[big:g],weight_sparsity_map=[big:0.5]")
    with pytest.raises(SpecError, match="claimed by both"):
        pruning.Pruner(spec, [tf.Variable(VALUES["big"].astype(np.float32), name="big")])


def test_a_group_spanning_float16_and_float32_members_compares_exactly() -> None:
    spec = parse_hparams(SPEC)
    half = tf.Variable(VALUES["mid"].astype(np.float16), name="mid")
    full = tf.Variable(VALUES["big"].astype(np.float32), name="big")
    pruner = pruning.Pruner(spec)
    pruner.register(full, "big")
    pruner.register(half, "mid")
    pruner.force_update(STEP)
    want = reference_masks({"big": VALUES["big"], "mid": VALUES["mid"]}, 0.8, 0.0)
    np.testing.assert_array_equal(pruner.masks[0].numpy(), want["big"])
    np.testing.assert_array_equal(pruner.masks[1].numpy(), want["mid"])
    assert pruner.masks[1].dtype == tf.float16


def test_group_summaries_report_the_groups_sparsity_and_threshold(tmp_path: Any) -> None:
    from summaries import read_scalars  # noqa: PLC0415 - the tests' own helper

    pruner = pruning.Pruner(parse_hparams(SPEC))
    for name, values in VALUES.items():
        pruner.register(tf.Variable(values.astype(np.float32), name=name), name)
    pruner.force_update(STEP)
    with tf.summary.create_file_writer(str(tmp_path)).as_default():
        pruner.write_summaries(STEP)
    scalars = read_scalars(tmp_path)
    total = sum(v.size for v in VALUES.values())
    zeros = sum(int((m.numpy() == 0).sum()) for m in pruner.masks)
    assert scalars["pruning/group/global/sparsity"] == pytest.approx(zeros / total)
    assert scalars["pruning/group/global/threshold"] == pytest.approx(
        float(pruner.thresholds[0].numpy())
    )


def test_graph_mode_ranks_a_partitioned_variable_as_one_member_and_summarizes_groups() -> None:
    with tf.Graph().as_default() as graph:
        with v1.variable_scope("big", partitioner=v1.fixed_size_partitioner(2)):
            parts = v1.get_variable(
                "weights",
                SHAPES["big"],
                initializer=lambda shape, dtype=None, partition_info=None: tf.constant(
                    VALUES["big"][
                        tuple(
                            slice(o, o + n)
                            for o, n in zip(partition_info.var_offset, shape, strict=True)
                        )
                    ],
                    dtype,
                ),
            )
            pruning.apply_mask(parts)
        with v1.variable_scope("mid"):
            mid = v1.get_variable("weights", initializer=VALUES["mid"].astype(np.float32))
            pruning.apply_mask(mid)
        global_step = v1.train.get_or_create_global_step()
        pruner = pruning.Pruning(parse_hparams(SPEC), global_step=global_step)
        update = pruner.mask_update_op()
        pruner.add_pruning_summaries()
        tags = [op.name for op in graph.get_operations() if "group/global" in op.name]
        (big_mask, mid_mask) = pruning.get_masks()
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            session.run(v1.assign(global_step, STEP))
            session.run(update)
            got = session.run([big_mask.as_tensor(), mid_mask])
    want = reference_masks({"big": VALUES["big"], "mid": VALUES["mid"]}, 0.8, 0.0)
    np.testing.assert_array_equal(got[0], want["big"])
    np.testing.assert_array_equal(got[1], want["mid"])
    assert any("group/global/sparsity" in str(tag) for tag in tags), tags
    assert any("group/global/threshold" in str(tag) for tag in tags), tags
