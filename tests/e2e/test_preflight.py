"""Start-up checks: a table location lakegate cannot serve, or an optional feature used without its extra, stops
`lakegate serve` with one line naming the key (exit 2), instead of reaching recipients later.

"Without the extra" is a subprocess whose imports of that extra's packages fail (a meta-path finder installed by
sitecustomize), as on a plain `pip install lakegate`; scripts/smoke-wheel.sh starts a real plain install.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from lakegate.catalog.shares import Shares
from lakegate.exceptions import InvalidParameterError
from tests.e2e.server import start_server, wait_for
from tests.tables import build_plain

BLOCKER = """
import sys

BLOCKED = {blocked!r}


class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _Absent())
"""


def _write_config(tmp_path: Path, tables: list[dict], **extra: object) -> Path:
    config = {
        "version": 1,
        "shares": [{"name": "sh", "schemas": [{"name": "sc", "tables": tables}]}],
        **extra,
    }
    path = tmp_path / "server.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _lakegate(tmp_path: Path, args: list[str], without: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if without:
        site = tmp_path / "site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=set(without)))
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "lakegate", *args], capture_output=True, text=True, timeout=60, env=env
    )


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize(
    ("table", "key", "fragment"),
    [
        (
            {"name": "t", "location": "s3x://provider-bucket/t"},
            "shares[sh].schemas[sc].tables[t].location",
            "unsupported storage location",
        ),
        (
            {"name": "t", "location": "/data/t", "auxiliaryLocations": ["/data/u", "s3:///no-bucket"]},
            "shares[sh].schemas[sc].tables[t].auxiliaryLocations[1]",
            "has no bucket",
        ),
        (
            {"name": "t", "location": "abfss://c@nohost/t"},
            "shares[sh].schemas[sc].tables[t].location",
            "is not container@account",
        ),
    ],
)
def test_unservable_location_stops_start(tmp_path: Path, table: dict, key: str, fragment: str) -> None:
    error = _one_error_line(_lakegate(tmp_path, ["serve", "--config", str(_write_config(tmp_path, [table]))]))
    assert error.startswith(f"error: {key}: ") and fragment in error
    # checked before the database is even opened: nothing reached it, so nothing can reach a recipient
    assert not list(tmp_path.glob("*.db"))


@pytest.mark.parametrize(
    ("location", "blocked", "extra"),
    [
        ("abfss://c@account.dfs.core.windows.net/t", ("azure",), "azure"),
        ("gs://bucket/t", ("google",), "gcp"),
    ],
)
def test_cloud_table_without_its_extra_names_the_extra(
    tmp_path: Path, location: str, blocked: tuple[str, ...], extra: str
) -> None:
    config = _write_config(tmp_path, [{"name": "t", "location": location}])
    error = _one_error_line(_lakegate(tmp_path, ["serve", "--config", str(config)], without=blocked))
    assert error.startswith("error: shares[sh].schemas[sc].tables[t].location: ")
    assert f"pip install 'lakegate[{extra}]'" in error


def test_postgres_database_without_the_extra_names_the_extra(tmp_path: Path) -> None:
    config = _write_config(tmp_path, [], database="postgresql://lakegate@127.0.0.1:1/lakegate")
    error = _one_error_line(_lakegate(tmp_path, ["serve", "--config", str(config)], without=("psycopg",)))
    assert error.startswith("error: database: ") and "pip install 'lakegate[postgres]'" in error


def test_table_in_the_database_is_checked_too(tmp_path: Path) -> None:
    """A table added with the admin API while the azure extra was installed; then a start without it."""
    config = _write_config(tmp_path, [])
    assert _lakegate(tmp_path, ["shares", "create", "live", "--config", str(config)]).returncode == 0
    added = _lakegate(
        tmp_path,
        ["tables", "add", "live.s.t", "abfss://c@account.dfs.core.windows.net/t", "--config", str(config)],
    )
    assert added.returncode == 0, added.stderr
    error = _one_error_line(_lakegate(tmp_path, ["serve", "--config", str(config)], without=("azure",)))
    assert error.startswith("error: table live.s.t (in the database): location: ")
    assert "pip install 'lakegate[azure]'" in error


def test_admin_api_refuses_a_location_it_cannot_serve(tmp_path: Path) -> None:
    config = _write_config(tmp_path, [])
    assert _lakegate(tmp_path, ["shares", "create", "live", "--config", str(config)]).returncode == 0
    added = _lakegate(
        tmp_path, ["tables", "add", "live.s.t", "s3x://provider-bucket/t", "--config", str(config)]
    )
    assert added.returncode != 0 and "unsupported storage location" in added.stderr
    assert "Traceback" not in added.stderr


def test_shares_add_table_checks_every_location_before_writing(tmp_path: Path) -> None:
    from lakegate.catalog.migrate import open_database
    from lakegate.config import load_config

    db = open_database(load_config(_write_config(tmp_path, [])))
    try:
        shares = Shares(db)
        shares.create("live", None, None, {})
        with pytest.raises(InvalidParameterError, match="unsupported storage location"):
            shares.add_table("live", "s", "t", "/data/t", auxiliary_locations=["s3x://b/t"])
        assert shares.show("live")["tableCount"] == 0
    finally:
        db.close()


def test_location_broken_after_start_is_a_500_without_the_path(tmp_path: Path) -> None:
    """The database changed behind the running server's back: the recipient gets a 5xx, never the path."""
    table = build_plain(tmp_path / "t")
    server = start_server(
        tmp_path / "server",
        {
            "shares": [
                {"name": "sh", "schemas": [{"name": "sc", "tables": [{"name": "t", "location": table}]}]}
            ]
        },
    )
    try:
        query = f"{server.endpoint}/shares/sh/schemas/sc/tables/t/query"
        assert httpx.post(query, json={}, headers=server.headers()).status_code == 200
        with sqlite3.connect(server.workdir / "lakegate.db") as conn:
            conn.execute("UPDATE share_tables SET location = 's3x://provider-bucket/secret-path'")
        # A change made beside lakegate counts once the remembered table expires (catalogCacheSeconds, 1 s).
        changed = time.monotonic()
        wait_for(
            lambda: httpx.post(query, json={}, headers=server.headers()).status_code != 200,
            "the changed location never took effect",
            timeout=10,
        )
        assert time.monotonic() - changed <= 1.0 + 0.5
        for call in (
            lambda: httpx.post(query, json={}, headers=server.headers()),
            lambda: httpx.get(query.replace("/query", "/metadata"), headers=server.headers()),
        ):
            response = call()
            assert response.status_code == 500, response.text
            assert response.json()["errorCode"] == "INTERNAL_ERROR"
            assert "secret-path" not in response.text and "s3x" not in response.text
        assert "secret-path" in server.log()  # the provider learns what is wrong
    finally:
        server.stop()
