"""Storage locations: parse, normalize and compare the URIs tables live at.

One `Location` names a directory in one store: local disk (`/abs`, `file:///abs`), S3 (`s3://`, `s3a://`,
`s3n://` are the same store), Azure (`abfs[s]://container@account.dfs.core.windows.net/...`,
`wasb[s]://container@account.blob.core.windows.net/...`, `https://account.(blob|dfs).core.windows.net/container/...`)
and GCS (`gs://`). Containment is by whole path segments, so `tables/t1` never contains `tables/t1_old`.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from lakegate.exceptions import InvalidLocationError

_AZURE_HOST = re.compile(
    r"^(?P<account>[a-z0-9]{3,24})\.(?P<kind>blob|dfs)\.(?P<suffix>core\.windows\.net|.+)$", re.IGNORECASE
)
# The endpoint suffix as written in any Azure spelling (`core.windows.net`, a sovereign cloud, an emulator).
_AZURE_SUFFIX = re.compile(r"^[^@/]*@?[a-z0-9]{3,24}\.(?:blob|dfs)\.(?P<suffix>[^/:]+)", re.IGNORECASE)
_S3_SCHEMES = {"s3", "s3a", "s3n"}
_AZURE_SCHEMES = {"abfs", "abfss", "wasb", "wasbs"}


class Location(NamedTuple):
    """A normalized directory: `cloud` in {file, s3, gs, azure}; `path` has no leading or trailing '/'
    (for `file`, it is the absolute path without its leading '/').

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
            return cls("file", "", _clean_path(text, decode=False), original=uri)
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise InvalidLocationError(f"unsupported file URI host in location '{uri}'")
            return cls("file", "", _clean_path(parts.path), original=uri)
        if scheme in _S3_SCHEMES or scheme == "gs":
            if not parts.netloc:
                raise InvalidLocationError(f"location '{uri}' has no bucket")
            return cls(
                "s3" if scheme in _S3_SCHEMES else "gs", parts.netloc, _clean_path(parts.path), original=uri
            )
        if scheme in _AZURE_SCHEMES:
            container, _, host = parts.netloc.partition("@")
            match = _AZURE_HOST.match(host)
            if not container or not match:
                raise InvalidLocationError(
                    f"location '{uri}' is not container@account.(dfs|blob).core.windows.net"
                )
            return cls("azure", container, _clean_path(parts.path), match["account"].lower(), original=uri)
        if scheme in ("https", "http"):
            match = _AZURE_HOST.match(parts.hostname or "")
            container, _, rest = parts.path.lstrip("/").partition("/")
            if match and container:
                return cls("azure", container, _clean_path(rest), match["account"].lower(), original=uri)
        raise InvalidLocationError(f"unsupported storage location '{uri}'")

    @property
    def uri(self) -> str:
        """Canonical URI (`s3://`, `gs://`, `abfss://...dfs...`, `file:///`)."""
        if self.cloud == "file":
            return "file:///" + self.path
        if self.cloud == "azure":
            base = f"abfss://{self.bucket}@{self.account}.dfs.core.windows.net"
            return f"{base}/{self.path}" if self.path else base
        return f"{self.cloud}://{self.bucket}/{self.path}" if self.path else f"{self.cloud}://{self.bucket}"

    @property
    def endpoint(self) -> str:
        """The endpoint suffix of an Azure location as written (`core.windows.net`), lowercase; '' otherwise.
        Not a field: `account` names the store, but two locations are one directory only on one endpoint."""
        if self.cloud != "azure":
            return ""
        match = _AZURE_SUFFIX.match(self.original.split("://", 1)[-1])
        return match["suffix"].lower() if match else ""

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
        rel = _clean_path(relative, decode=False)
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


def _clean_path(path: str, decode: bool = True) -> str:
    """Decode %-escapes (URIs only), drop empty segments, refuse '.' and '..' (no escaping a table root)."""
    text = unquote(path) if decode else path
    if _FORBIDDEN.search(text):
        raise InvalidLocationError(f"location path '{path}' is not allowed")
    return _SLASHES.sub("/", text).strip("/")
