"""One table of clouds (`lakegate.cloud.backends`): `Location.parse` and both the store and the vendor registries
read it, so a cloud is added with one package exporting `BACKEND` and `SYNTAX` and one row."""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Callable

import pytest

from lakegate.cloud import backends
from lakegate.cloud.backends import Cloud, LocationSyntax
from lakegate.cloud.base import Backend, CredentialVendor, ObjectStore, backend_for
from lakegate.cloud.locations import Location, bucket_path, bucket_uri
from lakegate.cloud.registry import StoreRegistry
from lakegate.cloud.vending import VendorRegistry
from lakegate.config import ServerConfig, StorageConfig, parse_config
from lakegate.exceptions import InvalidLocationError, StorageError
from lakegate.keys import KeyRing

EVERY_KIND = ["/data/t", "s3://b/t", "gs://b/t", "abfss://c@acct.dfs.core.windows.net/t"]


@pytest.mark.parametrize("uri", EVERY_KIND)
def test_every_location_the_parser_knows_has_a_backend(uri: str) -> None:
    cloud = Location.parse(uri).cloud
    backend = backend_for(cloud)
    assert backend is not None and backend.cloud == cloud
    assert backend.install_hint or cloud == "file"  # a cloud needing an SDK says how to install it


def _missing_sdk(settings: StorageConfig | None, *_: object) -> ObjectStore:
    raise ImportError("No module named 'fakecloud_sdk'")


def _vendor(
    settings: StorageConfig, store: Callable[[], ObjectStore], config: ServerConfig
) -> CredentialVendor:
    raise ImportError("No module named 'fakecloud_sdk'")


def _needs_an_entry(location: Location, settings: StorageConfig | None) -> str | None:
    return None if settings is not None else "no storage entry names it"


@pytest.fixture
def fake_cloud(monkeypatch: pytest.MonkeyPatch) -> Location:
    """A new cloud, added as a package would add it: a module exporting BACKEND and SYNTAX, and one table row.
    Nothing else in lakegate learns of it."""
    module = types.ModuleType("fakecloud_backend")
    module.BACKEND = Backend(  # type: ignore[attr-defined]
        "fake", "pip install fakecloud-sdk", _missing_sdk, _vendor, _needs_an_entry
    )
    module.SYNTAX = LocationSyntax(bucket_path, bucket_uri("fake"))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fakecloud_backend", module)
    monkeypatch.setitem(backends._CLOUDS, "fake", Cloud("fakecloud_backend", ("fake", "fake2")))
    return Location.parse("fake2://bucket/table")


def test_a_new_cloud_parses_its_own_schemes(fake_cloud: Location) -> None:
    assert fake_cloud == Location("fake", "bucket", "table", original="fake2://bucket/table")
    assert Location.parse("FAKE://bucket/a%20b/").path == "a b"  # the generic path cleaning applies
    assert fake_cloud.uri == "fake://bucket/table"  # its canonical form, from its own syntax
    assert Location.parse("fake://bucket/").contains(fake_cloud)
    with pytest.raises(InvalidLocationError, match="location 'fake://' has no bucket"):
        Location.parse("fake://")


def test_a_scheme_is_unknown_once_its_row_is_gone(
    monkeypatch: pytest.MonkeyPatch, fake_cloud: Location
) -> None:
    monkeypatch.delitem(backends._CLOUDS, "fake")
    with pytest.raises(InvalidLocationError, match="unsupported storage location 'fake://bucket/t'"):
        Location.parse("fake://bucket/t")


def test_both_registries_read_the_one_table(fake_cloud: Location) -> None:
    config = parse_config({"version": 1, "storage": [{"location": "fake://bucket/"}]})
    stores = StoreRegistry(config, KeyRing.random())
    vendors = VendorRegistry(config, stores)
    assert vendors.problem(fake_cloud._replace(bucket="other")) == "no storage entry names it"
    with pytest.raises(
        StorageError, match=r"support for fake is not installed \(pip install fakecloud-sdk\)"
    ):
        stores.store_for(fake_cloud)
    assert vendors.problem(fake_cloud) is None  # the backend's own rule
    with pytest.raises(
        StorageError, match=r"support for fake is not installed \(pip install fakecloud-sdk\)"
    ):
        vendors.credential(fake_cloud)


def test_a_cloud_without_a_vendor_has_no_directory_access() -> None:
    config = parse_config({"version": 1})
    vendors = VendorRegistry(config, StoreRegistry(config, KeyRing.random()))
    assert vendors.problem(Location.parse("/data/t")) == "'file' locations cannot be shared by directory"
    assert (
        vendors.problem(Location("nowhere", "b", "t")) == "'nowhere' locations cannot be shared by directory"
    )


def test_parsing_a_location_imports_no_cloud_sdk() -> None:
    """Each cloud's SYNTAX lives apart from its SDK: a fresh interpreter parses every kind of location and has
    loaded neither boto3 nor azure-* nor google-*."""
    code = (
        "import sys\n"
        "from lakegate.cloud.locations import Location\n"
        f"for uri in {[*EVERY_KIND, 'https://acct.blob.core.windows.net/c/t']!r}:\n"
        "    print(Location.parse(uri).uri)\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'azure', 'google')]\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "file:///data/t",
        "s3://b/t",
        "gs://b/t",
        "abfss://c@acct.dfs.core.windows.net/t",
        "abfss://c@acct.dfs.core.windows.net/t",
        "[]",
    ]


def test_locations_derived_from_a_table_use_its_storage_entry_however_it_is_spelled() -> None:
    """Children of a table root (its log, deletion vectors, generated Iceberg metadata) carry only the canonical
    URI (`s3://`, `abfss://…dfs…`); an entry written `s3a://bucket/` or `wasbs://` still names their store, the
    most specific one first."""
    config = parse_config(
        {
            "version": 1,
            "storage": [
                {"location": "s3a://", "aws": {"region": "eu-west-1"}},
                {"location": "s3a://data/", "aws": {"region": "us-east-2"}},
                {"location": "wasbs://", "azure": {"accountKey": "a2V5"}},
            ],
        }
    )
    stores = StoreRegistry(config, KeyRing.random())

    def region(uri: str, child: str) -> str | None:
        settings = stores.settings_for(Location.parse(uri).child(child))
        return settings.aws.region if settings and settings.aws else None

    assert region("s3a://data/tables/t", "_delta_log") == "us-east-2"
    assert region("s3a://other/t", "deletion_vector_x.bin") == "eu-west-1"
    azure = stores.settings_for(Location.parse("wasbs://c@acct.blob.core.windows.net/t").child("_x"))
    assert azure is not None and azure.azure is not None
    assert stores.settings_for(Location.parse("gs://data/t").child("_delta_log")) is None
