"""PyIceberg reads a shared table on a real S3 + STS (Ceph RGW) with the credentials the Iceberg catalog vends,
and the store itself refuses those credentials for anything but that table's locations and its generated
metadata: another table's data or metadata in the same bucket, and every write.

The role's own policy allows every S3 action on everything, so each refusal comes from lakegate's session
policy and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pyiceberg.catalog import load_catalog
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.table import Table

from tests.e2e.integration.conftest import ARCHIVE, DATA, NO_AWS_ENV, aws_entry, not_denied
from tests.e2e.server import RunningServer, start_server
from tests.services.rgw import Credentials, RgwService

pytestmark = pytest.mark.rgw

META = "iceberg-metadata"  # lakegate writes every table's generated metadata below s3://DATA/META/


@pytest.fixture(scope="module")
def iceberg_server(
    rgw: RgwService, s3_dir_tables: dict, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    tables = [
        {
            "name": "t1",
            "location": f"s3a://{DATA}/tables/t1",
            "historyShared": True,
            "auxiliaryLocations": [f"s3://{ARCHIVE}/tables/t1"],
        },
        {"name": "t2", "location": f"s3://{DATA}/tables/t2/", "historyShared": True},
        {"name": "t1_nohistory", "location": f"s3://{DATA}/tables/t1"},
    ]
    iceberg = {"metadataLocation": f"s3://{DATA}/{META}/"}
    aws = aws_entry(rgw, rgw.broker, s3_dir_tables["role"])
    config = {
        "shares": [{"name": "s3share", "schemas": [{"name": "default", "tables": tables}]}],
        "storage": [
            {"location": f"s3://{DATA}/", "aws": aws, "iceberg": iceberg},
            {"location": f"s3a://{DATA}/", "aws": aws, "iceberg": iceberg},
            {"location": f"s3://{ARCHIVE}/", "aws": aws},
        ],
    }
    server = start_server(tmp_path_factory.mktemp("iceberg-s3"), config, env=NO_AWS_ENV)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lake(iceberg_server: RunningServer) -> RestCatalog:
    catalog = load_catalog(
        "s3share",
        type="rest",
        uri=f"{iceberg_server.endpoint}/iceberg",
        warehouse="s3share",
        token=iceberg_server.token,
    )
    assert isinstance(catalog, RestCatalog)
    return catalog


def scanned(table: Table) -> list[dict[str, Any]]:
    """Batch by batch (see tests/e2e/test_iceberg.py: PyIceberg 0.12's to_arrow cannot merge string kinds)."""
    rows = (row for batch in table.scan().to_arrow_batch_reader() for row in batch.to_pylist())
    return sorted(rows, key=lambda r: r["id"])


def vended(table: Table) -> Credentials:
    props = table.io.properties
    return Credentials(props["s3.access-key-id"], props["s3.secret-access-key"], props["s3.session-token"])


def key_of(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    return parts.netloc, parts.path.lstrip("/")


def test_vended_credentials_read_the_table_and_its_metadata(
    rgw: RgwService, s3_dir_tables: dict, lake: RestCatalog
) -> None:
    table = lake.load_table("default.t1")
    props = table.io.properties
    assert props["s3.endpoint"] == rgw.endpoint and props["s3.path-style-access"] == "true"
    assert table.metadata_location.startswith(f"s3://{DATA}/{META}/")
    assert scanned(table) == s3_dir_tables["expected"]
    s3 = rgw.boto3_client("s3", vended(table))
    bucket, key = key_of(table.metadata_location)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read().startswith(b"{")


def test_load_credentials_gives_the_same_scope(rgw: RgwService, lake: RestCatalog) -> None:
    table = lake.load_table("default.t1")
    refreshed = lake.load_credentials("default.t1", table.metadata_location)
    s3 = rgw.boto3_client(
        "s3",
        Credentials(
            refreshed["s3.access-key-id"], refreshed["s3.secret-access-key"], refreshed["s3.session-token"]
        ),
    )
    bucket, key = key_of(table.metadata_location)
    assert s3.get_object(Bucket=bucket, Key=key)["ContentLength"] > 0


def test_each_credential_names_the_locations_it_covers(
    lake: RestCatalog, iceberg_server: RunningServer
) -> None:
    """Prefixes spelled as the files are (the root as configured, s3a://), one credential for all three."""
    table = lake.load_table("default.t1")
    url = f"{iceberg_server.endpoint}/iceberg/v1/s3share/namespaces/default/tables/t1/credentials"
    answer = httpx.get(url, headers=iceberg_server.headers(), timeout=30)
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    storage = answer.json()["storage-credentials"]
    metadata_dir = table.metadata_location.rsplit("/metadata/", 1)[0] + "/"
    assert [c["prefix"] for c in storage] == [
        f"s3a://{DATA}/tables/t1/",
        f"s3://{ARCHIVE}/tables/t1/",
        metadata_dir,
    ]
    assert len({c["config"]["s3.session-token"] for c in storage}) == 1


def test_the_store_refuses_them_for_anything_else(
    rgw: RgwService, s3_dir_tables: dict, lake: RestCatalog
) -> None:
    t1, t2 = lake.load_table("default.t1"), lake.load_table("default.t2")
    assert scanned(t2) == s3_dir_tables["expected_t2"]
    s3 = rgw.boto3_client("s3", vended(t1))
    broker = rgw.boto3_client("s3", rgw.broker)
    _, t1_metadata = key_of(t1.metadata_location)
    t1_prefix = t1_metadata.rsplit("/metadata/", 1)[0]
    _, t2_metadata = key_of(t2.metadata_location)
    t2_data = broker.list_objects_v2(Bucket=DATA, Prefix="tables/t2/")["Contents"][0]["Key"]
    refused: dict[str, Callable[[], object]] = {
        "another table's data": lambda: s3.get_object(Bucket=DATA, Key=t2_data),
        "another table's metadata": lambda: s3.get_object(Bucket=DATA, Key=t2_metadata),
        "list another table's metadata": lambda: s3.list_objects_v2(Bucket=DATA, Prefix=t2_metadata),
        "list every table's metadata": lambda: s3.list_objects_v2(Bucket=DATA, Prefix=f"{META}/"),
        "write into the table": lambda: s3.put_object(Bucket=DATA, Key="tables/t1/evil.parquet", Body=b"x"),
        "write into its metadata": lambda: s3.put_object(
            Bucket=DATA, Key=f"{t1_prefix}/metadata/evil.json", Body=b"{}"
        ),
        "overwrite its metadata": lambda: s3.put_object(Bucket=DATA, Key=t1_metadata, Body=b"{}"),
        "delete its metadata": lambda: s3.delete_object(Bucket=DATA, Key=t1_metadata),
    }
    assert not_denied(refused) == []
    assert broker.get_object(Bucket=DATA, Key=t1_metadata)["ContentLength"] > 2  # untouched


def test_a_table_without_directory_access_gets_no_credentials(lake: RestCatalog) -> None:
    """Without historyShared a credential would read versions the share hides: loadTable answers the metadata
    without credentials (the client may have its own), loadCredentials says why there are none."""
    from pyiceberg.exceptions import BadRequestError

    table = lake.load_table("default.t1_nohistory")
    assert "s3.access-key-id" not in table.io.properties
    with pytest.raises(BadRequestError, match="history sharing"):
        lake.load_credentials("default.t1_nohistory", table.metadata_location)
