"""Helpers shared by the catalog tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lakegate.catalog import migrate
from lakegate.catalog.db import Database
from lakegate.config import ServerConfig, parse_config


class Clock:
    """A settable clock, so expiry and grace periods are tested without sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def config(**data: object) -> ServerConfig:
    return parse_config({"version": 1, **data})


def prepared(db: Database, **data: object) -> ServerConfig:
    """Migrate `db` and apply a configuration made of `data`, as a server start does."""
    settings = config(**data)
    migrate.migrate_and_sync(db, settings)
    return settings


SHARES: list[dict[str, Any]] = [
    {
        "name": "share1",
        "id": "11111111-1111-1111-1111-111111111111",
        "displayName": "Share One",
        "comment": "first",
        "properties": {"team": "data"},
        "schemas": [
            {
                "name": "default",
                "tables": [
                    {
                        "name": "sales",
                        "location": "/data/sales",
                        "historyShared": True,
                        "startVersion": 2,
                        "id": "00000000-0000-0000-0000-000000000001",
                    },
                    {
                        "name": "plain",
                        "location": "s3://bucket/plain",
                        "auxiliaryLocations": ["s3://other/plain"],
                    },
                ],
            }
        ],
    },
    {
        "name": "Share2",
        "schemas": [
            {"name": "s1", "tables": [{"name": "t1", "location": "/data/t1"}]},
            {"name": "s2", "tables": [{"name": "t2", "location": "/data/t2"}]},
        ],
    },
    {"name": "empty_share"},
]
