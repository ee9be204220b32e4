"""How reading a checkpoint fails: one error type, its messages safe to print.

Readers raise `InputError` for a problem with the input (`read_checkpoint` and
`Checkpoint.values` add the path) and `UnknownNameError` for a name the checkpoint does
not list; whatever else a library raises on a hostile file is turned into a
`CheckpointError` by `unexpected`. The frameworks are imported through
`import_framework`, so that a missing one asks for the `tensorflow` extra.
"""

from __future__ import annotations

import importlib
import os
import re
import types

from pruning_spec._diagnostics import printable

INSTALL_HINT = "pip install 'pruning-spec[tensorflow]'"


class CheckpointError(Exception):
    """A checkpoint that cannot be read; the message names the path and the problem."""


class InputError(Exception):
    """A problem with the input; `read_checkpoint` and `values` add the path."""


class UnknownNameError(KeyError):
    """A name the checkpoint does not list: the one KeyError `values` lets through."""


def checkpoint_error(message: str) -> CheckpointError:
    """The error for `message`, on one line and safe to print to a terminal: names in a
    hostile file may carry terminal escapes, and paths undecodable bytes."""
    return CheckpointError(printable(message))


def summary(error: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, without Keras's terminal colours."""
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(error)).split())
    text = text or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def unexpected(error: BaseException) -> str:
    """An error a library raised on bad input, with its type: MemoryError says more."""
    return f"{type(error).__name__}: {summary(error)}"


def byte_count(count: int) -> str:
    """A byte count as messages show it: `1,024 bytes`."""
    return f"{count:,} bytes"


def import_framework(module: str, path: str) -> types.ModuleType:
    """`module` (tensorflow, keras, h5py), or the error asking for the tensorflow extra."""
    # TensorFlow's C++ start-up chatter is not useful in a CLI's output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return importlib.import_module(module)
    except ImportError:
        raise checkpoint_error(
            f"cannot read checkpoint {path}: {module} is not installed; "
            f"install the tensorflow extra: {INSTALL_HINT}"
        ) from None
