"""Which `location` a recipient may ask temporary credentials for: only the table root or an auxiliary
location.

Table-driven: every crafted value below must be refused (403, or 400 when it is not a URL at all), and every
spelling of the root or the auxiliary location must resolve to that configured location, never to anything
else.
"""

from __future__ import annotations

import pytest

from lakegate.cloud.locations import Location
from lakegate.cloud.vending import authorize_location
from lakegate.exceptions import InvalidParameterError, PermissionDeniedError

ROOT = Location.parse("s3://bucket/tables/t1")
AUX = (Location.parse("s3a://archive/tables/t1/"),)

AZ_ROOT = Location.parse("abfss://data@acct.dfs.core.windows.net/tables/t1")
GS_ROOT = Location.parse("gs://gbucket/tables/t1")


@pytest.mark.parametrize(
    "requested",
    [
        None,
        "s3://bucket/tables/t1",
        "s3://bucket/tables/t1/",
        "s3://bucket/tables/t1//",
        "s3a://bucket/tables/t1",
        "s3n://bucket/tables/t1/",
        "S3://bucket/tables/t1",
        "s3://bucket//tables//t1",
        "s3://bucket/tables/t%31",  # %-escapes decode to the same key prefix
    ],
)
def test_root_spellings_resolve_to_the_root(requested: str | None) -> None:
    assert authorize_location(requested, ROOT, AUX) is ROOT


@pytest.mark.parametrize(
    "requested", ["s3://archive/tables/t1", "s3a://archive/tables/t1/", "s3n://archive/tables/t1"]
)
def test_auxiliary_location_resolves_to_itself(requested: str) -> None:
    assert authorize_location(requested, ROOT, AUX) is AUX[0]


FORBIDDEN_S3 = [
    # other tables, siblings, parents, children
    "s3://bucket/tables/t2",
    "s3://bucket/tables/t1_old",
    "s3://bucket/tables/t1-old/",
    "s3://bucket/tables/t1.bak",
    "s3://bucket/tables/t10",
    "s3://bucket/tables/t",
    "s3://bucket/tables",
    "s3://bucket/tables/",
    "s3://bucket/",
    "s3://bucket",
    "s3://bucket/tables/t1/_delta_log",
    "s3://bucket/tables/t1/part-0.parquet",
    "s3://bucket/TABLES/T1",
    # dot segments, plain and encoded
    "s3://bucket/tables/t1/..",
    "s3://bucket/tables/t1/../t2",
    "s3://bucket/tables/t1/../../",
    "s3://bucket/tables/./t1/..",
    "s3://bucket/tables/t1/%2e%2e",
    "s3://bucket/tables/t1/%2E%2E/t2",
    "s3://bucket/tables/t1%2f..%2ft2",
    "s3://bucket/tables/t1%2F%2E%2E",
    "s3://bucket/tables/t1/%252e%252e",
    "s3://bucket/tables/t1/..%2f",
    # IAM wildcards and policy-breaking characters
    "s3://bucket/tables/*",
    "s3://bucket/tables/t?",
    "s3://bucket/tables/t1*",
    "s3://bucket/*",
    "s3://bucket/tables/${aws:username}",
    's3://bucket/tables/t1"},{"Effect":"Allow","Action":"*","Resource":"*',
    # other buckets, schemes, hosts
    "s3://bucket2/tables/t1",
    "s3://BUCKET/tables/t1",
    "s3://archive/tables/t1/x",
    "s3://user@bucket/tables/t1",
    "s3://bucket:443/tables/t1",
    "s3://bucket.s3.amazonaws.com/tables/t1",
    "gs://bucket/tables/t1",
    "abfss://bucket@acct.dfs.core.windows.net/tables/t1",
    "https://bucket.s3.amazonaws.com/tables/t1",
    "http://bucket/tables/t1",
    "file:///bucket/tables/t1",
    "/bucket/tables/t1",
    "ftp://bucket/tables/t1",
    "hdfs://bucket/tables/t1",
    # query strings and fragments must not be ignored
    "s3://bucket/tables/t1?versionId=1",
    "s3://bucket/tables/t1#x",
    "s3://bucket/tables/t2?/tables/t1",
    "s3://bucket/tables/t2#/tables/t1",
    "s3:///tables/t1",
    "s3://",
]


@pytest.mark.parametrize("requested", FORBIDDEN_S3)
def test_crafted_s3_locations_are_denied(requested: str) -> None:
    with pytest.raises(PermissionDeniedError):
        authorize_location(requested, ROOT, AUX)


NOT_URLS: list[object] = [
    "",
    "   ",
    "tables/t1",
    "bucket/tables/t1",
    " s3://bucket/tables/t1",
    "s3://bucket/tables/t1 ",
    "s3://bucket/tables/t1\n",
    "s3://bucket/tables/\x00t1",
    "s3://bucket/ta bles/t1",
    "http://[::1",
    "s3://bucket/" + "a" * 5000,
    42,
    ["s3://bucket/tables/t1"],
    {"uri": "s3://bucket/tables/t1"},
    True,
]


@pytest.mark.parametrize("requested", NOT_URLS, ids=range(len(NOT_URLS)))
def test_values_that_are_not_urls_are_invalid(requested: object) -> None:
    with pytest.raises(InvalidParameterError):
        authorize_location(requested, ROOT, AUX)


@pytest.mark.parametrize(
    "requested",
    [
        "abfss://data@acct.dfs.core.windows.net/tables/t1",
        "abfs://data@acct.dfs.core.windows.net/tables/t1/",
        "wasbs://data@acct.blob.core.windows.net/tables/t1",
        "https://acct.blob.core.windows.net/data/tables/t1",
        "https://acct.dfs.core.windows.net/data/tables/t1/",
        "abfss://data@ACCT.dfs.core.windows.net/tables/t1",
    ],
)
def test_azure_spellings_resolve_to_the_root(requested: str) -> None:
    assert authorize_location(requested, AZ_ROOT, ()) is AZ_ROOT


@pytest.mark.parametrize(
    "requested",
    [
        "abfss://data@other.dfs.core.windows.net/tables/t1",
        "abfss://other@acct.dfs.core.windows.net/tables/t1",
        "abfss://DATA@acct.dfs.core.windows.net/tables/t1",
        "abfss://data@acct.dfs.core.windows.net/tables/t1_old",
        "abfss://data@acct.dfs.core.windows.net/tables",
        "abfss://data@acct.dfs.core.windows.net",
        "abfss://data@acct.dfs.evil.example/tables/t1",
        "abfss://data@acct.dfs.core.chinacloudapi.cn/tables/t1",
        "https://acct.blob.core.windows.net.evil.example/data/tables/t1",
        "https://evil.example/acct/data/tables/t1",
        "https://acct.blob.core.windows.net/data/tables/t1?sv=2020&sig=x",
        "https://acct.blob.core.windows.net/data/tables/t1/../t2",
        "wasbs://data@acct.queue.core.windows.net/tables/t1",
    ],
)
def test_crafted_azure_locations_are_denied(requested: str) -> None:
    with pytest.raises(PermissionDeniedError):
        authorize_location(requested, AZ_ROOT, ())


@pytest.mark.parametrize(
    "requested",
    [
        "gs://gbucket/tables/t1_old",
        "gs://gbucket/tables",
        "gs://gbucket2/tables/t1",
        "gs://gbucket/tables/t1/..",
        "gs://gbucket/tables/t1/x",
        "s3://gbucket/tables/t1",
        "https://storage.googleapis.com/gbucket/tables/t1",
    ],
)
def test_crafted_gcs_locations_are_denied(requested: str) -> None:
    with pytest.raises(PermissionDeniedError):
        authorize_location(requested, GS_ROOT, ())


def test_bucket_root_table_matches_only_the_bucket_root() -> None:
    root = Location.parse("gs://whole-bucket")
    assert authorize_location("gs://whole-bucket/", root, ()) is root
    for other in ("gs://whole-bucket/x", "gs://whole-bucket2", "gs://whole"):
        with pytest.raises(PermissionDeniedError):
            authorize_location(other, root, ())
