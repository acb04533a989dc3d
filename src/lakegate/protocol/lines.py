"""NDJSON response lines in the two response formats (protocol.md §4).

File lines are the hot path (one per data file, 100k+ per response): the parts of a line that do not change
between requests are encoded once per snapshot (`FileEntry`), and per request only the URL, the expiry and the
version columns are spliced in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from lakegate.protocol.capabilities import DELTA

_dumps = orjson.dumps


def line(obj: Any) -> bytes:
    return _dumps(obj) + b"\n"


def file_id(path: str, scheme: str) -> str:
    """Stable file id: md5 hex of the log path for parquet, sha256 for delta (the reference server's choice)."""
    digest = hashlib.md5 if scheme != DELTA else hashlib.sha256
    return digest(path.encode()).hexdigest()


@dataclass
class TableDescription:
    """What metadata lines say about a table besides its Delta metadata."""

    version: int | None  # set on time travel and change data feed lines
    size: int | None
    num_files: int | None
    location: str | None
    auxiliary_locations: list[str]
    access_modes: list[str]

    def extras(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.version is not None:
            out["version"] = self.version
        if self.size is not None:
            out["size"] = self.size
        if self.num_files is not None:
            out["numFiles"] = self.num_files
        if self.location:
            out["location"] = self.location
            out["auxiliaryLocations"] = self.auxiliary_locations
        out["accessModes"] = self.access_modes
        return out


def protocol_line(protocol: dict[str, Any], response_format: str, version: int | None = None) -> bytes:
    if response_format == DELTA:
        wrapper: dict[str, Any] = {"deltaProtocol": protocol}
        if version is not None:
            wrapper["version"] = version
        return line({"protocol": wrapper})
    return line({"protocol": {"minReaderVersion": 1}})


def metadata_line(
    metadata: dict[str, Any], response_format: str, description: TableDescription, *, history_shared: bool
) -> bytes:
    if response_format == DELTA:
        delta = dict(metadata)
        delta.setdefault("format", {"provider": "parquet", "options": {}})
        delta["format"].setdefault("options", {})
        delta.setdefault("partitionColumns", [])
        delta.setdefault("configuration", {})
        return line({"metaData": {"deltaMetadata": delta, **description.extras()}})
    config = metadata.get("configuration") or {}
    cdf = history_shared and str(config.get("delta.enableChangeDataFeed", "")).lower() == "true"
    out: dict[str, Any] = {"id": metadata.get("id", "")}
    for key in ("name", "description"):
        if metadata.get(key):
            out[key] = metadata[key]
    out["format"] = {"provider": "parquet"}
    out["schemaString"] = _parquet_schema_string(metadata.get("schemaString") or "")
    out["partitionColumns"] = list(metadata.get("partitionColumns") or [])
    out["configuration"] = {"enableChangeDataFeed": "true"} if cdf else {}
    out.update(description.extras())
    return line({"metaData": out})


def _parquet_schema_string(schema_string: str) -> str:
    """Parquet-format clients get top-level field metadata reduced to the column comment (Delta-internal keys
    such as column-mapping ids mean nothing to them)."""
    try:
        schema = orjson.loads(schema_string)
        for f in schema.get("fields", []):
            meta = f.get("metadata") or {}
            f["metadata"] = {"comment": meta["comment"]} if "comment" in meta else {}
        return orjson.dumps(schema).decode()
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return schema_string


def parquet_tail(add: dict[str, Any]) -> bytes:
    """`,"partitionValues":…,"size":…[,"stats":…]` of a parquet-format file line."""
    body: dict[str, Any] = {"partitionValues": add.get("partitionValues") or {}, "size": add.get("size", 0)}
    if add.get("stats"):
        body["stats"] = add["stats"]
    return b"," + _dumps(body)[1:-1]


def parquet_change_tail(action: dict[str, Any]) -> bytes:
    """`,"partitionValues":…,"size":…` of a parquet-format `remove` or `cdf` line (these carry no stats)."""
    body = {"partitionValues": action.get("partitionValues") or {}, "size": action.get("size", 0)}
    return b"," + _dumps(body)[1:-1]


def parquet_file_line(kind: str, url: str, fid: str, tail: bytes, extra: bytes) -> bytes:
    """`kind` is `file` (snapshots) or `add`/`remove`/`cdf` (history); `extra` is pre-encoded `,"k":v` pairs."""
    return b'{"%s":{"url":%s,"id":"%s"%s%s}}\n' % (kind.encode(), _dumps(url), fid.encode(), tail, extra)


def delta_action_tail(action: dict[str, Any]) -> bytes:
    """The action's fields other than `path`, as `,"k":v…`, or b"" if it has none."""
    rest = {k: v for k, v in action.items() if k != "path"}
    return (b"," + _dumps(rest)[1:-1]) if rest else b""


def delta_file_line(kind: str, url: str, fid: str, tail: bytes, extra: bytes) -> bytes:
    return b'{"file":{"id":"%s"%s,"deltaSingleAction":{"%s":{"path":%s%s}}}}\n' % (
        fid.encode(),
        extra,
        kind.encode(),
        _dumps(url),
        tail,
    )


def extra_fields(**fields: int | str | None) -> bytes:
    """Pre-encode optional scalar fields (`version`, `timestamp`, `expirationTimestamp`) as `,"k":v`."""
    return b"".join(b',"%s":%s' % (k.encode(), _dumps(v)) for k, v in fields.items() if v is not None)


def end_stream_line(
    *,
    next_page_token: str | None = None,
    refresh_token: str | None = None,
    min_url_expiration: int | None = None,
    error_message: str | None = None,
    http_status: int | None = None,
) -> bytes:
    """`http_status` goes with `error_message`: the status the error would have had before streaming began
    (`httpStatusErrorCode`, read by the Spark client)."""
    action: dict[str, Any] = {}
    if refresh_token is not None:
        action["refreshToken"] = refresh_token
    if next_page_token is not None:
        action["nextPageToken"] = next_page_token
    if min_url_expiration is not None:
        action["minUrlExpirationTimestamp"] = min_url_expiration
    if error_message is not None:
        action["errorMessage"] = error_message
    if http_status is not None:
        action["httpStatusErrorCode"] = http_status
    return line({"endStreamAction": action})


def query_status_line(query_id: str, status: str, error_message: str | None = None) -> bytes:
    """`{"queryStatus":…}`: the only line of an async query's answer while it runs or after it failed."""
    action: dict[str, Any] = {"queryId": query_id, "status": status}
    if error_message is not None:
        action["errorMessage"] = error_message
    return line({"queryStatus": action})
