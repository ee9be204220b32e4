"""Files: only regular ones are opened, and what is read whole is bounded.

Each check is made before any library opens the file, because opening a FIFO blocks
and reading a device never ends; a file read whole goes through
`pruning_spec._files.read_bounded`, which gives the same guarantees.
"""

from __future__ import annotations

import os
import stat
from typing import IO

from pruning_spec import _files
from pruning_spec._checkpoints import _limits
from pruning_spec._checkpoints._errors import InputError, byte_count, summary


def stat_mode(path: str) -> int | None:
    """`path`'s file type and mode (symlinks followed), or None if there is nothing."""
    try:
        return os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise InputError(f"{path}: {error.strerror or summary(error)}") from None


def file_type(mode: int) -> str:
    """What a file of this mode is, for messages: `a FIFO`, `a directory`."""
    return "a directory" if stat.S_ISDIR(mode) else _files.file_type(mode)


def require_regular(path: str, what: str) -> os.stat_result:
    """The status of `path`, a regular file; checked before any library opens it,
    because opening a FIFO blocks and reading a device never ends."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"{what} {path} is missing") from None
    except OSError as error:
        raise InputError(f"{what} {path}: {error.strerror or summary(error)}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{what} {path} is {file_type(info.st_mode)}, not a regular file")
    return info


def open_regular(path: str, what: str) -> IO[bytes]:
    """`path` opened for reading, if it is a regular file."""
    require_regular(path, what)
    # Non-blocking and re-checked: the path may have become a FIFO since the stat.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        raise InputError(f"{what} {path}: {error.strerror or summary(error)}") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(f"{what} {path} is {file_type(mode)}, not a regular file")
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_whole(path: str, what: str, limit_name: str) -> bytes:
    """The whole of `path`, if it holds at most the limit `limit_name` (of `_limits`) bytes."""
    limit = int(getattr(_limits, limit_name))
    try:
        return _files.read_bounded(path, limit, what="regular file")
    except _files.FileError as problem:
        if problem.code == _files.FILE_TOO_LARGE:
            raise InputError(
                f"{what} {path} holds more than {limit_name} ({byte_count(limit)})"
            ) from None
        # With what="regular file", `_files` says "is a directory, not a regular file",
        # "is a FIFO, not a regular file" or "cannot read the file: <reason>".
        separator = " " if problem.message.startswith("is ") else ": "
        raise InputError(f"{what} {path}{separator}{problem.message}") from None


def read_at(path: str, offset: int, count: int, what: str) -> bytes:
    """At most `count` bytes of the regular file `path`, from byte `offset` on."""
    with open_regular(path, what) as file:
        file.seek(offset)
        return file.read(count)
