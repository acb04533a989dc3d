"""Behaviours measured against the delta-io reference server where lakegate used to differ (issue 8, points 1,
3, 4 and 5); docs/protocol-notes.md says why each one is as it is."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from tests.e2e.history_fixtures import Raw, error_of, file_actions, log_path, ndjson
from tests.history_tables import commit_times_ms

CAPS = "delta-sharing-capabilities"


def _files(response: httpx.Response) -> list[str]:
    return sorted(log_path(f["url"]) for _, f in file_actions(ndjson(response)))


@pytest.mark.parametrize(
    "call",
    [
        lambda raw, h: raw.query("cdf", {"maxFiles": 2}, **h),
        lambda raw, h: raw.query("cdf", {"includeRefreshToken": True}, **h),
        lambda raw, h: raw.query("cdf", {"startingVersion": 1, "maxFiles": 2}, **h),
        lambda raw, h: raw.changes("cdf", {"startingVersion": 1, "maxFiles": 2}, **h),
    ],
    ids=["maxFiles", "includeRefreshToken", "streaming-maxFiles", "changes-maxFiles"],
)
def test_capabilities_header_confirms_only_what_was_asked(raw: Raw, call) -> None:
    # maxFiles and includeRefreshToken bring an EndStreamAction, but the client did not ask for the capability
    response = call(raw, {CAPS: "responseformat=parquet"})
    assert response.status_code == 200
    assert "endStreamAction" in ndjson(response)[-1]
    assert response.headers[CAPS] == "responseformat=parquet"
    asked = call(raw, {CAPS: "responseformat=parquet;includeendstreamaction=true"})
    assert asked.headers[CAPS] == "responseformat=parquet;includeendstreamaction=true"
    assert "endStreamAction" in ndjson(asked)[-1]


@pytest.mark.parametrize("body", [b"", b"  \n"], ids=["empty", "blank"])
def test_empty_query_body_is_malformed(raw: Raw, body: bytes) -> None:
    response = raw.http.post(raw.table("cdf") + "/query", content=body)
    assert "request body is empty" in error_of(response, code="MALFORMED_REQUEST")
    assert raw.http.post(raw.table("cdf") + "/query", content=b"{}").status_code == 200


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"version": -1, "timestamp": "abc"}, "Please only provide one of: version,timestamp"),
        ({"version": "x", "timestamp": "abc"}, "Please only provide one of: version,timestamp"),
        ({"version": -1}, "table version cannot be negative."),
    ],
)
def test_metadata_checks_the_combination_before_the_values(raw: Raw, params: dict, message: str) -> None:
    assert error_of(raw.get("cdf/metadata", params)) == message


def test_ending_version_is_ignored_outside_streaming_queries(
    raw: Raw, history_tables: dict[str, str]
) -> None:
    # The reference server reads endingVersion only with startingVersion; a snapshot query ignores it.
    at = datetime.fromtimestamp(commit_times_ms(history_tables["cdf"])[3] / 1000, UTC).isoformat()
    for body in ({"timestamp": at}, {"version": 3}, {}):
        plain = raw.query("cdf", body)
        for ending in (1, 6, -1):
            bounded = raw.query("cdf", {**body, "endingVersion": ending})
            assert bounded.status_code == 200, bounded.text
            assert bounded.headers["delta-table-version"] == plain.headers["delta-table-version"]
            assert _files(bounded) == _files(plain)
    assert raw.query("cdf", {"timestamp": at}).headers["delta-table-version"] == "3"
