"""Azure file URLs signed with a user-delegation key (managed identity, service principal) cannot outlive the key:
when `preSignedUrlTimeoutSeconds` is longer than `userDelegationKeySeconds`, the SAS is cut to the key's expiry,
and the answer's `expirationTimestamp` must say so (clients plan their URL refreshes by it). Against Azurite,
which issues the key and verifies the SAS. Answers reuse the key while it has half its life left rather than
fetch a key for every answer."""

from __future__ import annotations

import ssl
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.e2e.integration.azure_identity import FakeManagedIdentity
from tests.e2e.integration.conftest import HOST
from tests.e2e.server import start_server
from tests.services._proc import free_port
from tests.services.azurite import AzuriteService

pytestmark = pytest.mark.azurite
KEY_SECONDS = 900  # the shortest key Azure issues (lakegate's lower bound too)
URL_SECONDS = 86400


def test_urls_signed_with_a_delegation_key_promise_no_more_than_the_key(
    azurite: AzuriteService, azure_tables: dict, az_identity: FakeManagedIdentity, tmp_path: Path
) -> None:
    table = {"name": "t1", "location": f"wasbs://dir-sales@{HOST}"}
    azure = {"endpoint": azurite.blob_endpoint, "managedIdentity": True, "caBundle": str(azurite.cert_path)}
    server = start_server(
        tmp_path,
        {
            "shares": [{"name": "s", "schemas": [{"name": "d", "tables": [table]}]}],
            "storage": [
                {"location": "wasbs://", "azure": {**azure, "userDelegationKeySeconds": KEY_SECONDS}}
            ],
            "preSignedUrlTimeoutSeconds": URL_SECONDS,
        },
        env=az_identity.env,
    )
    try:
        asked = time.time()
        keys = set()
        for answer_number in range(2):
            if answer_number:
                time.sleep(1.1)  # a later second: the same key still serves
            files = server.query_files("s.d.t1")
            assert files
            for file in files:
                query = parse_qs(urlsplit(file["url"]).query)
                ends = datetime.fromisoformat(query["se"][0]).timestamp()
                key_ends = datetime.fromisoformat(query["ske"][0]).timestamp()
                assert ends <= key_ends <= asked + KEY_SECONDS + 60  # Azure's rule, kept by the signer
                assert file["expirationTimestamp"] / 1000 == ends, (file["expirationTimestamp"], ends)
                keys.add((query["skt"][0], query["ske"][0]))
                assert (
                    httpx.get(
                        file["url"],
                        verify=ssl.create_default_context(cafile=str(azurite.cert_path)),
                        timeout=30,
                    ).status_code
                    == 200
                )
        # The key lives 15 min, URLs are asked for a day: no key covers them, so one key serves while it has
        # half its life left (was a key fetched for every answer).
        assert len(keys) == 1, keys
    finally:
        server.stop()


def test_an_unreachable_auxiliary_account_does_not_fail_answers_that_do_not_use_it(
    azurite: AzuriteService, azure_tables: dict, az_identity: FakeManagedIdentity, tmp_path: Path
) -> None:
    """The answer's expiry is capped by every store that may sign it, the auxiliary locations' too; finding an
    auxiliary account's deadline needs its delegation key. An account that cannot be reached then must not fail
    an answer holding none of its files (was a 500 for every query of the table)."""
    far = "wasbs://gone@far.blob.core.windows.net"
    table = {"name": "t1", "location": f"wasbs://dir-sales@{HOST}", "auxiliaryLocations": [f"{far}/t1"]}
    azure = {"endpoint": azurite.blob_endpoint, "managedIdentity": True, "caBundle": str(azurite.cert_path)}
    unreachable = {**azure, "endpoint": f"https://127.0.0.1:{free_port()}/far"}
    server = start_server(
        tmp_path,
        {
            "shares": [{"name": "s", "schemas": [{"name": "d", "tables": [table]}]}],
            "storage": [
                {"location": f"wasbs://dir-sales@{HOST}", "azure": azure},
                {"location": far, "azure": unreachable},
            ],
        },
        env=az_identity.env,
    )
    try:
        files = server.query_files("s.d.t1")
        assert len(files) == 2 and all(f["url"].startswith(azurite.blob_endpoint) for f in files)
    finally:
        server.stop()
