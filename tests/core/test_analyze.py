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
