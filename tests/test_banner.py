"""The start-up banner names who can read each share, the recipients that see every share included."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.inprocess import start_app
from tests.tables import build_plain


def _banner(tmp_path: Path, caplog: pytest.LogCaptureFixture, token: str | None) -> list[str]:
    table = build_plain(tmp_path / "orders")
    shares = [
        {"name": "sales", "schemas": [{"name": "s", "tables": [{"name": "orders", "location": str(table)}]}]}
    ]
    with caplog.at_level(logging.INFO, logger="lakegate"):
        start_app(tmp_path, {"shares": shares}, token=token).close()
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("share 'sales' (")]


def test_the_configured_bearer_token_is_named_as_a_reader_of_every_share(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """authorization.bearerToken is the bootstrap recipient, which reads every share: 'none granted' was wrong."""
    assert _banner(tmp_path, caplog, "t" * 32) == [
        "share 'sales' (from the configuration; recipients: bootstrap (every share))"
    ]


def test_a_share_nobody_can_read_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert _banner(tmp_path, caplog, None) == [
        "share 'sales' (from the configuration; recipients: none granted)"
    ]
