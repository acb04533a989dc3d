"""GCS tables: read the Delta log with google-cloud-storage, sign data-file URLs with V4 signatures.

The server's identity is a service-account key file (`serviceAccountKeyFile`) or Application Default
Credentials, loaded on first use. The vendor (lakegate.cloud.gcp.vending) exchanges the same identity's token
for downscoped ones, so URL and directory access share one source credential.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from lakegate.cloud.base import ObjectInfo, ObjectStore, SignRequest, UrlSigner
from lakegate.cloud.gcp.signing import GcsUrlSigner
from lakegate.cloud.locations import Location
from lakegate.config import GcpStorageConfig
from lakegate.exceptions import StorageError, StorageUnavailableError

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]  # what a token exchange for downscoping needs


def _brief() -> dict[str, Any]:
    """Retry transient errors for 10 s at most (the library's default is 120 s), with a 5 s connect timeout:
    an unreachable store answers 503 within seconds instead of holding a request for minutes."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    return {"retry": DEFAULT_RETRY.with_timeout(10), "timeout": (5, 30)}


def store_error(what: str, exc: Exception) -> StorageError:
    """A Google client error as a StorageError: StorageUnavailableError when GCS (or the token endpoint)
    could not be reached or answered 5xx (worth a retry), a plain StorageError otherwise."""
    import requests
    from google.api_core.exceptions import RetryError, ServerError
    from google.auth.exceptions import TransportError

    unreachable = isinstance(
        exc, (ServerError, RetryError, TransportError, requests.ConnectionError, requests.Timeout)
    )
    message = f"{what} failed: {type(exc).__name__}: {exc}"
    return (StorageUnavailableError if unreachable else StorageError)(message)


class GcsStore(ObjectStore):
    def __init__(self, settings: GcpStorageConfig | None) -> None:
        import google.auth  # noqa: F401 - fail early (with the install hint) if the SDK is missing

        self.settings = settings or GcpStorageConfig()
        self._credentials: Any = None
        self._client: Any = None
        self._lock = threading.Lock()

    # -- the server's identity -------------------------------------------------------------------------------

    def credentials(self) -> Any:
        with self._lock:
            if self._credentials is None:
                self._credentials = self._load_credentials()
            return self._credentials

    def _load_credentials(self) -> Any:
        if self.settings.service_account_key_file:
            from google.oauth2 import service_account

            # google-auth leaves this constructor unannotated
            return service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                self.settings.service_account_key_file, scopes=SCOPES
            )
        import google.auth

        credentials, _ = google.auth.default(scopes=SCOPES)
        return credentials

    @property
    def identity_name(self) -> str:
        """Which identity tokens derive from (for cache keys; no secret)."""
        if self.settings.service_account_key_file:
            return f"sa:{self.settings.service_account_key_file}"
        return "adc"

    def access_token(self, min_remaining_s: int) -> str:
        """The source identity's access token, refreshed if it has less than `min_remaining_s` left (a
        downscoped token never outlives the token it was exchanged from)."""
        from google.auth.transport.requests import Request

        credentials = self.credentials()
        with self._lock:
            expiry = getattr(credentials, "expiry", None)
            remaining = (expiry.replace(tzinfo=UTC).timestamp() - time.time()) if expiry else -1
            if not credentials.token or remaining < min_remaining_s:
                credentials.refresh(Request())
            return str(credentials.token)

    # -- reading the log -------------------------------------------------------------------------------------

    def client(self) -> Any:
        if self._client is None:
            from google.cloud import storage

            options = {"api_endpoint": self.settings.endpoint} if self.settings.endpoint else None
            credentials = self.credentials()
            project = self.settings.project or getattr(credentials, "project_id", None) or "lakegate"
            self._client = storage.Client(project=project, credentials=credentials, client_options=options)
        return self._client

    def list_dir(self, directory: Location, start_after: str | None = None) -> list[ObjectInfo]:
        prefix = directory.path + "/" if directory.path else ""
        kwargs: dict[str, Any] = {"prefix": prefix, "delimiter": "/", **_brief()}
        if start_after:
            kwargs["start_offset"] = prefix + start_after
        infos = []
        try:
            for blob in self.client().list_blobs(directory.bucket, **kwargs):
                name = blob.name[len(prefix) :]
                if name and (start_after is None or name > start_after):
                    infos.append(ObjectInfo(name, int(blob.size or 0), int(blob.updated.timestamp() * 1000)))
        except Exception as exc:
            raise store_error(f"listing {directory.uri}/", exc) from exc
        return sorted(infos, key=lambda i: i.name)

    def read(self, location: Location) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            blob = self.client().bucket(location.bucket).blob(location.path)
            return bytes(blob.download_as_bytes(**_brief()))
        except NotFound:
            raise FileNotFoundError(location.uri) from None
        except Exception as exc:
            raise store_error(f"reading {location.uri}", exc) from exc

    def write(self, location: Location, data: bytes) -> None:
        try:
            self.client().bucket(location.bucket).blob(location.path).upload_from_string(data, **_brief())
        except Exception as exc:
            raise store_error(f"writing {location.uri}", exc) from exc

    # -- URL access ------------------------------------------------------------------------------------------

    def url_signer(self, request: SignRequest) -> UrlSigner:
        batch = self.signer().batch(
            max(1, request.expires_at_s - request.now_s), datetime.fromtimestamp(request.now_s, UTC)
        )
        return lambda location: batch(location.bucket, location.path)

    def signer(self) -> GcsUrlSigner:
        settings = self.settings
        if settings.hmac_access_id and settings.hmac_secret:
            return GcsUrlSigner(
                settings.endpoint, hmac_key=(settings.hmac_access_id, settings.hmac_secret.get_secret_value())
            )
        credentials = self.credentials()
        key_signer = getattr(credentials, "signer", None)
        email = getattr(credentials, "service_account_email", None)
        if key_signer is None or not email:
            raise StorageError(
                "signing GCS URLs needs an HMAC key (gcp.hmacAccessId/hmacSecret) or a "
                "service-account key file (gcp.serviceAccountKeyFile)"
            )
        return GcsUrlSigner(settings.endpoint, rsa=(email, key_signer.sign))
