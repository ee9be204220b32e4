"""The one place where the tools touch the file system, safe on hostile input.

Paths come from pull requests, so any of them may name a FIFO, a device, a
socket, a directory, a symlink to any of these, a huge file, or a file that
grows or lies about its size while it is read.

`read_bounded` guarantees:
  * only regular files are read. The path is looked at first, so a device is
    normally never even opened (opening one can have effects); the check that
    decides is made on the opened descriptor, so a file swapped in between
    cannot get through, and the open itself never blocks (O_NONBLOCK: a FIFO
    with no writer would otherwise hang the tool forever);
  * at most `limit + 1` bytes are read, so a file that grows while it is read
    or reports a wrong size (like those in /proc) cannot exhaust memory;
  * reads stay non-blocking, so a "regular" file that waits for data (such as
    /proc/kmsg or a tracing pipe) is refused instead of hanging the tool.

`write_atomically` guarantees:
  * the file is replaced by one rename of a fully written and fsynced
    temporary file: readers, and the disk after a crash, see the old content
    or the new one, never half a file;
  * the temporary file `.NAME.<random>.tmp` (a dot file, so listings and globs
    skip it) lives next to the target, is created with O_EXCL and is removed
    on every failure: errors, KeyboardInterrupt and SIGTERM;
  * read-only files, hard-linked files, non-regular files and symlinks to
    nothing are refused and left untouched; the mode and, where permitted, the
    owner of a replaced file are kept.

Limits: SIGKILL cannot be caught, nor can a power loss before the rename: then
a `.NAME.<random>.tmp` file may remain next to the target, which is itself
intact. SIGTERM is handled only when the write runs on the main thread (Python
delivers signals there only). Extended attributes and ACLs are not copied.
The directories on the path are trusted not to be swapped during the call.
POSIX only; on other systems the import works but the guarantees are untested.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
import stat
import threading
from collections.abc import Iterator
from types import FrameType

from pruning_spec._diagnostics import Diagnostic, Span

IO_ERROR = "io-error"
FILE_TOO_LARGE = "file-too-large"

PathArg = str | os.PathLike[str]

_O_NONBLOCK: int = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | _O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | _O_CLOEXEC
_TEMPORARY_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC
_CHUNK = 64 * 1024
_KIB = 1024
_MIB = 1024 * 1024


class FileError(Exception):
    """A file could not be read or written; whatever was being written is unchanged.

    `message` says what is wrong without the path (diagnostics print it in
    front); `str()` of the exception starts with the path.
    """

    def __init__(self, path: str, code: str, message: str, hint: str = "") -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.code = code
        self.message = message
        self.hint = hint

    def to_diagnostic(self) -> Diagnostic:
        return Diagnostic(self.code, self.message, span=Span(self.path), hint=self.hint)


# Reading.


def read_bounded(path: PathArg, limit: int, *, what: str = "file") -> bytes:
    """The bytes of the regular file `path`, if it has at most `limit` of them.

    `what` names the expected kind of file in messages ("spec file"); its
    plural is `what + "s"`. Raises `FileError` with code "io-error" or
    "file-too-large".
    """
    if limit < 0:
        raise ValueError(f"limit must be at least 0, not {limit}")
    name = os.fspath(path)
    try:
        _require_regular(name, os.stat(name), what)
        descriptor = os.open(name, _READ_FLAGS)
    except OSError as error:
        raise _read_problem(name, error, what) from error
    except ValueError as error:  # os functions refuse a NUL byte in a path this way
        message = "cannot read the file: the path contains a NUL byte"
        raise FileError(name, IO_ERROR, message) from error
    try:
        return _read_opened(name, descriptor, limit, what)
    except OSError as error:
        raise _read_problem(name, error, what) from error
    finally:
        os.close(descriptor)


def _read_opened(name: str, descriptor: int, limit: int, what: str) -> bytes:
    status = os.fstat(descriptor)
    # The path may have been replaced since it was looked at: what was opened decides.
    _require_regular(name, status, what)
    if status.st_size > limit:
        raise _too_large(name, f"is {status.st_size:,} bytes", limit, what)
    # The descriptor stays non-blocking: a regular file that waits for data (/proc/kmsg)
    # then fails with EAGAIN instead of hanging; ordinary files ignore the flag.
    data = _read_at_most(descriptor, limit + 1)
    if len(data) > limit:  # it grew after the fstat, or its size was wrong
        raise _too_large(name, f"is more than {limit:,} bytes", limit, what)
    return data


def _read_at_most(descriptor: int, count: int) -> bytes:
    chunks: list[bytes] = []
    remaining = count
    while remaining > 0:
        chunk = os.read(descriptor, min(_CHUNK, remaining))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _require_regular(name: str, status: os.stat_result, what: str) -> None:
    if stat.S_ISREG(status.st_mode):
        return
    if stat.S_ISDIR(status.st_mode):
        raise FileError(name, IO_ERROR, f"is a directory, not a {what}")
    raise FileError(
        name,
        IO_ERROR,
        f"is {file_type(status.st_mode)}, not a regular file",
        f"only regular files are read; a {what} cannot be a device, FIFO or socket",
    )


def file_type(mode: int) -> str:
    """What a file that is not regular is, in messages: `a FIFO`, `a socket`."""
    kinds = [
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def _too_large(name: str, size: str, limit: int, what: str) -> FileError:
    message = f"{size}; {what}s are limited to {_human_size(limit)}"
    return FileError(name, FILE_TOO_LARGE, message, "is this the right file?")


def _human_size(count: int) -> str:
    if count and count % _MIB == 0:
        return f"{count // _MIB} MiB"
    if count and count % _KIB == 0:
        return f"{count // _KIB} KiB"
    return f"{count:,} bytes"


_READ_HINTS = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check the permissions of the file and of its directories",
    errno.EPERM: "check the permissions of the file and of its directories",
    errno.ELOOP: "a symbolic link on the path points, through others, back to itself",
    errno.ENAMETOOLONG: "the path is longer than the system allows",
    errno.ENOTDIR: "a part of the path that should be a directory is a file",
    errno.EAGAIN: "it waits for data, as a pipe does; only files whose content is there are read",
}


def _read_problem(name: str, error: OSError, what: str) -> FileError:
    if error.errno == errno.EISDIR:
        return FileError(name, IO_ERROR, f"is a directory, not a {what}")
    reason = error.strerror or str(error)
    return FileError(
        name, IO_ERROR, f"cannot read the file: {reason}", _READ_HINTS.get(error.errno or 0, "")
    )


# Writing.


def write_atomically(path: PathArg, text: str | bytes) -> None:
    """Replaces the file `path` (through a symlink, its target) by `text` in one step.

    A `str` is written as UTF-8, without newline translation. A new file gets
    the mode 0o666 less the umask; a replaced one keeps its mode and owner.
    Raises `FileError` ("io-error"), and then nothing was changed.
    """
    name = os.fspath(path)
    data = text.encode("utf-8") if isinstance(text, str) else text
    target, existing = _writable_target(name)
    pending = _PendingFile()
    with _removed_on_sigterm(pending):
        try:
            _replace(target, existing, data, pending)
        except OSError as error:
            if pending.interrupted:  # the SIGTERM handler removed the file, the process lives on
                message = "was interrupted by SIGTERM; not changed"
                raise FileError(name, IO_ERROR, message) from error
            raise _write_problem(name, os.path.dirname(target), error) from error
    _fsync_directory(os.path.dirname(target))


def _writable_target(name: str) -> tuple[str, os.stat_result | None]:
    """The resolved path to replace and its status (None: it does not exist yet)."""
    try:
        target = os.path.realpath(name)
        existing = os.stat(target)
    except FileNotFoundError:
        if os.path.islink(name):
            # Following it would create a file wherever a (planted) link points.
            raise FileError(
                name,
                IO_ERROR,
                f"is a symbolic link to {target}, which does not exist; not changed",
                "write to a regular path, or make the link point to an existing file",
            ) from None
        return target, None
    except (OSError, ValueError) as error:
        raise _write_problem(name, "", error) from error
    _require_replaceable(name, target, existing)
    return target, existing


def _require_replaceable(name: str, target: str, existing: os.stat_result) -> None:
    if stat.S_ISDIR(existing.st_mode):
        raise FileError(name, IO_ERROR, "is a directory, not a file; not changed")
    if not stat.S_ISREG(existing.st_mode):
        # Renaming over a device or FIFO would replace it, /dev/null included.
        raise FileError(
            name, IO_ERROR, f"is {file_type(existing.st_mode)}, not a regular file; not changed"
        )
    # Root may write anything, so the mode bits say whether the file is meant to change.
    if not existing.st_mode & 0o222 or not os.access(target, os.W_OK):
        raise FileError(
            name,
            IO_ERROR,
            "is read-only; not changed",
            "make it writable (chmod u+w) if it should be rewritten",
        )
    if existing.st_nlink > 1:
        # A rename gives this name a new file and leaves the other names on the old one;
        # rewriting in place instead would give up the atomicity.
        raise FileError(
            name,
            IO_ERROR,
            f"has {existing.st_nlink} hard links; not changed, as replacing it would "
            "separate this name from the others",
            "give it a copy of its own first (cp FILE FILE.new && mv FILE.new FILE)",
        )


class _PendingFile:
    """The temporary file being written, for the SIGTERM handler to remove."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.interrupted = False

    def discard(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):  # already renamed, or not created yet
                os.unlink(self.path)


def _replace(
    target: str, existing: os.stat_result | None, data: bytes, pending: _PendingFile
) -> None:
    directory, base = os.path.split(target)
    # The name is known before the file exists, so a signal can never leave a file nobody names.
    # 50 characters of the name keep it recognizable and within NAME_MAX even in UTF-8.
    pending.path = temporary = os.path.join(directory, f".{base[:50]}.{secrets.token_hex(8)}.tmp")
    descriptor = -1
    try:
        # An existing file's content stays private until its own mode is copied.
        descriptor = os.open(temporary, _TEMPORARY_FLAGS, 0o600 if existing else 0o666)
        _write_all(descriptor, data)
        if existing is not None:
            _copy_owner_and_mode(descriptor, existing)
        os.fsync(descriptor)
        # Forget the descriptor before closing it: closing twice could close another's file.
        closing, descriptor = descriptor, -1
        os.close(closing)
        os.replace(temporary, target)
    except BaseException:
        if descriptor >= 0:
            with contextlib.suppress(OSError):
                os.close(descriptor)
        pending.discard()
        raise


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


def _copy_owner_and_mode(descriptor: int, existing: os.stat_result) -> None:
    if os.name != "posix":
        return
    created = os.fstat(descriptor)
    if (created.st_uid, created.st_gid) != (existing.st_uid, existing.st_gid):
        try:
            os.fchown(descriptor, existing.st_uid, existing.st_gid)
        except PermissionError:
            # Only root may give a file away; others end up owning what they rewrite.
            if os.geteuid() == 0:
                raise
    # After the chown, which may clear the set-user-ID and set-group-ID bits.
    os.fchmod(descriptor, stat.S_IMODE(existing.st_mode))


def _fsync_directory(directory: str) -> None:
    """Makes the rename itself durable; best effort, as some file systems refuse."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextlib.contextmanager
def _removed_on_sigterm(pending: _PendingFile) -> Iterator[None]:
    """While it is active, SIGTERM first removes the temporary file, then acts as before.

    The handler removes the file itself, instead of raising into the write, so
    there is no moment where an exception would leave a file nobody cleans up.
    Then SIGTERM is delivered again to the previous handler: by default the
    process dies by it, as it would have without this module.
    """
    previous = signal.getsignal(signal.SIGTERM)
    # Handlers can only be set on the main thread; an ignored SIGTERM stays ignored, and
    # None (a handler not set from Python) could not be restored.
    if (
        threading.current_thread() is not threading.main_thread()
        or previous is None
        or previous == signal.SIG_IGN
    ):
        yield
        return

    def discard_then_terminate(signum: int, frame: FrameType | None) -> None:
        pending.discard()
        pending.interrupted = True
        signal.signal(signal.SIGTERM, previous)
        signal.raise_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, discard_then_terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_WRITE_HINTS = {
    errno.ENOSPC: "the file is unchanged; free some disk space",
    errno.EDQUOT: "the file is unchanged; the disk quota is used up",
}


def _write_problem(name: str, directory: str, error: OSError | ValueError) -> FileError:
    if isinstance(error, ValueError):
        return FileError(name, IO_ERROR, "cannot write the file: the path contains a NUL byte")
    reason = error.strerror or str(error)
    hint = _WRITE_HINTS.get(error.errno or 0, "the file is unchanged")
    if directory and error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = (
            f"the file is unchanged; it is replaced through a temporary file in {directory}, "
            "so that directory must be writable too"
        )
    elif error.errno in (errno.ELOOP, errno.ENAMETOOLONG, errno.ENOTDIR):
        hint = _READ_HINTS[error.errno]
    return FileError(name, IO_ERROR, f"cannot write the file: {reason}", hint)
