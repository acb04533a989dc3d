"""Session-scoped pytest fixtures that start each real service once and stop it when the run ends.

Load with ``pytest_plugins = ["tests.services.fixtures"]``. A service is started only when a test asks for it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.azurite import AzuriteService
from tests.services.oidc import OpenIdProvider
from tests.services.postgres import PostgresService
from tests.services.rgw import RgwService


@pytest.fixture(scope="session")
def rgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RgwService]:
    service = RgwService.start(tmp_path_factory.mktemp("rgw"))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteService]:
    service = AzuriteService.start(tmp_path_factory.mktemp("azurite"))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresService]:
    # Not under pytest's tmp dir: that is mode 0700 for root, and as root the server runs as "postgres".
    workdir = Path(tempfile.mkdtemp(prefix="lakegate-pg-"))
    try:
        service = PostgresService.start(workdir)
        yield service
        service.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def oidc_provider() -> Iterator[OpenIdProvider]:
    """A fresh OpenID provider on loopback per test (its keys and hit counters are the test's own)."""
    provider = OpenIdProvider.start()
    yield provider
    provider.stop()
