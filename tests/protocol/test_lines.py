"""NDJSON lines in the two response formats, checked against protocol.md §4 field by field."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from lakegate.protocol import lines
from lakegate.protocol.capabilities import DELTA, PARQUET

SCHEMA = {
    "type": "struct",
    "fields": [
        {
            "name": "id",
            "type": "long",
            "nullable": True,
            "metadata": {"comment": "key", "delta.columnMapping.id": 1},
        },
        {
            "name": "v",
            "type": "string",
            "nullable": True,
            "metadata": {"delta.columnMapping.physicalName": "c2"},
        },
    ],
}
METADATA = {
    "id": "t-1",
    "name": "sales",
    "format": {"provider": "parquet", "options": {}},
    "schemaString": orjson.dumps(SCHEMA).decode(),
    "partitionColumns": ["v"],
    "configuration": {"delta.enableChangeDataFeed": "true", "delta.columnMapping.mode": "name"},
    "createdTime": 1,
}
ADD: dict[str, Any] = {
    "path": "v=a/part-0.parquet",
    "partitionValues": {"v": "a"},
    "size": 573,
    "modificationTime": 1652140800000,
    "dataChange": True,
    "stats": '{"numRecords":1}',
    "tags": {"k": "x"},
}
URL = 'https://store/part-0.parquet?sig=a&b="c"'


def one(data: bytes) -> dict[str, Any]:
    assert data.endswith(b"\n") and data.count(b"\n") == 1  # one line on the wire
    value = orjson.loads(data)
    assert isinstance(value, dict) and len(value) == 1  # a wrapper with exactly one key (§4)
    return value


def description(**kw: Any) -> lines.TableDescription:
    base: dict[str, Any] = {
        "version": None,
        "size": None,
        "num_files": None,
        "location": None,
        "auxiliary_locations": [],
        "access_modes": ["url"],
    }
    return lines.TableDescription(**{**base, **kw})


def test_protocol_lines() -> None:
    delta_protocol = {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["deletionVectors"]}
    assert one(lines.protocol_line(delta_protocol, PARQUET)) == {"protocol": {"minReaderVersion": 1}}
    assert one(lines.protocol_line(delta_protocol, DELTA)) == {"protocol": {"deltaProtocol": delta_protocol}}
    assert one(lines.protocol_line(delta_protocol, DELTA, version=5)) == {
        "protocol": {"deltaProtocol": delta_protocol, "version": 5}
    }


@pytest.mark.parametrize("history_shared", [True, False])
def test_parquet_metadata_line(history_shared: bool) -> None:
    meta = one(
        lines.metadata_line(
            METADATA, PARQUET, description(size=10, num_files=2), history_shared=history_shared
        )
    )["metaData"]
    assert {"id", "format", "schemaString", "partitionColumns"} <= set(meta)  # what PY's parser requires
    assert meta["id"] == "t-1" and meta["name"] == "sales" and meta["format"] == {"provider": "parquet"}
    assert meta["partitionColumns"] == ["v"] and (meta["size"], meta["numFiles"]) == (10, 2)
    # Top-level field metadata reduced to the comment (§4.4); CDF advertised only with shared history.
    fields = orjson.loads(meta["schemaString"])["fields"]
    assert [f["metadata"] for f in fields] == [{"comment": "key"}, {}]
    assert meta["configuration"] == ({"enableChangeDataFeed": "true"} if history_shared else {})
    assert "version" not in meta and "location" not in meta


def test_delta_metadata_line_passes_the_action_through() -> None:
    meta = one(
        lines.metadata_line(
            METADATA, DELTA, description(version=4, location="s3://b/t"), history_shared=False
        )
    )["metaData"]
    assert meta["deltaMetadata"] == METADATA
    assert (meta["version"], meta["location"], meta["auxiliaryLocations"], meta["accessModes"]) == (
        4,
        "s3://b/t",
        [],
        ["url"],
    )
    # Kernel readers need format.options, partitionColumns and configuration even when the log left them out.
    bare = one(
        lines.metadata_line({"id": "x", "schemaString": "{}"}, DELTA, description(), history_shared=False)
    )
    assert bare["metaData"]["deltaMetadata"] == {
        "id": "x",
        "schemaString": "{}",
        "format": {"provider": "parquet", "options": {}},
        "partitionColumns": [],
        "configuration": {},
    }


def test_parquet_file_line() -> None:
    fid = lines.file_id(ADD["path"], PARQUET)
    extra = lines.extra_fields(version=3, timestamp=None, expirationTimestamp=1652140800000)
    line = one(lines.parquet_file_line("file", URL, fid, lines.parquet_tail(ADD), extra))["file"]
    assert line == {
        "url": URL,
        "id": hashlib.md5(ADD["path"].encode(), usedforsecurity=False).hexdigest(),
        "partitionValues": {"v": "a"},
        "size": 573,
        "stats": '{"numRecords":1}',  # a string, not an object (§4.1)
        "version": 3,
        "expirationTimestamp": 1652140800000,
    }
    unpartitioned = one(
        lines.parquet_file_line("add", URL, fid, lines.parquet_tail({"path": "p", "size": 1}), b"")
    )
    assert unpartitioned["add"]["partitionValues"] == {} and "stats" not in unpartitioned["add"]


def test_parquet_change_lines_carry_no_stats() -> None:
    tail = lines.parquet_change_tail(ADD)
    line = one(lines.parquet_file_line("cdf", URL, "i", tail, lines.extra_fields(version=1, timestamp=2)))[
        "cdf"
    ]
    assert line == {
        "url": URL,
        "id": "i",
        "partitionValues": {"v": "a"},
        "size": 573,
        "version": 1,
        "timestamp": 2,
    }


def test_delta_file_line_replaces_only_the_path() -> None:
    fid = lines.file_id(ADD["path"], DELTA)
    assert fid == hashlib.sha256(ADD["path"].encode()).hexdigest()
    extra = lines.extra_fields(version=2, timestamp=7)
    line = one(lines.delta_file_line("add", URL, fid, lines.delta_action_tail(ADD), extra))["file"]
    assert line == {
        "id": fid,
        "version": 2,
        "timestamp": 7,
        "deltaSingleAction": {"add": {**ADD, "path": URL}},
    }
    bare = one(lines.delta_file_line("remove", URL, fid, lines.delta_action_tail({"path": "p"}), b""))
    assert bare["file"]["deltaSingleAction"] == {"remove": {"path": URL}}


def test_end_stream_and_query_status_lines() -> None:
    assert one(lines.end_stream_line()) == {"endStreamAction": {}}
    assert one(lines.end_stream_line(next_page_token="n", refresh_token="r", min_url_expiration=5)) == {
        "endStreamAction": {"nextPageToken": "n", "refreshToken": "r", "minUrlExpirationTimestamp": 5}
    }
    assert one(lines.end_stream_line(error_message="boom", http_status=400)) == {
        "endStreamAction": {"errorMessage": "boom", "httpStatusErrorCode": 400}
    }
    assert one(lines.query_status_line("q", "pending")) == {
        "queryStatus": {"queryId": "q", "status": "pending"}
    }
    assert one(lines.query_status_line("q", "failed", "x"))["queryStatus"]["errorMessage"] == "x"


def test_non_ascii_and_quotes_survive() -> None:
    url = 'https://h/dir%20späce/ü"\\.parquet'
    line = one(
        lines.parquet_file_line("file", url, "i", lines.parquet_tail({"partitionValues": {"k": "ä\n"}}), b"")
    )
    assert line["file"]["url"] == url and line["file"]["partitionValues"] == {"k": "ä\n"}
