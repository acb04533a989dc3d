"""Choosing the response format and checking that the client can read the table in it (protocol.md §3.1)."""

from __future__ import annotations

from typing import Any

from lakegate.delta.snapshot import Snapshot
from lakegate.exceptions import InvalidParameterError, UnsupportedOperationError
from lakegate.protocol.capabilities import DELTA, PARQUET, Capabilities

# Table features that change how data files must be read; a client must name them in `readerfeatures`.
_FEATURE_NAMES = {"deletionvectors": "deletion vectors", "columnmapping": "column mapping"}


def choose_format(caps: Capabilities, snapshot: Snapshot) -> str:
    requested = caps.response_formats or (PARQUET,)
    known = [f for f in requested if f in (PARQUET, DELTA)]
    if not known:
        raise InvalidParameterError(
            f"unsupported responseformat '{','.join(requested)}': use parquet or delta"
        )
    if len(known) == 1:
        return known[0]
    if PARQUET in known and not required_reader_features(snapshot) and snapshot.min_reader_version == 1:
        return PARQUET
    return DELTA if DELTA in known else PARQUET


def required_reader_features(snapshot: Snapshot) -> set[str]:
    needed = set()
    config = snapshot.configuration
    features = {f.lower() for f in snapshot.reader_features}
    if "deletionvectors" in features or config.get("delta.enableDeletionVectors", "").lower() == "true":
        needed.add("deletionvectors")
    if config.get("delta.columnMapping.mode", "none").lower() != "none":
        needed.add("columnmapping")
    return needed


def check_readable(snapshot: Snapshot, response_format: str, caps: Capabilities) -> None:
    needed = required_reader_features(snapshot)
    missing = needed if response_format == PARQUET else needed - caps.reader_features
    if missing:
        names = " and ".join(_FEATURE_NAMES[m] for m in sorted(missing))
        raise UnsupportedOperationError(
            f"Unsupported Delta Table Properties: the table uses {names}; read it with "
            f"'delta-sharing-capabilities: responseformat=delta;readerfeatures={','.join(sorted(needed))}'"
        )


def response_protocol(snapshot: Snapshot, caps: Capabilities) -> dict[str, Any]:
    """The Delta protocol as reported in delta format: a client that named no reader features gets the
    protocol downgraded to what it can read (checked by `check_readable`), as the reference server does."""
    if caps.reader_features:
        return snapshot.protocol
    writer = int(snapshot.protocol.get("minWriterVersion", 2))
    return {"minReaderVersion": 1, "minWriterVersion": writer if writer < 7 else 2}
