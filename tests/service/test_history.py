"""Change data feed and streaming queries (protocol.md §2.6, §2.8, §2.9) in process, against deltalake's
own change data feed and the commits as written in `_delta_log/`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from tests.history_tables import cdf_rows, cdf_sort_key, commit_actions, commit_times_ms
from tests.inprocess import AppClient, error_of, ndjson, read_served, served_path

CDF = "/shares/share1/schemas/default/tables/cdf"


def changes(app: AppClient, params: dict[str, Any]) -> list[dict]:
    return ndjson(app.get(f"{CDF}/changes", params=params))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _data_changes(root: str, version: int) -> dict[str, set[str]]:
    """Per the Delta protocol's change data rule: a commit's `cdc` files when it has any, else its add and
    remove actions that change data (an optimize changes none)."""
    actions = commit_actions(root, version)
    cdc = {a["cdc"]["path"] for a in actions if "cdc" in a}
    if cdc:
        return {"cdf": cdc}
    out: dict[str, set[str]] = {}
    for kind in ("add", "remove"):
        paths = {a[kind]["path"] for a in actions if kind in a and a[kind].get("dataChange", True)}
        if paths:
            out[kind] = paths
    return out


def test_change_files_follow_the_log(app: AppClient, app_tables: dict[str, str]) -> None:
    root = app_tables["cdf"]
    latest = DeltaTable(root).version()
    times = commit_times_ms(root)
    got: dict[int, dict[str, set[str]]] = {}
    for line in changes(app, {"startingVersion": 0}):
        ((kind, action),) = line.items()
        if kind in ("add", "remove", "cdf"):
            assert action["timestamp"] == times[action["version"]]
            got.setdefault(action["version"], {}).setdefault(kind, set()).add(served_path(action["url"]))
    expected = {v: c for v in range(latest + 1) if (c := _data_changes(root, v))}
    assert got == expected


def test_change_rows_are_deltalakes(app: AppClient, app_tables: dict[str, str]) -> None:
    """Reading the served files as the protocol says (add = insert, remove = delete, cdf files carry their
    `_change_type`) gives deltalake's change data feed, row for row."""
    root = app_tables["cdf"]
    got = []
    for line in changes(app, {"startingVersion": 1, "endingVersion": 6}):
        ((kind, action),) = line.items()
        if kind not in ("add", "remove", "cdf"):
            continue
        data = read_served(app, action["url"])
        for column, value in action["partitionValues"].items():
            data = data.append_column(column, pa.array([value] * data.num_rows, pa.string()))
        for row in data.to_pylist():
            if kind != "cdf":
                row["_change_type"] = "insert" if kind == "add" else "delete"
            row["_commit_version"], row["_commit_timestamp"] = action["version"], action["timestamp"]
            got.append(row)
    expected = cdf_rows(root, starting_version=1, ending_version=6)
    columns = ["id", "region", "amount", "note", "_change_type", "_commit_version", "_commit_timestamp"]
    assert [{c: r[c] for c in columns} for r in sorted(got, key=cdf_sort_key)] == [
        {c: r[c] for c in columns} for r in expected
    ]


def test_streaming_query_lists_each_versions_adds(app: AppClient, app_tables: dict[str, str]) -> None:
    root = app_tables["cdf"]
    lines = ndjson(app.post(f"{CDF}/query", json={"startingVersion": 5}))
    got: dict[int, set[str]] = {}
    for line in lines:
        if "add" in line:
            got.setdefault(line["add"]["version"], set()).add(served_path(line["add"]["url"]))
    latest = DeltaTable(root).version()
    expected = {
        v: paths
        for v in range(5, latest + 1)
        if (
            paths := {
                a["add"]["path"] for a in commit_actions(root, v) if "add" in a and a["add"]["dataChange"]
            }
        )
    }
    assert got == expected


def test_version_at_a_timestamp(app: AppClient, app_tables: dict[str, str]) -> None:
    times = commit_times_ms(app_tables["cdf"])
    # Between the commits of v2 and v3: the first version at or after it is 3 (protocol.md §2.6).
    response = app.get(f"{CDF}/version", params={"startingTimestamp": _iso(times[2] + 1)})
    assert response.status_code == 200, response.text
    assert response.headers["delta-table-version"] == "3"
    before = app.get(f"{CDF}/version", params={"startingTimestamp": _iso(times[0] - 60_000)})
    assert before.headers["delta-table-version"] == "0"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "No startingVersion or startingTimestamp provided for CDF read."),
        ({"startingVersion": 0, "startingTimestamp": "2026-01-01T00:00:00Z"}, "Multiple starting arguments"),
        ({"startingVersion": "x"}, "startingVersion is not a valid number."),
        ({"startingVersion": 2, "endingVersion": 1}, "End cannot be before start."),
        ({"startingVersion": 99}, "Start version cannot be greater than the latest version"),
        ({"startingVersion": 0, "maxFiles": 0}, "maxFiles must be positive."),
        ({"startingTimestamp": "yesterday"}, "Invalid startingTimestamp: yesterday"),
    ],
)
def test_bad_change_requests_are_400(app: AppClient, params: dict[str, Any], fragment: str) -> None:
    assert fragment in error_of(app.get(f"{CDF}/changes", params=params), 400, "INVALID_PARAMETER_VALUE")


def test_changes_need_shared_history(app: AppClient) -> None:
    response = app.get("/shares/share1/schemas/default/tables/plain/changes", params={"startingVersion": 0})
    assert "cdf is not enabled on table" in error_of(response, 400, "INVALID_PARAMETER_VALUE")
