"""`make run`'s demo turns the console on and prints an admin token that signs in; a second run reuses it."""

from __future__ import annotations

from pathlib import Path

import yaml

from lakegate.catalog.admins import AdminTokens
from lakegate.catalog.migrate import open_database
from lakegate.config import load_config
from lakegate.demo import build_demo, demo_admin_token


def test_the_demo_has_the_console_and_a_lasting_admin_token(tmp_path: Path) -> None:
    config_path, _, _ = build_demo(tmp_path / "demo", port=18080)
    assert yaml.safe_load(config_path.read_text())["console"] == {"enabled": True}
    token = demo_admin_token(config_path)
    build_demo(tmp_path / "demo", port=18080)
    assert demo_admin_token(config_path) == token  # the same token after a restart
    assert (tmp_path / "demo" / "admin-token").stat().st_mode & 0o077 == 0  # owner-only
    db = open_database(load_config(config_path))
    try:
        assert AdminTokens(db).authenticate(token) == "demo"
        AdminTokens(db).revoke("demo")
    finally:
        db.close()
    fresh = demo_admin_token(config_path)  # a revoked token is replaced
    assert fresh != token
