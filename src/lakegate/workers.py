"""`lakegate serve --workers N`: N processes answering on one listening socket, so a host's cores all sign and
encode answers (one Python process uses one core).

The supervisor (the process `lakegate serve` started) does everything that happens once: it reads the
configuration, migrates and syncs the database, prints the banner, builds the app and binds the listening
socket. Then it forks the workers, which inherit all of that and accept connections from the one socket with
least-connections balancing (`BalancedServer`). The supervisor only watches: SIGTERM or SIGINT is passed on to
every worker, which drains its requests in flight as a single server does, and the supervisor exits 0 once they
all have; a worker that dies otherwise is replaced (at most once a second per worker, so a worker that cannot
start does not spin); the port keeps answering meanwhile. A stop signal counts from before the port opens: one
arriving while the workers are forked or start up stops them as cleanly as a later one.

What a worker holds in memory is its own: the credential cache, the catalog's one-second memory, the snapshot
cache's bookkeeping. The snapshots' big parts (checkpoint add tables, file parts) are Arrow files in the snapshot
cache directory that every worker maps (`lakegate.sharedcache`): in memory once, built once. What else is
shared lives in the database (recipients, async queries, the signing key, the audit trail) or, for metrics, in
prometheus_client's multiprocess files (`lakegate.metrics.share_between_processes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import math
import mmap
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from lakegate.shutdown import Server

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("lakegate")
RESTART_INTERVAL_SECONDS = 1.0
POLL_SECONDS = 0.2
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# How the supervisor passes a SIGINT on. Ctrl-C at a terminal signals the whole process group, the workers
# included: a SIGINT from the supervisor as well would be a second Ctrl-C to them, which cuts the shutdown short
# (uvicorn's force exit: no lifespan shutdown, the audit events still queued lost). This one stops a worker as a
# first SIGINT does, and does nothing to a worker already stopping.
INTERRUPT_FROM_SUPERVISOR = signal.SIGUSR1
STARTUP_FAILURE = 3  # uvicorn's exit code when it cannot bind


def default_workers(
    cgroup_root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")
) -> int:
    """The cores this process may use: the CPUs it may run on, bounded by its cgroup's CPU quota (a container's
    `--cpus`, Kubernetes' `limits.cpu`), which CPU affinity does not show: a pod limited to 2 CPUs on a 64-core
    node would otherwise start 64 workers."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cpu_quota(cgroup_root, proc_cgroup)
    return cpus if quota is None else max(1, min(cpus, math.ceil(quota)))


def _cpu_quota(root: Path, proc_cgroup: Path) -> float | None:
    """CPUs' worth of time the process's cgroups allow (the smallest limit on the way up each hierarchy, v2 or
    v1); None when nothing limits it or the files cannot be read."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in lines:
        fields = line.split(":", 2)  # hierarchy-id:controllers:path
        if len(fields) != 3:
            continue
        controllers, path = fields[1], fields[2]
        parts = [p for p in path.split("/") if p]
        if not controllers:  # cgroup v2: one hierarchy, mounted at the root
            bases, read = [root], _v2_quota
        elif "cpu" in controllers.split(","):  # v1: the cpu controller's own mount
            bases, read = [root / controllers, root / "cpu"], _v1_quota
        else:
            continue
        for base in bases:
            for depth in range(len(parts), -1, -1):
                quota = read(base.joinpath(*parts[:depth]))
                if quota is not None:
                    limits.append(quota)
    return min(limits) if limits else None


def _v2_quota(group: Path) -> float | None:
    try:
        quota, period = (group / "cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _v1_quota(group: Path) -> float | None:
    try:
        quota = int((group / "cpu.cfs_quota_us").read_text())
        return None if quota <= 0 else quota / int((group / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError, ZeroDivisionError):
        return None


class Supervisor:
    """Forks `count` workers running `serve(sock)` and keeps them running until a stop signal."""

    def __init__(self, count: int, on_exit: Callable[[int], None] = lambda slot: None) -> None:
        self.count = count
        self.on_exit = on_exit  # a worker's slot is free (its process ended)
        self.workers: dict[int, int] = {}  # pid -> slot
        self.started: dict[int, float] = {}  # slot -> when its current worker started
        self.stop_signal: int | None = None

    def catch_stop_signals(self) -> None:
        """From now on SIGTERM and SIGINT stop the workers (or keep them from being started) and end in exit 0:
        called before the port opens, so a stop signal never meets Python's defaults (killed by SIGTERM, a
        KeyboardInterrupt traceback for SIGINT) once the port answers."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_stop)

    def run(self, sock: socket.socket, serve: Callable[[int], None]) -> int:
        """Serve until stopped; the exit code (0 when every worker stopped cleanly). `sock` is the reserved
        port, closed when all workers have stopped; `serve(slot)` runs in each worker, and must unblock the
        stop signals once it handles them (they are blocked in a new worker: `_fork`)."""
        self.sock = sock
        self.serve = serve
        for first in range(self.count):
            if self.stop_signal is None:
                self._fork(first)
        if self.workers:
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
            self.on_exit(slot)
            code = os.waitstatus_to_exitcode(status)
            log.error("worker %d (pid %d) exited unexpectedly (%s); starting another", slot, pid, _how(code))
            wait = self.started.get(slot, 0) + RESTART_INTERVAL_SECONDS - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if self.stop_signal is None:
                self._fork(slot)

    def _on_stop(self, sig: int, frame: FrameType | None) -> None:
        if self.stop_signal is None:
            self.stop_signal = sig
        else:  # a second Ctrl-C: the workers stop at once (lakegate.shutdown)
            self._signal_workers(sig)

    def _fork(self, slot: int) -> None:
        # The worker starts with the stop signals blocked, and unblocks them once uvicorn handles them
        # (BalancedServer.startup): one sent meanwhile waits for it. Unblocked, it would meet the supervisor's
        # handler (inherited until replaced: it would pass the signal on to the other workers, and this worker
        # would keep serving) or the default action (killed: "did not stop cleanly").
        with _blocked(*STOP_SIGNALS, INTERRUPT_FROM_SUPERVISOR):
            pid = os.fork()
            if pid == 0:  # the worker
                for sig in STOP_SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)  # uvicorn installs its own handlers
                code = 0
                try:
                    self.serve(slot)
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
        self._signal_workers(
            INTERRUPT_FROM_SUPERVISOR if self.stop_signal == signal.SIGINT else self.stop_signal
        )
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
        if codes:
            log.info("all %d workers stopped", len(codes))
        else:
            log.info("stopped before the workers started")
        return 0


def _how(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


@contextlib.contextmanager
def _blocked(*signals: int) -> Iterator[None]:
    """`signals` held pending (not delivered) on this thread meanwhile."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def serve_workers(config: uvicorn.Config, count: int) -> int:
    """Run `count` uvicorn servers of `config` in forked workers on one socket; the supervisor's exit code."""
    from lakegate.metrics import share_between_processes

    load = Connections(count)
    supervisor = Supervisor(count, on_exit=load.leave)
    supervisor.catch_stop_signals()
    try:
        sock = listening_socket(config.host, config.port, backlog=config.backlog)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.host, config.port, exc.strerror)
        return STARTUP_FAILURE
    scheme = "https" if config.is_ssl else "http"
    log.info("serving on %s://%s:%d", scheme, config.host, sock.getsockname()[1])
    metrics_dir = tempfile.mkdtemp(prefix="lakegate-metrics-")
    share_between_processes(metrics_dir)

    def serve(slot: int) -> None:
        BalancedServer(config, sock, load, slot).run()

    load_before_forking(config)
    try:
        return supervisor.run(sock, serve)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def load_before_forking(config: uvicorn.Config) -> None:
    """Import and build in the supervisor what each worker would otherwise import on its own after the fork
    (uvicorn's protocol and lifespan classes, the event loop, anyio's backend: ~1 MB per worker), and move every
    object made so far out of the cyclic garbage collector's reach: a collection in a worker would otherwise
    write to each inherited object's header, copying the pages the workers share."""
    config.load()
    config.get_loop_factory()
    import_thread_backend()
    gc.freeze()


def import_thread_backend() -> None:
    """Import what anyio imports when a request first runs code in a worker thread (its asyncio backend: ~20
    modules, 0.04 s idle, several times that on a busy machine), before serving: not on the first request."""
    with contextlib.suppress(ImportError):
        importlib.import_module("anyio._backends._asyncio")


class Connections:
    """The open connections of each worker, in memory shared by the supervisor's forks (anonymous shared
    mmap): each worker writes its own slot only, and reads the others' to decide whether to accept. -1: the
    slot's worker does not accept (starting, stopping, dead)."""

    def __init__(self, count: int) -> None:
        self._memory = mmap.mmap(-1, 4 * count)
        self.counts = memoryview(self._memory).cast("i")
        for slot in range(count):
            self.counts[slot] = -1

    def leave(self, slot: int) -> None:
        self.counts[slot] = -1

    def least_loaded(self, slot: int, mine: int) -> bool:
        """Whether no accepting worker has fewer connections than `mine`."""
        self.counts[slot] = mine
        others = [c for i, c in enumerate(self.counts) if i != slot and c >= 0]
        return not others or mine <= min(others)


BALANCE_POLL_SECONDS = 0.002
BALANCE_WAIT_SECONDS = 0.05  # a busier worker accepts anyway after this (a less loaded one may be stuck)


class BalancedServer(Server):
    """A worker's uvicorn server, accepting from the socket all workers share with least-connections balancing.
    Left to asyncio, each worker would accept every pending connection whenever it wakes, and a burst of
    queries went to one worker; per-worker SO_REUSEPORT sockets spread connections by a hash, which splits 8
    queries 4/4 between two workers only a quarter of the time. Here a worker takes the next connection only
    when no other accepting worker has fewer open ones (or after BALANCE_WAIT_SECONDS)."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, load: Connections, slot: int) -> None:
        super().__init__(config)
        self._sock = sock
        self._load = load
        self._slot = slot
        self._accepting: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn handles SIGINT and SIGTERM by now (Server.capture_signals): a stop signal held since the
        # fork (Supervisor._fork) arrives here, and the server stops once started, through its shutdown.
        signal.signal(INTERRUPT_FROM_SUPERVISOR, self._interrupt_from_supervisor)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, (*STOP_SIGNALS, INTERRUPT_FROM_SUPERVISOR))
        await super().startup(sockets=[])  # the app started; no asyncio server: connections come from _accept
        if not self.should_exit:
            self._accepting = asyncio.create_task(self._accept())

    def _interrupt_from_supervisor(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:  # else the operator's Ctrl-C reached this worker already
            self.handle_exit(signal.SIGINT, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._load.leave(self._slot)
        if self._accepting is not None:
            self._accepting.cancel()
        await super().shutdown(sockets)

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        config = self.config

        def protocol() -> asyncio.Protocol:  # as uvicorn makes one for its own servers
            made: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state, _loop=loop
            )
            return made

        pending = 0  # accepted, not yet among the server's connections
        while True:
            waited = 0.0
            while waited < BALANCE_WAIT_SECONDS and not self._load.least_loaded(
                self._slot, len(self.server_state.connections) + pending
            ):
                await asyncio.sleep(BALANCE_POLL_SECONDS)
                waited += BALANCE_POLL_SECONDS
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except OSError as exc:  # out of file descriptors and the like: not a reason to stop serving
                log.warning("accepting a connection failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            pending += 1
            self._load.least_loaded(self._slot, len(self.server_state.connections) + pending)
            task = loop.create_task(loop.connect_accepted_socket(protocol, conn, ssl=config.ssl))

            def connected(done: asyncio.Task[object]) -> None:
                nonlocal pending
                pending -= 1
                if not done.cancelled() and done.exception() is not None:  # a failed TLS handshake, a reset
                    log.debug("a connection failed before its first request: %s", done.exception())

            task.add_done_callback(connected)


def listening_socket(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A listening, non-blocking TCP socket on (host, port), as uvicorn binds one (IPv6 for a host with ':')."""
    family = socket.AF_INET6 if host and ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock
