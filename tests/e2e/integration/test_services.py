"""The test services really enforce what lakegate's credential vending relies on (no mocks)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.services.azurite import AzuriteService
from tests.services.postgres import PostgresService
from tests.services.rgw import Credentials, RgwService

BUCKET = "svc-check"


def _s3_error(exc_info: pytest.ExceptionInfo[Any]) -> str:
    return str(exc_info.value.response["Error"]["Code"])


@pytest.fixture(scope="module")
def rgw_tables(rgw: RgwService) -> str:
    """A bucket holding two "tables" and a role whose own policy allows every S3 action; its ARN."""
    rgw.create_bucket(BUCKET)
    s3 = rgw.boto3_client("s3", rgw.owner)
    for table in ("t1", "t2"):
        s3.put_object(Bucket=BUCKET, Key=f"tables/{table}/part-0.parquet", Body=f"data of {table}".encode())
    # The role allows everything, so every refusal below comes from the session policy.
    return rgw.create_role(
        "svc-check-role",
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]}]},
    )


def _t1_only_policy() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{BUCKET}/tables/t1/*"],
            },
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{BUCKET}"],
                "Condition": {"StringLike": {"s3:prefix": ["tables/t1", "tables/t1/", "tables/t1/*"]}},
            },
        ],
    }


@pytest.mark.rgw
def test_rgw_role_without_session_policy_reaches_everything(rgw: RgwService, rgw_tables: str) -> None:
    s3 = rgw.boto3_client("s3", rgw.assume_role(rgw_tables))
    assert s3.get_object(Bucket=BUCKET, Key="tables/t2/part-0.parquet")["Body"].read() == b"data of t2"
    s3.put_object(Bucket=BUCKET, Key="tables/t2/extra", Body=b"x")


@pytest.mark.rgw
def test_rgw_session_policy_scopes_assumed_role(rgw: RgwService, rgw_tables: str) -> None:
    before = datetime.now(UTC)
    creds = rgw.assume_role(rgw_tables, _t1_only_policy(), duration_seconds=900)
    assert creds.session_token
    assert creds.expiration is not None
    assert before + timedelta(seconds=890) <= creds.expiration <= before + timedelta(seconds=960)

    s3 = rgw.boto3_client("s3", creds)
    assert s3.get_object(Bucket=BUCKET, Key="tables/t1/part-0.parquet")["Body"].read() == b"data of t1"
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="tables/t1/")
    assert [o["Key"] for o in listed["Contents"]] == ["tables/t1/part-0.parquet"]

    from botocore.exceptions import ClientError

    refused: list[Callable[[], object]] = [
        lambda: s3.get_object(Bucket=BUCKET, Key="tables/t2/part-0.parquet"),
        lambda: s3.list_objects_v2(Bucket=BUCKET, Prefix="tables/t2/"),
        lambda: s3.put_object(Bucket=BUCKET, Key="tables/t1/new", Body=b"x"),
        lambda: s3.put_object(Bucket=BUCKET, Key="tables/t2/new", Body=b"x"),
        lambda: s3.delete_object(Bucket=BUCKET, Key="tables/t1/part-0.parquet"),
    ]
    for call in refused:
        with pytest.raises(ClientError) as exc_info:
            call()
        assert _s3_error(exc_info) == "AccessDenied"


@pytest.mark.rgw
def test_rgw_credentials_expire(rgw: RgwService, rgw_tables: str) -> None:
    from botocore.exceptions import ClientError

    creds = rgw.assume_role(rgw_tables, _t1_only_policy(), duration_seconds=2)
    assert creds.expiration is not None
    s3 = rgw.boto3_client("s3", creds)
    s3.get_object(Bucket=BUCKET, Key="tables/t1/part-0.parquet")
    time.sleep(max(0.0, (creds.expiration - datetime.now(UTC)).total_seconds()) + 1.5)
    with pytest.raises(ClientError) as exc_info:
        s3.get_object(Bucket=BUCKET, Key="tables/t1/part-0.parquet")
    assert _s3_error(exc_info) == "AccessDenied"


@pytest.mark.rgw
def test_rgw_rejects_a_forged_session_token(rgw: RgwService, rgw_tables: str) -> None:
    from botocore.exceptions import ClientError

    creds = rgw.assume_role(rgw_tables, _t1_only_policy())
    assert creds.session_token
    forged = Credentials(creds.access_key_id, creds.secret_access_key, creds.session_token[:-8] + "AAAAAAAA")
    with pytest.raises(ClientError):
        rgw.boto3_client("s3", forged).get_object(Bucket=BUCKET, Key="tables/t1/part-0.parquet")


@pytest.mark.rgw
def test_rgw_env_describes_the_endpoint(rgw: RgwService) -> None:
    env = rgw.env(rgw.owner)
    assert env["AWS_ENDPOINT_URL"] == rgw.endpoint
    assert env["AWS_ACCESS_KEY_ID"] == rgw.owner.access_key_id
    assert env["AWS_REGION"] == rgw.region == "us-east-1"
    assert "AWS_SESSION_TOKEN" not in env


@pytest.mark.azurite
def test_azurite_user_delegation_sas_is_scoped_to_its_container(azurite: AzuriteService) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import ContainerClient, ContainerSasPermissions, generate_container_sas

    owner = azurite.blob_service_client()
    for name in ("svc-shared", "svc-other"):
        owner.create_container(name)
        owner.get_container_client(name).upload_blob("tables/t1/part-0.parquet", f"data in {name}".encode())

    now = datetime.now(UTC)
    # The user delegation key needs a bearer token (Entra ID); the account key cannot fetch one.
    key = azurite.blob_service_client(azurite.token_credential()).get_user_delegation_key(
        now - timedelta(minutes=1), now + timedelta(hours=1)
    )
    sas = generate_container_sas(
        azurite.account_name,
        "svc-shared",
        user_delegation_key=key,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=now + timedelta(hours=1),
    )
    assert "sr=c" in sas and "skoid=" in sas

    def client(container: str) -> ContainerClient:
        return ContainerClient(
            azurite.blob_endpoint, container, credential=sas, connection_verify=str(azurite.cert_path)
        )

    shared = client("svc-shared")
    assert [b.name for b in shared.list_blobs()] == ["tables/t1/part-0.parquet"]
    assert shared.download_blob("tables/t1/part-0.parquet").readall() == b"data in svc-shared"

    refused: list[Callable[[], object]] = [
        lambda: shared.upload_blob("tables/t1/new", b"x"),
        lambda: shared.delete_blob("tables/t1/part-0.parquet"),
        lambda: client("svc-other").download_blob("tables/t1/part-0.parquet").readall(),
        lambda: list(client("svc-other").list_blobs()),
    ]
    for call in refused:
        with pytest.raises(HttpResponseError) as exc_info:
            call()
        assert exc_info.value.status_code == 403


@pytest.mark.postgres
def test_postgres_runs_queries_through_sqlalchemy(postgres: PostgresService) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(postgres.create_database("svc_check"))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (id int PRIMARY KEY, name text)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1, 'a'), (2, 'b')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == "svc_check"
            assert conn.execute(sa.text("SELECT string_agg(name, ',' ORDER BY id) FROM t")).scalar() == "a,b"
    finally:
        engine.dispose()
    assert postgres.url.startswith("postgresql+psycopg://") and postgres.url.endswith("/lakegate")
