"""Writing zip archives whose members declare what a hostile-input test needs.

zipfile computes every size and checksum itself; a decompression bomb, or a member
whose declared size lies, has to be written by hand. Pure Python, no zip64: every
declared size stays below 4 GiB.
"""

from __future__ import annotations

import dataclasses
import struct
import zipfile
import zlib
from pathlib import Path

_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_END = struct.Struct("<4s4H2LH")
_DOS_DATE = (1 << 5) | 1  # 1980-01-01


@dataclasses.dataclass(frozen=True)
class Member:
    """One member: `data` as stored; `size` and `crc` as declared (else the truth)."""

    name: str
    data: bytes
    method: int = zipfile.ZIP_STORED
    size: int | None = None
    crc: int | None = None


def stored(name: str, content: bytes) -> Member:
    return Member(name, content, crc=zlib.crc32(content))


def deflated_zeros(mebibytes: int, head: bytes = b"") -> bytes:
    """A raw deflate stream inflating to `head` then `mebibytes` MiB of zeros, built in
    milliseconds.

    After a full flush the compressor starts afresh, so every further MiB of zeros
    compresses to the same bytes: the stream is one block repeated.
    """
    chunk = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    first = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    return start + first + repeated * (mebibytes - 1) + compressor.flush(zlib.Z_FINISH)


def write(path: Path, members: list[Member]) -> None:
    out = bytearray()
    central = bytearray()
    for member in members:
        name = member.name.encode()
        size = len(member.data) if member.size is None else member.size
        crc = zlib.crc32(member.data) if member.crc is None else member.crc
        fields = (member.method, 0, _DOS_DATE, crc, len(member.data), size, len(name))
        central += _CENTRAL.pack(b"PK\x01\x02", 20, 20, 0, *fields, 0, 0, 0, 0, 0, len(out))
        central += name
        out += _LOCAL.pack(b"PK\x03\x04", 20, 0, *fields, 0) + name + member.data
    count = len(members)
    end = _END.pack(b"PK\x05\x06", 0, 0, count, count, len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))


def members_of(path: Path) -> list[Member]:
    """The members of a real archive, stored as they are."""
    with zipfile.ZipFile(path) as archive:
        return [stored(name, archive.read(name)) for name in archive.namelist()]
