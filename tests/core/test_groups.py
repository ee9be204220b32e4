"""Global groups: membership, counts in float64, floors, and the selection tools use."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pruning_spec import SpecError, parse_hparams
from pruning_spec._groups import floor_count, groups_of, keep_count, partition, select


def test_the_kept_count_is_exact_past_float32s_integers() -> None:
    # float32(109_999_999) is 110_000_000: r1.15's per-weight arithmetic would miscount.
    assert keep_count(109_999_999, 0.0) == 109_999_999
    assert keep_count(110_000_001, 0.9) == round(110_000_001 * (1 - 0.8999999761581421))
    assert keep_count(5, 0.5) == 2  # half to even, as the backends' round
    assert keep_count(7, 0.5) == 4


@pytest.mark.parametrize(
    ("size", "density", "floor"),
    [(10, 0.3, 3), (100, 0.1, 10), (10, 0.0, 0), (3, 1.0, 3), (7, 0.01, 1), (3, 1e-300, 1)],
)
def test_floors_round_up_exactly(size: int, density: float, floor: int) -> None:
    assert floor_count(size, density) == floor


def test_groups_collect_members_in_order_with_their_floors() -> None:
    spec = parse_hparams(
        "pruning_scope=GLOBAL,min_weight_density=0.1,global_group=[^enc/:encoder],"
        "weight_sparsity_map=[logits:0.2]"
    )
    weights = [("enc/a", 100), ("dense/b", 30), ("logits/c", 10), ("enc/d", 5)]
    groups = groups_of(spec, weights)
    assert list(groups) == ["encoder", "global"]
    assert [(m.name, m.floor) for m in groups["encoder"].members] == [("enc/a", 10), ("enc/d", 1)]
    assert groups["encoder"].size == 105 and groups["global"].size == 30


def test_groups_of_raises_on_an_ambiguous_weight() -> None:
    spec = parse_hparams("global_group=[^enc/:encoder],weight_sparsity_map=[enc:0.2]")
    with pytest.raises(SpecError, match=r"claimed by both weight_sparsity_map\[0\]"):
        groups_of(spec, [("enc/a", 4)])


def _reference(values: list[np.ndarray], keep: int, floors: list[int]) -> list[int]:
    """Each member's kept count, by sorting: floors first, then the largest of the rest."""
    ranked = []
    for index, member in enumerate(values):
        magnitudes = np.abs(member.astype(np.float64))
        order = np.argsort(-np.where(np.isnan(magnitudes), -1, magnitudes), kind="stable")
        for rank, position in enumerate(order):
            ranked.append((rank < floors[index], magnitudes[position], index))
    kept = [0] * len(values)
    floored = [r for r in ranked if r[0]]
    for _, _, index in floored:
        kept[index] += 1
    rest = sorted(
        (r for r in ranked if not r[0]), key=lambda r: -(-1 if math.isnan(r[1]) else r[1])
    )
    for _, magnitude, index in rest[: max(0, keep - len(floored))]:
        if not math.isnan(magnitude):
            kept[index] += 1
    return kept


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.lists(
            st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
            min_size=1,
            max_size=30,
            unique=True,
        ),
        min_size=1,
        max_size=4,
    ),
    st.integers(0, 130),
    st.floats(0, 1),
)
def test_selection_keeps_what_sorting_keeps_for_distinct_values(
    members: list[list[float]], keep: int, density: float
) -> None:
    values = [np.array(m) for m in members]
    flat = np.concatenate([np.abs(v) for v in values])
    if len(np.unique(flat)) != flat.size:  # ties keep more: checked below
        return
    floors = [floor_count(v.size, density) for v in values]
    keep = min(keep, flat.size)
    selection = select(values, keep, floors)
    assert list(selection.kept) == _reference(values, keep, floors)
    assert sum(selection.kept) == max(keep, sum(floors))
    assert all(k >= f for k, f in zip(selection.kept, floors, strict=True))


def test_ties_at_the_threshold_are_all_kept_and_nan_never() -> None:
    values = [np.array([1.0, 2.0, 2.0]), np.array([2.0, np.nan, 0.5])]
    assert select(values, 2, [0, 0]).kept == (2, 1)  # three 2.0s tie for second place
    assert select(values, 6, [0, 0]).kept == (3, 2)  # past the numbers: all but the NaN
    assert select(values, 0, [0, 1]).kept == (0, 1)  # only a floor keeps


def test_partition_leaves_dense_weights_out_of_both_sides() -> None:
    spec = parse_hparams("pruning_scope=GLOBAL,weight_sparsity_map=[own:0.5,off:0],exclude=[emb]")
    weights = [("own/k", 4), ("emb/t", 4), ("dense/k", 8), ("off/k", 2), ("dense2/k", 3)]
    alone, groups = partition(spec, weights)
    assert alone == ["own/k"]
    assert [m.name for m in groups["global"].members] == ["dense/k", "dense2/k"]
