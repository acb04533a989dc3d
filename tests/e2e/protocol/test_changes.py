"""The change data feed (GET …/changes): the official client's reads equal deltalake's load_cdf, through both
its parquet and its delta-kernel paths; raw lines and every documented 400 (protocol.md §2.9)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

import delta_sharing
import pandas as pd
import pytest

from tests.e2e.history_fixtures import Raw, error_of, file_actions, log_path, ndjson
from tests.e2e.server import RunningServer
from tests.history_tables import cdf_rows, cdf_sort_key, commit_actions, commit_times_ms

DELTA_CDF = {
    "delta-sharing-capabilities": "responseformat=delta;readerfeatures=deletionvectors,columnmapping"
}


def iso(ms: int, offset_hours: int = 0) -> str:
    from datetime import timedelta

    tz = timezone(timedelta(hours=offset_hours))
    return datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="milliseconds")


def client_rows(frame: pd.DataFrame) -> list[dict]:
    out = []
    for record in frame.to_dict("records"):
        row: dict[str, Any] = {}
        for k, v in record.items():
            if k == "_commit_timestamp":
                row[k] = int(v.value // 1_000_000) if isinstance(v, pd.Timestamp) else int(v)
            elif v is None or (isinstance(v, float) and pd.isna(v)):
                row[k] = None
            elif hasattr(v, "isoformat"):
                row[k] = v.isoformat()[:10]
            else:
                row[k] = v
        out.append(row)
    return sorted(out, key=cdf_sort_key)


def expected_rows(root: str, kernel: bool, **kwargs: object) -> list[dict]:
    rows = cdf_rows(root, **kwargs)
    for r in rows:
        r["day"] = r["day"].isoformat()
        if kernel:
            # The client's delta path dates a version by the mtime it gives its local log file, which it sets
            # with whole seconds (os.utime(…, ts // 1000)): the kernel can only report the second.
            r["_commit_timestamp"] = r["_commit_timestamp"] // 1000 * 1000
    return rows


def read_changes(server: RunningServer, table: str, use_delta_format: bool, **kwargs: object) -> list[dict]:
    frame = delta_sharing.load_table_changes_as_pandas(
        f"{server.profile()}#hist.s.{table}", use_delta_format=use_delta_format, **kwargs
    )
    return client_rows(frame)


RANGES = [
    {"starting_version": 0},
    {"starting_version": 2, "ending_version": 3},  # delete and update: _change_data files
    {
        "starting_version": 4,
        "ending_version": 6,
    },  # optimize (nothing), merge (cdc), whole-partition delete (removes)
    {"starting_version": 6},
    {"starting_version": 7, "ending_version": 100},  # an ending version past the latest reads to the latest
]


@pytest.mark.parametrize("use_delta_format", [False, True], ids=["parquet", "delta"])
@pytest.mark.parametrize("bounds", RANGES, ids=lambda b: "-".join(f"{k[0]}{v}" for k, v in b.items()))
def test_client_changes_equal_deltalake(
    history_server: RunningServer, history_tables: dict[str, str], use_delta_format: bool, bounds: dict
) -> None:
    got = read_changes(history_server, "cdf", use_delta_format, **bounds)
    assert got == expected_rows(history_tables["cdf"], use_delta_format, **bounds)


@pytest.mark.parametrize("use_delta_format", [False, True], ids=["parquet", "delta"])
def test_client_changes_by_timestamp_equal_deltalake(
    history_server: RunningServer, history_tables: dict[str, str], use_delta_format: bool
) -> None:
    root = history_tables["cdf"]
    ts = commit_times_ms(root)
    # Start exactly at v2's commit (at or after: v2), end between v5 and v6 (at or before: v5); the start is
    # written in another offset.
    start, end = iso(ts[2], offset_hours=-5), iso((ts[5] + ts[6]) // 2)
    got = read_changes(
        history_server, "cdf", use_delta_format, starting_timestamp=start, ending_timestamp=end
    )
    expected = expected_rows(root, use_delta_format, starting_timestamp=start, ending_timestamp=end)
    assert {r["_commit_version"] for r in got} == {2, 3, 5}
    assert got == expected


def test_client_changes_across_a_schema_change(
    history_server: RunningServer, history_tables: dict[str, str]
) -> None:
    # Parquet path: the rows written before the new column have it as null, as in deltalake's feed.
    assert read_changes(history_server, "schema", False, starting_version=0) == expected_rows(
        history_tables["schema"], False, starting_version=0
    )
    # delta-kernel refuses a range whose start and end schemas differ (a client limit); after the change it reads.
    assert read_changes(history_server, "schema", True, starting_version=2) == expected_rows(
        history_tables["schema"], True, starting_version=2
    )


@pytest.mark.parametrize("use_delta_format", [False, True], ids=["parquet", "delta"])
def test_client_changes_from_when_cdf_was_enabled(
    history_server: RunningServer, history_tables: dict[str, str], use_delta_format: bool
) -> None:
    got = read_changes(history_server, "late", use_delta_format, starting_version=2)
    assert got == expected_rows(history_tables["late"], use_delta_format, starting_version=2)


# -- raw lines ----------------------------------------------------------------------------------------------------


def _kinds_by_version(root: str, start: int, end: int) -> dict[int, list[tuple[str, str]]]:
    """What Delta's change data feed rules pick per version, read straight from the commit files."""
    out: dict[int, list[tuple[str, str]]] = {}
    for v in range(start, end + 1):
        actions = commit_actions(root, v)
        cdc = [("cdc", a["cdc"]["path"]) for a in actions if "cdc" in a]
        other = [
            (k, a[k]["path"]) for a in actions for k in ("add", "remove") if k in a and a[k]["dataChange"]
        ]
        out[v] = sorted(cdc or other)
    return out


def test_parquet_lines_carry_version_and_timestamp(raw: Raw, history_tables: dict[str, str]) -> None:
    root = history_tables["cdf"]
    response = raw.changes("cdf", {"startingVersion": 1, "endingVersion": 6})
    lines = ndjson(response)
    assert response.headers["delta-table-version"] == "1"
    assert response.headers["delta-sharing-capabilities"] == "responseformat=parquet"
    assert list(lines[0]) == ["protocol"] and list(lines[1]) == ["metaData"]
    assert all(
        set(line) <= {"add", "remove", "cdf"} for line in lines[2:]
    )  # no historical metadata, no end action
    ts = commit_times_ms(root)
    got: dict[int, list[tuple[str, str]]] = {v: [] for v in range(1, 7)}
    for kind, f in file_actions(lines):
        assert f["timestamp"] == ts[f["version"]]
        assert f["id"] == hashlib.md5(log_path(f["url"]).encode(), usedforsecurity=False).hexdigest()
        assert "stats" not in f or kind == "add"
        got[f["version"]].append(({"cdf": "cdc"}.get(kind, kind), log_path(f["url"])))
    assert {v: sorted(x) for v, x in got.items()} == _kinds_by_version(root, 1, 6)
    # The metadata is the one in force at the end of the range, with its version.
    assert lines[1]["metaData"]["version"] == 6
    assert lines[1]["metaData"]["configuration"] == {"enableChangeDataFeed": "true"}


def test_delta_lines_and_historical_metadata(raw: Raw, history_tables: dict[str, str]) -> None:
    response = raw.changes("schema", {"startingVersion": 1, "includeHistoricalMetadata": "True"}, **DELTA_CDF)
    lines = ndjson(response)
    assert response.headers["delta-table-version"] == "1"
    assert "responseformat=delta" in response.headers["delta-sharing-capabilities"]
    assert "version" not in lines[0]["protocol"]  # only with includeHistoricalProtocol
    # The head metadata is the one at the start; the schema change of v2 follows as a historical line.
    metas = [line["metaData"] for line in lines if "metaData" in line]
    assert [m["version"] for m in metas] == [1, 2]
    assert (
        "extra" in metas[1]["deltaMetadata"]["schemaString"]
        and "extra" not in metas[0]["deltaMetadata"]["schemaString"]
    )
    ts = commit_times_ms(history_tables["schema"])
    for kind, f in file_actions(lines):
        assert kind in ("add", "remove", "cdc")
        assert f["timestamp"] == ts[f["version"]]
        assert f["id"] == hashlib.sha256(log_path(f["path"]).encode()).hexdigest()
    with_protocol = ndjson(
        raw.changes("schema", {"startingVersion": 1, "includeHistoricalProtocol": "true"}, **DELTA_CDF)
    )
    assert with_protocol[0]["protocol"]["version"] == 3  # the head (at the end, without historical metadata)
    assert not any("metaData" in line for line in with_protocol[2:])


def test_ending_timestamp_after_the_latest_commit_reads_to_the_latest(raw: Raw) -> None:
    lines = ndjson(raw.changes("cdf", {"startingVersion": 6, "endingTimestamp": "2999-01-01T00:00:00Z"}))
    assert {f["version"] for _, f in file_actions(lines)} == {6, 7}


def test_historical_metadata_not_sent_unless_asked(raw: Raw) -> None:
    for params in ({"startingVersion": 0}, {"startingVersion": 0, "includeHistoricalMetadata": "false"}):
        lines = ndjson(raw.changes("schema", params))
        assert not any("metaData" in line for line in lines[2:])
    lines = ndjson(raw.changes("schema", {"startingVersion": 0, "includeHistoricalMetadata": "TRUE"}))
    assert [line["metaData"]["version"] for line in lines if "metaData" in line] == [0, 2]


def test_fileidhash_on_changes(raw: Raw) -> None:
    response = raw.changes("cdf", {"startingVersion": 2, "endingVersion": 2}, fileidhash="DELTA")
    assert response.headers["fileidhash"] == "delta"
    for _, f in file_actions(ndjson(response)):
        assert f["id"] == hashlib.sha256(log_path(f["url"]).encode()).hexdigest()
    error_of(raw.changes("cdf", {"startingVersion": 2}, fileidhash="md5"))


# -- errors ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "No startingVersion or startingTimestamp provided for CDF read."),
        ({"endingVersion": 2}, "No startingVersion or startingTimestamp provided"),
        ({"startingVersion": 1, "startingTimestamp": "2020-01-01T00:00:00Z"}, "Multiple starting arguments"),
        # the combination is checked before either value (the reference server's order)
        ({"startingVersion": -1, "startingTimestamp": "abc"}, "Multiple starting arguments"),
        ({"startingVersion": 0, "endingVersion": "x", "endingTimestamp": "abc"}, "Multiple ending arguments"),
        (
            {"startingVersion": 1, "endingVersion": 2, "endingTimestamp": "2020-01-01T00:00:00Z"},
            "Multiple ending arguments",
        ),
        ({"startingVersion": "x1"}, "startingVersion is not a valid number."),
        ({"startingVersion": 0, "endingVersion": "2.5"}, "endingVersion is not a valid number."),
        ({"startingVersion": -1}, "startingVersion cannot be negative."),
        ({"startingTimestamp": "yesterday"}, "Invalid startingTimestamp: yesterday"),
        ({"startingVersion": 0, "endingTimestamp": "2026-13-01"}, "Invalid endingTimestamp"),
        (
            {"startingVersion": 3, "endingVersion": 2},
            "CDF range from start 3 to end 2 was invalid. End cannot be before start.",
        ),
        (
            {"startingVersion": 99},
            (
                "Provided Start version(99) for reading change data is invalid. Start version cannot "
                "be greater than the latest version of the table(7)."
            ),
        ),
        ({"startingTimestamp": "2999-01-01T00:00:00Z"}, "is after the latest version available"),
        (
            {"startingVersion": 0, "endingTimestamp": "2000-01-01T00:00:00+01:00"},
            "is before the earliest version available",
        ),
        ({"startingVersion": 0, "maxFiles": 0}, "maxFiles must be positive."),
        ({"startingVersion": 0, "maxFiles": "ten"}, "maxFiles is not a valid number."),
        (
            {"startingVersion": 0, "includeHistoricalMetadata": "yes"},
            "includeHistoricalMetadata must be a boolean",
        ),
        ({"startingVersion": 0, "pageToken": "garbage"}, "Error decoding the page token."),
    ],
)
def test_changes_parameter_errors(raw: Raw, params: dict, message: str) -> None:
    assert message in error_of(raw.changes("cdf", params))


def test_changes_need_history_sharing(raw: Raw) -> None:
    message = error_of(raw.changes("private", {"startingVersion": 0}))
    assert "hist.s.private" in message and "cdf is not enabled" in message


def test_changes_before_start_version_are_refused(raw: Raw, history_tables: dict[str, str]) -> None:
    assert (
        error_of(raw.changes("started", {"startingVersion": 1}))
        == "You can only query table changes since version 2."
    )
    # A starting timestamp that resolves before startVersion is refused too.
    ts = commit_times_ms(history_tables["cdf"])
    assert "since version 2" in error_of(raw.changes("started", {"startingTimestamp": iso(ts[1])}))
    assert ndjson(raw.changes("started", {"startingVersion": 2}))[1]["metaData"]["version"] == 7


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"startingVersion": 0}, 0),  # not enabled at the start
        ({"startingVersion": 1, "endingVersion": 3}, 1),
        ({"startingTimestamp": "2000-01-01T00:00:00Z"}, 0),
    ],
)
def test_cdf_not_recorded_for_part_of_the_range(raw: Raw, params: dict, bad: int) -> None:
    message = error_of(raw.changes("late", params))
    assert f"as change data was not recorded for version [{bad}]" in message


def test_cdf_disabled_within_the_range(raw: Raw) -> None:
    assert "recorded for version [2]" in error_of(raw.changes("off", {"startingVersion": 0}))
    assert len(file_actions(ndjson(raw.changes("off", {"startingVersion": 0, "endingVersion": 1})))) == 2
