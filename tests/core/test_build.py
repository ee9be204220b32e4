"""The installed package matches the schema and stays free of TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from pruning_spec.v1 import options_pb2, pruning_pb2

ROOT = Path(__file__).resolve().parents[2]


def _compiled_afresh(tmp_path: Path) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    out = tmp_path / "set.pb"
    protos = [str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto")]
    # In a subprocess: protoc's native code and TensorFlow's (loaded by backend tests) clash.
    args = [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}"]
    result = subprocess.run(
        [*args, f"--descriptor_set_out={out}", *protos], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    for file in files:
        for message in file.message_type:
            _clear_json_names(message)
        for extension in file.extension:
            extension.ClearField("json_name")
    return {file.name: file for file in files}


def _clear_json_names(message: descriptor_pb2.DescriptorProto) -> None:
    # Generated Python code omits json_name; the descriptor set includes it.
    for field in message.field:
        field.ClearField("json_name")
    for nested in message.nested_type:
        _clear_json_names(nested)


@pytest.mark.parametrize("module", [pruning_pb2, options_pb2], ids=["pruning", "options"])
def test_installed_module_matches_the_proto(tmp_path: Path, module: object) -> None:
    installed = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)  # type: ignore[attr-defined]
    fresh = _compiled_afresh(tmp_path)[installed.name]
    assert installed == fresh, (
        f"{installed.name} is stale: reinstall (pip install -e .) or run `make proto`"
    )


def test_proto_registers_under_its_package_path() -> None:
    assert pruning_pb2.DESCRIPTOR.name == "pruning_spec/v1/pruning.proto"
    assert pruning_pb2.DESCRIPTOR.package == "pruning_spec.v1"


def test_import_works_without_tensorflow() -> None:
    # A None entry in sys.modules makes `import tensorflow` fail, as if not installed.
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "import pruning_spec\n"
        "spec = pruning_spec.load_spec('examples/cifar10.txtpb')\n"
        "assert spec.target_sparsity == 0.9\n"
        "heavy = ('tensorflow', 'keras', 'numpy')\n"
        "loaded = sorted(m for m, v in sys.modules.items() if v and m.startswith(heavy))\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_generated_code_is_not_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "pruning_spec/v1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    assert not [f for f in tracked.stdout.split() if "_pb2" in f]
