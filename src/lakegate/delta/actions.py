"""What an add action points at: its data file and deletion-vector file (resolved against the table root) and
its parsed stats."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import unquote

import orjson

from lakegate.cloud.locations import Location
from lakegate.exceptions import UnsupportedOperationError

# Z85 (ZeroMQ RFC 32) alphabet: Delta encodes deletion-vector UUIDs with it (not base64's b85 alphabet).
_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_Z85_VALUE = {c: i for i, c in enumerate(_Z85)}


def z85_decode(text: str) -> bytes:
    if len(text) % 5:
        raise ValueError("Z85 text length must be a multiple of 5")
    out = bytearray()
    for i in range(0, len(text), 5):
        value = 0
        for c in text[i : i + 5]:
            value = value * 85 + _Z85_VALUE[c]
        out += value.to_bytes(4, "big")
    return bytes(out)


def data_location(root: Location, path: str, allowed: tuple[Location, ...]) -> Location:
    """The location of a file named in the log: a relative (URL-encoded) path below the root, or an absolute
    URI that must lie in the root or an auxiliary location (files elsewhere are never handed out)."""
    if "://" not in path and not path.startswith("/"):
        relative = unquote(path) if "%" in path else path
        if relative.isprintable() and "/." not in relative and not relative.startswith("."):
            # The common case, on the hot path of a 100k-file snapshot: a plain relative path.
            return Location(
                root.cloud, root.bucket, f"{root.path}/{relative}" if root.path else relative, root.account
            )
        return root.child(relative)
    location = Location.parse(path)
    if any(a.contains(location) for a in (root, *allowed)):
        return location
    raise UnsupportedOperationError("the table references files outside its shared locations")


def deletion_vector_location(
    root: Location, descriptor: dict[str, Any], allowed: tuple[Location, ...]
) -> Location | None:
    """The file of a `u` (UUID-named, relative) or `p` (absolute) deletion vector; None for inline ones."""
    kind = descriptor.get("storageType")
    value = descriptor.get("pathOrInlineDv", "")
    if kind == "i":
        return None
    if kind == "p":
        return data_location(root, value, allowed)
    if kind == "u" and len(value) >= 20:
        prefix, encoded = value[:-20], value[-20:]
        name = f"deletion_vector_{uuid.UUID(bytes=z85_decode(encoded))}.bin"
        return root.child(f"{prefix}/{name}" if prefix else name)
    raise UnsupportedOperationError(f"unsupported deletion vector storage type '{kind}'")


def file_stats(action: dict[str, Any]) -> dict[str, Any] | None:
    """The parsed `stats` of an add action, or None when it has none or they are not valid JSON."""
    raw = action.get("stats")
    if not raw:
        return None
    try:
        stats = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return stats if isinstance(stats, dict) else None
