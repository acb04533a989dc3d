"""Opening a shared table in directory mode: vended credentials -> deltalake storage options -> DeltaTable.

`SharedTable.table()` returns a DeltaTable whose credentials have at least `refresh_before_s` left, asking the
server for new ones (and reopening the table) when they run low; a DeltaTable object itself keeps the
credentials it was opened with, so long jobs should call `table()` again rather than keep one. GCS tokens go
through a loopback proxy (lakegate.client.gcs_proxy) because deltalake has no option for a bearer token;
there the refresh is transparent.

Tables that offer only URL access (or have auxiliary locations, which one DeltaTable cannot read with
separate credentials) are read by `load_as_pandas`/`load_as_pyarrow` through the official `delta-sharing`
client.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from lakegate.client.errors import CredentialError, DirectoryAccessUnavailable
from lakegate.client.profile import Profile, parse_table_url
from lakegate.client.rest import RestClient
from lakegate.cloud.locations import Location
from lakegate.exceptions import InvalidLocationError

_URL_HINT = "pip install 'lakegate[client]' (the official delta-sharing client reads URL-access tables)"


def storage_options(
    location: Location, credentials: dict[str, Any], proxy_url: str | None = None
) -> dict[str, str]:
    """deltalake (object_store) options for a vended credential."""
    if "awsTempCredentials" in credentials:
        aws = credentials["awsTempCredentials"]
        return {
            "AWS_ACCESS_KEY_ID": aws["accessKeyId"],
            "AWS_SECRET_ACCESS_KEY": aws["secretAccessKey"],
            "AWS_SESSION_TOKEN": aws["sessionToken"],
        }
    if "azureUserDelegationSas" in credentials:
        return {
            "account_name": location.account,
            "sas_token": credentials["azureUserDelegationSas"]["sasToken"],
        }
    if "gcpOauthToken" in credentials:
        if proxy_url is None:
            raise CredentialError("GCS credentials need the token proxy")
        return {"google_base_url": proxy_url, "google_skip_signature": "true", "allow_http": "true"}
    raise CredentialError(f"unknown credential type in {sorted(credentials)}")


def table_uri(location: Location) -> str:
    """The URI deltalake understands for a location (s3a/s3n and wasbs spellings normalized)."""
    return location.uri


class SharedTable:
    def __init__(
        self,
        url: str,
        storage_options: dict[str, str] | None = None,
        refresh_before_s: float = 300,
        client: RestClient | None = None,
    ) -> None:
        profile_path, self.ref = parse_table_url(url)
        self.client = client or RestClient(Profile.load(profile_path))
        self.extra_options = dict(storage_options or {})  # endpoints, regions, TLS settings of the recipient
        self.refresh_before_s = refresh_before_s
        self.metadata = self.client.table_metadata(self.ref)
        self._credentials: dict[str, Any] | None = None
        self._table: Any = None
        self._proxy: Any = None
        self._lock = threading.Lock()

    @property
    def access_modes(self) -> list[str]:
        return list(self.metadata.get("accessModes") or ["url"])

    @property
    def has_dir_access(self) -> bool:
        return (
            "dir" in self.access_modes
            and bool(self.metadata.get("location"))
            and not self.metadata.get("auxiliaryLocations")
        )

    @property
    def location(self) -> Location:
        try:
            return Location.parse(self.metadata["location"])
        except InvalidLocationError as exc:
            raise DirectoryAccessUnavailable(
                f"the server names a location this client cannot use: {exc}"
            ) from None

    def credentials(self) -> dict[str, Any]:
        """Vended credentials with at least `refresh_before_s` left (renewed when needed)."""
        with self._lock:
            return self._fresh_credentials()

    def _fresh_credentials(self) -> dict[str, Any]:
        if not self.has_dir_access:
            reason = (
                "has auxiliary locations"
                if self.metadata.get("auxiliaryLocations")
                else "offers URL access only"
            )
            raise DirectoryAccessUnavailable(
                f"table {self.ref.share}.{self.ref.schema}.{self.ref.name} {reason}"
            )
        now_ms = time.time() * 1000
        if (
            self._credentials is None
            or self._credentials["expirationTime"] - now_ms < self.refresh_before_s * 1000
        ):
            self._credentials = self.client.temporary_credentials(self.ref)
            self._table = None
        return self._credentials

    def table(self, version: int | None = None) -> Any:
        """A deltalake.DeltaTable of the shared table (at `version`, else the latest)."""
        from deltalake import DeltaTable

        with self._lock:
            credentials = self._fresh_credentials()
            cached = self._table if version is None else None
            location = self.location
        # Outside the lock: a GCS table's reads go through the proxy, which asks credentials() for the token.
        if cached is not None:
            cached.update_incremental()
            return cached
        proxy_url = self._gcs_proxy().url if "gcpOauthToken" in credentials else None
        options = {**storage_options(location, credentials, proxy_url), **self.extra_options}
        options.pop("google_upstream_url", None)
        table = DeltaTable(table_uri(location), version=version, storage_options=options)
        if version is None:
            with self._lock:
                self._table = table
        return table

    def _gcs_proxy(self) -> Any:
        from lakegate.client.gcs_proxy import TokenProxy

        with self._lock:
            if self._proxy is None:
                upstream = self.extra_options.get("google_upstream_url", "https://storage.googleapis.com")
                self._proxy = TokenProxy(upstream, lambda: self.credentials()["gcpOauthToken"]["oauthToken"])
            return self._proxy

    def close(self) -> None:
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None


def open_table(url: str, storage_options: dict[str, str] | None = None, version: int | None = None) -> Any:
    """A deltalake.DeltaTable for `PROFILE#share.schema.table`, opened with vended credentials.
    Raises DirectoryAccessUnavailable for URL-only tables (use load_as_pandas / load_as_pyarrow)."""
    return SharedTable(url, storage_options).table(version)


def load_as_pyarrow(
    url: str, storage_options: dict[str, str] | None = None, version: int | None = None
) -> Any:
    """The table as a pyarrow.Table: directory mode when offered, else URL mode through delta-sharing."""
    import pyarrow as pa

    table = _load_by_dir(url, storage_options, version)
    if table is not None:
        return table.to_pyarrow_table()
    return pa.Table.from_pandas(_load_by_url(url, version), preserve_index=False)


def load_as_pandas(
    url: str,
    storage_options: dict[str, str] | None = None,
    version: int | None = None,
    limit: int | None = None,
) -> Any:
    """The table as a pandas.DataFrame: directory mode when offered, else URL mode through delta-sharing. With
    `limit`, only that many rows, reading files one at a time until there are enough (not the whole table)."""
    table = _load_by_dir(url, storage_options, version)
    if table is None:
        return _load_by_url(url, version, limit)
    return table.to_pandas() if limit is None else first_rows(table, limit).to_pandas()


def first_rows(table: Any, limit: int) -> Any:
    """The first `limit` rows of a deltalake.DeltaTable as a pyarrow.Table, read one file after the other until
    there are enough. Each file is read to its end, on this thread, without pre-buffering: a scan stopped
    midway (`Dataset.head`) leaves reader threads inside deltalake's object store, and a read on Arrow's thread
    pools frees the Python buffers of deltalake's files on a pool thread after it returns; either crashes the
    interpreter at exit ("terminate called without an active exception", apache/arrow#33975)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        dataset = table.to_pyarrow_dataset()
    except Exception:  # noqa: BLE001  - reader features pyarrow's dataset cannot apply (deletion vectors…)
        return table.to_pyarrow_table().slice(0, limit)
    parts, rows = [], 0
    on_this_thread = ds.ParquetFragmentScanOptions(pre_buffer=False)  # pre-buffering reads on the I/O pool
    for fragment in dataset.get_fragments():
        if rows >= limit:
            break
        part = fragment.to_table(
            schema=dataset.schema, use_threads=False, fragment_scan_options=on_this_thread
        )
        parts.append(part)
        rows += part.num_rows
    return pa.concat_tables(parts).slice(0, limit) if parts else dataset.schema.empty_table()


def _load_by_dir(url: str, storage_options: dict[str, str] | None, version: int | None) -> Any:
    """The DeltaTable in directory mode, or None when the table must be read by URL."""
    shared = SharedTable(url, storage_options)
    return shared.table(version) if shared.has_dir_access else None


def _load_by_url(url: str, version: int | None, limit: int | None = None) -> Any:
    try:
        import delta_sharing
    except ImportError as exc:
        raise DirectoryAccessUnavailable(f"the table offers URL access only: {_URL_HINT}") from exc
    # `limit` goes to the server as limitHint (it answers only the files holding enough rows, by their stats),
    # and the client reads those one at a time until it has the rows.
    return delta_sharing.load_as_pandas(url, version=version, limit=limit)
