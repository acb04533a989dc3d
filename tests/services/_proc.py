"""Small process helpers shared by the test services (free ports, daemons, clean stops)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

INSTALL_HINT = "run scripts/install-test-services.sh"
REPO_ROOT = Path(__file__).resolve().parents[2]


def require_binary(name: str, extra_dirs: Sequence[Path] = ()) -> str:
    """Absolute path of an executable, or a RuntimeError telling how to install it (tests never skip)."""
    for d in extra_dirs:
        candidate = d / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"test service binary {name!r} not found: {INSTALL_HINT}")
    return found


def free_port() -> int:
    # Bind to port 0 and let the kernel pick; the tiny race before the daemon binds is acceptable for tests.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def as_user(user: str | None) -> dict[str, Any]:
    """Popen arguments that run the child as ``user`` (and its group only), or nothing for the current user."""
    if user is None:
        return {}
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise RuntimeError(f"no {user!r} system user: {INSTALL_HINT}") from None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def run(cmd: Sequence[str], *, user: str | None = None, timeout: float = 120) -> str:
    """Run a setup command; on failure raise with its output, which is what one needs to debug CI."""
    proc = subprocess.run(
        list(cmd),
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        **as_user(user),
    )
    if proc.returncode != 0:
        output = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{output}")
    return str(proc.stdout)


class Daemon:
    """A foreground server process in its own process group, its output in a log file, its pid in a file."""

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        workdir: Path,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        env: Mapping[str, str] | None = None,
    ):
        self.name = name
        self.stop_signal = stop_signal
        self.log_path = workdir / f"{name}.log"
        self.pid_path = workdir / f"{name}.pid"
        self._launch = (list(cmd), workdir, user, dict(env) if env is not None else None)
        self._start()

    def _start(self) -> None:
        cmd, workdir, user, env = self._launch
        with open(self.log_path, "ab") as log:
            # A new session, so stop() can signal the daemon and anything it forked, and so Ctrl-C on
            # pytest does not kill it before the fixture's own teardown runs.
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                start_new_session=True,
                env=env,
                **as_user(user),
            )
        self.pid_path.write_text(str(self.proc.pid))

    def start_again(self) -> None:
        """Run the same command again after `stop()` (fault tests: a service that goes away and comes back)."""
        if self.proc.poll() is None:
            raise RuntimeError(f"{self.name} is still running")
        self._start()

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_for_port(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not port_open(port):
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} did not listen on port {port} in {timeout}s; log:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 10) -> None:
        stop_pid_file(self.pid_path, self.stop_signal, timeout)
        if self.proc.poll() is None:
            self.proc.wait(timeout)


def stop_pid_file(pid_path: Path, sig: signal.Signals = signal.SIGTERM, timeout: float = 10) -> None:
    """Signal the process named by a pid file and wait for it; SIGKILL its whole group if it lingers.

    Only the leader gets the polite signal: servers such as postgres shut their own children down in order,
    and signalling those children directly confuses that.
    """
    try:
        pid = int(pid_path.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    # Daemons run in their own session (start_new_session), so their pid is also their group id.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    pid_path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    # Reap it if it is our child, so a zombie does not count as alive.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
