"""Warm-up: tables are loaded in the background at start, so the first query finds them cached."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lakegate.config import parse_config
from lakegate.server import build_services
from lakegate.service.warmup import warm_up
from tests.tables import build_plain


def test_warm_up_loads_up_to_the_cache_size(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tables = [{"name": f"t{i}", "location": build_plain(tmp_path / f"t{i}")} for i in range(3)]
    tables.append({"name": "broken", "location": str(tmp_path / "no-such-table")})
    config = parse_config(
        {
            "version": 1,
            "database": f"sqlite:///{tmp_path}/db.sqlite",
            "deltaTableCacheSize": 10,
            "authorization": {"bearerToken": "x" * 20},
            "shares": [{"name": "s", "schemas": [{"name": "d", "tables": tables}]}],
        }
    )
    services = build_services(config)
    assert warm_up(services.context, 2) == 2
    with caplog.at_level(logging.INFO, logger="lakegate.warmup"):
        assert warm_up(services.context, 10) == 3  # the broken table is skipped, not fatal
    # ...and named in a warning, so the provider sees it at start rather than on a recipient's first query
    skipped = [r for r in caplog.records if r.name == "lakegate.warmup" and "s.d.broken" in r.getMessage()]
    assert [r.levelno for r in skipped] == [logging.WARNING]
    snapshots = services.context.snapshots
    misses = snapshots.misses
    services.context.snapshots.latest(services.context.resolve(None, "s", "d", "t0").root)
    assert snapshots.misses == misses  # already loaded
