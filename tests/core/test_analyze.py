"""The schedule, explain and verify commands and validate's optional lints."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from cli_run import run

ROOT = Path(__file__).resolve().parents[2]
CIFAR10 = str(ROOT / "examples" / "cifar10.txtpb")
BLOCKS = str(ROOT / "examples" / "block_sparse_dense.txtpb")
INVENTORY = "conv1/kernel 3,3,1,32\nconv1/bias 32\ndense1/kernel 784,256\nlogits/kernel 256,10\n"


@pytest.fixture
def inventory(tmp_path: Path) -> str:
    path = tmp_path / "weights.txt"
    path.write_text(INVENTORY)
    return str(path)


def test_schedule_table(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "schedule", CIFAR10, "--total-steps", "100001")
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["step", "sparsity", "^conv1/"]
    assert lines[1].split() == ["10,000", "0.000000", "0.000000"]
    assert lines[-2].split() == ["100,000", "0.900000", "0.800000"]
    assert lines[-1] == "9,001 mask updates in 100,001 steps"


def test_schedule_csv_and_json_agree(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "schedule", BLOCKS, "--total-steps", "20001", "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["step", "sparsity"]
    _, out, _ = run(capsys, "schedule", BLOCKS, "--total-steps", "20001", "--format", "json")
    document = json.loads(out)
    assert [u["step"] for u in document["updates"]] == [int(r[0]) for r in rows[1:]]
    assert document["updates"][-1]["sparsity"] == pytest.approx(0.75)


def test_schedule_lints_go_to_stderr_and_strict_fails(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "schedule", CIFAR10, "--total-steps", "50000")
    assert status == 0
    assert "warning[target-not-reached]" in err and "sparsity reaches 0.7456, not 0.9" in err
    assert run(capsys, "schedule", CIFAR10, "--total-steps", "50000", "--strict")[0] == 1


def test_schedule_plot(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "schedule.png"
    assert (
        run(capsys, "schedule", CIFAR10, "--total-steps", "100001", "--plot", str(target))[0] == 0
    )
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_schedule_plot_without_matplotlib(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    status, _, err = run(capsys, "schedule", CIFAR10, "--total-steps", "10", "--plot", "x.png")
    assert status == 2
    assert "error[missing-extra]: --plot needs matplotlib (pip install 'pruning-spec[plot]')" in err


def test_explain_table(capsys: pytest.CaptureFixture[str], inventory: str) -> None:
    status, out, err = run(capsys, "explain", BLOCKS, "--weights", inventory)
    assert status == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["dense1/kernel"][1:] == ["784x256", "-", "[0]", "dense[0-9]+/kernel", "0.7500",
                                         "3,136/12,544", "blocks", "4x4", "-"]  # fmt: skip
    assert rows["logits/kernel"][-2:] == ["1x10", "-"]
    assert rows["conv1/kernel"][-2:] == ["element-wise", "-"]
    assert "rule-matches-nothing" not in err


def test_explain_json_and_lints(capsys: pytest.CaptureFixture[str], inventory: str) -> None:
    status, out, err = run(
        capsys, "explain", CIFAR10, "--weights", inventory, "--format", "json",
        "--hparams", "weight_sparsity_map=[^conv1/:0.8,nothing:0.5]",
    )  # fmt: skip
    assert status == 0
    plans = {p["name"]: p for p in json.loads(out)}
    assert plans["conv1/kernel"]["sparsity_rule"] == 0
    assert plans["conv1/kernel"]["final_sparsity"] == pytest.approx(0.8)
    assert "<hparams>:" in err and "warning[rule-matches-nothing]: weight_sparsity_map[1]" in err


def test_explain_bad_inventory_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "weights.txt"
    path.write_text("dense 3,x\n")
    status, _, err = run(capsys, "explain", CIFAR10, "--weights", str(path))
    assert status == 2
    assert f"{path}:1:1: error[bad-inventory-line]" in err


def test_validate_lints_only_when_asked(capsys: pytest.CaptureFixture[str], inventory: str) -> None:
    assert run(capsys, "validate", CIFAR10)[1] == "1 file checked: no problems.\n"
    status, out, _ = run(
        capsys, "validate", CIFAR10, "--total-steps", "5000", "--weights", inventory
    )
    assert status == 0
    assert f"{CIFAR10}:7:1: warning[no-update]: begin_pruning_step" in out
    assert run(capsys, "validate", "--strict", CIFAR10, "--total-steps", "5000")[0] == 1


def test_validate_reports_weights_two_rules_claim(
    capsys: pytest.CaptureFixture[str], inventory: str
) -> None:
    status, out, _ = run(
        capsys, "validate", CIFAR10, "--weights", inventory,
        "--hparams", "weight_sparsity_map=[conv:0.5,kernel:0.6]",
    )  # fmt: skip
    assert status == 1
    assert "error[ambiguous-rule]" in out and "'conv1/kernel'" in out


def test_verify_on_values_that_cannot_be_read_is_an_io_problem(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkpoint whose index lists a weight but whose data cannot be read (a truncated
    # shard, a dataset over the limit): exit 2 with the reader's reason, no traceback.
    from pruning_spec import _checkpoints  # noqa: PLC0415

    def unreadable(name: str) -> object:
        raise _checkpoints.CheckpointError(f"cannot read {name!r} from checkpoint ckpt: cut")

    listed = _checkpoints.Checkpoint(
        "ckpt", [_checkpoints.WeightInfo("conv1/weights", (3, 3))], 100_000, {}, unreadable
    )
    monkeypatch.setattr(_checkpoints, "read_checkpoint", lambda path: listed)
    status, _, err = run(capsys, "verify", CIFAR10, "--checkpoint", "ckpt")
    assert status == 2
    assert "ckpt: error[io-error]: cannot read 'conv1/weights' from checkpoint ckpt" in err


GROUPS = "pruning_scope=GLOBAL,global_group=[^conv1/:convs@0.5],weight_sparsity_map=[]"


def test_schedule_shows_each_group(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys, "schedule", CIFAR10, "--total-steps", "100001", "--hparams", GROUPS
    )
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["step", "sparsity", "group", "convs", "group", "global"]
    assert lines[-4].split() == ["100,000", "0.900000", "0.500000", "0.900000"]
    assert lines[-2:] == [
        "group convs: the weights matching '^conv1/', ranked together to sparsity 0.5",
        "group global: the weights no rule claims (pruning_scope GLOBAL), ranked together to "
        "sparsity 0.9",
    ]
    _, out, _ = run(
        capsys, "schedule", CIFAR10, "--total-steps", "100001", "--hparams", GROUPS,
        "--format", "csv",
    )  # fmt: skip
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["step", "sparsity", "group convs", "group global"]
    assert rows[-1] == ["100000", "0.899999976", "0.5", "0.899999976"]
    _, out, _ = run(
        capsys, "schedule", CIFAR10, "--total-steps", "100001", "--hparams", GROUPS,
        "--format", "json",
    )  # fmt: skip
    document = json.loads(out)
    assert document["groups"] == [
        {"name": "convs", "pattern": "^conv1/", "target": 0.5},
        {"name": "global", "pattern": None, "target": 0.9},
    ]
    assert document["updates"][-1]["group_sparsities"] == pytest.approx([0.5, 0.9])


def test_explain_shows_groups_and_says_a_members_sparsity_depends_on_values(
    capsys: pytest.CaptureFixture[str], inventory: str
) -> None:
    status, out, err = run(
        capsys, "explain", CIFAR10, "--weights", inventory,
        "--hparams", GROUPS + ",min_weight_density=0.01,exclude=[bias]",
    )  # fmt: skip
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[6:9] == ["group", "final", "kept"]
    rows = {line.split()[0]: line.split() for line in lines[1:5]}
    assert rows["conv1/kernel"][4:] == ["convs", "0.5000", "(group)", "?/288", "element-wise", "-"]
    assert rows["dense1/kernel"][4:8] == ["global", "0.9000", "(group)", "?/200,704"]
    assert rows["conv1/bias"][2:7] == ["excluded", "-", "-", "0.0000", "32/32"]
    assert lines[6:] == [
        "group   target  final   members  values   kept    floors",
        "convs      0.5  0.5000        1      288     144       3",
        "global     0.9  0.9000        2  203,264  20,326   2,034",
        "(group): the group's sparsity; each member's own depends on the values "
        "(explain --checkpoint computes it)",
    ]
    _, out, _ = run(
        capsys, "explain", CIFAR10, "--weights", inventory, "--format", "json",
        "--hparams", GROUPS + ",min_weight_density=0.01,exclude=[bias]",
    )  # fmt: skip
    plans = {p["name"]: p for p in json.loads(out)}
    dense = plans["dense1/kernel"]
    assert (dense["kept_units"], dense["achieved_sparsity"], dense["floor"]) == (None, None, 2008)
    assert dense["final_sparsity"] == pytest.approx(0.9)
    assert dense["group"] == {
        "name": "global", "target": 0.9, "final_sparsity": dense["final_sparsity"],
        "members": 2, "values": 203_264, "kept_units": 20_326, "floors": 2_034,
    }  # fmt: skip
    assert (plans["conv1/bias"]["group"], plans["conv1/bias"]["floor"]) == (None, None)


def test_explain_lints_groups(capsys: pytest.CaptureFixture[str], inventory: str) -> None:
    status, _, err = run(
        capsys, "explain", CIFAR10, "--weights", inventory, "--strict",
        "--hparams", "pruning_scope=GLOBAL,min_weight_density=0.5,"
        "global_group=[^conv1/:convs,^dec/:decoder]",
    )  # fmt: skip
    assert status == 1
    assert "warning[rule-matches-nothing]: global_group[1]: group 'decoder'" in err
    assert (
        "warning[floor-exceeds-target]: min_weight_density: is 0.5: the 2 members of group " in err
    )


def _checkpoint(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, list[float]], step: int | None = 100_000
) -> None:
    """`read_checkpoint` returns a checkpoint holding these 1-d weights."""
    import numpy as np  # noqa: PLC0415

    from pruning_spec import _checkpoints  # noqa: PLC0415

    stored = {name: np.array(v, dtype=np.float32) for name, v in values.items()}
    listed = _checkpoints.Checkpoint(
        "ckpt",
        [_checkpoints.WeightInfo(name, (len(v),)) for name, v in values.items()],
        step,
        {},
        stored.__getitem__,
    )
    monkeypatch.setattr(_checkpoints, "read_checkpoint", lambda path: listed)


# Ten values each; at sparsity 0.8 the group of 20 keeps K = 4, all of them a's.
TRAINED = {
    "a": [10.0, 9.0, 8.0, 7.0, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
    "b": [1.0, 0.9, 0.8, 0.7, 0.06, 0.05, 0.04, 0.03, 0.02, 0.01],
}
GLOBAL = "pruning_scope=GLOBAL,target_sparsity=0.8,weight_sparsity_map=[]"


def test_explain_a_checkpoint_gives_each_members_exact_sparsity(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _checkpoint(monkeypatch, TRAINED)
    status, out, _ = run(capsys, "explain", CIFAR10, "--checkpoint", "ckpt", "--hparams", GLOBAL)
    assert status == 0
    rows = [line.split() for line in out.splitlines()]
    assert [r[4:7] for r in rows[1:3]] == [
        ["global", "0.6000", "4/10"],
        ["global", "1.0000", "0/10"],
    ]
    assert rows[4:] == [
        ["group", "target", "final", "members", "values", "kept", "floors"],
        ["global", "0.8", "0.8000", "2", "20", "4", "0"],
    ]  # no "(group)" note: the sparsities are each member's own
    # A floor of ceil(10 * 0.2) = 2 values each: b keeps 2, a the other 2 of K = 4.
    _, out, _ = run(
        capsys, "explain", CIFAR10, "--checkpoint", "ckpt", "--format", "json",
        "--hparams", GLOBAL + ",min_weight_density=0.2",
    )  # fmt: skip
    plans = {p["name"]: p for p in json.loads(out)}
    assert [(p["kept_units"], p["achieved_sparsity"], p["floor"]) for p in plans.values()] == [
        (2, 0.8, 2),
        (2, 0.8, 2),
    ]


def _verify(capsys: pytest.CaptureFixture[str], *hparams: str) -> tuple[int, list[str], str]:
    status, out, err = run(capsys, "verify", CIFAR10, "--checkpoint", "ckpt", "--hparams", *hparams)
    return status, out.splitlines(), err


def test_verify_checks_a_group_as_a_whole_not_each_member(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pruned as a group at 0.8: a keeps 4, b nothing. Each alone would fail 0.8.
    pruned = {"a": TRAINED["a"][:4] + [0.0] * 6, "b": [0.0] * 10}
    _checkpoint(monkeypatch, pruned)
    assert _verify(capsys, GLOBAL) == (
        0,
        ["2 weights and 1 group as a whole match the spec at step 100,000"],
        "",
    )
    # Per weight, the same spec without the group: both weights are off.
    status, out, _ = _verify(capsys, "target_sparsity=0.8,weight_sparsity_map=[]")
    assert status == 1 and out[-1] == "2 of 2 weights do not match the spec at step 100,000"


def test_verify_reports_a_group_off_its_sparsity(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a keeps 4 and b 2: 6 of 20 kept, sparsity 0.7 instead of 0.8.
    _checkpoint(monkeypatch, {"a": TRAINED["a"][:4] + [0.0] * 6, "b": [1.0, 1.0] + [0.0] * 8})
    status, out, _ = _verify(capsys, GLOBAL)
    assert status == 1
    assert out == [
        "weight        expected  actual  problem",
        "group global    0.8000  0.7000  the group's sparsity off by more than 0.01",
        "0 of 2 weights and 1 of 1 group do not match the spec at step 100,000",
    ]
    assert _verify(capsys, GLOBAL, "--tolerance", "0.15")[0] == 0


def test_verify_reports_a_member_below_its_floor(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The group keeps its 4 values, but 3 of them a's: b keeps 1, under its floor of 2.
    _checkpoint(monkeypatch, {"a": TRAINED["a"][:3] + [0.0] * 7, "b": [1.0] + [0.0] * 9})
    status, out, _ = _verify(capsys, GLOBAL + ",min_weight_density=0.2")
    assert status == 1
    assert out == [
        "weight  expected    actual   problem",
        "b       keeps >= 2  keeps 1  below its floor in group global (min_weight_density)",
        "1 of 2 weights and 0 of 1 group do not match the spec at step 100,000",
    ]


def test_verify_expects_what_floors_keep_when_they_exceed_the_target(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Floors of 5 each keep 10 of 20, more than K = 4: the group ends at 0.5, not 0.8.
    _checkpoint(monkeypatch, {"a": TRAINED["a"][:5] + [0.0] * 5, "b": TRAINED["b"][:5] + [0.0] * 5})
    status, out, err = _verify(capsys, GLOBAL + ",min_weight_density=0.5")
    assert (status, out) == (
        0,
        ["2 weights and 1 group as a whole match the spec at step 100,000"],
    )
    assert err == ""


def test_verify_skips_a_group_not_pruned_yet(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _checkpoint(monkeypatch, TRAINED, step=5)
    status, out, err = _verify(capsys, GLOBAL)
    assert (status, out) == (0, ["no weight is pruned at step 5: nothing was checked"])
    assert "warning[nothing-checked]" in err


# N:M weights (n_m_map): no schedule, a pattern.

N_M = "n_m_map=[^dense1/:2/4,^logits/:2/4/KEEP_N/1]"


def test_schedule_shows_each_n_m_rule_at_its_patterns_sparsity_from_the_first_update(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(capsys, "schedule", CIFAR10, "--total-steps", "100001", "--hparams", N_M)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["step", "sparsity", "^conv1/", "2:4", "^dense1/", "2:4", "^logits/"]
    # The first update already prunes them to 1 - 2/4, while the curve starts at 0.
    assert lines[1].split() == ["10,000", "0.000000", "0.000000", "0.500000", "0.500000"]
    assert lines[-4].split() == ["100,000", "0.900000", "0.800000", "0.500000", "0.500000"]
    assert lines[-3] == "9,001 mask updates in 100,001 steps"
    assert lines[-2] == (
        "2:4 ^dense1/: the weights matching '^dense1/' keep 2 of every 4 values along the "
        "default axis (-2; 0 for a rank-1 weight): no schedule, sparsity 0 before the first "
        "mask update (step 10,000) and 0.5 from it on (every update re-masks them)"
    )
    assert lines[-1].startswith("2:4 ^logits/: the weights matching '^logits/' keep 2 of every 4 ")
    assert lines[-1].endswith(
        "; a last partial group keeps at most its 2 largest (remainder KEEP_N), so a weight "
        "whose axis 4 does not divide is less sparse"
    )
    args = ("schedule", CIFAR10, "--total-steps", "10011", "--hparams", N_M)
    _, out, _ = run(capsys, *args, "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["step", "sparsity", "^conv1/", "2:4 ^dense1/", "2:4 ^logits/"]
    assert [row[:1] + row[3:] for row in rows[1:]] == [
        ["10000", "0.5", "0.5"],
        ["10010", "0.5", "0.5"],
    ]
    _, out, _ = run(capsys, *args, "--format", "json")
    document = json.loads(out)
    assert document["n_m"] == [
        {"pattern": "^dense1/", "n": 2, "m": 4, "axis": None, "remainder": "REJECT",
         "sparsity": 0.5},
        {"pattern": "^logits/", "n": 2, "m": 4, "axis": 1, "remainder": "KEEP_N",
         "sparsity": 0.5},
    ]  # fmt: skip
    assert [u["n_m_sparsities"] for u in document["updates"]] == [[0.5, 0.5]] * 2


def test_schedule_without_n_m_rules_has_no_n_m_columns(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "schedule", CIFAR10, "--total-steps", "10001", "--format", "json")
    document = json.loads(out)
    assert document["n_m"] == [] and document["updates"][0]["n_m_sparsities"] == []


def test_explain_shows_each_n_m_weights_pattern_and_what_it_keeps(
    capsys: pytest.CaptureFixture[str], inventory: str
) -> None:
    status, out, err = run(capsys, "explain", CIFAR10, "--weights", inventory, "--hparams", N_M)
    assert status == 0
    # Only the example's own lint (^conv1/ also matches the bias); none about N:M weights.
    assert [line.split()[1] for line in err.splitlines()] == ["warning[weight-too-small]:"]
    assert "conv1/bias" in err
    lines = out.splitlines()
    assert lines[0].split() == ["weight", "shape", "sparsity", "rule", "block", "rule", "n:m",
                                "final", "kept", "block", "padding"]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[1:5]}
    # 784 rows / 4 = 196 groups a column keep 2 each: 392 * 256 = 100,352 of 200,704.
    assert rows["dense1/kernel"][1:] == ["784x256", "-", "-", "[0]", "2:4", "axis", "0",
                                         "0.5000", "100,352/200,704", "-", "-"]  # fmt: skip
    # 10 columns along axis 1: two groups keep 2 each, the last 2 values keep both (KEEP_N):
    # 6 of 10 a row, 1,536 of 2,560.
    assert rows["logits/kernel"][4:] == ["[1]", "2:4", "axis", "1", "KEEP_N", "0.4000",
                                         "1,536/2,560", "-", "-"]  # fmt: skip
    assert rows["conv1/kernel"][2:] == ["[0]", "^conv1/", "-", "-", "0.8000", "58/288",
                                        "element-wise", "-"]  # fmt: skip
    assert lines[5:] == [
        "n:m: [rule] N:M axis A: the weight keeps N of every M consecutive values along axis A "
        "from the first mask update on (no schedule)"
    ]
    _, out, _ = run(
        capsys, "explain", CIFAR10, "--weights", inventory, "--hparams", N_M, "--format", "json"
    )
    plans = {p["name"]: p for p in json.loads(out)}
    assert plans["dense1/kernel"]["n_m"] == {
        "n": 2, "m": 4, "axis": 0, "remainder": "REJECT", "rule": 0
    }  # fmt: skip
    logits = plans["logits/kernel"]
    assert logits["n_m"] == {"n": 2, "m": 4, "axis": 1, "remainder": "KEEP_N", "rule": 1}
    assert (logits["units"], logits["kept_units"]) == (2_560, 1_536)
    assert logits["final_sparsity"] == logits["achieved_sparsity"] == pytest.approx(0.4)
    assert plans["conv1/kernel"]["n_m"] is None


def test_explain_before_the_first_update_keeps_every_value_of_an_n_m_weight(
    capsys: pytest.CaptureFixture[str], inventory: str
) -> None:
    _, out, _ = run(
        capsys, "explain", CIFAR10, "--weights", inventory, "--hparams", N_M,
        "--total-steps", "5000",
    )  # fmt: skip
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:5]}
    assert rows["dense1/kernel"][8:10] == ["0.0000", "200,704/200,704"]


def test_explain_a_checkpoints_n_m_weight(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _checkpoint(monkeypatch, TRAINED)
    status, out, _ = run(
        capsys, "explain", CIFAR10, "--checkpoint", "ckpt", "--hparams", "n_m_map=[a:2/5]"
    )
    assert status == 0
    rows = [line.split() for line in out.splitlines()[1:3]]
    # a: 2 groups of 5 keep 2 each; b follows the schedule, 0.9 of 10 values.
    assert rows == [
        ["a", "10", "-", "-", "[0]", "2:5", "axis", "0", "0.6000", "4/10", "-", "-"],
        ["b", "10", "-", "-", "-", "0.9000", "1/10", "element-wise", "-"],
    ]


@pytest.mark.parametrize(
    ("line", "hparams", "code", "path"),
    [
        ("dense1/kernel 6,4", "n_m_map=[dense1:2/4]", "n-m-remainder", "n_m_map[0].m"),
        ("dense1/kernel 8,4", "n_m_map=[dense1:2/4/REJECT/2]", "n-m-axis", "n_m_map[0].axis"),
    ],
)
def test_explain_locates_n_m_errors_at_the_weight_and_the_rule(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, line: str, hparams: str, code: str,
    path: str,
) -> None:  # fmt: skip
    weights = tmp_path / "weights.txt"
    weights.write_text(f"conv1/kernel 3,3,1,32\n{line}\n")
    status, out, err = run(
        capsys, "explain", CIFAR10, "--weights", str(weights), "--hparams", hparams
    )
    assert status == 1
    [error] = err.splitlines()
    assert error.startswith(f"{weights}:2:1: error[{code}]: {path}: ")
    assert "'dense1/kernel' of shape [" in error
    assert [row.split()[0] for row in out.splitlines()[1:]] == ["conv1/kernel"]


def test_verify_counts_the_groups_that_break_an_n_m_pattern(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Groups of 4 along the only axis: a keeps 2 and 3, b 2 and 1 (a natural zero), c's
    # last 2 values form a partial group that KEEP_N lets keep both.
    _checkpoint(
        monkeypatch,
        {
            "a": [1.0, 2.0, 0.0, 0.0, 3.0, 0.0, 4.0, 5.0],
            "b": [0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0],
            "c": [1.0, 0.0, 0.0, 2.0, 3.0, 4.0],
        },
    )
    hparams = "n_m_map=[a:2/4,b:2/4,c:2/4/KEEP_N]"
    status, out, err = _verify(capsys, hparams)
    assert (status, err) == (1, "")
    assert out == [
        "weight  expected    actual         problem",
        "a       2:4 axis 0  1 of 2 groups  keep more than the pattern allows (2 of 4)",
        "1 of 3 weights do not match the spec at step 100,000",
    ]
    status, out, _ = _verify(capsys, hparams.replace("a:2/4", "a:3/4"))
    assert (status, out) == (
        0,
        ["3 weights match the spec at step 100,000, including all 6 groups of the 3 N:M weights"],
    )
    # Before the first mask update (step 10,000) nothing is pruned, N:M weights included.
    _checkpoint(monkeypatch, {"a": [1.0] * 8}, step=5_000)
    status, out, _ = _verify(capsys, "n_m_map=[a:2/4]")
    assert (status, out) == (0, ["no weight is pruned at step 5,000: nothing was checked"])


def test_verify_of_a_checkpoint_without_candidates_says_it_checked_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Keras file whose format says which weights are pruned (or kernels), and none is.
    from pruning_spec import _checkpoints  # noqa: PLC0415

    listed = _checkpoints.Checkpoint(
        "ckpt",
        [_checkpoints.WeightInfo("lstm/cell/vars/0", (4, 8))],
        None,
        {},
        pruned=frozenset(),
        assumed=True,
    )
    monkeypatch.setattr(_checkpoints, "read_checkpoint", lambda path: listed)
    status, out, err = run(capsys, "verify", CIFAR10, "--checkpoint", "ckpt", "--final")
    assert (status, out) == (
        0,
        "none of the checkpoint's 1 weights is pruned: nothing was checked\n",
    )
    assert "ckpt: warning[nothing-checked]: the checkpoint holds 1 weights, but none" in err
    assert run(capsys, "verify", CIFAR10, "--checkpoint", "ckpt", "--final", "--strict")[0] == 1
