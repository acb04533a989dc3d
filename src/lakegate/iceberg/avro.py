"""Manifest entries in Avro's binary encoding, written here rather than by fastavro's record writer.

fastavro writes a manifest entry in ~200 µs, nearly all of it in the six int-keyed metric maps (arrays of
key/value records): a 100k-file table took ~20 s to describe. The entry's layout is fixed by the spec, so it is
encoded here directly (~50 µs); fastavro still writes the file header (schema, metadata, sync marker) and reads
everything back, and the tests check that fastavro decodes these blocks to exactly what its own writer makes.

Avro binary encoding (Avro specification, "Binary Encoding"): int and long as zig-zag varints, string and bytes
as a length and the bytes, a union as the branch index and the value, an array as blocks of (count, items)
ending with a zero count, a fixed as its bytes. A data block of an object container file is (record count,
byte size, the deflated records, the file's sync marker).
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Callable
from typing import Any

import fastavro

from lakegate.iceberg.values import decimal_bytes, decimal_parts, unscaled_decimal


def _varint(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


_SMALL = [_varint(i) for i in range(-64, 64)]  # one byte each: most counts, ids, statuses
_NULL, _SOME = b"\x00", b"\x02"  # union branch 0 (null) and 1 (the value)
_END = b"\x00"  # an array's closing zero-count block


def long(value: int) -> bytes:
    return _SMALL[value + 64] if -64 <= value < 64 else _varint(value)


def _bytes(value: bytes) -> bytes:
    return long(len(value)) + value


def _string(value: str) -> bytes:
    return _bytes(value.encode())


def _optional_long(value: int | None) -> bytes:
    return _NULL if value is None else _SOME + long(value)


def _int_map(pairs: list[dict[str, Any]] | None, encode: Callable[[Any], bytes]) -> bytes:
    if pairs is None:
        return _NULL
    if not pairs:
        return _SOME + _END
    items = b"".join([long(p["key"]) + encode(p["value"]) for p in pairs])
    return _SOME + long(len(pairs)) + items + _END


def value_encoder(kind: str) -> Callable[[Any], bytes]:
    """The encoder of an Iceberg primitive's Avro form (`manifests.avro_type`), as an optional union."""
    plain: Callable[[Any], bytes]
    if kind == "boolean":
        plain = lambda v: b"\x01" if v else b"\x00"  # noqa: E731
    elif kind in ("int", "long", "date", "timestamp", "timestamptz"):
        plain = long
    elif kind == "float":
        plain = struct.Struct("<f").pack
    elif kind == "double":
        plain = struct.Struct("<d").pack
    elif kind == "string":
        plain = _string
    elif kind == "binary":
        plain = _bytes
    elif (parts := decimal_parts(kind)) is not None:
        size, scale = decimal_bytes(parts[0]), parts[1]
        plain = lambda v: unscaled_decimal(v, scale).to_bytes(size, "big", signed=True)  # noqa: E731
    else:
        raise ValueError(f"no Avro encoding for {kind}")
    return lambda v: _NULL if v is None else _SOME + plain(v)


def entry_encoder(partition: list[tuple[str, str]]) -> Callable[[dict[str, Any]], bytes]:
    """The encoder of a manifest entry whose partition tuple has these (Avro name, Iceberg type) fields."""
    fields = [(name, value_encoder(kind)) for name, kind in partition]

    def encode(entry: dict[str, Any]) -> bytes:
        data_file = entry["data_file"]
        values = data_file["partition"]
        return b"".join(
            [
                long(entry["status"]),
                _optional_long(entry["snapshot_id"]),
                _optional_long(entry["sequence_number"]),
                _optional_long(entry["file_sequence_number"]),
                long(data_file["content"]),
                _string(data_file["file_path"]),
                _string(data_file["file_format"]),
                *[encode_value(values.get(name)) for name, encode_value in fields],
                long(data_file["record_count"]),
                long(data_file["file_size_in_bytes"]),
                _int_map(data_file["column_sizes"], long),
                _int_map(data_file["value_counts"], long),
                _int_map(data_file["null_value_counts"], long),
                _int_map(data_file["nan_value_counts"], long),
                _int_map(data_file["lower_bounds"], _bytes),
                _int_map(data_file["upper_bounds"], _bytes),
                _NULL if data_file["key_metadata"] is None else _SOME + _bytes(data_file["key_metadata"]),
                _array(data_file["split_offsets"]),
                _array(data_file["equality_ids"]),
                _optional_long(data_file["sort_order_id"]),
            ]
        )

    return encode


def _array(values: list[int] | None) -> bytes:
    if values is None:
        return _NULL
    return _SOME + (long(len(values)) + b"".join(long(v) for v in values) if values else b"") + _END


def container(schema: dict[str, Any], metadata: dict[str, str], records: list[bytes], name: str) -> bytes:
    """An object container file of encoded records: fastavro's header, one deflated data block. The sync
    marker comes from the file's name, so writing the same file again gives the same bytes."""
    marker = hashlib.sha256(name.encode()).digest()[:16]
    header = io.BytesIO()
    fastavro.writer(
        header, fastavro.parse_schema(schema), [], codec="deflate", metadata=metadata, sync_marker=marker
    )
    if not records:
        return header.getvalue()
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)  # Avro's deflate codec is raw deflate
    block = compressor.compress(b"".join(records)) + compressor.flush()
    return header.getvalue() + long(len(records)) + long(len(block)) + block + marker
