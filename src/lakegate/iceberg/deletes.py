"""Delta deletion vectors as Iceberg position-delete files.

A deletion vector (Delta PROTOCOL.md, "Deletion Vector Format") is a RoaringBitmapArray: a magic number, a
64-bit bucket count, then per bucket its key (the high 32 bits of the row positions) and a 32-bit Roaring bitmap
in the portable format, read with pyroaring. It is stored inline (Z85 text in the log) or in a file at
`offset`, framed by its 4-byte big-endian size and a CRC-32 (checked here: a damaged vector would serve wrong
rows). The Iceberg position-delete file is a Parquet file of (file_path, pos) rows sorted by position, its
columns carrying the spec's reserved field ids.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyroaring import BitMap

from lakegate.delta.actions import z85_decode
from lakegate.exceptions import TableStateError
from lakegate.iceberg.manifests import DELETE_FILE_PATH_ID, DELETE_POS_ID

_MAGIC = 1681511377


def positions(bitmap_array: bytes) -> list[int]:
    """The row positions of a serialized RoaringBitmapArray, ascending."""
    if len(bitmap_array) < 12 or struct.unpack_from("<I", bitmap_array)[0] != _MAGIC:
        raise _broken("its magic number is wrong")
    (buckets,) = struct.unpack_from("<q", bitmap_array, 4)
    offset, found = 12, list[int]()
    for _ in range(buckets):
        (key,) = struct.unpack_from("<I", bitmap_array, offset)
        bitmap = BitMap.deserialize(bitmap_array[offset + 4 :])
        offset += 4 + len(bitmap.serialize())
        high = key << 32
        found.extend(high | low for low in bitmap)
    return found


def vector_bytes(descriptor: dict[str, Any], stored: bytes | None) -> bytes:
    """The RoaringBitmapArray of a deletion vector: inline in the descriptor, or `stored` (the whole file)."""
    if descriptor.get("storageType") == "i":
        return z85_decode(descriptor["pathOrInlineDv"])[: int(descriptor["sizeInBytes"])]
    assert stored is not None
    start = int(descriptor.get("offset") or 1)  # a file begins with a format-version byte
    size = int(descriptor["sizeInBytes"])
    if len(stored) < start + 4 + size + 4:
        raise _broken("its file is shorter than its descriptor says")
    (framed,) = struct.unpack_from(">I", stored, start)
    data = stored[start + 4 : start + 4 + size]
    (checksum,) = struct.unpack_from(">I", stored, start + 4 + size)
    if framed != size or zlib.crc32(data) != checksum:
        raise _broken("its size or checksum does not match")
    return data


def _broken(why: str) -> TableStateError:
    return TableStateError(
        "The table cannot be served to Iceberg clients: a deletion vector is damaged; the provider must repair it",
        f"deletion vector unreadable: {why}",
    )


_SCHEMA = pa.schema(
    [
        pa.field(
            "file_path", pa.string(), nullable=False, metadata={b"PARQUET:field_id": str(DELETE_FILE_PATH_ID)}
        ),
        pa.field("pos", pa.int64(), nullable=False, metadata={b"PARQUET:field_id": str(DELETE_POS_ID)}),
    ]
)


def position_delete_file(data_file: str, deleted: list[int]) -> bytes:
    table = pa.table([pa.array([data_file] * len(deleted)), pa.array(deleted, pa.int64())], schema=_SCHEMA)
    out = pa.BufferOutputStream()
    pq.write_table(table, out)
    return bytes(out.getvalue().to_pybytes())
