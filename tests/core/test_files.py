"""Reading and writing files that come from pull requests: pruning_spec._files."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from pruning_spec import _files
from pruning_spec._files import FileError, read_bounded, write_atomically

ROOT = Path(__file__).resolve().parents[2]
IS_ROOT = os.geteuid() == 0
MIB = 1024 * 1024
ORIGINAL = "target_sparsity: 0.5\n"


def _temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def _read_problem(path: Path | str, limit: int = 100) -> FileError:
    with pytest.raises(FileError) as caught:
        read_bounded(path, limit, what="spec file")
    return caught.value


def _write_problem(path: Path | str, text: str = "new\n") -> FileError:
    with pytest.raises(FileError) as caught:
        write_atomically(path, text)
    return caught.value


def _returns_within(seconds: float, call: Callable[[], object], unblock: Callable[[], None]) -> Any:
    """What `call` returns or raises, failing the test if it takes longer than `seconds`."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        unblock()
        thread.join(5)
        pytest.fail(f"the call blocked for more than {seconds} s")
    return outcome[0]


def _open_fifo_for_writing(path: Path) -> None:
    """Lets a reader blocked in open() of the FIFO go on."""
    os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.txtpb"
    path.write_text(ORIGINAL)
    return path


# read_bounded


def test_reads_a_regular_file_of_up_to_limit_bytes(tmp_path: Path) -> None:
    path = tmp_path / "spec.txtpb"
    path.write_bytes(b"x" * 100)
    assert read_bounded(path, 100) == b"x" * 100
    path.write_bytes(b"")
    assert read_bounded(str(path), 100) == b""


def test_one_byte_over_the_limit_is_too_large(tmp_path: Path) -> None:
    path = tmp_path / "spec.txtpb"
    path.write_bytes(b"x" * 101)
    problem = _read_problem(path, 100)
    assert problem.code == "file-too-large"
    assert problem.message == "is 101 bytes; spec files are limited to 100 bytes"
    assert str(problem) == f"{path}: {problem.message}"


def test_a_huge_file_is_refused_by_its_size_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.txtpb"
    with path.open("wb") as stream:
        stream.truncate(5_000_000)  # sparse
    reads: list[int] = []
    real_read = os.read

    def recording_read(fd: int, count: int) -> bytes:
        reads.append(count)
        return real_read(fd, count)

    monkeypatch.setattr(os, "read", recording_read)
    problem = _read_problem(path, 4 * MIB)
    assert problem.code == "file-too-large"
    assert problem.message == "is 5,000,000 bytes; spec files are limited to 4 MiB"
    assert reads == []


def _lying_fstat(size: int) -> Callable[[int], os.stat_result]:
    real_fstat = os.fstat

    def fstat(fd: int) -> os.stat_result:
        fields = list(real_fstat(fd))
        fields[6] = size  # st_size
        return os.stat_result(fields)

    return fstat


def test_a_file_larger_than_its_stat_says_is_read_to_limit_plus_one_byte_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "growing.txtpb"
    path.write_bytes(b"x" * 100_100)  # it grew by 100,090 bytes after the fstat
    monkeypatch.setattr(os, "fstat", _lying_fstat(10))
    read = 0
    real_read = os.read

    def counting_read(fd: int, count: int) -> bytes:
        nonlocal read
        chunk = real_read(fd, count)
        read += len(chunk)
        return chunk

    monkeypatch.setattr(os, "read", counting_read)
    problem = _read_problem(path, 100_000)
    assert problem.code == "file-too-large"
    assert problem.message == "is more than 100,000 bytes; spec files are limited to 100,000 bytes"
    assert read == 100_001


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_proc_file_that_says_it_is_empty_is_still_bounded() -> None:
    assert os.stat("/proc/self/status").st_size == 0
    assert _read_problem("/proc/self/status", 16).code == "file-too-large"


def test_a_regular_file_that_waits_for_data_is_refused_without_blocking(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Like /proc/kmsg: a regular file whose read blocks until data comes, or fails with
    # EAGAIN on a non-blocking descriptor.
    def waiting_read(fd: int, count: int) -> bytes:
        if os.get_blocking(fd):
            pytest.fail("read from a blocking descriptor: it would wait forever")
        raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))

    monkeypatch.setattr(os, "read", waiting_read)
    problem = _read_problem(spec)
    assert problem.code == "io-error"
    assert problem.message == f"cannot read the file: {os.strerror(errno.EAGAIN)}"
    assert problem.hint.startswith("it waits for data")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.txtpb"
    os.mkfifo(fifo)
    outcome = _returns_within(
        2, lambda: read_bounded(fifo, 100), lambda: _open_fifo_for_writing(fifo)
    )
    assert isinstance(outcome, FileError)
    assert (outcome.code, outcome.message) == ("io-error", "is a FIFO, not a regular file")


def test_a_fifo_swapped_in_after_the_look_is_refused_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "spec.txtpb"
    os.mkfifo(fifo)
    decoy = tmp_path / "regular.txtpb"
    decoy.write_text(ORIGINAL)
    real_stat = os.stat
    # What stat saw was a regular file; what open finds is the FIFO.
    monkeypatch.setattr(os, "stat", lambda p, **kw: real_stat(decoy if p == str(fifo) else p))
    outcome = _returns_within(
        2, lambda: read_bounded(fifo, 100), lambda: _open_fifo_for_writing(fifo)
    )
    assert isinstance(outcome, FileError)
    assert outcome.message == "is a FIFO, not a regular file"


def test_a_symlink_to_dev_zero_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "spec.txtpb"
    link.symlink_to("/dev/zero")
    problem = _read_problem(link, 4 * MIB)
    assert problem.code == "io-error"
    assert problem.message == "is a character device, not a regular file"


def test_a_device_is_refused_without_being_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    real_open = os.open

    def recording_open(path: str, *args: Any, **kwargs: Any) -> int:
        opened.append(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    problem = _read_problem("/dev/null")
    assert problem.message == "is a character device, not a regular file"
    assert opened == []


def test_a_directory_is_refused(tmp_path: Path) -> None:
    problem = _read_problem(tmp_path)
    assert (problem.code, problem.message) == ("io-error", "is a directory, not a spec file")


def test_a_missing_file(tmp_path: Path) -> None:
    problem = _read_problem(tmp_path / "missing.txtpb")
    assert problem.code == "io-error"
    assert problem.message == "cannot read the file: No such file or directory"
    assert problem.to_diagnostic().format() == (
        f"{tmp_path / 'missing.txtpb'}: error[io-error]: "
        "cannot read the file: No such file or directory (check the path)"
    )


def test_permission_denied(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(path: str, *args: object, **kwargs: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(os, "open", denied)
    problem = _read_problem(spec)
    assert problem.code == "io-error"
    assert problem.message == "cannot read the file: Permission denied"


@pytest.mark.skipif(IS_ROOT, reason="root reads anything")
def test_permission_denied_for_real(spec: Path) -> None:
    spec.chmod(0)
    assert _read_problem(spec).message == "cannot read the file: Permission denied"


def test_a_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a.txtpb").symlink_to(tmp_path / "b.txtpb")
    (tmp_path / "b.txtpb").symlink_to(tmp_path / "a.txtpb")
    problem = _read_problem(tmp_path / "a.txtpb")
    assert problem.message == "cannot read the file: Too many levels of symbolic links"
    assert "back to itself" in problem.hint


def test_a_name_too_long(tmp_path: Path) -> None:
    problem = _read_problem(tmp_path / ("x" * 300))
    assert problem.message == "cannot read the file: File name too long"


def test_a_nul_byte_in_the_path() -> None:
    assert _read_problem("spec\0.txtpb").message.endswith("the path contains a NUL byte")


# write_atomically


def test_writes_text_as_is_and_leaves_no_temporary_file(spec: Path) -> None:
    write_atomically(spec, "a\r\nb\rc\n")
    assert spec.read_bytes() == b"a\r\nb\rc\n"
    write_atomically(str(spec), b"\xff")
    assert spec.read_bytes() == b"\xff"
    assert _temporaries(spec.parent) == []


def test_a_new_file_gets_the_umask_mode(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        write_atomically(tmp_path / "new.md", "docs\n")
    finally:
        os.umask(previous)
    assert (tmp_path / "new.md").stat().st_mode & 0o777 == 0o640


def test_a_read_only_file_is_refused_and_unchanged(spec: Path) -> None:
    spec.chmod(0o444)
    problem = _write_problem(spec)
    assert (problem.code, problem.message) == ("io-error", "is read-only; not changed")
    assert spec.read_text() == ORIGINAL
    assert spec.stat().st_mode & 0o777 == 0o444


def test_a_hard_linked_file_is_refused_and_both_names_unchanged(spec: Path) -> None:
    other = spec.parent / "other.txtpb"
    os.link(spec, other)
    problem = _write_problem(spec)
    assert problem.message.startswith("has 2 hard links; not changed")
    assert spec.read_text() == other.read_text() == ORIGINAL
    assert os.path.samefile(spec, other)


def test_the_mode_is_kept(spec: Path) -> None:
    spec.chmod(0o640)
    write_atomically(spec, "new\n")
    assert spec.stat().st_mode & 0o7777 == 0o640


@pytest.mark.skipif(not IS_ROOT, reason="only root can give a file to another user")
def test_owner_group_and_set_id_bits_are_kept(spec: Path) -> None:
    os.chown(spec, 1234, 5678)
    spec.chmod(0o4754)  # after the chown, which clears set-user-ID
    write_atomically(spec, "new\n")
    status = spec.stat()
    assert (status.st_uid, status.st_gid, status.st_mode & 0o7777) == (1234, 5678, 0o4754)
    assert spec.read_text() == "new\n"


def test_through_a_symlink_the_target_is_written_and_the_link_kept(
    spec: Path, tmp_path: Path
) -> None:
    (tmp_path / "links").mkdir()
    link = tmp_path / "links" / "spec.txtpb"
    link.symlink_to(spec)
    write_atomically(link, "new\n")
    assert link.is_symlink()
    assert os.readlink(link) == str(spec)
    assert spec.read_text() == "new\n"
    assert _temporaries(tmp_path) == _temporaries(tmp_path / "links") == []


def test_a_symlink_to_nothing_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "docs.md"
    link.symlink_to(tmp_path / "elsewhere" / "planted.md")
    (tmp_path / "elsewhere").mkdir()
    problem = _write_problem(link)
    assert "which does not exist; not changed" in problem.message
    assert not (tmp_path / "elsewhere" / "planted.md").exists()


def test_a_fifo_is_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "docs.md"
    os.mkfifo(fifo)
    problem = _write_problem(fifo)
    assert problem.message == "is a FIFO, not a regular file; not changed"
    assert fifo.is_fifo()


def test_a_directory_is_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "docs.md").mkdir()
    problem = _write_problem(tmp_path / "docs.md")
    assert problem.message == "is a directory, not a file; not changed"
    assert (tmp_path / "docs.md").is_dir()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_keeps_the_original_and_no_temporary_file(
    spec: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        if len(data) > 1:
            return real_write(fd, bytes(data)[: len(data) // 2])
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "write", half_then_full)
    problem = _write_problem(spec, "new content\n")
    assert problem.message == f"cannot write the file: {os.strerror(code)}"
    assert problem.hint.startswith("the file is unchanged")
    assert spec.read_text() == ORIGINAL
    assert _temporaries(spec.parent) == []


def test_a_failing_fsync_keeps_the_original_and_no_temporary_file(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    problem = _write_problem(spec)
    assert problem.message == "cannot write the file: Input/output error"
    assert spec.read_text() == ORIGINAL
    assert _temporaries(spec.parent) == []


def test_a_failing_rename_keeps_the_original_and_no_temporary_file(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_replace(source: str, target: str) -> None:
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))

    monkeypatch.setattr(os, "replace", failing_replace)
    assert _write_problem(spec).message == "cannot write the file: Device or resource busy"
    assert spec.read_text() == ORIGINAL
    assert _temporaries(spec.parent) == []


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_an_unwritable_directory_keeps_the_original(
    spec: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    real_open = os.open

    def no_new_files(path: str, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_new_files)
    problem = _write_problem(spec)
    assert problem.message == f"cannot write the file: {os.strerror(code)}"
    assert f"a temporary file in {spec.parent}" in problem.hint
    assert spec.read_text() == ORIGINAL
    assert _temporaries(spec.parent) == []


@pytest.mark.skipif(IS_ROOT, reason="root writes into read-only directories")
def test_an_unwritable_directory_for_real(spec: Path) -> None:
    spec.parent.chmod(0o555)
    try:
        assert _write_problem(spec).message == "cannot write the file: Permission denied"
    finally:
        spec.parent.chmod(0o755)
    assert spec.read_text() == ORIGINAL


def test_a_name_near_the_length_limit_gets_a_temporary_file_that_fits(tmp_path: Path) -> None:
    path = tmp_path / ("é" * 120 + ".md")  # 243 bytes of UTF-8
    write_atomically(path, "docs\n")
    assert path.read_text() == "docs\n"


def test_keyboard_interrupt_leaves_the_original_and_no_temporary_file(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write_all = _files._write_all

    def interrupted(fd: int, data: bytes) -> None:
        real_write_all(fd, data[:3])
        raise KeyboardInterrupt

    monkeypatch.setattr(_files, "_write_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(spec, "new content\n")
    assert spec.read_text() == ORIGINAL
    assert _temporaries(spec.parent) == []


_SLOW_WRITER = """
import sys, time
from pruning_spec import _files

real_write_all = _files._write_all

def slow(fd, data):
    real_write_all(fd, data[:3])
    print("writing", flush=True)
    time.sleep(60)

_files._write_all = slow
_files.write_atomically(sys.argv[1], "new content\\n")
print("finished", flush=True)
"""


def test_sigterm_during_the_write_leaves_the_original_and_no_temporary_file(spec: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, str(spec)], stdout=subprocess.PIPE, text=True, env=env
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline() == "writing\n"
        assert len(_temporaries(spec.parent)) == 1  # the test catches the write in the act
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=20) == -signal.SIGTERM  # it still dies by the signal
    assert spec.read_text() == ORIGINAL
    assert _temporaries(spec.parent) == []


class _StopError(Exception):
    """What the caller's own SIGTERM handler raises."""


def _with_sigterm_handler(
    handler: Callable[[int, FrameType | None], None], call: Callable[[], None]
) -> None:
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        call()
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminated_while_writing(monkeypatch: pytest.MonkeyPatch) -> None:
    real_write_all = _files._write_all

    def terminated(fd: int, data: bytes) -> None:
        real_write_all(fd, data[:3])
        signal.raise_signal(signal.SIGTERM)
        real_write_all(fd, data[3:])

    monkeypatch.setattr(_files, "_write_all", terminated)


def test_sigterm_runs_the_previous_handler_after_removing_the_temporary_file(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        seen.append(_temporaries(spec.parent))
        raise _StopError

    _terminated_while_writing(monkeypatch)
    with pytest.raises(_StopError):
        _with_sigterm_handler(stop, lambda: write_atomically(spec, "new content\n"))
    assert seen == [[]]
    assert spec.read_text() == ORIGINAL
    assert _temporaries(spec.parent) == []


def test_sigterm_survived_by_the_previous_handler_is_reported(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _terminated_while_writing(monkeypatch)

    def carry_on(signum: int, frame: FrameType | None) -> None:
        pass

    problems: list[FileError] = []

    def write() -> None:
        problems.append(_write_problem(spec, "new content\n"))

    _with_sigterm_handler(carry_on, write)
    assert problems[0].message == "was interrupted by SIGTERM; not changed"
    assert spec.read_text() == ORIGINAL
    assert _temporaries(spec.parent) == []


def test_the_sigterm_handler_is_restored_and_not_needed_off_the_main_thread(spec: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    write_atomically(spec, "main\n")
    assert signal.getsignal(signal.SIGTERM) is before
    thread = threading.Thread(target=write_atomically, args=(spec, "thread\n"))
    thread.start()
    thread.join(10)
    assert spec.read_text() == "thread\n"
