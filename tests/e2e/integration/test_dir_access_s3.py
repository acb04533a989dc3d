"""Directory access on a real S3 + STS (Ceph RGW enforces the role, the inline session policy, its s3:prefix
conditions and expiry): lakegate vends credentials with sts:AssumeRole, and the store itself refuses them for
anything but the table they were vended for.

The role's own policy allows every S3 action on everything, so each refusal below comes from lakegate's
session policy and nothing else.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError

from tests.e2e.integration.conftest import ARCHIVE, DATA, NOVEND, not_denied, vend
from tests.e2e.server import RunningServer
from tests.services.rgw import Credentials, RgwService
from tests.tables import rows

pytestmark = pytest.mark.rgw

# RGW's refusal as deltalake passes it on (not a network or DNS failure).
S3_DENIED = r"(?s)403 Forbidden.*<Code>AccessDenied</Code>"
TABLES = "/shares/s3share/schemas/default/tables"


def _vend(server: RunningServer, table: str, body: Any = None, token: str | None = None) -> httpx.Response:
    return vend(server, "s3share", table, body, token)


def _creds(answer: dict) -> Credentials:
    aws = answer["credentials"]["awsTempCredentials"]
    return Credentials(aws["accessKeyId"], aws["secretAccessKey"], aws["sessionToken"])


def _storage_options(rgw: RgwService, creds: Credentials) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "AWS_SESSION_TOKEN": creds.session_token or "",
        "AWS_ENDPOINT_URL": rgw.endpoint,
        "AWS_REGION": rgw.region,
        "AWS_ALLOW_HTTP": "true",
    }


def test_vended_credentials_read_the_table_completely(
    rgw: RgwService, s3_dir_tables: dict, dir_server: RunningServer
) -> None:
    before_ms = time.time() * 1000
    response = _vend(dir_server, "t1")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    answer = response.json()
    assert set(answer) == {"credentials"}
    assert set(answer["credentials"]) == {"location", "awsTempCredentials", "expirationTime"}
    assert answer["credentials"]["location"] == f"s3a://{DATA}/tables/t1"
    # STS's own expiry for the configured 900 s session, in epoch milliseconds.
    assert before_ms + 880_000 <= answer["credentials"]["expirationTime"] <= before_ms + 960_000

    table = DeltaTable(f"s3://{DATA}/tables/t1", storage_options=_storage_options(rgw, _creds(answer)))
    assert sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: r["id"]) == s3_dir_tables["expected"]
    assert table.load_cdf(starting_version=0).read_all().num_rows == s3_dir_tables["cdf_rows"]
    for version in range(table.version() + 1):  # every version: the whole history is readable
        DeltaTable(
            f"s3://{DATA}/tables/t1", version=version, storage_options=_storage_options(rgw, _creds(answer))
        ).to_pyarrow_table()


def test_the_store_refuses_them_for_anything_else(
    rgw: RgwService, s3_dir_tables: dict, dir_server: RunningServer
) -> None:
    creds = _creds(_vend(dir_server, "t1").json())
    s3 = rgw.boto3_client("s3", creds)
    assert s3.list_objects_v2(Bucket=DATA, Prefix="tables/t1/_delta_log/")["KeyCount"] > 0
    refused = {
        "other table": lambda: s3.get_object(Bucket=DATA, Key=_first_key(rgw, "tables/t2/")),
        "list other table": lambda: s3.list_objects_v2(Bucket=DATA, Prefix="tables/t2/"),
        "sibling prefix": lambda: s3.get_object(Bucket=DATA, Key=_first_key(rgw, "tables/t1_old/")),
        "list sibling": lambda: s3.list_objects_v2(Bucket=DATA, Prefix="tables/t1_old/"),
        "list sibling, no slash": lambda: s3.list_objects_v2(Bucket=DATA, Prefix="tables/t1_"),
        "list parent": lambda: s3.list_objects_v2(Bucket=DATA, Prefix="tables/"),
        "list bucket": lambda: s3.list_objects_v2(Bucket=DATA),
        "other bucket": lambda: s3.get_object(Bucket=NOVEND, Key=_first_key(rgw, "tables/t3/", NOVEND)),
        "auxiliary bucket (not asked for)": lambda: s3.get_object(
            Bucket=ARCHIVE, Key="tables/t1/part-archived.parquet"
        ),
        "write into the table": lambda: s3.put_object(Bucket=DATA, Key="tables/t1/evil.parquet", Body=b"x"),
        "write elsewhere": lambda: s3.put_object(Bucket=DATA, Key="tables/t2/evil.parquet", Body=b"x"),
        "delete": lambda: s3.delete_object(Bucket=DATA, Key=_first_key(rgw, "tables/t1/_delta_log/")),
        "overwrite the log": lambda: s3.put_object(
            Bucket=DATA, Key="tables/t1/_delta_log/99.json", Body=b"{}"
        ),
        "create bucket": lambda: s3.create_bucket(Bucket="lakegate-dir-new"),
    }
    assert not_denied(refused) == []

    # deltalake reports the store's refusal in its message: listing a log is an OSError, a write a DeltaError.
    options = _storage_options(rgw, creds)
    with pytest.raises(OSError, match=S3_DENIED):
        DeltaTable(f"s3://{DATA}/tables/t2", storage_options=options).to_pyarrow_table()
    with pytest.raises(OSError, match=S3_DENIED):
        DeltaTable(f"s3://{DATA}/tables/t1_old", storage_options=options).to_pyarrow_table()
    with pytest.raises(DeltaError, match=S3_DENIED):
        write_deltalake(f"s3://{DATA}/tables/t1", rows([99]), mode="append", storage_options=options)
    with pytest.raises(OSError, match=S3_DENIED):
        write_deltalake(f"s3://{DATA}/tables/t_new", rows([99]), storage_options=options)


def _first_key(rgw: RgwService, prefix: str, bucket: str = DATA) -> str:
    return rgw.boto3_client("s3", rgw.broker).list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"][0][
        "Key"
    ]


def test_auxiliary_location_gets_its_own_credential(
    rgw: RgwService, s3_dir_tables: dict, dir_server: RunningServer
) -> None:
    from botocore.exceptions import ClientError

    response = _vend(dir_server, "t1", {"location": f"s3n://{ARCHIVE}/tables/t1/"})
    assert response.status_code == 200, response.text
    assert response.json()["credentials"]["location"] == f"s3://{ARCHIVE}/tables/t1"
    s3 = rgw.boto3_client("s3", _creds(response.json()))
    assert s3.get_object(Bucket=ARCHIVE, Key="tables/t1/part-archived.parquet")["Body"].read() == b"archived"
    for call in (
        lambda: s3.get_object(Bucket=ARCHIVE, Key="tables/t1_old/other.parquet"),
        lambda: s3.list_objects_v2(Bucket=DATA, Prefix="tables/t1/"),
    ):
        with pytest.raises(ClientError):
            call()


def test_credentials_are_cached_per_location(dir_server: RunningServer) -> None:
    first = _vend(dir_server, "t1").json()["credentials"]
    again = _vend(dir_server, "t1", {"location": f"s3://{DATA}/tables/t1/"}).json()["credentials"]
    other = _vend(dir_server, "t2").json()["credentials"]
    assert first["awsTempCredentials"] == again["awsTempCredentials"]
    assert other["awsTempCredentials"]["accessKeyId"] != first["awsTempCredentials"]["accessKeyId"]


CRAFTED = [
    f"s3://{DATA}/tables/t2",
    f"s3://{DATA}/tables/t1_old",
    f"s3://{DATA}/tables/t1_old/",
    f"s3://{DATA}/tables",
    f"s3://{DATA}/tables/",
    f"s3://{DATA}",
    f"s3://{DATA}/",
    f"s3://{DATA}/tables/t1/_delta_log",
    f"s3://{DATA}/tables/t1/..",
    f"s3://{DATA}/tables/t1/../t2",
    f"s3://{DATA}/tables/t1/%2e%2e/t2",
    f"s3://{DATA}/tables/t1%2F..%2Ft2",
    f"s3://{DATA}/tables/t1/%252e%252e",
    f"s3://{DATA}/tables/*",
    f"s3://{DATA}/tables/t?",
    f"s3://{DATA}/*",
    f"s3://{DATA}/tables/t1?x=1",
    f"s3://{DATA}/tables/t2#/tables/t1",
    f"s3://{NOVEND}/tables/t3",
    f"s3://{ARCHIVE}/tables/t1_old",
    f"s3://{ARCHIVE}/tables",
    f"gs://{DATA}/tables/t1",
    f"abfss://{DATA}@acct.dfs.core.windows.net/tables/t1",
    f"https://{DATA}.s3.amazonaws.com/tables/t1",
    f"http://127.0.0.1/{DATA}/tables/t1",
    f"file:///{DATA}/tables/t1",
    f"/{DATA}/tables/t1",
    f"s3://user@{DATA}/tables/t1",
    f"s3://{DATA}:80/tables/t1",
    f"s3://{DATA}/tables/t1" + '"},{"Effect":"Allow","Action":"*","Resource":"*',
]
NOT_URLS: list[Any] = ["", "tables/t1", f" s3://{DATA}/tables/t1", f"s3://{DATA}/tables/t1\n", 7, [], {}]


def test_crafted_locations_never_yield_a_credential(dir_server: RunningServer) -> None:
    for location in CRAFTED:
        response = _vend(dir_server, "t1", {"location": location})
        assert response.status_code == 403, (location, response.text)
        assert response.json()["errorCode"] == "PERMISSION_DENIED"
        assert "credentials" not in response.text
    for location in NOT_URLS:
        response = _vend(dir_server, "t1", {"location": location})
        assert response.status_code == 400, (location, response.text)
        assert response.json()["errorCode"] == "INVALID_PARAMETER_VALUE"
    for body in ("{not json", "[1]", '"s3://x"'):
        response = _vend(dir_server, "t1", body)
        assert response.status_code == 400 and response.json()["errorCode"] == "MALFORMED_REQUEST", body


def test_tables_without_dir_access_say_so(dir_server: RunningServer) -> None:
    for table in ("t1_nohistory", "t3"):
        response = _vend(dir_server, table)
        assert response.status_code == 400, response.text
        assert response.json()["errorCode"] == "UNSUPPORTED_OPERATION"
        assert "URL access" in response.json()["message"]


def test_authentication_and_unknown_tables(dir_server: RunningServer) -> None:
    response = httpx.post(f"{dir_server.endpoint}{TABLES}/t1/temporary-table-credentials")
    assert response.status_code == 401 and response.json()["errorCode"] == "UNAUTHENTICATED"
    assert _vend(dir_server, "t1", token="wrong").status_code == 401
    for path in (
        f"{TABLES}/nope",
        "/shares/s3share/schemas/nope/tables/t1",
        "/shares/nope/schemas/default/tables/t1",
    ):
        response = httpx.post(
            f"{dir_server.endpoint}{path}/temporary-table-credentials", headers=dir_server.headers()
        )
        assert response.status_code == 404 and response.json()["errorCode"] == "RESOURCE_DOES_NOT_EXIST"
    assert (
        httpx.get(
            f"{dir_server.endpoint}{TABLES}/t1/temporary-table-credentials", headers=dir_server.headers()
        ).status_code
        == 405
    )


def test_listings_and_metadata_advertise_dir_honestly(dir_server: RunningServer) -> None:
    listing = httpx.get(f"{dir_server.endpoint}{TABLES}", headers=dir_server.headers()).json()["items"]
    by_name = {item["name"]: item for item in listing}
    assert by_name["t1"]["accessModes"] == ["url", "dir"]
    assert by_name["t1"]["location"] == f"s3a://{DATA}/tables/t1"
    assert by_name["t1"]["auxiliaryLocations"] == [f"s3://{ARCHIVE}/tables/t1"]
    assert by_name["t2"]["accessModes"] == ["url", "dir"] and by_name["t2"]["auxiliaryLocations"] == []
    for name in ("t1_nohistory", "t3"):
        assert by_name[name]["accessModes"] == ["url"] and "location" not in by_name[name]
    all_tables = httpx.get(f"{dir_server.endpoint}/shares/s3share/all-tables", headers=dir_server.headers())
    assert [i["accessModes"] for i in all_tables.json()["items"]] == [i["accessModes"] for i in listing]

    for fmt in ("parquet", "delta"):
        metadata = _metadata(dir_server, "t1", fmt)
        assert metadata["accessModes"] == ["url", "dir"]
        assert metadata["location"] == f"s3a://{DATA}/tables/t1"
        assert metadata["auxiliaryLocations"] == [f"s3://{ARCHIVE}/tables/t1"]
        plain = _metadata(dir_server, "t1_nohistory", fmt)
        assert plain["accessModes"] == ["url"] and "location" not in plain


def _metadata(server: RunningServer, table: str, fmt: str) -> dict:
    response = httpx.get(
        f"{server.endpoint}{TABLES}/{table}/metadata",
        headers=server.headers(**{"delta-sharing-capabilities": f"responseformat={fmt}"}),
    )
    assert response.status_code == 200, response.text
    return json.loads(response.text.splitlines()[1])["metaData"]


def test_no_secret_in_the_server_log(rgw: RgwService, dir_server: RunningServer) -> None:
    answer = _vend(dir_server, "t2").json()["credentials"]["awsTempCredentials"]
    log = dir_server.daemon.log_path.read_text()
    for secret in (answer["secretAccessKey"], answer["sessionToken"], rgw.broker.secret_access_key):
        assert secret not in log
