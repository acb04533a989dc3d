"""Time travel (version and timestamp on /query and /metadata, startingTimestamp on /version), streaming
queries (startingVersion on /query), and the history gates (historyShared, startVersion)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import delta_sharing
import pandas as pd
import pytest
from deltalake import DeltaTable

from tests.e2e.history_fixtures import Raw, error_of, file_actions, log_path, ndjson
from tests.e2e.server import RunningServer
from tests.history_tables import commit_actions, commit_times_ms
from tests.tables import read_expected

DELTA = {"delta-sharing-capabilities": "responseformat=delta;readerfeatures=deletionvectors,columnmapping"}


def iso(ms: int, offset_hours: int = 0) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone(timedelta(hours=offset_hours))).isoformat(
        timespec="milliseconds"
    )


def _rows(frame: pd.DataFrame) -> list[dict]:
    out = []
    for r in frame.to_dict("records"):
        out.append(
            {
                k: (
                    None
                    if v is None or (isinstance(v, float) and pd.isna(v))
                    else v.isoformat()[:10]
                    if hasattr(v, "isoformat")
                    else v
                )
                for k, v in r.items()
            }
        )
    return sorted(out, key=lambda r: r["id"])


def _expected(rows: list[dict]) -> list[dict]:
    return [{k: (v.isoformat()[:10] if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in rows]


def _deltalake_at(root: str, when: datetime) -> tuple[int, list[dict]]:
    """deltalake's own time travel by timestamp: the version it picks and its rows."""
    table = DeltaTable(root)
    table.load_as_version(when)
    rows = sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: r["id"])
    return table.version(), rows


# -- time travel through the official client ----------------------------------------------------------------------


@pytest.mark.parametrize("use_delta_format", [False, True], ids=["parquet", "delta"])
def test_client_reads_every_version(
    history_server: RunningServer, history_tables: dict[str, str], use_delta_format: bool
) -> None:
    root = history_tables["cdf"]
    for version in range(DeltaTable(root).version() + 1):
        frame = delta_sharing.load_as_pandas(
            f"{history_server.profile()}#hist.s.cdf", version=version, use_delta_format=use_delta_format
        )
        assert _rows(frame) == _expected(read_expected(root, version)), version


@pytest.mark.parametrize("use_delta_format", [False, True], ids=["parquet", "delta"])
def test_client_reads_by_timestamp(
    history_server: RunningServer, history_tables: dict[str, str], use_delta_format: bool
) -> None:
    root = history_tables["cdf"]
    ts = commit_times_ms(root)
    # Between two commits, exactly at a commit, and at the last one; in UTC and in other offsets.
    probes = [((ts[1] + ts[2]) // 2, 0), (ts[3], 2), ((ts[5] + ts[6]) // 2, -7), (ts[-1], 0)]
    for ms, offset in probes:
        when = datetime.fromtimestamp(ms / 1000, UTC)
        version, rows = _deltalake_at(root, when)
        frame = delta_sharing.load_as_pandas(
            f"{history_server.profile()}#hist.s.cdf",
            timestamp=iso(ms, offset),
            use_delta_format=use_delta_format,
        )
        assert _rows(frame) == _expected(rows), (ms, version)


def test_client_reads_schema_at_version(
    history_server: RunningServer, history_tables: dict[str, str]
) -> None:
    root = history_tables["schema"]
    for version in (1, 2):
        for fmt in (False, True):
            frame = delta_sharing.load_as_pandas(
                f"{history_server.profile()}#hist.s.schema", version=version, use_delta_format=fmt
            )
            assert ("extra" in frame.columns) == (version >= 2)
            assert _rows(frame) == _expected(read_expected(root, version))


# -- time travel on the wire ----------------------------------------------------------------------------------------


def test_time_travel_lines_carry_version_and_timestamp(raw: Raw, history_tables: dict[str, str]) -> None:
    ts = commit_times_ms(history_tables["cdf"])
    for body, version in (({"version": 3}, 3), ({"timestamp": iso((ts[4] + ts[5]) // 2, 9)}, 4)):
        for headers in ({}, DELTA):
            response = raw.query("cdf", body, **headers)
            lines = ndjson(response)
            assert response.headers["delta-table-version"] == str(version)
            assert lines[1]["metaData"]["version"] == version
            files = file_actions(lines)
            assert files and all(f["version"] == version and f["timestamp"] == ts[version] for _, f in files)
    latest = ndjson(raw.query("cdf"))
    assert all("version" not in f and "timestamp" not in f for _, f in file_actions(latest))
    assert "version" not in latest[1]["metaData"]


def test_metadata_by_version_and_timestamp(raw: Raw, history_tables: dict[str, str]) -> None:
    ts = commit_times_ms(history_tables["schema"])
    for params, version in (({"version": 1}, 1), ({"timestamp": iso(ts[2] + 1)}, 2), ({}, 3)):
        response = raw.get("schema/metadata", params)
        meta = ndjson(response)[1]["metaData"]
        assert response.headers["delta-table-version"] == str(version)
        assert ("extra" in meta["schemaString"]) == (version >= 2)
        assert meta.get("version") == (version if params else None)


def test_version_at_or_after_a_timestamp(raw: Raw, history_tables: dict[str, str]) -> None:
    ts = commit_times_ms(history_tables["cdf"])

    def version_for(text: str) -> int:
        response = raw.get("cdf/version", {"startingTimestamp": text})
        assert response.status_code == 200, response.text
        return int(response.headers["delta-table-version"])

    assert version_for("2000-01-01T00:00:00Z") == 0
    assert version_for(iso(ts[3])) == 3  # exactly at a commit: that commit
    assert version_for(iso(ts[3] + 1, offset_hours=5)) == 4
    assert version_for(iso(ts[7])) == 7
    assert "after the latest version" in error_of(
        raw.get("cdf/version", {"startingTimestamp": iso(ts[7] + 1)})
    )
    assert "Invalid startingTimestamp" in error_of(raw.get("cdf/version", {"startingTimestamp": "soon"}))
    assert "since version 2" in error_of(raw.get("started/version", {"startingTimestamp": iso(ts[1])}))
    assert raw.get("cdf/version").headers["delta-table-version"] == "7"


# -- history gates --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda raw: raw.query("private", {"version": 0}),
        lambda raw: raw.query("private", {"timestamp": "2020-01-01T00:00:00Z"}),
        lambda raw: raw.query("private", {"startingVersion": 0}),
        lambda raw: raw.get("private/metadata", {"version": 0}),
        lambda raw: raw.get("private/metadata", {"timestamp": "2020-01-01T00:00:00Z"}),
        lambda raw: raw.get("private/version", {"startingTimestamp": "2020-01-01T00:00:00Z"}),
        lambda raw: raw.changes("private", {"startingVersion": 0}),
        lambda raw: raw.changes("private", {"startingTimestamp": "2020-01-01T00:00:00Z"}),
    ],
    ids=[
        "version",
        "timestamp",
        "startingVersion",
        "metadata-version",
        "metadata-timestamp",
        "startingTimestamp",
        "changes",
        "changes-timestamp",
    ],
)
def test_history_needs_history_sharing(raw: Raw, call) -> None:
    assert "hist.s.private" in error_of(call(raw))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda raw: raw.query("started", {"version": 1}), "You can only query table data since version 2."),
        (
            lambda raw: raw.query("started", {"startingVersion": 0}),
            "You can only query table data since version 2.",
        ),
        (
            lambda raw: raw.get("started/metadata", {"version": 0}),
            "You can only query table data since version 2.",
        ),
        (
            lambda raw: raw.query("started", {"timestamp": "2000-01-01T00:00:00Z"}),
            "is before the earliest version",
        ),
        (lambda raw: raw.query("cdf", {"timestamp": "2999-01-01T00:00:00Z"}), "is after the latest version"),
        (
            lambda raw: raw.get("cdf/metadata", {"timestamp": "2999-01-01T00:00:00+01:00"}),
            "is after the latest version",
        ),
        (
            lambda raw: raw.get("cdf/metadata", {"timestamp": "1999-12-31T23:00:00-01:00"}),
            "is before the earliest version",
        ),
        (lambda raw: raw.query("cdf", {"version": 8}), "Cannot load table version 8"),
        (
            lambda raw: raw.query("cdf", {"version": 1, "timestamp": "2000-01-01T00:00:00Z"}),
            "Please only provide one of",
        ),
        (
            lambda raw: raw.get("cdf/metadata", {"version": 1, "timestamp": "2000-01-01T00:00:00Z"}),
            "Please only provide one of",
        ),
        (lambda raw: raw.get("cdf/metadata", {"version": -1}), "table version cannot be negative."),
        # which parameters go together is checked before their values (the reference server's order)
        (
            lambda raw: raw.get("cdf/metadata", {"version": -1, "timestamp": "abc"}),
            "Please only provide one of: version,timestamp",
        ),
        (
            lambda raw: raw.query("cdf", {"version": -1, "timestamp": "abc"}),
            "Please only provide one of: version,timestamp,startingVersion",
        ),
        (
            lambda raw: raw.query("cdf", {"startingVersion": -1, "version": "x"}),
            "Please only provide one of: version,timestamp,startingVersion",
        ),
        (lambda raw: raw.query("cdf", {"version": -1}), "table version cannot be negative."),
        (lambda raw: raw.query("cdf", {"timestamp": "noon"}), "Invalid timestamp: noon"),
    ],
)
def test_time_travel_errors(raw: Raw, call, message: str) -> None:
    response = call(raw)
    code = "MALFORMED_REQUEST" if "Cannot load" in message else "INVALID_PARAMETER_VALUE"
    assert message in error_of(response, code=code)


def test_start_version_allows_later_versions(raw: Raw, history_tables: dict[str, str]) -> None:
    ts = commit_times_ms(history_tables["cdf"])
    assert raw.query("started", {"version": 2}).status_code == 200
    assert raw.query("started", {"timestamp": iso(ts[2])}).headers["delta-table-version"] == "2"
    lines = ndjson(raw.query("started", {"startingVersion": 2}))
    assert lines[1]["metaData"]["version"] == 2


# -- streaming queries ----------------------------------------------------------------------------------------------


def _data_changes(root: str, start: int, end: int) -> list[tuple[int, str, str]]:
    """(version, add|remove, path) of every data-changing file action, read from the commit files."""
    out = []
    for v in range(start, end + 1):
        for action in commit_actions(root, v):
            for kind in ("add", "remove"):
                if kind in action and action[kind]["dataChange"]:
                    out.append((v, kind, action[kind]["path"]))
    return sorted(out)


@pytest.mark.parametrize("headers", [{}, DELTA], ids=["parquet", "delta"])
def test_streaming_returns_data_changes_of_each_version(
    raw: Raw, history_tables: dict[str, str], headers: dict
) -> None:
    root = history_tables["cdf"]
    ts = commit_times_ms(root)
    response = raw.query("cdf", {"startingVersion": 2, "endingVersion": 6}, **headers)
    lines = ndjson(response)
    assert response.headers["delta-table-version"] == "2"
    assert lines[1]["metaData"]["version"] == 2
    got = []
    for kind, f in file_actions(lines):
        assert f["timestamp"] == ts[f["version"]]
        got.append((f["version"], kind, log_path(f.get("url") or f["path"])))
    assert sorted(got) == _data_changes(root, 2, 6)
    assert not any("endStreamAction" in line for line in lines)
    scheme = hashlib.sha256 if headers else hashlib.md5
    assert all(
        f["id"] == scheme(log_path(f.get("url") or f["path"]).encode()).hexdigest()
        for _, f in file_actions(lines)
    )


def test_streaming_historical_metadata_and_protocol(raw: Raw, history_tables: dict[str, str]) -> None:
    lines = ndjson(raw.query("schema", {"startingVersion": 0}))
    metas = [line["metaData"] for line in lines if "metaData" in line]
    # Head as of the starting version, then the schema change at v2, in the parquet shape.
    assert [m["version"] for m in metas] == [0, 2]
    assert "extra" in metas[1]["schemaString"] and metas[1]["format"] == {"provider": "parquet"}
    order = [
        ("meta", line["metaData"]["version"])
        if "metaData" in line
        else ("file", line[next(iter(line))]["version"])
        for line in lines[1:]
    ]
    assert order.index(("meta", 2)) < order.index(("file", 2))
    delta = ndjson(raw.query("schema", {"startingVersion": 0, "includeHistoricalProtocol": True}, **DELTA))
    assert delta[0]["protocol"]["version"] == 0
    assert "deltaMetadata" in delta[1]["metaData"]
    # includeHistoricalProtocol is ignored in parquet format
    parquet = ndjson(raw.query("schema", {"startingVersion": 0, "includeHistoricalProtocol": True}))
    assert parquet[0] == {"protocol": {"minReaderVersion": 1}}


def test_streaming_with_protocol_changes(raw: Raw, history_tables: dict[str, str]) -> None:
    # late: v2 turned CDF on (a protocol upgrade to writer 4 and a metadata change)
    lines = ndjson(raw.query("late", {"startingVersion": 1, "includeHistoricalProtocol": True}, **DELTA))
    protocols = [line["protocol"] for line in lines if "protocol" in line]
    changed = [
        v for v in range(2, 5) if any("protocol" in a for a in commit_actions(history_tables["late"], v))
    ]
    assert [p["version"] for p in protocols] == [1, *changed]
    without = ndjson(raw.query("late", {"startingVersion": 1}, **DELTA))
    assert sum("protocol" in line for line in without) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"startingVersion": 3, "endingVersion": 2},
            "startingVersion(3) must be smaller than or equal to endingVersion(2).",
        ),
        ({"startingVersion": 0, "endingVersion": 99}, "Provided end version(99) is invalid."),
        ({"startingVersion": 99}, "Provided startingVersion(99) is invalid."),
        ({"startingVersion": -2}, "startingVersion cannot be negative."),
        (
            {"startingVersion": 1, "version": 1},
            "Please only provide one of: version,timestamp,startingVersion",
        ),
        (
            {"startingVersion": 1, "includeRefreshToken": True},
            "includeRefreshToken cannot be used when querying a specific version.",
        ),
        ({"startingVersion": "one"}, "startingVersion is not a valid number."),
    ],
)
def test_streaming_errors(raw: Raw, body: dict, message: str) -> None:
    assert message in error_of(raw.query("cdf", body))


def test_streaming_predicate_hints_prune_by_partition(raw: Raw, history_tables: dict[str, str]) -> None:
    lines = ndjson(raw.query("cdf", {"startingVersion": 0, "predicateHints": ["region = 'emea'"]}))
    regions = {f["partitionValues"]["region"] for _, f in file_actions(lines)}
    assert regions == {"emea"}
    all_emea = [c for c in _data_changes(history_tables["cdf"], 0, 7) if "region=emea" in c[2]]
    assert len(file_actions(lines)) == len(all_emea)


def test_sql_predicate_hints_on_time_travel(raw: Raw, history_tables: dict[str, str]) -> None:
    everything = file_actions(ndjson(raw.query("cdf", {"version": 3})))
    emea = file_actions(ndjson(raw.query("cdf", {"version": 3, "predicateHints": ["region = 'emea'"]})))
    assert {f["partitionValues"]["region"] for _, f in emea} == {"emea"}
    assert len(emea) == sum(f["partitionValues"]["region"] == "emea" for _, f in everything)
    # Hints the server cannot use are skipped (best effort): nothing is pruned.
    skipped = file_actions(
        ndjson(raw.query("cdf", {"version": 3, "predicateHints": ["region LIKE 'e%'", "id + 1 = 2"]}))
    )
    assert len(skipped) == len(everything)


def test_fileidhash_on_streaming(raw: Raw) -> None:
    response = raw.query(
        "cdf",
        {"startingVersion": 5},
        fileidhash="parquet",
        **{"delta-sharing-capabilities": "responseformat=delta"},
    )
    assert response.headers["fileidhash"] == "parquet"
    files = file_actions(ndjson(response))
    assert files and all(
        f["id"] == hashlib.md5(log_path(f["path"]).encode(), usedforsecurity=False).hexdigest()
        for _, f in files
    )
