"""Storage locations: parse, normalize and compare the URIs tables live at.

One `Location` names a directory in one store: local disk (`/abs`, `file:///abs`), S3 (`s3://`, `s3a://`,
`s3n://` are the same store), Azure (`abfs[s]://container@account.dfs.core.windows.net/...`,
`wasb[s]://container@account.blob.core.windows.net/...`, `https://account.(blob|dfs).core.windows.net/container/...`)
and GCS (`gs://`). Containment is by whole path segments, so `tables/t1` never contains `tables/t1_old`.

Each cloud parses and writes its own URIs (`SYNTAX` in its package); this module picks the cloud by the URI's
scheme in the one table of clouds (`lakegate.cloud.backends`) and keeps what is the same for all: path cleaning
and containment.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import SplitResult, unquote, urlsplit

from lakegate.cloud import backends
from lakegate.exceptions import InvalidLocationError


class Location(NamedTuple):
    """A normalized directory: `cloud` names a row of `cloud.backends` (file, s3, gs, azure); `path` has no
    leading or trailing '/' (for `file`, it is the absolute path without its leading '/').

    A NamedTuple rather than a frozen dataclass: one is made per data file on the hot path (3× cheaper)."""

    cloud: str
    bucket: str  # S3/GCS bucket, Azure container, "" for local disk
    path: str
    account: str = ""  # Azure storage account
    original: str = ""  # the URI as written in the configuration, for display

    @classmethod
    def parse(cls, uri: str) -> Location:
        """Parse a URI; raises InvalidLocationError if it is not a storage URL this server knows."""
        text = uri.strip()
        if not text:
            raise InvalidLocationError("location is empty")
        if text.startswith("/"):
            return cls("file", "", clean_path(text, decode=False), original=uri)  # a bare path is local disk
        parts = urlsplit(text)
        found = backends.syntax_for_scheme(parts.scheme.lower())
        if found is None:
            raise InvalidLocationError(f"unsupported storage location '{uri}'")
        cloud, syntax = found
        bucket, path, account = syntax.parse(parts, uri)
        return cls(cloud, bucket, path, account, original=uri)

    @property
    def uri(self) -> str:
        """Canonical URI (`s3://`, `gs://`, `abfss://...dfs...`, `file:///`)."""
        syntax = backends.syntax_for_cloud(self.cloud)
        if syntax is None:  # a cloud this server has no row for (a Location made by hand)
            return bucket_uri(self.cloud)(self.bucket, self.path, self.account)
        return syntax.uri(self.bucket, self.path, self.account)

    @property
    def endpoint(self) -> str:
        """The endpoint of the store as written (Azure: `core.windows.net`), lowercase; '' for
        clouds whose stores have only one.
        Not a field: `account` names the store, but two locations are one directory only on one endpoint."""
        syntax = backends.syntax_for_cloud(self.cloud)
        return syntax.endpoint(self.original) if syntax is not None and self.original else ""

    @property
    def display(self) -> str:
        return self.original or self.uri

    @property
    def local_path(self) -> str:
        if self.cloud != "file":
            raise ValueError("not a local location")
        return "/" + self.path

    def child(self, relative: str) -> Location:
        """The location `relative` (already URL-decoded, '/'-separated) below this one."""
        rel = clean_path(relative, decode=False)
        path = f"{self.path}/{rel}" if self.path and rel else (self.path or rel)
        return Location(self.cloud, self.bucket, path, self.account)

    def same_store(self, other: Location) -> bool:
        return (self.cloud, self.bucket, self.account) == (other.cloud, other.bucket, other.account)

    def contains(self, other: Location) -> bool:
        """True if `other` is this directory or below it (whole segments only)."""
        if not self.same_store(other):
            return False
        return not self.path or other.path == self.path or other.path.startswith(self.path + "/")

    def relative(self, other: Location) -> str:
        """`other`'s path relative to this directory (which must contain it)."""
        if not self.contains(other):
            raise ValueError(f"{other.uri} is not under {self.uri}")
        return other.path[len(self.path) :].lstrip("/") if self.path else other.path


_FORBIDDEN = re.compile(r"[\x00-\x1f]|(?:^|/)\.\.?(?:/|$)")
_SLASHES = re.compile(r"//+")


def clean_path(path: str, decode: bool = True) -> str:
    """Decode %-escapes (URIs only), drop empty segments, refuse '.' and '..' (no escaping a table root)."""
    text = unquote(path) if decode else path
    if _FORBIDDEN.search(text):
        raise InvalidLocationError(f"location path '{path}' is not allowed")
    return _SLASHES.sub("/", text).strip("/")


def bucket_path(parts: SplitResult, uri: str) -> tuple[str, str, str]:
    """`scheme://bucket/path`, the shape S3 and GCS share: (bucket, path, no account)."""
    if not parts.netloc:
        raise InvalidLocationError(f"location '{uri}' has no bucket")
    return parts.netloc, clean_path(parts.path), ""


def bucket_uri(scheme: str) -> Callable[[str, str, str], str]:
    """The canonical `scheme://bucket/path` writer for a cloud whose URIs have that shape."""

    def uri(bucket: str, path: str, account: str) -> str:
        return f"{scheme}://{bucket}/{path}" if path else f"{scheme}://{bucket}"

    return uri
