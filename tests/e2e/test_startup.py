"""What a provider sees when starting lakegate: `--version`, one-line refusals of bad flags, LAKEGATE_CONFIG for
`serve`, a banner naming what is served, "did you mean" for misspelt keys, and profiles that never name
0.0.0.0 — each through the `lakegate` command, as the provider runs it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.services._proc import Daemon, free_port
from tests.tables import build_plain


def _lakegate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lakegate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def _write(path: Path, **config: Any) -> Path:
    path.write_text(yaml.safe_dump({"version": 1, **config}))
    return path


def test_version_is_the_installed_distributions() -> None:
    result = _lakegate("--version")
    assert result.returncode == 0 and result.stdout == f"lakegate {version('lakegate')}\n"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--port", "99999"], "error: --port must be 0 to 65535, not 99999"),
        (["--port", "-1"], "error: --port must be 0 to 65535, not -1"),
        (
            ["--log-level", "verbose"],
            "error: --log-level must be one of debug, info, warning, error, not 'verbose'",
        ),
        (["--workers", "0"], "error: --workers must be a number from 1 to 256, or auto, not '0'"),
        (["--workers", "all"], "error: --workers must be a number from 1 to 256, or auto, not 'all'"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(tmp_path: Path, args: list[str], line: str) -> None:
    result = _lakegate("serve", "-c", str(_write(tmp_path / "a.yaml")), *args)
    assert result.returncode == 2 and result.stderr == line + "\n"


def test_a_bad_workers_key_is_one_line(tmp_path: Path) -> None:
    result = _lakegate("serve", "-c", str(_write(tmp_path / "a.yaml", workers=0)))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("workers: must be a number from 1 to 256, or auto")


@pytest.mark.parametrize(
    ("database", "fragment"),
    [
        ("mysql://u:pw@localhost/db", "database: mysql is not supported"),
        ("not a url", "database: not a valid SQLAlchemy URL"),
        ("a.db", "database: not a valid SQLAlchemy URL: use sqlite:///FILE (relative to the configuration)"),
    ],
)
def test_unsupported_databases_are_one_line(tmp_path: Path, database: str, fragment: str) -> None:
    result = _lakegate("serve", "-c", str(_write(tmp_path / "a.yaml", database=database)))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and fragment in line and "pw" not in line


def test_misspelt_keys_are_warned_with_the_key_meant(tmp_path: Path) -> None:
    config = _write(tmp_path / "a.yaml", publicURL="https://x", warmup=False, databse="sqlite:///x.db")
    result = _lakegate("db", "upgrade", "-c", str(config))
    assert result.returncode == 0, result.stderr
    for wrong, meant in (("publicURL", "publicUrl"), ("warmup", "warmUp"), ("databse", "database")):
        assert f"unknown key '{wrong}' is ignored (did you mean '{meant}'?)" in result.stderr


def test_profiles_of_a_wildcard_listener_name_this_machine(tmp_path: Path) -> None:
    """The README's minimal YAML: host 0.0.0.0 and no publicUrl."""
    config = _write(
        tmp_path / "a.yaml",
        host="0.0.0.0",
        shares=[{"name": "s", "schemas": [{"name": "d", "tables": [{"name": "t", "location": "tables/t"}]}]}],
    )
    result = _lakegate("recipients", "create", "partner", "--share", "s", "-c", str(config))
    assert result.returncode == 0, result.stderr
    endpoint = json.loads(result.stdout)["endpoint"]
    assert endpoint == f"http://{socket.gethostname()}:8080/delta-sharing"
    assert "set publicUrl" in result.stderr


def test_serve_reads_lakegate_config_and_logs_a_banner(tmp_path: Path) -> None:
    table = build_plain(tmp_path / "tables" / "orders")
    port = free_port()
    config = _write(
        tmp_path / "shop.yaml",
        host="127.0.0.1",
        port=port,
        publicUrl="https://sharing.example.com/delta-sharing",
        database="sqlite:///state/shop.db",
        shares=[
            {"name": "sales", "schemas": [{"name": "s", "tables": [{"name": "orders", "location": table}]}]}
        ],
    )
    daemon = Daemon(
        "serve",
        [sys.executable, "-m", "lakegate", "serve", "--log-format", "text"],
        tmp_path,
        env={**os.environ, "LAKEGATE_CONFIG": str(config)},
    )
    try:
        daemon.wait_for_port(port, timeout=30)
        log = daemon.log_tail(200)
    finally:
        daemon.stop()
    for fragment in (
        f"lakegate {version('lakegate')}",
        f"endpoint: http://127.0.0.1:{port}/delta-sharing",
        "public URL (written into profiles): https://sharing.example.com/delta-sharing",
        f"database: sqlite:///{tmp_path}/state/shop.db (configuration 'shop')",
        "share 'sales' (from the configuration; recipients: none granted)",
        f"table sales.s.orders [url] {table}",
        "admin API: closed at /admin",
        "no recipient can connect",
    ):
        assert fragment in log, log
