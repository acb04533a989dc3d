"""Tables and servers shared by the directory-access and recipient-client tests: built once per session
(buckets, containers and roles cannot be created twice), stopped when the session ends."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from deltalake import DeltaTable, write_deltalake

from tests.e2e.integration.azure_identity import FakeManagedIdentity
from tests.e2e.server import RunningServer, start_server
from tests.services.azurite import AzuriteService
from tests.services.rgw import Credentials, RgwService
from tests.tables import build_partitioned, build_plain, read_expected, rows


def vend(
    server: RunningServer, share: str, table: str, body: Any = None, token: str | None = None
) -> httpx.Response:
    """POST …/temporary-table-credentials of `share`.default.`table`; `body` goes as JSON, or as is when it
    is text or bytes."""
    kwargs: dict[str, Any] = {"headers": server.headers(token)}
    if body is not None:
        kwargs["content" if isinstance(body, (str, bytes)) else "json"] = body
    url = f"{server.endpoint}/shares/{share}/schemas/default/tables/{table}/temporary-table-credentials"
    return httpx.post(url, timeout=30, **kwargs)


# S3 (RGW): buckets of the broker, lakegate's identity.
DATA, ARCHIVE, NOVEND = "lakegate-dir", "lakegate-dir-archive", "lakegate-novend"
# Azure (Azurite): the account's Blob host as tables name it.
HOST = "devstoreaccount1.blob.core.windows.net"


# A server's environment without the test process's own AWS identity (it may not fall back to it).
NO_AWS_ENV = dict.fromkeys(
    (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ),
    "",
)


def not_denied(calls: dict[str, Callable[[], object]]) -> list[str]:
    """The S3 calls the store did not refuse with AccessDenied, each with what happened instead (an empty list:
    all refused)."""
    from botocore.exceptions import ClientError

    outcomes = {}
    for what, call in calls.items():
        try:
            call()
        except ClientError as exc:
            outcomes[what] = str(exc.response["Error"]["Code"])
        else:
            outcomes[what] = "allowed"
    return [f"{what}: {outcome}" for what, outcome in outcomes.items() if outcome != "AccessDenied"]


def _env(rgw: RgwService, creds: Credentials) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(rgw.env(creds))  # deltalake (object_store) reads the standard AWS variables
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def s3_dir_tables(rgw: RgwService) -> dict[str, Any]:
    """Buckets and tables of the broker (lakegate's identity: it reads the logs and assumes the role).

    Not the owner's buckets opened to the broker by a bucket policy: RGW matches a role session against a
    bucket policy naming the user who assumed the role, which would let the session bypass its session policy.
    """
    s3 = rgw.boto3_client("s3", rgw.broker)
    for bucket in (DATA, ARCHIVE, NOVEND):
        s3.create_bucket(Bucket=bucket)
    env = _env(rgw, rgw.broker)
    next(env)
    try:
        t1 = build_partitioned(f"s3://{DATA}/tables/t1")
        build_plain(f"s3://{DATA}/tables/t1_old")
        t2 = build_plain(f"s3://{DATA}/tables/t2", batches=2)
        build_plain(f"s3://{NOVEND}/tables/t3")
        expected, expected_t2 = read_expected(t1), read_expected(t2)
        cdf_rows = DeltaTable(t1).load_cdf(starting_version=0).read_all().num_rows
    finally:
        next(env, None)
    s3.put_object(Bucket=ARCHIVE, Key="tables/t1/part-archived.parquet", Body=b"archived")
    s3.put_object(Bucket=ARCHIVE, Key="tables/t1_old/other.parquet", Body=b"other")
    role = rgw.create_role(
        "lakegate-dir-reader",
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]}]},
    )
    return {"expected": expected, "expected_t2": expected_t2, "cdf_rows": cdf_rows, "role": role}


def aws_entry(rgw: RgwService, creds: Credentials, role: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "endpoint": rgw.endpoint,
        "region": rgw.region,
        "pathStyle": True,
        "accessKeyId": creds.access_key_id,
        "secretAccessKey": creds.secret_access_key,
    }
    if role:
        out.update(roleArn=role, stsEndpoint=rgw.endpoint, durationSeconds=900, sessionName="lakegate-test")
    return out


@pytest.fixture(scope="session")
def dir_server(
    rgw: RgwService, s3_dir_tables: dict, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    role = s3_dir_tables["role"]
    config = {
        "shares": [
            {
                "name": "s3share",
                "schemas": [
                    {
                        "name": "default",
                        "tables": [
                            {
                                "name": "t1",
                                "location": f"s3a://{DATA}/tables/t1",
                                "historyShared": True,
                                "auxiliaryLocations": [f"s3://{ARCHIVE}/tables/t1"],
                            },
                            {"name": "t2", "location": f"s3://{DATA}/tables/t2/", "historyShared": True},
                            {"name": "t1_nohistory", "location": f"s3://{DATA}/tables/t1"},
                            {"name": "t3", "location": f"s3://{NOVEND}/tables/t3", "historyShared": True},
                        ],
                    }
                ],
            }
        ],
        "storage": [
            {"location": f"s3://{DATA}/", "aws": aws_entry(rgw, rgw.broker, role)},
            {"location": f"s3a://{DATA}/", "aws": aws_entry(rgw, rgw.broker, role)},
            {"location": f"s3://{ARCHIVE}/", "aws": aws_entry(rgw, rgw.broker, role)},
            {"location": f"s3://{NOVEND}/", "aws": aws_entry(rgw, rgw.broker)},
        ],
    }
    server = start_server(tmp_path_factory.mktemp("s3dir"), config, env=NO_AWS_ENV)
    yield server
    server.stop()


def owner_options(azurite: AzuriteService) -> dict[str, str]:
    return {
        "account_name": azurite.account_name,
        "account_key": azurite.account_key,
        "azure_storage_endpoint": azurite.blob_endpoint,
        "allow_invalid_certificates": "true",
    }


def sas_options(azurite: AzuriteService, sas: str) -> dict[str, str]:
    return {
        "account_name": azurite.account_name,
        "sas_token": sas,
        "azure_storage_endpoint": azurite.blob_endpoint,
        "allow_invalid_certificates": "true",
    }


@pytest.fixture(scope="session")
def azure_tables(azurite: AzuriteService) -> dict[str, Any]:
    """t1 and t2 at the root of their containers, t3 in a sub-directory of a third; two versions each."""
    options = owner_options(azurite)
    expected = {}
    for name, container, uri in (
        ("t1", "dir-sales", "az://dir-sales"),
        ("t2", "dir-other", "az://dir-other"),
        ("t3", "dir-flat", "az://dir-flat/tables/t3"),
    ):
        azurite.create_container(container)
        write_deltalake(
            uri,
            rows([1, 2, 3, 4]),
            storage_options=options,
            configuration={"delta.enableChangeDataFeed": "true"},
        )
        # Two versions only: deltalake 1.6 fails to commit a third on Azurite ("Invalid table version: 1").
        write_deltalake(uri, rows([5, 6, 7]), mode="append", storage_options=options)
        expected[name] = sorted(
            DeltaTable(uri, storage_options=options).to_pyarrow_table().to_pylist(), key=lambda r: r["id"]
        )
    return expected


@pytest.fixture(scope="session")
def az_identity(azurite: AzuriteService) -> Iterator[FakeManagedIdentity]:
    fake = FakeManagedIdentity(azurite.token_credential())
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def az_server(
    azurite: AzuriteService,
    azure_tables: dict,
    az_identity: FakeManagedIdentity,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    config = {
        "shares": [
            {
                "name": "azshare",
                "schemas": [
                    {
                        "name": "default",
                        "tables": [
                            {"name": "t1", "location": f"wasbs://dir-sales@{HOST}", "historyShared": True},
                            {"name": "t2", "location": f"wasbs://dir-other@{HOST}/", "historyShared": True},
                            {
                                "name": "t3",
                                "location": f"wasbs://dir-flat@{HOST}/tables/t3",
                                "historyShared": True,
                            },
                        ],
                    }
                ],
            }
        ],
        "storage": [
            {
                "location": "wasbs://",
                "azure": {
                    "endpoint": azurite.blob_endpoint,
                    "managedIdentity": True,
                    "caBundle": str(azurite.cert_path),
                    "directoryAccess": True,
                },
            }
        ],
    }
    server = start_server(tmp_path_factory.mktemp("azdir"), config, env=az_identity.env)
    yield server
    server.stop()
