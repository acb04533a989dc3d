"""Checks made before a server starts, so that a provider's mistake is one line at start (exit 2) and never an
error a recipient meets later: every table and auxiliary location parses as a store lakegate serves, and the
extra an optional feature needs (`azure`, `gcp`, `postgres`) is installed when the configuration uses it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib.util import find_spec

import sqlalchemy as sa

from lakegate.catalog.db import Database
from lakegate.catalog.models import SCHEMAS, SHARES, TABLES
from lakegate.cloud.base import backend_for
from lakegate.cloud.locations import Location
from lakegate.config import ServerConfig
from lakegate.exceptions import ConfigError, InvalidLocationError

_DRIVER_EXTRAS = {"postgresql": "postgres"}


def installed(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def check_location(key: str, uri: str) -> Location:
    """The parsed location; ConfigError naming `key` if it is not one lakegate can serve here."""
    try:
        location = Location.parse(uri)
    except InvalidLocationError as exc:
        raise ConfigError(f"{key}: {exc.message}") from None
    backend = backend_for(location.cloud)
    if backend is None:
        raise ConfigError(f"{key}: tables on '{location.cloud}' storage are not supported")
    if not all(installed(m) for m in backend.sdk_modules):
        raise ConfigError(f"{key}: {location.cloud} support is not installed: {backend.install_hint}")
    return location


def config_locations(config: ServerConfig) -> Iterator[tuple[str, str]]:
    """(key, location) of every table and auxiliary location in the configuration file."""
    for share in config.shares:
        for schema in share.schemas:
            for table in schema.tables:
                key = f"shares[{share.name}].schemas[{schema.name}].tables[{table.name}]"
                yield f"{key}.location", table.location
                for i, aux in enumerate(table.auxiliary_locations):
                    yield f"{key}.auxiliaryLocations[{i}]", aux


def catalog_locations(db: Database) -> Iterator[tuple[str, str]]:
    """(key, location) of every table in the database, the ones created with the admin API included."""
    query = sa.select(
        SHARES.c.name, SCHEMAS.c.name, TABLES.c.name, TABLES.c.location, TABLES.c.auxiliary_locations
    ).select_from(
        TABLES.join(SCHEMAS, TABLES.c.schema_id == SCHEMAS.c.id).join(
            SHARES, SCHEMAS.c.share_id == SHARES.c.id
        )
    )
    with db.read() as conn:
        rows = conn.execute(query).all()
    for share, schema, table, location, auxiliary in rows:
        key = f"table {share}.{schema}.{table} (in the database)"
        yield f"{key}: location", location
        for i, aux in enumerate(auxiliary or ()):
            yield f"{key}: auxiliaryLocations[{i}]", aux


def check_locations(locations: Iterable[tuple[str, str]]) -> None:
    for key, uri in locations:
        check_location(key, uri)


def check_database_driver(url: sa.URL) -> None:
    """ConfigError naming the extra to install when the database's driver is missing."""
    try:
        url.get_dialect().import_dbapi()
    except ImportError:
        backend = url.get_backend_name()
        extra = _DRIVER_EXTRAS.get(backend)
        hint = (
            f"pip install 'lakegate[{extra}]'" if extra else f"install the driver '{url.get_driver_name()}'"
        )
        raise ConfigError(f"database: the {backend} driver is not installed: {hint}") from None
