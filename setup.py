"""Generates the protobuf modules from proto/ before the package is built.

Both `pip install .` and `pip install -e .` run `build_py`, so the generated
`pruning_spec/v1/*_pb2.py` and `*_pb2.pyi` always match the installed schema.
Nothing generated is committed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc
from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PROTO_ROOT = ROOT / "proto"


def compile_protos(out_dir: Path) -> None:
    """Runs the protoc bundled with grpcio-tools over every schema file."""
    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", f"--python_out={out_dir}"]
    plugin = shutil.which("protoc-gen-mypy") or str(Path(sys.executable).parent / "protoc-gen-mypy")
    if Path(plugin).exists():
        args += [f"--plugin=protoc-gen-mypy={plugin}", f"--mypy_out={out_dir}"]
    else:
        args += [f"--pyi_out={out_dir}"]
    if protoc.main([*args, *protos]) != 0:
        raise SystemExit(f"protoc failed on {protos}")


class BuildPyWithProtos(build_py):
    def run(self) -> None:
        compile_protos(ROOT)
        super().run()


if __name__ == "__main__":  # `make proto` loads this file only for compile_protos
    setup(cmdclass={"build_py": BuildPyWithProtos})
