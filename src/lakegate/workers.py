"""`lakegate serve --workers N`: N processes answering on one listening socket, so a host's cores all sign and
encode answers (one Python process uses one core).

The supervisor (the process `lakegate serve` started) does everything that happens once: it reads the
configuration, migrates and syncs the database, prints the banner, builds the app and reserves the port (a
socket bound with SO_REUSEPORT, never listening). Then it forks the workers, which inherit all of that and each
listen on a socket of their own bound to the same port with SO_REUSEPORT: the kernel spreads new connections
evenly over them. (One socket shared by all workers would not: asyncio accepts every pending connection at each
wake-up, so a burst of 8 queries all went to the worker that woke first, and 2 workers answered no faster than
one.) The supervisor only watches: SIGTERM or SIGINT is passed on to every worker, which drains its requests in
flight as a single server does, and the supervisor exits 0 once they all have; a worker that dies otherwise is
replaced (at most once a second per worker, so a worker that cannot start does not spin). Connections the kernel
had queued for a worker that dies are reset (its own listening socket goes with it).

What a worker holds in memory is its own: the credential cache, the catalog's one-second memory, the snapshot
cache's bookkeeping. The snapshots' big parts (checkpoint add tables, file parts) are Arrow files in the snapshot
cache directory that every worker maps (`lakegate.sharedcache`): in memory once, built once. What else is
shared lives in the database (recipients, async queries, the signing key, the audit trail) or, for metrics, in
prometheus_client's multiprocess files (`lakegate.metrics.share_between_processes`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("lakegate")
RESTART_INTERVAL_SECONDS = 1.0
POLL_SECONDS = 0.2
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STARTUP_FAILURE = 3  # uvicorn's exit code when it cannot bind


def default_workers() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Supervisor:
    """Forks `count` workers running `serve(sock)` and keeps them running until a stop signal."""

    def __init__(self, count: int, sock: socket.socket, serve: Callable[[], None]) -> None:
        self.count = count
        self.sock = sock  # the reserved port, closed when all workers have stopped
        self.serve = serve
        self.workers: dict[int, int] = {}  # pid -> slot
        self.started: dict[int, float] = {}  # slot -> when its current worker started
        self.stop_signal: int | None = None

    def run(self) -> int:
        """Serve until stopped; the exit code (0 when every worker stopped cleanly)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_stop)
        for first in range(self.count):
            self._fork(first)
        log.info("serving with %d worker processes", self.count)
        while True:
            if self.stop_signal is not None:
                return self._stop_all()
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                time.sleep(POLL_SECONDS)
                continue
            if pid not in self.workers or self.stop_signal is not None:
                self.workers.pop(pid, 0)
                continue
            slot = self.workers.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            log.error("worker %d (pid %d) exited unexpectedly (%s); starting another", slot, pid, _how(code))
            wait = self.started.get(slot, 0) + RESTART_INTERVAL_SECONDS - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._fork(slot)

    def _on_stop(self, sig: int, frame: FrameType | None) -> None:
        if self.stop_signal is None:
            self.stop_signal = sig
        else:  # a second Ctrl-C: the workers stop at once (lakegate.shutdown)
            self._signal_workers(sig)

    def _fork(self, slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)  # uvicorn installs its own handlers
            code = 0
            try:
                self.serve()
            except BaseException:
                log.exception("worker %d failed", slot)
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)  # never return into the supervisor's code
        self.workers[pid] = slot
        self.started[slot] = time.monotonic()

    def _signal_workers(self, sig: int) -> None:
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _stop_all(self) -> int:
        assert self.stop_signal is not None
        self._signal_workers(self.stop_signal)
        codes = []
        for pid in list(self.workers):
            _, status = os.waitpid(pid, 0)
            codes.append(os.waitstatus_to_exitcode(status))
            self.workers.pop(pid, None)
        self.sock.close()
        unclean = [c for c in codes if c != 0]
        if unclean:
            log.error(
                "%d worker(s) did not stop cleanly (%s)", len(unclean), ", ".join(_how(c) for c in unclean)
            )
            return 1
        log.info("all %d workers stopped", len(codes))
        return 0


def _how(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def serve_workers(config: uvicorn.Config, count: int) -> int:
    """Run `count` uvicorn servers of `config` in forked workers on one socket; the supervisor's exit code."""
    from lakegate.metrics import share_between_processes
    from lakegate.shutdown import Server

    try:
        reserved = listening_socket(config.host, config.port, listen=False)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.host, config.port, exc.strerror)
        return STARTUP_FAILURE
    port = reserved.getsockname()[1]
    scheme = "https" if config.is_ssl else "http"
    log.info("serving on %s://%s:%d", scheme, config.host, port)
    metrics_dir = tempfile.mkdtemp(prefix="lakegate-metrics-")
    share_between_processes(metrics_dir)

    def serve() -> None:
        own = listening_socket(config.host, port, listen=True, backlog=config.backlog)
        Server(config).run(sockets=[own])

    try:
        return Supervisor(count, reserved, serve).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def listening_socket(host: str, port: int, *, listen: bool, backlog: int = 2048) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT, as uvicorn binds one (IPv6 for a host with ':')."""
    family = socket.AF_INET6 if host and ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(backlog)
    return sock
