"""Every catalog test runs twice: on a SQLite file and on a real PostgreSQL (tests/services/postgres.py)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakegate.catalog.db import Database
from tests.catalog.support import Clock

_databases = itertools.count()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    postgres = request.getfixturevalue("postgres")
    return postgres.create_database(f"catalog_{next(_databases)}")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()
