"""A table location written relative to the configuration file (`location: tables/orders`) is the table beside
the file, whatever directory the server is started from."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lakegate.cli.main import app
from lakegate.config import load_config
from lakegate.server import build_app
from tests.inprocess import AppClient, ndjson
from tests.tables import build_plain


def test_relative_table_locations_resolve_beside_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "provider"
    build_plain(folder / "tables" / "orders", batches=2)
    build_plain(tmp_path / "lake" / "extra")
    token = "a-long-enough-bearer-token-for-the-test"
    config_path = folder / "server.yaml"
    table = {"name": "orders", "location": "tables/orders", "auxiliaryLocations": ["../lake/extra"]}
    config_path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "authorization": {"bearerToken": token},
                "warmUp": False,
                "shares": [{"name": "sales", "schemas": [{"name": "s", "tables": [table]}]}],
            }
        )
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    config = load_config(config_path)
    (location,) = [t.location for s in config.shares for sc in s.schemas for t in sc.tables]
    assert location == str(folder / "tables" / "orders")
    client = AppClient(build_app(config), token)
    try:
        lines = ndjson(client.post("/shares/sales/schemas/s/tables/orders/query", json={}))
    finally:
        client.close()
    assert sum("file" in line for line in lines) == 2

    shown = CliRunner().invoke(app, ["shares", "show", "sales", "-c", str(config_path)])
    assert shown.exit_code == 0, shown.output
    assert str(folder / "tables" / "orders") in shown.stdout
