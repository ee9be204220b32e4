"""Writing TensorFlow tensor-bundle `.index` files by hand, for hostile-input tests.

A `.index` is a LevelDB-style table whose keys are tensor names and whose values are
`BundleEntryProto`s (the empty key holds the `BundleHeaderProto`). TensorFlow writes
them through C++ only, so the tests that need an index TensorFlow would never write (a
tensor claiming 10^12 elements, a block handle pointing past the file) build it here.
Pure Python: the tests import protobuf classes from TensorFlow themselves.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

TABLE_MAGIC = 0xDB4775248B80FB57
_CRC32C_POLY = 0x82F63B78


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (_CRC32C_POLY if crc & 1 else 0)
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The checksum LevelDB and TensorFlow store: rotated and offset, never raw."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def block(entries: Iterable[tuple[bytes, bytes]], *, shared_prefixes: bool = False) -> bytes:
    """A block with a restart point at every entry (no shared key prefixes), or with
    `shared_prefixes` a single one at the start, each key sharing what it has in common
    with the previous one (the prefix compression TensorFlow uses between restarts)."""
    body = bytearray()
    restarts = []
    previous = b""
    for key, value in entries:
        shared = 0
        if not shared_prefixes or not restarts:
            restarts.append(len(body))
        else:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        unshared = key[shared:]
        body += varint(shared) + varint(len(unshared)) + varint(len(value)) + unshared + value
        previous = key
    if not restarts:
        restarts = [0]
    body += b"".join(struct.pack("<I", r) for r in restarts)
    return bytes(body + struct.pack("<I", len(restarts)))


def handle(offset: int, size: int) -> bytes:
    return varint(offset) + varint(size)


def _with_trailer(contents: bytes) -> bytes:
    return contents + b"\0" + struct.pack("<I", masked_crc32c(contents + b"\0"))


def table(
    entries: list[tuple[bytes, bytes]],
    *,
    index_handle: bytes | None = None,
    shared_prefixes: bool = False,
) -> bytes:
    """A whole table holding `entries` (sorted by key) in one data block.

    `index_handle` replaces the footer's handle of the index block, e.g. by one
    claiming more bytes than the file holds; `shared_prefixes` is passed to `block`.
    """
    data = block(entries, shared_prefixes=shared_prefixes)
    out = bytearray(_with_trailer(data))
    last_key = entries[-1][0] if entries else b""
    index = block([(last_key + b"\xff", handle(0, len(data)))])
    metaindex_offset = len(out)
    metaindex = block([])
    out += _with_trailer(metaindex)
    index_offset = len(out)
    out += _with_trailer(index)
    footer = handle(metaindex_offset, len(metaindex))
    footer += index_handle if index_handle is not None else handle(index_offset, len(index))
    footer = footer.ljust(40, b"\0") + struct.pack("<Q", TABLE_MAGIC)
    return bytes(out + footer)
