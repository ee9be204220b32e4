"""Inventories and what a spec does to each weight."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pruning_spec import parse_hparams
from pruning_spec._inventory import (
    MAX_INVENTORY_BYTES,
    Weight,
    keep_count,
    parse_inventory,
    plan_groups,
    plan_weights,
    read_inventory,
)

INVENTORY = """\
# a small model
conv1/kernel 3,3,1,32
dense_1/kernel 784,256   # trailing comment
logits/kernel [256x10]
bias (10)
"""


def test_inventory_lines_and_shapes() -> None:
    weights, problems = parse_inventory(INVENTORY, "inv.txt")
    assert problems == []
    assert [(w.name, w.shape) for w in weights] == [
        ("conv1/kernel", (3, 3, 1, 32)),
        ("dense_1/kernel", (784, 256)),
        ("logits/kernel", (256, 10)),
        ("bias", (10,)),
    ]
    assert weights[1].span is not None and weights[1].span.line == 3


@pytest.mark.parametrize("line", ["just_a_name", "w 3,0", "w 3,-1", "w a,b"])
def test_bad_inventory_lines_are_located(line: str) -> None:
    weights, problems = parse_inventory(f"ok 3\n{line}\n", "inv.txt")
    assert [w.name for w in weights] == ["ok"]
    [problem] = problems
    assert (problem.code, problem.span.line) == ("bad-inventory-line", 2)  # type: ignore[union-attr]


def test_keep_count_rounds_half_to_even_in_float32() -> None:
    assert keep_count(4, 0.375) == 2  # 2.5 -> 2
    assert keep_count(4, 0.125) == 4  # 3.5 -> 4
    assert keep_count(4, 0.9) == 0
    assert keep_count(100, 0.95) == 5


def test_plans_resolve_rules_blocks_and_padding() -> None:
    spec = parse_hparams(
        "target_sparsity=0.9,weight_sparsity_map=[dense:0.5],block_dims_map=[dense:4x4,logits:1x-1]"
    )
    weights, _ = parse_inventory(INVENTORY)
    plans, problems = plan_weights(spec, weights)
    assert problems == []
    by_name = {p.weight.name: p for p in plans}
    dense = by_name["dense_1/kernel"]
    assert (dense.sparsity_rule, dense.block_rule, dense.block) == (0, 0, (4, 4))
    assert (dense.units, dense.kept_units, dense.padding) == (196 * 64, 6272, (0, 0))
    assert by_name["logits/kernel"].block == (1, 10)
    assert by_name["conv1/kernel"].block == (1, 1)
    assert by_name["conv1/kernel"].final_sparsity == pytest.approx(0.9)
    padded = plan_weights(spec, [Weight("dense_2/kernel", (10, 6))])[0][0]
    assert (padded.units, padded.padding) == (6, (2, 2))


def test_final_sparsity_is_where_the_last_update_leaves_it() -> None:
    spec = parse_hparams("end_pruning_step=50,target_sparsity=0.8")
    [plan], _ = plan_weights(spec, [Weight("w", (100,))])
    assert plan.final_sparsity == spec.sparsity_at(50) < 0.8
    [short], _ = plan_weights(spec, [Weight("w", (100,))], total_steps=5)
    assert short.final_sparsity == 0.0  # no update within 5 steps


def test_weight_claimed_by_two_rules_is_an_error_at_its_line() -> None:
    spec = parse_hparams("weight_sparsity_map=[dense:0.5,kernel:0.6]")
    weights, _ = parse_inventory(INVENTORY, "inv.txt")
    plans, problems = plan_weights(spec, weights)
    assert [(d.code, d.is_error, d.span.line) for d in problems] == [  # type: ignore[union-attr]
        ("ambiguous-rule", True, 3)
    ]
    assert "dense_1/kernel" not in {p.weight.name for p in plans}


def test_a_repeated_weight_is_planned_as_if_alone_at_each_of_its_lines() -> None:
    # plan_weights resolves a name and shape once: each repeat still gets its own span.
    spec = parse_hparams("weight_sparsity_map=[dense:0.5,dense_1:0.6],block_dims_map=[logits:1x-1]")
    inventory = "logits/kernel 256,10\ndense_1/kernel 4,4\nlogits/kernel 256,10\n"
    inventory += "logits/kernel 10,256\ndense_1/kernel 4,4\n"
    weights, _ = parse_inventory(inventory, "inv.txt")
    plans, problems = plan_weights(spec, weights)
    assert [p.weight.span.line for p in plans] == [1, 3, 4]  # type: ignore[union-attr]
    assert [p.block for p in plans] == [(1, 10), (1, 10), (1, 256)]
    assert plans == [plan_weights(spec, [p.weight])[0][0] for p in plans]
    assert [(d.code, d.span.line) for d in problems] == [  # type: ignore[union-attr]
        ("ambiguous-rule", 2),
        ("ambiguous-rule", 5),
    ]
    assert problems[0].message == problems[1].message


@pytest.mark.parametrize(
    "line",
    [
        "a" + " " * 3_000 + "!",  # was cubic: 251 s
        "w 3,\u0663",  # a Unicode digit int() would take
        "w 3x\u00b2",  # a digit int() would refuse
        "w " + "9" * 5_000,  # more digits than int() converts
        "w 99999999999999999999",  # beyond int64
    ],
    ids=["spaces", "arabic-digit", "superscript", "5000-digits", "beyond-int64"],
)
def test_hostile_lines_are_bad_lines_and_echoed_short(line: str) -> None:
    weights, problems = parse_inventory(f"ok 3\n{line}\n", "inv.txt")
    assert [w.name for w in weights] == ["ok"]
    [problem] = problems
    assert problem.code == "bad-inventory-line"
    assert len(problem.message) < 200


def test_a_shape_on_many_lines_is_read_alike_on_each() -> None:
    # parse_inventory reads each distinct shape text once.
    text = "a 3,0\nb [4x4]\nc 3,0\nd [4x4]\ne 99999999999,99999999999\nf 99999999999,99999999999\n"
    weights, problems = parse_inventory(text, "inv.txt")
    assert [(w.name, w.shape, w.span.line) for w in weights] == [  # type: ignore[union-attr]
        ("b", (4, 4), 2),
        ("d", (4, 4), 4),
    ]
    assert [p.span.line for p in problems] == [1, 3, 5, 6]  # type: ignore[union-attr]
    assert [p.message.split(" got ")[-1] for p in problems[:2]] == ["'a 3,0'", "'c 3,0'"]
    assert "'f' has" in problems[3].message


def test_a_shape_whose_size_no_tensor_can_hold_is_refused() -> None:
    _, [problem] = parse_inventory("w 9999999999,9999999999\n")
    assert "more than any tensor can hold" in problem.message


def test_a_name_may_hold_a_hash_and_a_comment_may_follow_the_shape() -> None:
    weights, problems = parse_inventory("w#2 5  # the second w\n")
    assert problems == []
    assert [(w.name, w.shape) for w in weights] == [("w#2", (5,))]


def test_an_inventory_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "weights.txt"
    os.mkfifo(fifo)
    weights, [problem] = read_inventory(str(fifo))
    assert weights == []
    assert (problem.code, problem.message) == ("io-error", "is a FIFO, not a regular file")


def test_an_inventory_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.txt"
    path.write_bytes(b"w 1\n" * (MAX_INVENTORY_BYTES // 4 + 1))
    _, [problem] = read_inventory(str(path))
    assert problem.code == "file-too-large"


def test_an_inventory_that_is_not_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "weights.txt"
    path.write_bytes(b"ok 3\nw\xff 3\n")
    _, [problem] = read_inventory(str(path))
    assert (problem.code, problem.span.line, problem.span.column) == ("invalid-utf8", 2, 2)  # type: ignore[union-attr]


def test_an_empty_weight_is_a_warning_not_a_division_by_zero() -> None:
    spec = parse_hparams("block_dims_map=[w:-1x4]")
    empty = Weight("w", (0, 8))
    plans, [problem] = plan_weights(spec, [empty, Weight("v", (4,))])
    assert [p.weight.name for p in plans] == ["v"]
    assert (problem.code, problem.severity.value) == ("empty-weight", "warning")
    assert problem.message == (
        "weight 'w' of shape [0, 8] has no values, so there is nothing to prune"
    )


GROUPED = "enc/q 10,10\nenc/k 4,5\ndense/kernel 8,8\nlogits/kernel 8,2\nemb/table 50\n"


def test_group_members_get_the_groups_sparsity_and_no_kept_count_of_their_own() -> None:
    spec = parse_hparams(
        "pruning_scope=GLOBAL,target_sparsity=0.9,global_group=[^enc/:encoder@0.5],"
        "weight_sparsity_map=[logits:0.2],exclude=[emb],sparsity_function_end_step=100,"
        "end_pruning_step=50"
    )
    weights, _ = parse_inventory(GROUPED)
    plans, problems = plan_weights(spec, weights)
    assert problems == []
    by_name = {p.weight.name: p for p in plans}
    assert {name: p.group for name, p in by_name.items()} == {
        "enc/q": "encoder",
        "enc/k": "encoder",
        "dense/kernel": "global",
        "logits/kernel": None,  # its own rule: ranked alone
        "emb/table": None,  # excluded: dense
    }
    assert by_name["enc/q"].group_rule == 0 and by_name["dense/kernel"].group_rule is None
    # The last update is at step 50, before the curves end: the group's value there.
    assert by_name["enc/q"].final_sparsity == spec.group_sparsity_at(50, "encoder") < 0.5
    assert by_name["dense/kernel"].final_sparsity == spec.group_sparsity_at(50, "global")
    member = by_name["enc/q"]
    assert (member.kept_units, member.achieved_sparsity, member.block) == (None, None, (1, 1))
    alone = by_name["logits/kernel"]
    assert (alone.kept_units, alone.final_sparsity) == (13, spec.sparsity_at(50, "logits/kernel"))


def test_group_plans_count_values_kept_and_floors() -> None:
    spec = parse_hparams(
        "pruning_scope=GLOBAL,target_sparsity=0.9,min_weight_density=0.3,"
        "global_group=[^enc/:encoder@0.5],weight_sparsity_map=[logits:0.2],exclude=[emb]"
    )
    weights, _ = parse_inventory(GROUPED)
    plans, _ = plan_weights(spec, weights)
    groups = plan_groups(spec, plans)
    assert list(groups) == ["encoder", "global"]
    encoder, global_ = groups["encoder"], groups["global"]
    assert [m.name for m in encoder.group.members] == ["enc/q", "enc/k"]
    assert (encoder.target, encoder.size, encoder.kept_units, encoder.floors) == (0.5, 120, 60, 36)
    assert encoder.final_sparsity == pytest.approx(0.5)
    assert encoder.achieved_sparsity == 0.5
    # 64 values at 0.9 keep 6; the floor ceil(64 * 0.3) = 20 keeps more.
    assert (global_.size, global_.kept_units, global_.floors) == (64, 6, 20)
    assert global_.kept_at_least == 20 and global_.achieved_sparsity == 1 - 20 / 64


def test_group_plans_select_from_values() -> None:
    spec = parse_hparams("pruning_scope=GLOBAL,target_sparsity=0.5,min_weight_density=0.5")
    plans, _ = plan_weights(spec, [Weight("a", (4,)), Weight("b", (2,))])
    [group] = plan_groups(spec, plans).values()
    # K = 3 of 6; b's floor keeps 1 of its own, then the 2 largest of the rest (a's).
    selection = group.select([[5.0, 4.0, 3.0, 2.0], [0.1, 0.2]])
    assert selection.kept == (2, 1)


@pytest.mark.parametrize(
    ("hparams", "code", "claim"),
    [
        ("global_group=[^enc/:encoder],weight_sparsity_map=[enc/q:0.2]", "ambiguous-rule",
         "claimed by both weight_sparsity_map[0] ('enc/q') and global_group 'encoder'"),
        ("global_group=[^enc/:encoder,q:queries]", "ambiguous-rule",
         "matches both global_group[0] ('^enc/') and global_group[1] ('q')"),
        ("global_group=[^enc/:encoder],block_dims_map=[enc/q:2x2]", "ambiguous-rule",
         "claimed by both block_dims_map[0] ('enc/q') and group 'encoder'"),
        ("pruning_scope=GLOBAL,block_height=2,exclude=[^(enc/k|dense|logits|emb)]",
         "block-in-group", "of group 'global' would be pruned in blocks of 2x1"),
    ],
)  # fmt: skip
def test_group_conflicts_are_errors_at_the_weights_line(
    hparams: str, code: str, claim: str
) -> None:
    spec = parse_hparams(hparams)
    weights, _ = parse_inventory(GROUPED, "inv.txt")
    plans, [problem] = plan_weights(spec, weights)
    assert (problem.code, problem.is_error, problem.span.line) == (code, True, 1)  # type: ignore[union-attr]
    assert claim in problem.message
    assert "enc/q" not in {p.weight.name for p in plans}


# N:M weights.


@pytest.mark.parametrize(
    ("entry", "shape", "kept"),
    [
        # 11 rows along axis 0: two groups of 4 keep 2 each, then a partial group of 3.
        ("w:2/4/DENSE", (11, 3), (2 + 2 + 3) * 3),  # the partial group keeps all 3
        ("w:2/4/KEEP_N", (11, 3), (2 + 2 + 2) * 3),  # its 2 largest
        ("w:1/4/KEEP_N", (11, 3), (1 + 1 + 1) * 3),
        ("w:2/4/KEEP_N", (9, 3), (2 + 2 + 1) * 3),  # a partial group of 1 keeps it
        ("w:2/4/DENSE", (8, 3), (2 + 2) * 3),  # no partial group: as REJECT
        ("w:2/4", (3, 3, 8, 5), 3 * 3 * (2 + 2) * 5),  # along cin, the default axis -2
    ],
)
def test_an_n_m_weight_keeps_its_patterns_count(
    entry: str, shape: tuple[int, ...], kept: int
) -> None:
    spec = parse_hparams(f"target_sparsity=0.9,n_m_map=[{entry}]")
    [plan], problems = plan_weights(spec, [Weight("w", shape)])
    assert problems == []
    size = Weight("w", shape).size
    assert (plan.units, plan.kept_units, plan.block, plan.padding) == (size, kept, (1, 1), (0, 0))
    assert plan.final_sparsity == plan.achieved_sparsity == 1 - kept / size
    assert (plan.sparsity_rule, plan.block_rule, plan.group) == (None, None, None)
    assert plan.n_m is not None and plan.n_m.kept_count(shape) == kept


def test_an_n_m_weight_keeps_everything_before_its_first_update() -> None:
    spec = parse_hparams("n_m_map=[w:2/4]")
    [plan], _ = plan_weights(spec, [Weight("w", (8, 8))], total_steps=5)  # first update at 10
    assert (plan.kept_units, plan.final_sparsity) == (64, 0.0)
    [plan], _ = plan_weights(spec, [Weight("w", (8, 8))], total_steps=11)
    assert (plan.kept_units, plan.final_sparsity) == (32, 0.5)


def test_n_m_errors_are_at_the_weights_line_with_the_rules_field() -> None:
    spec = parse_hparams("n_m_map=[^dense:2/4,^conv:2/4/REJECT/-5,^logits:1/2]")
    weights, _ = parse_inventory(
        "dense 6,4\nconv 3,3,4,8\nlogits 8,2\nlogits_2/kernel 8\n", "inv.txt"
    )
    plans, problems = plan_weights(spec, weights)
    assert [(d.code, d.field_path, d.is_error, d.span.line) for d in problems] == [  # type: ignore[union-attr]
        ("n-m-remainder", "n_m_map[0].m", True, 1),
        ("n-m-axis", "n_m_map[1].axis", True, 2),
    ]
    assert [p.weight.name for p in plans] == ["logits", "logits_2/kernel"]


def test_global_scope_groups_no_n_m_weight() -> None:
    spec = parse_hparams("pruning_scope=GLOBAL,target_sparsity=0.8,n_m_map=[^enc/:2/4/DENSE]")
    weights, _ = parse_inventory(GROUPED)
    plans, problems = plan_weights(spec, weights)
    assert problems == []
    by_name = {p.weight.name: p for p in plans}
    # 10 rows: two groups of 4 keep 2 each and the last 2 stay dense, 6 a column.
    assert (by_name["enc/q"].group, by_name["enc/q"].kept_units) == (None, 60)
    assert (by_name["enc/k"].group, by_name["enc/k"].kept_units) == (None, 10)
    [group] = plan_groups(spec, plans).values()
    assert group.name == "global"
    assert [m.name for m in group.group.members] == ["dense/kernel", "logits/kernel", "emb/table"]
    assert group.size == 64 + 16 + 50
