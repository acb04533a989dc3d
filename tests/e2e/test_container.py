"""What the container image relies on, tested without a container engine: `lakegate healthcheck` against a live
server (on the configured port, moved by LAKEGATE_PORT), and a Dockerfile that installs every cloud extra and
runs commands the CLI has."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from typer.main import get_command

from lakegate.cli.main import app
from tests.e2e.server import start_server
from tests.services._proc import free_port
from tests.tables import build_plain

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _healthcheck(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lakegate", "healthcheck"],
        env={**os.environ, "LAKEGATE_CONFIG": str(config), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_healthcheck_follows_the_configured_port(tmp_path: Path) -> None:
    table = {"name": "t", "location": build_plain(tmp_path / "t")}
    server = start_server(
        tmp_path / "srv", {"shares": [{"name": "s", "schemas": [{"name": "d", "tables": [table]}]}]}
    )
    config = tmp_path / "srv" / "lakegate.yaml"
    try:
        healthy = _healthcheck(config)
        assert healthy.returncode == 0, healthy.stderr
        assert healthy.stdout.strip() == f"healthy: {server.base_url}/healthz answered 200"
        # The image sets LAKEGATE_HOST=0.0.0.0: the check asks the loopback address.
        wildcard = _healthcheck(config, LAKEGATE_HOST="0.0.0.0")
        assert wildcard.returncode == 0 and wildcard.stdout.startswith("healthy: http://127.0.0.1:")
        # LAKEGATE_PORT moves the server, so it moves the check: nothing listens there.
        elsewhere = free_port()
        unhealthy = _healthcheck(config, LAKEGATE_PORT=str(elsewhere))
        assert unhealthy.returncode == 1
        assert unhealthy.stderr.startswith(f"unhealthy: http://127.0.0.1:{elsewhere}/healthz: ")
        assert len(unhealthy.stderr.strip().splitlines()) == 1
    finally:
        server.stop()
    down = _healthcheck(config)
    assert down.returncode == 1 and down.stderr.startswith("unhealthy: "), down.stderr


def test_healthcheck_of_an_unreadable_configuration_is_one_line(tmp_path: Path) -> None:
    result = _healthcheck(tmp_path / "missing.yaml")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


def test_the_image_installs_every_cloud_extra() -> None:
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    server_extras = extras - {"test", "dev", "client"}  # tools and the recipient's client are not served
    installs = re.findall(r'"(?:\.|lakegate)\[([^\]]*)\]"', DOCKERFILE)
    assert len(installs) == 2, installs  # the wheel build and the install
    for install in installs:
        assert set(install.split(",")) == server_extras


def test_the_image_runs_commands_the_cli_has() -> None:
    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    cmd = re.search(r"^CMD \[\"(\w+)\"", DOCKERFILE, re.MULTILINE)
    health = re.search(r"^HEALTHCHECK .*CMD \[\"lakegate\", \"(\w+)\"\]", DOCKERFILE, re.MULTILINE)
    assert cmd and health, "CMD and HEALTHCHECK must run lakegate commands"
    assert {cmd.group(1), health.group(1)} <= commands
    assert re.search(r"^ENTRYPOINT \[\"lakegate\"\]", DOCKERFILE, re.MULTILINE)
    # serve and healthcheck find the configuration without a flag: the image sets LAKEGATE_CONFIG.
    assert "LAKEGATE_CONFIG=/etc/lakegate/server.yaml" in DOCKERFILE


def test_healthcheck_of_a_tls_server(tmp_path: Path) -> None:
    """With `ssl`, the check speaks HTTPS to the server's own (here self-signed) certificate."""
    table = {"name": "t", "location": build_plain(tmp_path / "t")}
    shares = [{"name": "s", "schemas": [{"name": "d", "tables": [table]}]}]
    server = start_server(tmp_path / "srv", {"ssl": {"selfSigned": True}, "shares": shares})
    try:
        result = _healthcheck(tmp_path / "srv" / "lakegate.yaml")
    finally:
        server.stop()
    https = server.base_url.replace("http://", "https://")
    assert result.returncode == 0 and result.stdout.strip() == f"healthy: {https}/healthz answered 200", (
        result
    )
