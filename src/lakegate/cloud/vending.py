"""Directory access: which locations a recipient may ask credentials for, and who vends them.

    authorize_location   the requested location must be the table root or one of its auxiliary locations
    CredentialVendor     one per `storage:` entry and cloud; turns a location into a read-only credential
    CredentialCache      reuses a credential per (location, cloud identity) until half its life is spent
    VendorRegistry       picks the vendor for a location, or says that none is configured

Which cloud can vend, under which `storage:` settings, and how its vendor is made is each cloud's own
`Backend` (`lakegate.cloud.backends`); cloud SDKs are imported only when a vendor is first made.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from lakegate.cloud.base import CredentialVendor, TemporaryCredential, all_backends, backend_for
from lakegate.cloud.locations import Location
from lakegate.cloud.registry import StoreRegistry, not_installed
from lakegate.config import ServerConfig, StorageConfig
from lakegate.exceptions import (
    ConfigError,
    InvalidLocationError,
    InvalidParameterError,
    PermissionDeniedError,
    UnsupportedOperationError,
    VendingError,
)
from lakegate.inline import holding, must_not_block
from lakegate.metrics import CREDENTIAL_CACHE_HITS

log = logging.getLogger(__name__)

_NOT_A_URL = re.compile(r"[\x00-\x20\x7f]")  # control characters and spaces never appear in a storage URL
_MAX_LOCATION = 4096


# -- which location may be asked for -------------------------------------------------------------------------


def authorize_location(requested: object, root: Location, auxiliary: Sequence[Location]) -> Location:
    """The configured location (root or auxiliary) that `requested` names; None means the root.

    Equality after normalization (trailing slashes, s3/s3a/s3n, %-escapes, abfss/wasbs/https spellings of one
    Azure container) — never containment: a sub-directory, a parent, a sibling prefix, '..', a query string,
    another bucket, scheme, account or endpoint is refused with 403. Only a value that is not a URL at all is
    a 400.
    """
    if requested is None:
        return root
    if not isinstance(requested, str):
        raise InvalidParameterError("'location' must be a string")
    if not requested or len(requested) > _MAX_LOCATION or _NOT_A_URL.search(requested):
        raise InvalidParameterError("'location' is not a storage URL")
    try:
        parts = urlsplit(requested)
    except ValueError:
        raise InvalidParameterError("'location' is not a storage URL") from None
    if not parts.scheme and not requested.startswith("/"):
        raise InvalidParameterError("'location' is not a storage URL")
    denied = PermissionDeniedError(
        "The requested location is not this table's location or one of its auxiliary locations."
    )
    if parts.query or parts.fragment or "?" in requested or "#" in requested:
        raise denied
    try:
        wanted = Location.parse(requested)
    except InvalidLocationError:  # a URL, but not one of a store we know, or with '..' in it
        raise denied from None
    for candidate in (root, *auxiliary):
        if _same_directory(wanted, candidate):
            return candidate
    raise denied


def _same_directory(a: Location, b: Location) -> bool:
    return _directory(a) == _directory(b)


def _directory(location: Location) -> tuple[str, ...]:
    return location.cloud, location.bucket, location.account, location.path, location.endpoint


# -- caching -------------------------------------------------------------------------------------------------


class CredentialCache:
    """Vended credentials per (location, identity), reused until half their life is spent, and never handed
    out with less than `minimum_s` left. One vend at a time per key: a burst of requests makes one STS call.
    """

    def __init__(self, minimum_s: int, clock: Callable[[], float] = time.time) -> None:
        self._minimum_s = minimum_s
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[float, TemporaryCredential]] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def now(self) -> float:
        """The cache's clock (what `lease` deadlines are in)."""
        return self._clock()

    def get(self, location: Location, vendor: CredentialVendor) -> TemporaryCredential:
        return self.get_all([location], vendor)

    def get_all(self, locations: Sequence[Location], vendor: CredentialVendor) -> TemporaryCredential:
        """One credential for exactly `locations` (`CredentialVendor.vend_all`)."""
        return self.lease(locations, vendor)[0]

    def lease(
        self, locations: Sequence[Location], vendor: CredentialVendor
    ) -> tuple[TemporaryCredential, float]:
        """`get_all`'s credential, and until when (`now()`) this cache would hand it out again: a caller may
        keep what it made of it (an encoded answer) until then."""
        key = (" ".join(location.uri for location in locations), vendor.identity)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with holding(lock):  # on the event loop (lakegate.inline), a vend in progress is not waited for
            entry = self._entries.get(key)
            now = self._clock()
            if entry is not None and now < self._fresh_until(entry):
                CREDENTIAL_CACHE_HITS.inc()
                return entry[1], self._fresh_until(entry)
            must_not_block()  # a call to the cloud
            credential = vendor.vend_all(locations)
            now = self._clock()
            if credential.remaining_s(now) < self._minimum_s:
                raise VendingError(
                    f"the cloud issued a credential valid for {int(credential.remaining_s(now))} s, less "
                    f"than minimumCredentialSeconds ({self._minimum_s}); the server's settings need fixing"
                )
            self._entries[key] = (now, credential)
            return credential, self._fresh_until((now, credential))

    def _fresh_until(self, entry: tuple[float, TemporaryCredential]) -> float:
        """Until half the credential's life is spent, and while it has at least `minimum_s` left."""
        issued, credential = entry
        expires = credential.expiration_ms / 1000
        return min(issued + (expires - issued) / 2, expires - self._minimum_s)


# -- which vendor serves a location --------------------------------------------------------------------------


class VendorRegistry:
    """One vendor per (cloud, `storage:` entry), created on first use; `problem()` says, without importing any
    SDK, why a location cannot get credentials (None when it can)."""

    def __init__(self, config: ServerConfig, stores: StoreRegistry) -> None:
        self._config = config
        self._stores = stores  # Azure and GCS vendors share the stores' clients and keys
        self._vendors: dict[tuple[str, int], CredentialVendor] = {}
        self._lock = threading.Lock()
        self.cache = CredentialCache(config.minimum_credential_seconds)
        self._check_durations()

    def problem(self, location: Location) -> str | None:
        backend = backend_for(location.cloud)
        if backend is None:
            return f"'{location.cloud}' locations cannot be shared by directory"
        return backend.vendor_problem(location, self._stores.settings_for(location))

    def credential(self, location: Location) -> TemporaryCredential:
        return self.lease(location)[0]

    def lease(self, location: Location) -> tuple[TemporaryCredential, float]:
        """The location's credential and until when the cache hands it out again (`CredentialCache.lease`)."""
        problem = self.problem(location)
        if problem is not None:
            raise UnsupportedOperationError(f"Directory access is not available for this table: {problem}.")
        return self.cache.lease([location], self.vendor_for(location))

    def credentials(
        self, locations: Sequence[Location]
    ) -> list[tuple[tuple[Location, ...], TemporaryCredential]]:
        """Credentials reading `locations` together, each with the locations it covers: one per cloud identity
        (role, service account…) where the cloud can scope one credential to several directories, else one per
        location. Clients that take a single credential for a table (PyIceberg) need the one."""
        groups: dict[tuple[str, str], tuple[CredentialVendor, list[Location]]] = {}
        for location in locations:
            problem = self.problem(location)
            if problem is not None:
                raise UnsupportedOperationError(
                    f"Directory access is not available for this table: {problem}."
                )
            vendor = self.vendor_for(location)
            groups.setdefault((location.cloud, vendor.identity), (vendor, []))[1].append(location)
        out: list[tuple[tuple[Location, ...], TemporaryCredential]] = []
        for vendor, group in groups.values():
            if vendor.covers_many:
                out.append((tuple(group), self.cache.get_all(group, vendor)))
            else:
                out += [((location,), self.cache.get(location, vendor)) for location in group]
        return out

    def vendor_for(self, location: Location) -> CredentialVendor:
        settings = self._stores.settings_for(location)
        key = (location.cloud, id(settings))
        with self._lock:
            vendor = self._vendors.get(key)
            if vendor is None:
                must_not_block()  # creating a vendor may create an SDK client
                vendor = self._vendors[key] = self._create(location, settings)
            return vendor

    def _create(self, location: Location, settings: StorageConfig | None) -> CredentialVendor:
        backend = backend_for(location.cloud)
        if backend is None or backend.make_vendor is None:
            raise UnsupportedOperationError(f"'{location.cloud}' locations cannot be shared by directory")
        assert settings is not None  # problem() returned None
        try:
            return backend.make_vendor(settings, lambda: self._stores.store_for(location), self._config)
        except ImportError as exc:
            raise not_installed(backend) from exc

    def _check_durations(self) -> None:
        """A vendor set to issue credentials shorter than the minimum could never answer: say so now."""
        minimum = self._config.minimum_credential_seconds
        for entry in self._config.storage:
            for backend in all_backends():
                lifetime = (
                    backend.credential_lifetime(entry, self._config) if backend.credential_lifetime else None
                )
                if lifetime is None:
                    continue
                name, seconds = lifetime
                if seconds <= minimum:
                    raise ConfigError(
                        f"storage[{entry.location}]: {name} ({seconds}) must exceed "
                        f"minimumCredentialSeconds ({minimum})"
                    )
