"""`make run` as a new provider runs it: a lean install, `PORT=`, a busy port refused before "Demo ready", and
install profiles that do not fight (`make test` after `make run` upgrades to the full install)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _dry_run(venv: Path, *targets: str) -> str:
    """What `make` would run (-n: nothing is executed), with the virtual environment at `venv`."""
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), f"VENV={venv}", *targets],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def _pip_installs(commands: str) -> list[str]:
    return [line for line in commands.splitlines() if "pip install" in line and "--upgrade pip" not in line]


def _fake_venv(tmp_path: Path, *stamps: str) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    checksum = subprocess.run(
        ["cksum", "pyproject.toml"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()[0]
    for stamp in stamps:
        (venv / f".installed-{stamp}-{checksum}").touch()
    return venv


def _demo_command(tmp_path: Path, port: int) -> list[str]:
    """What `make run` starts: the demo in a directory of the test's own, on the given port."""
    return [
        sys.executable,
        "-m",
        "lakegate",
        "demo",
        "--directory",
        str(tmp_path / "demo"),
        "--port",
        str(port),
    ]


def test_make_run_installs_only_the_package_and_the_client(tmp_path: Path) -> None:
    installs = _pip_installs(_dry_run(_fake_venv(tmp_path), "run"))
    assert len(installs) == 1 and installs[0].endswith("-e '.[client]'"), installs


def test_make_test_after_make_run_upgrades_to_the_full_install(tmp_path: Path) -> None:
    venv = _fake_venv(tmp_path, "demo")
    assert _pip_installs(_dry_run(venv, "run")) == []  # the demo install is current
    installs = _pip_installs(_dry_run(venv, "check"))
    assert len(installs) == 1 and "test,dev,azure,gcp,postgres" in installs[0], installs


def test_make_run_after_make_test_installs_nothing(tmp_path: Path) -> None:
    commands = _dry_run(_fake_venv(tmp_path, "full", "demo"), "run")
    assert _pip_installs(commands) == []


def test_make_run_port(tmp_path: Path) -> None:
    commands = _dry_run(_fake_venv(tmp_path, "demo"), "run", "PORT=9090")
    assert "lakegate demo --directory demo --port 9090" in commands


def test_a_busy_port_is_one_line_before_demo_ready(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            _demo_command(tmp_path, port),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert "Demo ready" not in result.stdout
    assert result.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is in use; pick another: `make run PORT=9090` or "
        "`lakegate demo --port 9090`"
    )
    assert not (tmp_path / "demo").exists()  # nothing built


def test_make_run_serves_the_demo_and_its_console(tmp_path: Path) -> None:
    """`lakegate demo` (what `make run` starts) goes on to serve: the console answers on the printed port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = _demo_command(tmp_path, port)
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/console/sign-in", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                time.sleep(0.3)
        assert server.poll() is None, server.communicate()[0]
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert f"Web console: http://127.0.0.1:{port}/console" in output
    assert "Traceback" not in output
