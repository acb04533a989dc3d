"""The record writer: a child process of each serving process that writes the access and audit log lines of
its busy moments and stores its audit events in the database.

Why a process: measured under 16 keep-alive clients (docs/performance.md), an audited request spent about half of
its CPU on its records: ~17-20 µs for the database row (the writer thread's time and the event loop's waits for the
GIL it held), ~10 µs for the access line, ~5 µs for the audit line. Handed over as tuples, marshalled a batch at
a time, they cost the serving process ~1 µs; the child formats the lines as the serving process would
(`lakegate.logs.json_line`), writes them to the same standard error and stores the events as `AuditLog.store`
does, one transaction per batch.

How: the serving process queues entries (`add`); a thread of it sends what has queued every
`SEND_INTERVAL_SECONDS` (or at once for `flush`) over a pipe, each batch numbered; the child answers each number
once it has written and stored the batch. The child is `python -m lakegate.recordchild`, started with the first entry
of each serving process (each worker has its own; not as the worker starts: its imports then slowed a fresh
worker's first, cold answer by ~10 % on two cores), in a session of its own: a Ctrl-C at a terminal or a stop
signal does not end it, the end of its pipe does.

Nothing is lost when the serving process stops cleanly (`close` sends what is queued and waits until the child has
written it) or is killed (the child still writes what it received). When the child is gone (it failed to start,
crashed or was killed), the serving process writes itself what the child had not acknowledged (a batch stored but
not yet acknowledged is then written twice) and everything after: `add` answers False and callers write their
records themselves, as without the child.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from lakegate.logs import json_only
from lakegate.metrics import AUDIT_FAILURES, MULTIPROCESS_DIR

log = logging.getLogger("lakegate.audit")
_ACCESS_LOG = logging.getLogger("lakegate.access")
SEND_INTERVAL_SECONDS = 0.25  # how late a busy moment's log lines may be (and a row, before it is stored)
# Log lines go to the child only while this process answers more requests than this per second: one request at a
# time (a person, a test) finds its lines in the log when its answer has come, as without the child.
BUSY_REQUESTS_PER_SECOND = 200
MAX_PENDING = 50_000  # entries queued; past it `add` answers False (the caller writes its record itself)
CLOSE_TIMEOUT_SECONDS = 30  # a clean shutdown waits this long for the child to write what it was sent
# The child's first acknowledgement (its imports and database) must come within this.
START_TIMEOUT_SECONDS = 30
# The pipe's buffer (Linux's default 64 KB is a few milliseconds of a busy server's entries).
PIPE_BYTES = 1 << 20
# Entry kinds. ACCESS: (ACCESS, unix time, method, path, route, status, seconds, client, recipient).
# AUDIT: (AUDIT, write its line, store its row, unix time, the Access's other values): `lakegate.audit.audit_entry`.
ACCESS = 0
AUDIT = 1
HEAD = struct.Struct("!I")  # a message's length, before it (`encode`)
ACK = struct.Struct("!QQ")  # (batch number, audit events it could not store)

Entry = tuple[Any, ...]


def access_line(
    method: str, path: str, route: str, status: int, seconds: float, client: Any, recipient: Any
) -> tuple[str, dict[str, Any]]:
    """The access log line's message and fields (`lakegate.access`), wherever it is written."""
    ms = seconds * 1000
    return access_line_of(method, path, route, status, f"{ms:.1f}", round(ms, 2), client, recipient)


def access_line_of(
    method: str, path: str, route: str, status: int, ms_text: str, duration: Any, client: Any, recipient: Any
) -> tuple[str, dict[str, Any]]:
    """`access_line` with its duration given as the message's text and the field's value."""
    return (
        f"{method} {path} {status} {ms_text}ms client {client or '-'} recipient {recipient or '-'}",
        {
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "durationMs": duration,
            "client": client,
            "recipient": recipient,
        },
    )


def encode(value: Any) -> bytes:
    """A message to the child: marshalled (entries are tuples of text, numbers and None; marshal makes a batch ~3x
    faster than pickle, and the child is the same Python), pickled when it holds anything marshal cannot write (a
    subclass of str, say)."""
    try:
        return b"M" + marshal.dumps(value)
    except ValueError:
        return b"P" + pickle.dumps(value, pickle.HIGHEST_PROTOCOL)


def decode(message: bytes) -> Any:
    """The value of an `encode`d message (from this process's parent only)."""
    data = memoryview(message)[1:]
    return marshal.loads(data) if message[:1] == b"M" else pickle.loads(data)  # noqa: S301, S302  - our parent's


class RecordWriter:
    """The child process of this serving process and the thread that feeds it. `fallback(entries)` writes in this
    process what the child will not: called from the feeding thread once the child is gone."""

    def __init__(self, database_url: str, fallback: Callable[[list[Entry]], None]) -> None:
        self._url = database_url
        self._fallback = fallback
        self._pending: deque[Entry] = deque()
        self._pid = 0  # the process whose child and thread these are
        self._starting = threading.Lock()
        self._gone = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._data = self._acks = self._wake_read = self._wake_write = -1
        # Under `_lock`: the batches sent and not acknowledged, and how many entries are written (acknowledged or
        # handed to the fallback); entries are written in the order they were added.
        self._lock = threading.Condition()
        self._sent = 0  # the last batch number
        self._unacknowledged: deque[tuple[int, list[Entry]]] = deque()
        self._in_flight = 0  # entries in `_unacknowledged`
        self._written = 0
        self._second = self._count = self._last_count = 0  # requests counted per second (`takes_lines`)
        self._lines_alone = False

    def takes_lines(self) -> bool:
        """Whether this request's log lines (its access line, its audit line) may be written by the child: this
        process is busy (counted here, once per request) and the lines would go to the JSON handler alone
        (`lakegate.logs.json_only`, looked at once a second: a server's handlers are set before it serves)."""
        second = int(time.monotonic())
        if second != self._second:
            self._last_count = self._count if second == self._second + 1 else 0
            self._second, self._count = second, 0
            self._lines_alone = json_only(_ACCESS_LOG) and json_only(log)
        self._count += 1
        return (
            self._count > BUSY_REQUESTS_PER_SECOND or self._last_count > BUSY_REQUESTS_PER_SECOND
        ) and self._lines_alone

    def add(self, entry: Entry) -> bool:
        """Queue an entry for the child; False when it will not take it (gone, or the queue full): the caller then
        writes its record itself."""
        if self._pid != PROCESS_ID[0]:
            self._start()
        if self._gone or len(self._pending) >= MAX_PENDING:
            return False
        self._pending.append(entry)
        return True

    def flush(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Wait until every entry queued so far in this process is written (by the child or by the fallback)."""
        if self._pid != PROCESS_ID[0] or self._thread is None:
            return
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._written + self._in_flight + len(self._pending)
            self._wake()
            while self._written < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._lock.wait(left)

    def close(self) -> None:
        """Send what is queued and wait (at most CLOSE_TIMEOUT_SECONDS) until the child has written it and ended."""
        thread = self._thread
        if self._pid != PROCESS_ID[0] or thread is None:
            return
        self._stopping = True
        self._wake()
        thread.join(CLOSE_TIMEOUT_SECONDS + 1)
        self._gone = True  # from now on callers write their own records
        self._hand_over_pending()

    def _start(self) -> None:
        with self._starting:
            if self._pid == PROCESS_ID[0]:
                return
            for fd in (self._data, self._acks, self._wake_read, self._wake_write):  # a forked worker's copies
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._data = self._acks = -1
            self._gone = self._stopping = False
            self._pending.clear()  # (a forked worker's copy of its parent's queue: the parent writes those)
            self._unacknowledged.clear()
            self._in_flight = self._written = 0
            self._wake_read, self._wake_write = os.pipe()
            self._pid = PROCESS_ID[0]
            self._thread = threading.Thread(target=self._feed, name="lakegate-records", daemon=True)
            self._thread.start()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"!")

    def _launch(self) -> bool:
        """Start the child and send it what it needs to know; False when it cannot be started."""
        data_read, data_write = os.pipe()
        acks_read, acks_write = os.pipe()
        with contextlib.suppress(OSError, ImportError):  # a larger buffer where the system allows it (Linux)
            import fcntl

            fcntl.fcntl(data_write, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        try:
            self._child = subprocess.Popen(  # noqa: S603  - this Python, this module
                [sys.executable, "-m", "lakegate.recordchild", str(data_read), str(acks_write)],
                pass_fds=(data_read, acks_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
                # Its metrics are not scraped: the failures it reports are counted here (no double count in
                # the workers' shared metric files).
                env={k: v for k, v in os.environ.items() if k != MULTIPROCESS_DIR},
            )
        except OSError:
            for fd in (data_read, data_write, acks_read, acks_write):
                os.close(fd)
            return False
        os.close(data_read)
        os.close(acks_write)
        self._data, self._acks = data_write, acks_read
        setup = {"database": self._url, "logLevel": logging.getLogger().getEffectiveLevel()}
        return self._write(encode(setup))

    def _feed(self) -> None:
        """The feeding thread: sends a batch every SEND_INTERVAL_SECONDS (at once when woken), reads the child's
        acknowledgements, and hands everything to the fallback once the child is gone."""
        if not self._launch():
            self._give_up("could not be started")
        started = time.monotonic()
        next_send = started + SEND_INTERVAL_SECONDS
        while True:
            if self._gone:
                self._hand_over_pending()
                if self._stopping:
                    return
                with contextlib.suppress(OSError):
                    select.select([self._wake_read], [], [], SEND_INTERVAL_SECONDS)
                    os.read(self._wake_read, 4096)
                continue
            ready, _, _ = select.select(
                [self._acks, self._wake_read], [], [], max(0.0, next_send - time.monotonic())
            )
            if self._wake_read in ready:
                os.read(self._wake_read, 4096)
                next_send = 0  # woken: send now
            if self._acks in ready and not self._read_acks():
                self._give_up("ended")
            elif time.monotonic() >= next_send:
                next_send = time.monotonic() + SEND_INTERVAL_SECONDS
                if self._pending and not self._send():
                    self._give_up("stopped reading")
                elif self._stopping:
                    self._finish()
                    return
                elif (
                    self._unacknowledged
                    and self._unacknowledged[0][0] == 1
                    and time.monotonic() - started > START_TIMEOUT_SECONDS
                ):
                    self._give_up("did not start")

    def _send(self) -> bool:
        with self._lock:
            batch = [self._pending.popleft() for _ in range(len(self._pending))]
            try:
                message = encode((self._sent + 1, batch))
            except Exception:  # a value neither marshal nor pickle can write (a caller's bug): written here
                log.exception("could not hand %d records to the record writer process", len(batch))
                self._write_here(batch)
                return True
            self._sent += 1
            self._unacknowledged.append((self._sent, batch))
            self._in_flight += len(batch)
        return self._write(message)

    def _write(self, payload: bytes) -> bool:
        """One message to the child (blocks while its pipe is full: the child is behind, and entries queue up
        meanwhile); False when the child is gone."""
        view = memoryview(HEAD.pack(len(payload)) + payload)
        try:
            while view:
                view = view[os.write(self._data, view) :]
        except OSError:  # EPIPE: the child ended
            return False
        return True

    def _read_acks(self) -> bool:
        """Take the acknowledgements that have arrived; False at the end of the pipe (the child ended)."""
        try:
            data = os.read(self._acks, 64 * ACK.size)
        except OSError:
            return False
        if not data:
            return False
        # Acknowledgements are 16 bytes each, written whole (below PIPE_BUF): a read never splits one.
        with self._lock:
            for number, failed in ACK.iter_unpack(data):
                if failed:
                    AUDIT_FAILURES.inc(failed)
                while self._unacknowledged and self._unacknowledged[0][0] <= number:
                    written = len(self._unacknowledged.popleft()[1])
                    self._in_flight -= written
                    self._written += written
            self._lock.notify_all()
        return True

    def _finish(self) -> None:
        """A clean shutdown: close the pipe (the child writes what it has and ends) and wait for it."""
        os.close(self._data)
        deadline = time.monotonic() + CLOSE_TIMEOUT_SECONDS
        while self._unacknowledged and time.monotonic() < deadline:
            ready, _, _ = select.select([self._acks], [], [], max(0.0, deadline - time.monotonic()))
            if ready and not self._read_acks():
                break
        child = self._child
        if child is not None:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self._unacknowledged:
            self._give_up("did not finish in time")
        self._hand_over_pending()
        os.close(self._acks)

    def _give_up(self, why: str) -> None:
        """The child is gone: what it had not acknowledged is written here, then everything queued after."""
        child = self._child
        if child is not None:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                child.kill()
                child.wait(1)
        log.error(
            "the record writer process %s (exit code %s): this process writes its own log lines and audit events "
            "from now on",
            why,
            None if child is None else child.returncode,
        )
        self._gone = True
        with self._lock:
            entries = [entry for _, batch in self._unacknowledged for entry in batch]
            self._unacknowledged.clear()
            self._in_flight = 0
            self._write_here(entries)

    def _hand_over_pending(self) -> None:
        with self._lock:
            self._write_here([self._pending.popleft() for _ in range(len(self._pending))])

    def _write_here(self, entries: list[Entry]) -> None:
        """(under `_lock`) entries written by this process, counted as written."""
        if entries:
            try:
                self._fallback(entries)
            except Exception:
                log.exception("could not write %d records", len(entries))
        self._written += len(entries)
        self._lock.notify_all()


# This process's id, made once and again in a forked worker (os.getpid() is a system call: not one per entry or
# event; `lakegate.audit` reads it too).
PROCESS_ID = [os.getpid()]


def _forked() -> None:
    PROCESS_ID[0] = os.getpid()


os.register_at_fork(after_in_child=_forked)
