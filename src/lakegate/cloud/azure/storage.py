"""Azure Blob / ADLS Gen2 tables: read the Delta log through the Blob API, sign file URLs with per-blob SAS.

One `AzureAccount` per storage account holds the SDK client and the SAS signer; the vendor
(lakegate.cloud.azure.vending) uses the same account, so URL and directory access share one delegation key.
The Blob endpoint serves flat and hierarchical-namespace accounts alike, so abfss:// tables are read there.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from lakegate.cloud.azure.sas import SasSigner, key_expiry
from lakegate.cloud.base import ObjectInfo, ObjectStore, SignRequest, UrlSigner
from lakegate.cloud.locations import Location
from lakegate.config import AzureStorageConfig
from lakegate.exceptions import StorageError, StorageUnavailableError

log = logging.getLogger(__name__)


def _credential(settings: AzureStorageConfig) -> tuple[Any, str]:
    """The SDK credential the server authenticates with, and a name for it (cache keys, logs; no secret)."""
    if settings.client_secret is not None:
        from azure.identity import ClientSecretCredential

        if not (settings.tenant_id and settings.client_id):
            raise StorageError("azure.clientSecret needs azure.tenantId and azure.clientId")
        kwargs = {"authority": settings.authority_host} if settings.authority_host else {}
        return (
            ClientSecretCredential(
                settings.tenant_id, settings.client_id, settings.client_secret.get_secret_value(), **kwargs
            ),
            f"client:{settings.tenant_id}/{settings.client_id}",
        )
    if settings.managed_identity:
        from azure.identity import ManagedIdentityCredential

        return ManagedIdentityCredential(
            client_id=settings.client_id
        ), f"managed:{settings.client_id or 'system'}"
    if settings.account_key is not None:
        return None, "account-key"
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(), "default"


# The SDK's default retries (15 s initial backoff, growing threefold) hold a request for about 90 s when the
# account cannot be reached; these answer 503 within seconds and still ride out a brief throttle.
_BRIEF_RETRIES: dict[str, Any] = {
    "retry_total": 2,
    "initial_backoff": 1,
    "increment_base": 2,
    "random_jitter_range": 1,
    "connection_timeout": 5,
    "read_timeout": 30,
}


@dataclass
class AzureAccount:
    name: str
    endpoint: str  # blob endpoint, no trailing slash
    client: Any  # azure.storage.blob.BlobServiceClient
    signer: SasSigner


class AzureStore(ObjectStore):
    def __init__(self, settings: AzureStorageConfig | None) -> None:
        import azure.storage.blob  # noqa: F401 - fail early (with the install hint) if the SDK is missing

        self.settings = settings or AzureStorageConfig()
        self._credential, self.identity_name = _credential(self.settings)
        self._accounts: dict[str, AzureAccount] = {}
        self._lock = threading.Lock()

    def account(self, location: Location) -> AzureAccount:
        with self._lock:
            account = self._accounts.get(location.account)
            if account is None:
                account = self._accounts[location.account] = self._open(location.account)
            return account

    def _open(self, name: str) -> AzureAccount:
        from azure.storage.blob import BlobServiceClient

        settings = self.settings
        # Sovereign clouds and emulators need `endpoint`; child locations do not remember the host suffix.
        endpoint = (settings.endpoint or f"https://{name}.blob.core.windows.net").rstrip("/")
        kwargs: dict[str, Any] = {"connection_verify": settings.ca_bundle} if settings.ca_bundle else {}
        kwargs |= _BRIEF_RETRIES
        if settings.account_key is not None and self._credential is None:
            key = settings.account_key.get_secret_value()
            client = BlobServiceClient(
                endpoint, credential={"account_name": name, "account_key": key}, **kwargs
            )
            signer = SasSigner(name, account_key=key)
        else:
            client = BlobServiceClient(endpoint, credential=self._credential, **kwargs)
            signer = SasSigner(
                name,
                fetch_key=_key_fetcher(client, name),
                key_lifetime_s=settings.user_delegation_key_seconds,
            )
        return AzureAccount(name, endpoint, client, signer)

    def list_dir(self, directory: Location, start_after: str | None = None) -> list[ObjectInfo]:
        from azure.storage.blob import BlobPrefix

        prefix = directory.path + "/" if directory.path else ""
        container = self.account(directory).client.get_container_client(directory.bucket)
        infos: list[ObjectInfo] = []
        try:
            for item in container.walk_blobs(name_starts_with=prefix, delimiter="/"):
                if isinstance(item, BlobPrefix):
                    continue
                name = item.name[len(prefix) :]
                if start_after is None or name > start_after:
                    infos.append(ObjectInfo(name, item.size, int(item.last_modified.timestamp() * 1000)))
        except Exception as exc:
            if _status(exc) == 404:  # no container: nothing to list, like a missing directory
                return []
            raise store_error(f"listing {directory.uri}/", exc) from exc
        infos.sort(key=lambda i: i.name)
        return infos

    def read(self, location: Location) -> bytes:
        blob = self.account(location).client.get_blob_client(location.bucket, location.path)
        try:
            return bytes(blob.download_blob().readall())
        except Exception as exc:
            if _status(exc) == 404:
                raise FileNotFoundError(location.uri) from None
            raise store_error(f"reading {location.uri}", exc) from exc

    def write(self, location: Location, data: bytes) -> None:
        blob = self.account(location).client.get_blob_client(location.bucket, location.path)
        try:
            blob.upload_blob(data, overwrite=True)
        except Exception as exc:
            raise store_error(f"writing {location.uri}", exc) from exc

    def signing_deadline(self, location: Location, wanted_s: int) -> int | None:
        """A SAS signed with a user-delegation key cannot outlive the key: URLs asked for longer than the key
        the signer will sign them with end with that key. Account-key SAS have no such bound."""
        if self.settings.account_key is not None and self._credential is None:
            return None
        account = self.account(location)
        try:
            key = account.signer.delegation_key(datetime.fromtimestamp(wanted_s, UTC))
        except Exception as exc:
            raise _signing_error(account, exc) from exc
        return int(key_expiry(key).timestamp())

    def url_signer(self, request: SignRequest) -> UrlSigner:
        expiry = datetime.fromtimestamp(request.expires_at_s, UTC)
        signers: dict[str, tuple[str, Any]] = {}

        def sign(location: Location) -> str:
            entry = signers.get(location.account)
            if entry is None:
                account = self.account(location)
                try:
                    blob_sign, _ = account.signer.blob_signer(expiry)
                except Exception as exc:
                    raise _signing_error(account, exc) from exc
                entry = signers[location.account] = (account.endpoint, blob_sign)
            endpoint, blob_sign = entry
            token = blob_sign(location.bucket, location.path)
            return f"{endpoint}/{location.bucket}/{quote(location.path, safe='/~')}?{token}"

        return sign


def _signing_error(account: AzureAccount, exc: Exception) -> StorageError:
    # The user-delegation key comes from the account: unreachable is a 503 here as it is for a read.
    return store_error(f"signing URLs for Azure account {account.name}", exc)


def _key_fetcher(client: Any, account: str) -> Any:
    def fetch(start: datetime, expiry: datetime) -> Any:
        log.info(
            "fetching a user delegation key for Azure account %s, valid until %s", account, expiry.isoformat()
        )
        return client.get_user_delegation_key(start, expiry)

    return fetch


def _status(exc: Exception) -> int | None:
    return getattr(exc, "status_code", None)


def store_error(what: str, exc: Exception) -> StorageError:
    """An Azure SDK error as a StorageError: StorageUnavailableError when the account could not be reached or
    answered 5xx (worth a retry), a plain StorageError otherwise (access denied, no such container)."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    status = _status(exc) or 0
    unreachable = isinstance(exc, (ServiceRequestError, ServiceResponseError)) or status >= 500
    return (StorageUnavailableError if unreachable else StorageError)(f"{what} failed: {describe_error(exc)}")


def describe_error(exc: Exception) -> str:
    """Status and error code of an Azure SDK error, without request details (URLs may carry SAS tokens)."""
    code = getattr(exc, "error_code", None)
    status = _status(exc)
    if status is not None or code is not None:
        return f"HTTP {status} {code or ''}".strip()
    return type(exc).__name__


_DFS_HOST = re.compile(r"^(abfss?://[^/]*\.dfs\.|https?://[^/]*\.dfs\.)", re.IGNORECASE)


def hierarchical(location: Location, configured: bool | None) -> bool:
    """Whether an Azure account has a hierarchical namespace (ADLS Gen2): as configured, else a `dfs` host."""
    if configured is not None:
        return configured
    return bool(_DFS_HOST.match(location.original))
