"""The one table of clouds: `Location.cloud` -> the package exporting its `Backend` (store and vendor factories,
directory-access rules, install hint). Both `StoreRegistry` and `VendorRegistry` read it.

Packages are imported on first use, so a server sharing only S3 tables never imports the Azure or Google
modules. Adding a cloud is one package under `cloud/` exporting `BACKEND` and one row here.
"""

from __future__ import annotations

import importlib

from lakegate.cloud.base import Backend

_BACKENDS = {
    "file": "lakegate.cloud.local",
    "s3": "lakegate.cloud.aws",
    "azure": "lakegate.cloud.azure",
    "gs": "lakegate.cloud.gcp",
}


def backend_for(cloud: str) -> Backend | None:
    """The backend of a cloud, or None if this server has none for it."""
    module = _BACKENDS.get(cloud)
    if module is None:
        return None
    backend = importlib.import_module(module).BACKEND
    assert isinstance(backend, Backend)
    assert backend.cloud == cloud
    return backend


def all_backends() -> list[Backend]:
    found = [backend_for(cloud) for cloud in _BACKENDS]
    return [b for b in found if b is not None]
