"""The zip container of a `.keras` archive, checked before zipfile or Keras read it.

zipfile reads the central directory whole, and a member whole in one step: the
directory's size is read from the records zipfile finds it by, each member's declared
size and storage are checked, and every deflated member is inflated once, in bounded
steps, to check it holds no more than it declares (a zip bomb is refused at once).
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from typing import IO

from pruning_spec._checkpoints import _limits
from pruning_spec._checkpoints._errors import InputError, byte_count

KERAS_WEIGHTS = "model.weights.h5"
_KERAS_METADATA = ("config.json", "metadata.json")

# The zip records that say how large the central directory is (zipfile reads it whole).
_END_RECORD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")


def zip_directory_bytes(file: IO[bytes]) -> int:
    """The size of the central directory, read from the records zipfile reads it by."""
    size = file.seek(0, os.SEEK_END)
    start = max(size - _END_RECORD.size - (1 << 16), 0)
    file.seek(start)
    tail = file.read(size - start)
    at = len(tail) - _END_RECORD.size
    if at < 0 or tail[at : at + 4] != b"PK\x05\x06" or tail[-2:] != b"\0\0":
        at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END_RECORD.size:
        raise InputError("not a .keras archive: no zip end of central directory record")
    directory = int(_END_RECORD.unpack_from(tail, at)[5])
    record = start + at
    if record >= _ZIP64_LOCATOR.size + _ZIP64_END_RECORD.size:
        file.seek(record - _ZIP64_LOCATOR.size - _ZIP64_END_RECORD.size)
        zip64 = file.read(_ZIP64_END_RECORD.size + _ZIP64_LOCATOR.size)
        locator = _ZIP64_LOCATOR.unpack_from(zip64, _ZIP64_END_RECORD.size)
        if locator[0] == b"PK\x06\x07" and zip64[:4] == b"PK\x06\x06":
            directory = int(_ZIP64_END_RECORD.unpack_from(zip64)[8])
    return directory


def check_members(members: list[zipfile.ZipInfo]) -> None:
    """The declared sizes, and how each member is stored, before anything is inflated."""
    total = 0
    for member in members:
        name, size = member.filename, member.file_size
        total += size
        if name in _KERAS_METADATA and size > _limits.MAX_METADATA_BYTES:
            raise InputError(
                f"archive member {name!r} declares {byte_count(size)}, "
                f"more than MAX_METADATA_BYTES ({byte_count(_limits.MAX_METADATA_BYTES)})"
            )
        if total > _limits.MAX_ARCHIVE_BYTES:
            raise InputError(
                f"its members declare more than MAX_ARCHIVE_BYTES "
                f"({byte_count(_limits.MAX_ARCHIVE_BYTES)}) uncompressed; {name!r} alone "
                f"declares {byte_count(size)}"
            )
        # zipfile inflates bzip2 and lzma members without bounding each step.
        if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise InputError(
                f"archive member {name!r} is compressed with method {member.compress_type}; "
                "only stored and deflated members are read"
            )
        # `read()` reads all the stored bytes at once: as many as declared, no more.
        stored_limit = size if member.compress_type == zipfile.ZIP_STORED else _deflated_limit(size)
        if member.compress_size > stored_limit:
            raise InputError(
                f"archive member {name!r} stores {byte_count(member.compress_size)} "
                f"for {byte_count(size)}"
            )


def _deflated_limit(size: int) -> int:
    """The most bytes deflate needs for `size` bytes (incompressible data, with room)."""
    return size + size // 1000 + 1024


def check_inflated_sizes(file: IO[bytes], members: list[zipfile.ZipInfo]) -> None:
    """Every deflated member inflates to no more than it declares.

    zipfile stops returning data at the declared size, but its `read()` of a whole
    member (how Keras reads `config.json`) inflates up to 2 GiB in one step first.
    """
    for member in members:
        if member.compress_type == zipfile.ZIP_DEFLATED:
            file.seek(_member_data_offset(file, member))
            inflated = _inflated_size(file, member.compress_size, member.file_size)
            if inflated > member.file_size:
                raise InputError(
                    f"archive member {member.filename!r} inflates to more than the "
                    f"{byte_count(member.file_size)} it declares"
                )


def _member_data_offset(file: IO[bytes], member: zipfile.ZipInfo) -> int:
    """Where zipfile finds a member's data: after its local header, name and extra field."""
    file.seek(member.header_offset)
    header = file.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise InputError(f"archive member {member.filename!r} has no local header")
    name_length, extra_length = struct.unpack("<2H", header[26:30])
    return int(member.header_offset) + 30 + int(name_length) + int(extra_length)


def _inflated_size(file: IO[bytes], compressed: int, declared: int) -> int:
    """How much `compressed` deflated bytes inflate to, counted up to `declared` + 1 MiB."""
    inflater = zlib.decompressobj(-15)
    inflated = 0
    while inflated <= declared and not inflater.eof:
        data = inflater.unconsumed_tail
        if not data and compressed > 0:
            data = file.read(min(compressed, 1 << 20))
            compressed -= len(data)
        out = inflater.decompress(data, 1 << 20)  # at most 1 MiB at a time
        if not data and not out:
            break
        inflated += len(out)
    return inflated
