"""What every cloud offers the rest of the server: a store (list and read a table's files, sign URLs for them)
and a credential vendor (temporary read credentials for a directory).

Cloud SDKs are imported only inside `lakegate.cloud.<name>`, lazily, so a provider who shares only S3 tables
needs no Azure or Google packages installed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lakegate._arrow import strings
from lakegate.cloud import backends
from lakegate.cloud.locations import Location
from lakegate.config import ServerConfig, StorageConfig
from lakegate.keys import KeyRing


@dataclass(frozen=True)
class ObjectInfo:
    name: str  # file name inside the listed directory
    size: int
    mtime_ms: int


@dataclass(frozen=True)
class SignRequest:
    """What a signer needs to know beyond the file: when URLs expire and, for files served by lakegate
    itself, the public base URL and the table the files belong to."""

    expires_at_s: int
    now_s: int
    base_url: str = ""
    table_path: str = ""  # "share/schema/table", for lakegate's own file URLs
    root: Location | None = None
    auxiliary: tuple[Location, ...] = ()  # the table's other storage roots (files signed by their own stores)


UrlSigner = Callable[[Location], str]


class ObjectStore(ABC):
    @abstractmethod
    def list_dir(self, directory: Location, start_after: str | None = None) -> list[ObjectInfo]:
        """Files directly in `directory` whose names sort after `start_after`, sorted by name.
        A missing directory lists as empty."""

    @abstractmethod
    def read(self, location: Location) -> bytes:
        """The whole object; raises FileNotFoundError if it does not exist."""

    @abstractmethod
    def url_signer(self, request: SignRequest) -> UrlSigner:
        """A function giving a pre-signed GET URL for a file location, valid until `request.expires_at_s`."""

    @abstractmethod
    def write(self, location: Location, data: bytes) -> None:
        """Create or replace one object. lakegate writes only files it generates itself (Iceberg metadata,
        under the configured `iceberg.metadataLocation`), never a table's own files."""

    def reader(self, location: Location) -> pa.NativeFile | None:
        """A seekable reader of the object, for decoders that read parts of it (a parquet checkpoint's column
        chunks, a buffer at a time, instead of the whole file in memory first); None where the store reads
        whole objects only (`read`). Raises FileNotFoundError if the object does not exist."""
        return None

    def signing_deadline(self, location: Location, wanted_s: int) -> int | None:
        """The second (epoch) at which URLs this store signs now for `location`, asked to last until `wanted_s`,
        stop working whatever expiry they name: the expiry of its signing credentials when they are temporary;
        None when they do not expire."""
        return None

    def relative_signer(self, request: SignRequest, root: Location) -> Callable[[str], str]:
        """`url_signer` for paths below `root` (the hot path: 100k+ calls per answer, no Location per file).
        Stores override it where they can sign a relative path more cheaply."""
        sign = self.url_signer(request)
        prefix = root.path + "/" if root.path else ""
        cloud, bucket, account = root.cloud, root.bucket, root.account
        return lambda relative: sign(Location(cloud, bucket, prefix + relative, account))

    def batch_urls_json_safe(self, request: SignRequest) -> bool:
        """Whether every URL `relative_batch_signer` makes for `request` is sure to hold no character a JSON
        string escapes (the answer then need not look for one in each URL)."""
        return False

    def relative_batch_signer(self, request: SignRequest, root: Location) -> Callable[[pa.Array], pa.Array]:
        """`relative_signer` for a string column of paths, giving a string column of URLs (stores that can share
        work across URLs override it)."""
        sign = self.relative_signer(request, root)
        return lambda relatives: pa.array([sign(r) for r in strings(relatives)], pa.string())


@dataclass(frozen=True)
class TemporaryCredential:
    """A read-only credential for one directory, in the protocol's shape (`credentials` of the answer)."""

    location: str  # the table location as configured (root or auxiliary)
    kind: str  # awsTempCredentials | azureUserDelegationSas | gcpOauthToken
    secret: dict[str, str] = field(repr=False)  # never logged
    expiration_ms: int

    def to_json(self) -> dict[str, Any]:
        return {"location": self.location, self.kind: dict(self.secret), "expirationTime": self.expiration_ms}

    def remaining_s(self, now_s: float) -> float:
        return self.expiration_ms / 1000 - now_s


class CredentialVendor(ABC):
    @property
    @abstractmethod
    def identity(self) -> str:
        """What the credential derives from (role, service account, storage account + principal): part of the
        cache key, so two storage entries with different identities never share a credential. No secret."""

    @abstractmethod
    def vend(self, location: Location) -> TemporaryCredential:
        """A read-only credential scoped to `location` and nothing else; raises VendingError."""

    # Whether `vend_all` gives one credential for several directories (a session policy or an access
    # boundary lists them); where it cannot (an Azure SAS names one directory), each gets its own.
    covers_many = False

    def vend_all(self, locations: Sequence[Location]) -> TemporaryCredential:
        """One read-only credential scoped to exactly `locations` (several only where `covers_many`)."""
        if len(locations) != 1:
            raise ValueError(f"{type(self).__name__} vends a credential for one directory at a time")
        return self.vend(locations[0])


@dataclass(frozen=True)
class Backend:
    """Everything the server knows about one cloud, exported as `BACKEND` by its package (`cloud/<name>/`) and
    listed once in `lakegate.cloud.backends` (with its URI schemes; its `SYNTAX` parses them). The factories
    import the cloud's SDK; the rest must not."""

    cloud: str  # Location.cloud
    install_hint: str  # what to install when the factories raise ImportError ("" if nothing can be missing)
    # The store reading and signing this cloud's locations, for their `storage:` entry (None: defaults).
    make_store: Callable[[StorageConfig | None, KeyRing], ObjectStore]
    # The credential vendor for a `storage:` entry (directory access); None if the cloud has none. Gets the
    # entry's store lazily (some vendors sign with the store's clients and keys).
    make_vendor: (
        Callable[[StorageConfig, Callable[[], ObjectStore], ServerConfig], CredentialVendor] | None
    ) = None
    # Why a location of this cloud cannot get credentials under its `storage:` entry, or None if it can.
    dir_access_problem: Callable[[Location, StorageConfig | None], str | None] | None = None
    # The lifetime of the credentials a `storage:` entry's vendor issues, as (setting name, seconds), or None.
    credential_lifetime: Callable[[StorageConfig, ServerConfig], tuple[str, int] | None] | None = None
    # The modules the factories import that an optional extra provides: checked at start (lakegate.preflight)
    # without importing them, so a missing extra is one line at start, not an error on the first request.
    sdk_modules: tuple[str, ...] = ()

    def vendor_problem(self, location: Location, settings: StorageConfig | None) -> str | None:
        if self.make_vendor is None or self.dir_access_problem is None:
            return f"'{self.cloud}' locations cannot be shared by directory"
        return self.dir_access_problem(location, settings)


def backend_for(cloud: str) -> Backend | None:
    """The backend of a cloud (its row in `lakegate.cloud.backends`), or None if this server has none for it."""
    package = backends.package_for(cloud)
    if package is None:
        return None
    backend = package.BACKEND
    assert isinstance(backend, Backend)
    assert backend.cloud == cloud
    return backend


def all_backends() -> list[Backend]:
    found = [backend_for(cloud) for cloud in backends.clouds()]
    return [b for b in found if b is not None]
