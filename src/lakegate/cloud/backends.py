"""The one table of clouds: one row per cloud, naming the package that exports its `BACKEND` (store and vendor
factories, directory-access rules, install hint) and its `SYNTAX` (how its URIs are parsed and written), and the
URI schemes it owns. `Location.parse` reads it to parse a URI; `StoreRegistry` and `VendorRegistry` read it
(through `lakegate.cloud.base.backend_for`) to serve and vend for a location.

Packages are imported on first use, so a server sharing only S3 tables never imports the Azure or Google
modules, and parsing a URI never imports a cloud SDK (a package's `SYNTAX` module imports none). Adding a cloud is
one package under `cloud/` exporting `BACKEND` and `SYNTAX`, and one row here.

This module imports nothing of lakegate: `locations` reads it, and every other module in `cloud/` imports
`locations`, so anything more here would be an import cycle.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import SplitResult


class Cloud(NamedTuple):
    package: str  # exports BACKEND and SYNTAX
    schemes: tuple[str, ...]  # the URI schemes it owns, lowercase


_CLOUDS = {
    "file": Cloud("lakegate.cloud.local", ("file",)),
    "s3": Cloud("lakegate.cloud.aws", ("s3", "s3a", "s3n")),
    "azure": Cloud("lakegate.cloud.azure", ("abfs", "abfss", "wasb", "wasbs", "https", "http")),
    "gs": Cloud("lakegate.cloud.gcp", ("gs",)),
}


def _no_endpoint(original: str) -> str:
    return ""


@dataclass(frozen=True)
class LocationSyntax:
    """How one cloud writes its locations. Lives in a module of the cloud's package that imports no SDK."""

    # (split URI, URI as written) -> (bucket, path cleaned by `locations.clean_path`, account);
    # raises InvalidLocationError for a URI of its scheme it cannot read.
    parse: Callable[[SplitResult, str], tuple[str, str, str]]
    # (bucket, path, account) -> the canonical URI.
    uri: Callable[[str, str, str], str]
    # The URI as written -> the endpoint it names, lowercase, where one store is reachable at several ('' if not).
    endpoint: Callable[[str], str] = _no_endpoint


# scheme or cloud -> (its row, the package's SYNTAX); checked against the table on each hit, so a row added or
# replaced later (a test's fake cloud) is read, not a stale one.
_SYNTAX_BY_SCHEME: dict[str, tuple[str, Cloud, LocationSyntax]] = {}
_SYNTAX_BY_CLOUD: dict[str, tuple[Cloud, LocationSyntax]] = {}


def package_for(cloud: str) -> Any | None:
    """The imported package of a cloud, or None if the table has no row for it."""
    row = _CLOUDS.get(cloud)
    return None if row is None else importlib.import_module(row.package)


def clouds() -> list[str]:
    return list(_CLOUDS)


def syntax_for_scheme(scheme: str) -> tuple[str, LocationSyntax] | None:
    """The cloud owning a URI scheme (lowercase) and its syntax, or None if no cloud owns it."""
    hit = _SYNTAX_BY_SCHEME.get(scheme)
    if hit is not None and _CLOUDS.get(hit[0]) is hit[1]:
        return hit[0], hit[2]
    for cloud, row in _CLOUDS.items():
        if scheme in row.schemes:
            syntax = _syntax(row)
            _SYNTAX_BY_SCHEME[scheme] = (cloud, row, syntax)
            return cloud, syntax
    return None


def syntax_for_cloud(cloud: str) -> LocationSyntax | None:
    """The syntax of a cloud (`Location.cloud`), or None if the table has no row for it."""
    row = _CLOUDS.get(cloud)
    if row is None:
        return None
    hit = _SYNTAX_BY_CLOUD.get(cloud)
    if hit is None or hit[0] is not row:
        hit = _SYNTAX_BY_CLOUD[cloud] = (row, _syntax(row))
    return hit[1]


def _syntax(row: Cloud) -> LocationSyntax:
    syntax = importlib.import_module(row.package).SYNTAX
    assert isinstance(syntax, LocationSyntax)
    return syntax
