"""Azure SAS fields, checked without a server: Azurite cannot serve directory SAS (`sr=d`), so the directory
SAS's fields and signature are checked here; container SAS enforcement is proved on Azurite
(tests/e2e/integration/test_dir_access_azure.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote

import pytest
from azure.storage.blob import UserDelegationKey, generate_blob_sas

from lakegate.cloud.azure.sas import SasSigner
from lakegate.cloud.azure.storage import AzureStore
from lakegate.cloud.azure.vending import AzureVendor
from lakegate.cloud.base import SignRequest
from lakegate.cloud.locations import Location
from lakegate.cloud.registry import StoreRegistry
from lakegate.cloud.vending import VendorRegistry
from lakegate.config import AzureStorageConfig, parse_config
from lakegate.exceptions import StorageUnavailableError, VendingError
from lakegate.keys import KeyRing

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
ACCOUNT_KEY = base64.b64encode(b"k" * 64).decode()


class KeyService:
    """Stands in for get_user_delegation_key: hands out keys and counts the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[datetime, datetime]] = []

    def __call__(self, start: datetime, expiry: datetime) -> UserDelegationKey:
        self.calls.append((start, expiry))
        key = UserDelegationKey()
        key.signed_oid, key.signed_tid = "11111111-oid", "22222222-tid"
        key.signed_start = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_expiry = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_service, key.signed_version = "b", "2025-01-05"
        key.value = base64.b64encode(hashlib.sha256(str(len(self.calls)).encode()).digest()).decode()
        return key


def _signer(keys: KeyService | None = None, lifetime: int = 6 * 3600) -> SasSigner:
    return SasSigner("acct", fetch_key=keys or KeyService(), key_lifetime_s=lifetime, clock=NOW.timestamp)


def _fields(token: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(token, keep_blank_values=True).items()}


def _signature_ok(token: str, string_to_sign: str, key_b64: str) -> bool:
    expected = base64.b64encode(
        hmac.digest(base64.b64decode(key_b64), string_to_sign.encode(), "sha256")
    ).decode()
    return _fields(token)["sig"] == expected


@pytest.mark.parametrize(
    ("directory", "depth"), [("tables/t1", "2"), ("t1", "1"), ("/a/b/c/", "3"), ("tables/t1/", "2")]
)
def test_directory_sas_fields(directory: str, depth: str) -> None:
    keys = KeyService()
    token, expiry = _signer(keys).directory_sas("data", directory, NOW + timedelta(hours=1))
    f = _fields(token)
    assert f["sr"] == "d" and f["sdd"] == depth and f["sp"] == "rl"
    assert f["se"] == "2026-03-01T13:00:00Z" and expiry == NOW + timedelta(hours=1)
    assert f["skoid"] == "11111111-oid" and f["sktid"] == "22222222-tid" and f["sks"] == "b"
    assert f["ske"] >= f["se"]
    assert not {"srt", "ss", "spr"} & set(f)  # not an account SAS


def test_directory_sas_signature_verifies() -> None:
    keys = KeyService()
    signer = _signer(keys)
    token, expiry = signer.directory_sas("data", "tables/t1", NOW + timedelta(hours=1))
    key = signer.delegation_key(expiry)
    from azure.storage.filedatalake import generate_directory_sas

    captured: list[str] = []
    generate_directory_sas(
        "acct", "data", "tables/t1", key, permission="rl", expiry=expiry, sts_hook=captured.append
    )
    lines = captured[0].split("\n")
    assert lines[0] == "rl" and lines[2] == "2026-03-01T13:00:00Z" and lines[3] == "/blob/acct/data/tables/t1"
    assert "d" in lines  # signed resource
    assert _signature_ok(token, captured[0], key.value)


def test_directory_sas_refuses_the_container_root() -> None:
    with pytest.raises(ValueError, match="a directory SAS needs a directory"):
        _signer().directory_sas("data", "/", NOW + timedelta(hours=1))


def test_container_sas_fields_with_delegation_key() -> None:
    token, _ = _signer().container_sas("data", NOW + timedelta(hours=1))
    f = _fields(token)
    assert f["sr"] == "c" and f["sp"] == "rl" and "sdd" not in f and "skoid" in f


def test_account_key_sas_has_no_delegation_fields() -> None:
    signer = SasSigner("acct", account_key=ACCOUNT_KEY)
    for token, resource in (
        (signer.container_sas("data", NOW)[0], "c"),
        (signer.directory_sas("data", "tables/t1", NOW)[0], "d"),
    ):
        f = _fields(token)
        assert f["sr"] == resource and f["sp"] == "rl" and "skoid" not in f and "ske" not in f


def test_sas_never_outlives_the_delegation_key() -> None:
    keys = KeyService()
    signer = _signer(keys, lifetime=1800)
    # The key is renewed for the request, but a key lives only 30 min: the SAS is capped to it.
    token, expiry = signer.container_sas("data", NOW + timedelta(hours=2))
    f = _fields(token)
    assert expiry == NOW + timedelta(minutes=30) and f["se"] == f["ske"] == "2026-03-01T12:30:00Z"


def test_delegation_key_is_reused_until_it_cannot_cover_the_sas() -> None:
    keys = KeyService()
    clock = [NOW.timestamp()]
    signer = SasSigner("acct", fetch_key=keys, key_lifetime_s=6 * 3600, clock=lambda: clock[0])
    for minutes in (0, 10, 60, 240):
        clock[0] = (NOW + timedelta(minutes=minutes)).timestamp()
        signer.container_sas("data", NOW + timedelta(minutes=minutes + 60))
    assert len(keys.calls) == 1
    start, expiry = keys.calls[0]
    assert start == NOW - timedelta(minutes=5) and expiry == NOW + timedelta(hours=6)
    clock[0] = (NOW + timedelta(minutes=301)).timestamp()  # 59 min of key left, a 60 min SAS is asked
    signer.container_sas("data", NOW + timedelta(minutes=361))
    assert len(keys.calls) == 2


def test_a_key_shorter_than_the_sas_asked_is_reused_while_it_has_half_its_life() -> None:
    """URLs asked to live longer than a key does (preSignedUrlTimeoutSeconds > userDelegationKeySeconds): no key
    can cover them, so the cached one serves until half its lifetime is gone, the SAS cut to its expiry (was a
    key fetched for every answer)."""
    keys = KeyService()
    clock = [NOW.timestamp()]
    signer = SasSigner("acct", fetch_key=keys, key_lifetime_s=900, clock=lambda: clock[0])
    for seconds in (0, 1, 60, 450):
        clock[0] = NOW.timestamp() + seconds
        _, expiry = signer.blob_signer(NOW + timedelta(seconds=seconds + 86400))
        assert expiry == NOW + timedelta(seconds=900)  # the key's expiry: never beyond it
    assert len(keys.calls) == 1
    clock[0] = NOW.timestamp() + 451  # less than half of the key's life left: a new key
    _, expiry = signer.blob_signer(NOW + timedelta(seconds=451 + 86400))
    assert len(keys.calls) == 2 and expiry == NOW + timedelta(seconds=451 + 900)


BLOB_NAMES = [
    "tables/t1/part-0.parquet",
    "with space/file name.parquet",
    "unicode/Ünïcødé-日本語.parquet",
    "plus+sign/a+b=c.parquet",
    "percent%20already/x%.parquet",
    "deep/a/b/c/d.parquet",
    "x",
]


@pytest.mark.parametrize("use_key", [False, True])
def test_fast_blob_signer_equals_the_sdk(use_key: bool) -> None:
    keys = KeyService()
    signer = SasSigner("acct", account_key=ACCOUNT_KEY) if use_key else _signer(keys)
    sign, expiry = signer.blob_signer(NOW + timedelta(hours=1))
    credential = (
        {"account_key": ACCOUNT_KEY} if use_key else {"user_delegation_key": signer.delegation_key(NOW)}
    )
    for container in ("data", "other-container"):
        for name in BLOB_NAMES:
            expected = generate_blob_sas("acct", container, name, permission="r", expiry=expiry, **credential)
            assert sign(container, name) == expected, name
            assert _fields(sign(container, name))["sr"] == "b" and _fields(expected)["sp"] == "r"


def test_vendor_picks_directory_or_container_sas() -> None:
    store = AzureStore(AzureStorageConfig.model_validate({"accountKey": ACCOUNT_KEY}))
    hns = Location.parse("abfss://data@acct.dfs.core.windows.net/tables/t1")
    flat = Location.parse("wasbs://data@acct.blob.core.windows.net/tables/t1")
    root = Location.parse("abfss://data@acct.dfs.core.windows.net")
    vendor = AzureVendor(store, AzureStorageConfig.model_validate({"accountKey": ACCOUNT_KEY}), 3600)
    assert _fields(vendor.vend(hns).secret["sasToken"])["sr"] == "d"
    assert _fields(vendor.vend(flat).secret["sasToken"])["sr"] == "c"
    assert _fields(vendor.vend(root).secret["sasToken"])["sr"] == "c"
    forced = AzureVendor(store, AzureStorageConfig.model_validate({"hierarchicalNamespace": False}), 3600)
    assert _fields(forced.vend(hns).secret["sasToken"])["sr"] == "c"
    credential = vendor.vend(hns)
    assert credential.kind == "azureUserDelegationSas" and credential.location == hns.display
    assert unquote(_fields(credential.secret["sasToken"])["se"]) == datetime.fromtimestamp(
        credential.expiration_ms / 1000, UTC
    ).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_vendor_failure_is_a_clear_error() -> None:
    def refuse(start: datetime, expiry: datetime) -> UserDelegationKey:
        from azure.core.exceptions import HttpResponseError

        raise HttpResponseError("AuthorizationPermissionMismatch")

    store = AzureStore(AzureStorageConfig.model_validate({"accountKey": ACCOUNT_KEY}))
    location = Location.parse("abfss://data@acct.dfs.core.windows.net/tables/t1")
    store.account(location).signer = SasSigner("acct", fetch_key=refuse)
    vendor = AzureVendor(store, AzureStorageConfig(), 3600)
    with pytest.raises(VendingError, match="refused"):
        vendor.vend(location)


@pytest.mark.parametrize(
    ("location", "azure", "problem"),
    [
        ("abfss://data@acct.dfs.core.windows.net/t", {"directoryAccess": True}, None),
        ("abfss://data@acct.dfs.core.windows.net/t", {}, "directoryAccess"),
        ("wasbs://data@acct.blob.core.windows.net/t", {"directoryAccess": True}, "flat namespace"),
        ("wasbs://data@acct.blob.core.windows.net", {"directoryAccess": True}, None),
        (
            "wasbs://data@acct.blob.core.windows.net/t",
            {"directoryAccess": True, "allowContainerSas": True},
            None,
        ),
        (
            "wasbs://data@acct.blob.core.windows.net/t",
            {"directoryAccess": True, "hierarchicalNamespace": True},
            None,
        ),
        (
            "abfss://data@acct.dfs.core.windows.net/t",
            {"directoryAccess": True, "hierarchicalNamespace": False},
            "flat namespace",
        ),
    ],
)
def test_registry_says_when_azure_vending_is_possible(
    location: str, azure: dict, problem: str | None
) -> None:
    config = parse_config(
        {
            "version": 1,
            "storage": [{"location": "abfss://", "azure": azure}, {"location": "wasbs://", "azure": azure}],
        }
    )
    registry = VendorRegistry(config, StoreRegistry(config, KeyRing.random()))
    found = registry.problem(Location.parse(location))
    assert (found is None) if problem is None else (problem in (found or ""))


def test_an_unreachable_account_fails_signing_as_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user-delegation key comes from the account itself: when the account cannot be reached, signing fails
    like a read of it does, 503 (worth the client's retry), not a 500."""
    from azure.core.credentials import AccessToken

    from tests.e2e.integration.azure_identity import FakeManagedIdentity
    from tests.services._proc import free_port

    class AnyToken:  # the identity endpoint's issuer; the account never gets to check the token
        def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
            return AccessToken("token", int(time.time()) + 3600)

    identity = FakeManagedIdentity(AnyToken())
    try:
        for name, value in identity.env.items():
            monkeypatch.setenv(name, value)
        settings = {"managedIdentity": True, "endpoint": f"https://127.0.0.1:{free_port()}/acct"}
        store = AzureStore(AzureStorageConfig.model_validate(settings))
        location = Location.parse("wasbs://data@acct.blob.core.windows.net/t1/part-0.parquet")
        now = int(time.time())
        with pytest.raises(StorageUnavailableError, match="Azure account acct"):
            store.url_signer(SignRequest(expires_at_s=now + 3600, now_s=now))(location)
        assert identity.requests, "the delegation key was asked with the identity's token"
    finally:
        identity.stop()
