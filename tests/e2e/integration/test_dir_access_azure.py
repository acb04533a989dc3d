"""Azure tables on Azurite (HTTPS + OAuth), served by a `lakegate serve` process that authenticates with a
managed identity: directory access vends a container-scoped user-delegation SAS, which Azurite enforces (read
and list allowed; write, delete and other containers refused), and URL access hands out per-blob SAS URLs.

Azurite cannot serve directory SAS (`sr=d`): tests/cloud/test_azure_sas.py checks those field by field.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError

from tests.e2e.integration.azure_identity import FakeManagedIdentity
from tests.e2e.integration.conftest import HOST, sas_options, vend
from tests.e2e.server import RunningServer
from tests.services.azurite import AzuriteService
from tests.tables import rows

pytestmark = pytest.mark.azurite
TABLES = "/shares/azshare/schemas/default/tables"


def _vend(server: RunningServer, table: str, body: Any = None, token: str | None = None) -> httpx.Response:
    return vend(server, "azshare", table, body, token)


def _container(azurite: AzuriteService, name: str, sas: str) -> Any:
    from azure.storage.blob import ContainerClient

    return ContainerClient(
        azurite.blob_endpoint, name, credential=sas, connection_verify=str(azurite.cert_path)
    )


def test_vended_sas_is_a_read_list_container_sas(
    az_server: RunningServer, az_identity: FakeManagedIdentity
) -> None:
    before_ms = time.time() * 1000
    response = _vend(az_server, "t1")
    assert response.status_code == 200, response.text
    credentials = response.json()["credentials"]
    assert set(credentials) == {"location", "azureUserDelegationSas", "expirationTime"}
    assert credentials["location"] == f"wasbs://dir-sales@{HOST}"
    fields = {k: v[0] for k, v in parse_qs(credentials["azureUserDelegationSas"]["sasToken"]).items()}
    assert fields["sr"] == "c" and fields["sp"] == "rl"
    assert fields["skoid"] and fields["sktid"]  # signed with the managed identity's delegation key
    assert fields["se"] <= fields["ske"]
    assert before_ms + 3_500_000 <= credentials["expirationTime"] <= before_ms + 3_700_000
    assert az_identity.requests and az_identity.requests[0]["resource"] == ["https://storage.azure.com"]


def test_azurite_enforces_the_sas_scope(azurite: AzuriteService, az_server: RunningServer) -> None:
    from azure.core.exceptions import HttpResponseError

    sas = _vend(az_server, "t1").json()["credentials"]["azureUserDelegationSas"]["sasToken"]
    sales = _container(azurite, "dir-sales", sas)
    names = [b.name for b in sales.list_blobs()]
    assert "_delta_log/00000000000000000000.json" in names
    assert sales.download_blob("_delta_log/00000000000000000000.json").readall()
    other = _container(azurite, "dir-other", sas)
    refused = {
        "write": lambda: sales.upload_blob("_delta_log/00000000000000000099.json", b"{}"),
        "overwrite": lambda: sales.upload_blob("_delta_log/00000000000000000000.json", b"{}", overwrite=True),
        "delete": lambda: sales.delete_blob("_delta_log/00000000000000000000.json"),
        "other container, read": lambda: other.download_blob(
            "_delta_log/00000000000000000000.json"
        ).readall(),
        "other container, list": lambda: list(other.list_blobs()),
        "create container": lambda: _container(azurite, "dir-new", sas).create_container(),
    }
    allowed = []
    for what, call in refused.items():
        try:
            call()
        except HttpResponseError as exc:
            assert exc.status_code == 403, what
        else:
            allowed.append(what)
    assert allowed == []


def test_deltalake_reads_with_the_vended_sas_and_nothing_else(
    azurite: AzuriteService, azure_tables: dict, az_server: RunningServer
) -> None:
    sas = _vend(az_server, "t1").json()["credentials"]["azureUserDelegationSas"]["sasToken"]
    options = sas_options(azurite, sas)
    table = DeltaTable(f"abfss://dir-sales@{HOST}", storage_options=options)
    assert sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: r["id"]) == azure_tables["t1"]
    assert table.load_cdf(starting_version=0).read_all().num_rows > 0
    # Azurite's refusals as deltalake passes them on (not a network or DNS failure): another container's
    # requests fail authorization, a write lacks the permission.
    with pytest.raises(OSError, match=r"(?s)403 Forbidden.*<Code>AuthorizationFailure</Code>"):
        DeltaTable(f"abfss://dir-other@{HOST}", storage_options=options).to_pyarrow_table()
    with pytest.raises(DeltaError, match=r"(?s)403 Forbidden.*<Code>AuthorizationPermissionMismatch</Code>"):
        write_deltalake(f"abfss://dir-sales@{HOST}", rows([99]), mode="append", storage_options=options)


def test_flat_namespace_subdirectory_is_url_only(az_server: RunningServer) -> None:
    response = _vend(az_server, "t3")
    assert response.status_code == 400 and response.json()["errorCode"] == "UNSUPPORTED_OPERATION"
    assert "flat namespace" in response.json()["message"]
    items = {
        i["name"]: i
        for i in httpx.get(f"{az_server.endpoint}{TABLES}", headers=az_server.headers()).json()["items"]
    }
    assert (
        items["t1"]["accessModes"] == ["url", "dir"]
        and items["t1"]["location"] == f"wasbs://dir-sales@{HOST}"
    )
    assert items["t3"]["accessModes"] == ["url"] and "location" not in items["t3"]


@pytest.mark.parametrize(
    "location",
    [
        f"wasbs://dir-other@{HOST}",
        f"wasbs://dir-sales@{HOST}/_delta_log",
        "wasbs://dir-sales@other.blob.core.windows.net",
        "abfss://dir-sales@devstoreaccount1.dfs.core.chinacloudapi.cn",
        "https://127.0.0.1:10000/devstoreaccount1/dir-sales",
        f"wasbs://DIR-SALES@{HOST}",
        f"wasbs://dir-sales@{HOST}/..",
        f"wasbs://dir-sales@{HOST}?sp=racwdl",
    ],
)
def test_crafted_azure_locations_are_refused(az_server: RunningServer, location: str) -> None:
    response = _vend(az_server, "t1", {"location": location})
    assert response.status_code == 403 and "credentials" not in response.text, response.text


def test_aliases_of_the_root_are_accepted(az_server: RunningServer) -> None:
    for location in (
        "abfss://dir-sales@devstoreaccount1.dfs.core.windows.net/",
        "https://devstoreaccount1.blob.core.windows.net/dir-sales",
    ):
        response = _vend(az_server, "t1", {"location": location})
        assert response.status_code == 200, response.text
        assert response.json()["credentials"]["location"] == f"wasbs://dir-sales@{HOST}"


def _file_urls(server: RunningServer, table: str) -> list[str]:
    response = httpx.post(f"{server.endpoint}{TABLES}/{table}/query", headers=server.headers(), json={})
    assert response.status_code == 200, response.text
    return [json.loads(line)["file"]["url"] for line in response.text.splitlines()[2:]]


def test_url_access_hands_out_per_blob_sas(azurite: AzuriteService, az_server: RunningServer) -> None:
    urls = _file_urls(az_server, "t3")
    assert urls
    with httpx.Client(verify=ssl.create_default_context(cafile=str(azurite.cert_path))) as client:
        for url in urls:
            parts = urlsplit(url)
            assert url.startswith(f"{azurite.blob_endpoint}/dir-flat/tables/t3/")
            fields = {k: v[0] for k, v in parse_qs(parts.query).items()}
            assert fields["sr"] == "b" and fields["sp"] == "r" and fields["skoid"]
            assert client.get(url).status_code == 200
        # Azurite checks the signature: another blob with this SAS, or an edited SAS, is refused.
        other = urls[0].replace("/dir-flat/tables/t3/", "/dir-sales/", 1)
        assert client.get(other).status_code == 403
        assert client.get(urls[0].replace("sp=r", "sp=rw")).status_code == 403


@pytest.mark.parametrize("table", ["t1", "t3"])
def test_official_client_reads_azure_tables_by_url(
    azurite: AzuriteService, azure_tables: dict, az_server: RunningServer, table: str
) -> None:
    # In a child process: aiohttp builds its TLS context at import, so the emulator's self-signed certificate
    # must be trusted (SSL_CERT_FILE) before the client is imported. Parquet format only: the delta format's
    # kernel (reqwest + rustls) trusts only its built-in roots, so it cannot reach a self-signed emulator.
    use_delta_format = False
    script = (
        "import json, sys, delta_sharing\n"
        "frame = delta_sharing.load_as_pandas(sys.argv[1], use_delta_format=sys.argv[2] == 'delta')\n"
        "print(json.dumps(frame.to_dict('records'), default=str), flush=True)\n"
        # The client's threaded pyarrow read can abort the interpreter's exit (apache/arrow#33975, operations.md
        # "Exit at the end of a process"): the answer is printed, so the process ends without finalizing.
        "import os; os._exit(0)\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            f"{az_server.profile()}#azshare.default.{table}",
            "delta" if use_delta_format else "parquet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SSL_CERT_FILE": str(azurite.cert_path)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = sorted(json.loads(done.stdout), key=lambda r: r["id"])
    assert [r["id"] for r in got] == [r["id"] for r in azure_tables[table]]
    assert [r["note"] for r in got] == [r["note"] for r in azure_tables[table]]


def test_iceberg_metadata_is_written_with_the_tables_storage_entry(
    azurite: AzuriteService, az_server: RunningServer
) -> None:
    """The storage entry is written `wasbs://`; the generated Iceberg metadata lives in the table's container,
    whose canonical URI is `abfss://…dfs…`: it is written with the same entry (was a store made without the
    entry's endpoint and identity, which could not reach the account: a 503 after retries)."""
    answer = httpx.get(
        f"{az_server.endpoint}/iceberg/v1/azshare/namespaces/default/tables/t1",
        headers=az_server.headers(),
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    metadata = answer.json()["metadata-location"]
    assert metadata.startswith(f"abfss://dir-sales@{HOST.replace('.blob.', '.dfs.')}/_lakegate_iceberg/")
    blob = metadata.split(".windows.net/", 1)[1]
    written = azurite.blob_service_client().get_blob_client("dir-sales", blob).download_blob().readall()
    assert json.loads(written)["location"] == answer.json()["metadata"]["location"]
