"""The table format of a TensorFlow `.index` file, parsed in Python.

The `.index` file is a LevelDB-style table (TensorFlow's lib/io/table): data blocks of
prefix-compressed entries, an index block of handles to them, a footer of two handles.
TensorFlow aborts the process on some malformed ones, so `table_rows` reads it first,
refusing whatever TensorFlow could read differently or would allocate too much for.
"""

from __future__ import annotations

import itertools

from pruning_spec._checkpoints import _limits
from pruning_spec._checkpoints._errors import InputError, byte_count

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_BYTES = 48
_TRAILER_BYTES = 5  # after each block: its type (0: not compressed) and a checksum


def table_rows(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of the table in `data`, exactly as TensorFlow would see them.

    Refused: a block handle outside the file (TensorFlow allocates what it claims), a
    compressed block, restart points TensorFlow could decode differently, data blocks
    that overlap (parsed again and again), keys out of order or repeated, and keys that,
    expanded from their shared prefixes, hold more than `MAX_INDEX_BYTES` together (a
    small index of long keys each sharing all of the previous one's would take
    quadratic time and memory).
    """
    if len(data) < _FOOTER_BYTES:
        raise InputError(f"{byte_count(len(data))}, too short for a table")
    if int.from_bytes(data[-8:], "little") != _TABLE_MAGIC:
        raise InputError("no table magic number at its end (truncated?)")
    at = len(data) - _FOOTER_BYTES
    _, at = _handle(data, at, len(data))  # the metaindex block: never read
    index_offset, index_size = _handle(data, at, len(data))[0]
    room = [_limits.MAX_INDEX_BYTES]  # for the expanded keys of every block, index included
    handles = []
    for _, value in _block(data, index_offset, index_size, room):
        handles.append(_handle(value, 0, len(value))[0])
    rows: list[tuple[bytes, bytes]] = []
    end = 0
    for offset, size in sorted(handles):
        if offset < end:
            raise InputError(f"data blocks overlap at byte {offset:,}")
        end = offset + size + _TRAILER_BYTES
    for offset, size in handles:
        rows.extend(_block(data, offset, size, room))
    for (before, _), (after, _) in itertools.pairwise(rows):
        if before >= after:
            raise InputError(f"keys out of order or repeated at {after[:80]!r}")
    return rows


def _handle(data: bytes, at: int, end: int) -> tuple[tuple[int, int], int]:
    offset, at = varint(data, at, end, 64)
    size, at = varint(data, at, end, 64)
    return (offset, size), at


def varint(data: bytes, at: int, end: int, bits: int) -> tuple[int, int]:
    """A LevelDB varint and where it ends; one TensorFlow would read differently (too
    long) is refused."""
    value = 0
    for shift in range(0, bits, 7):
        if at >= end:
            break
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >> bits:
                break
            return value, at
    raise InputError("a corrupt or truncated varint")


def _block(data: bytes, offset: int, size: int, room: list[int]) -> list[tuple[bytes, bytes]]:
    """The entries of the block at `offset`; their keys take `room[0]` down by their length."""
    end = offset + size
    if end + _TRAILER_BYTES > len(data):
        raise InputError(
            f"a block of {byte_count(size)} at byte {offset:,} runs past the end of the "
            f"{byte_count(len(data))} file"
        )
    if data[end] != 0:
        raise InputError(f"the block at byte {offset:,} is compressed (type {data[end]})")
    if size < 4:
        raise InputError(f"the block at byte {offset:,} is too short")
    count = int.from_bytes(data[end - 4 : end], "little")
    if count > (size - 4) // 4:
        raise InputError(f"the block at byte {offset:,} claims {count:,} restart points")
    if count == 0:
        return []  # TensorFlow reads no entry from such a block
    limit = end - 4 * (count + 1)
    points = {
        offset + int.from_bytes(data[limit + 4 * i : limit + 4 * i + 4], "little")
        for i in range(count)
    }
    if offset not in points:
        raise InputError(f"the block at byte {offset:,} does not restart at its start")
    rows, starts, key, at = [], set(), b"", offset
    while at < limit:
        starts.add(at)
        restart = at in points
        shared, at = varint(data, at, limit, 32)
        unshared, at = varint(data, at, limit, 32)
        length, at = varint(data, at, limit, 32)
        if shared > len(key) or (restart and shared) or limit - at < unshared + length:
            raise InputError(f"a corrupt entry in the block at byte {offset:,}")
        room[0] -= shared + unshared
        if room[0] < 0:
            raise InputError(
                "its keys, expanded from their shared prefixes, hold more than "
                f"MAX_INDEX_BYTES ({byte_count(_limits.MAX_INDEX_BYTES)})"
            )
        key = key[:shared] + data[at : at + unshared]
        rows.append((key, data[at + unshared : at + unshared + length]))
        at += unshared + length
    if not points <= starts:
        raise InputError(f"a restart point inside an entry in the block at byte {offset:,}")
    return rows
