"""Exit statuses of the `pruning-spec` command, the same in every subcommand.

0: nothing to report; 1: a spec has errors (warnings too, with --strict); 2: a usage
or I/O problem, which includes every diagnostic whose code is in IO_CODES.
"""

from __future__ import annotations

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2
# Diagnostics that mean a file could not be read at all rather than that it is wrong.
IO_CODES = frozenset({"io-error", "unknown-format", "file-too-large"})
