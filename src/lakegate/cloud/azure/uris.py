"""How Azure locations are written: `abfs[s]://container@account.dfs.core.windows.net/path`,
`wasb[s]://container@account.blob.core.windows.net/path` and `https://account.(blob|dfs).core.windows.net/container/path`
(any endpoint suffix: sovereign clouds, emulators). Imports no SDK: parsing a location never loads azure-*."""

from __future__ import annotations

import re
from urllib.parse import SplitResult

from lakegate.cloud.backends import LocationSyntax
from lakegate.cloud.locations import clean_path
from lakegate.exceptions import InvalidLocationError

_HOST = re.compile(
    r"^(?P<account>[a-z0-9]{3,24})\.(?P<kind>blob|dfs)\.(?P<suffix>core\.windows\.net|.+)$", re.IGNORECASE
)
# The endpoint suffix as written in any Azure spelling (`core.windows.net`, a sovereign cloud, an emulator).
_SUFFIX = re.compile(r"^[^@/]*@?[a-z0-9]{3,24}\.(?:blob|dfs)\.(?P<suffix>[^/:]+)", re.IGNORECASE)


def _parse(parts: SplitResult, uri: str) -> tuple[str, str, str]:
    if parts.scheme.lower() in ("https", "http"):
        match = _HOST.match(parts.hostname or "")
        container, _, rest = parts.path.lstrip("/").partition("/")
        if not match or not container:  # an https URL that is no Azure store
            raise InvalidLocationError(f"unsupported storage location '{uri}'")
        return container, clean_path(rest), match["account"].lower()
    container, _, host = parts.netloc.partition("@")
    match = _HOST.match(host)
    if not container or not match:
        raise InvalidLocationError(f"location '{uri}' is not container@account.(dfs|blob).core.windows.net")
    return container, clean_path(parts.path), match["account"].lower()


def _uri(container: str, path: str, account: str) -> str:
    base = f"abfss://{container}@{account}.dfs.core.windows.net"
    return f"{base}/{path}" if path else base


def _endpoint(original: str) -> str:
    match = _SUFFIX.match(original.split("://", 1)[-1])
    return match["suffix"].lower() if match else ""


SYNTAX = LocationSyntax(_parse, _uri, _endpoint)
