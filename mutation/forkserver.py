"""Runs pytest in a fork of a process that has already imported TensorFlow.

python mutation/forkserver.py serve MODULE...      (mutation/run.py starts it in the tree)
python mutation/forkserver.py run -- PYTEST_ARGS   (the session's test command)

Importing TensorFlow takes 4-8 s, longer than the kernel tests a mutant needs. The server
imports the modules named (third-party only: never this project, whose files the mutants
change) and then forks a child for each request, which imports the project and its tests
afresh and runs `pytest.main`. A child of a process that has imported TensorFlow but run
no op starts its own thread pools, so this is safe; the unmutated baseline that
mutation/run.py runs through the same command checks it. When the client goes (cosmic-ray
kills it on a timeout), the server kills the child. One request at a time, as cosmic-ray's
local distributor sends them. The socket is `.forkserver.sock` in the working directory.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import socket
import sys
import tempfile
from pathlib import Path

SOCKET = ".forkserver.sock"


def serve(preload: list[str]) -> None:
    for name in preload:
        importlib.import_module(name)
    sys.dont_write_bytecode = True  # a mutant may keep its file's size and mtime second
    path = Path(SOCKET)
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    while True:
        conn, _ = server.accept()
        with conn:
            request = json.loads(conn.makefile("r").readline())
            pid = os.fork()
            if pid == 0:
                server.close()
                _child(request)
            status = _wait(pid, conn)
            if status is not None:
                conn.sendall(f"{status}\n".encode())


def _child(request: dict[str, object]) -> None:
    code = 70
    try:
        output = os.open(str(request["output"]), os.O_WRONLY | os.O_TRUNC)
        os.dup2(output, 1)
        os.dup2(output, 2)
        import pytest  # noqa: PLC0415  (in the child: a fresh plugin manager each run)

        code = int(pytest.main([str(arg) for arg in request["args"]]))  # type: ignore[arg-type]
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _wait(pid: int, conn: socket.socket) -> int | None:
    """The child's exit status, or None if the client went first (the child is killed)."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        readable, _, _ = select.select([conn], [], [], 0.05)
        if readable and not conn.recv(1):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None


def run(args: list[str]) -> int:
    with tempfile.NamedTemporaryFile("r", suffix=".log") as output:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(SOCKET)
        request = {"args": args, "output": output.name}
        client.sendall(json.dumps(request).encode() + b"\n")
        reply = client.makefile("r").readline()
        sys.stdout.write(output.read())
    return int(reply) if reply.strip() else 70


def main() -> int:
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2:])
        return 0
    if sys.argv[1:3] == ["run", "--"]:
        return run(sys.argv[3:])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
