"""The record writer's child process (`lakegate.recordwriter` starts it): `python -m lakegate.recordchild DATA ACKS`
reads batches from the pipe DATA until it ends, writes each batch's log lines to its standard error (its serving
process's), stores its audit events in one transaction, and acknowledges the batch's number on the pipe ACKS."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import sys
from typing import Any

from lakegate.logs import configure_logging, json_line
from lakegate.recordwriter import ACCESS, ACK, HEAD, access_line

log = logging.getLogger("lakegate.audit")
CHILD_NICENESS = 10


def write_lines(lines: list[str], fd: int = 2) -> None:
    """`lines` on standard error in writes of whole lines of at most PIPE_BUF bytes each: a pipe (a container's or
    systemd's log) keeps such a write whole, so no line its serving process writes meanwhile lands inside one of
    these (a line longer than that goes alone)."""
    sys.stderr.flush()  # (its own log lines, if any, first)
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        data = line.encode()
        if chunk and size + len(data) > select.PIPE_BUF:
            _write_all(fd, b"".join(chunk))
            chunk, size = [], 0
        chunk.append(data)
        size += len(data)
    if chunk:
        _write_all(fd, b"".join(chunk))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    with contextlib.suppress(OSError):  # standard error closed: like logging, never fail for it
        while view:
            view = view[os.write(fd, view) :]


def _read_exactly(stream: Any, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def main(data_fd: int, acks_fd: int) -> int:
    """The child: reads batches until the pipe ends, writes each one's lines, stores its events, acknowledges it."""
    # Ended by the end of its pipe only: a stop signal to the whole group (systemd's) must not lose what is queued.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Second to its serving process for the CPU (from before its imports, ~0.5 s of it); behind under overload,
    # the serving process's queue bound applies.
    os.nice(CHILD_NICENESS)
    configure_logging("json")  # its own errors too are JSON lines in the server's log
    try:
        _serve(os.fdopen(data_fd, "rb"), acks_fd)
    except Exception:
        log.exception("the record writer process failed")
        return 1
    return 0


def _serve(stream: Any, acks_fd: int) -> None:
    from lakegate.audit import AuditLog, audit_line, from_entry  # (after os.nice: see main)
    from lakegate.catalog.db import Database

    head = _read_exactly(stream, HEAD.size)
    if head is None:
        return
    setup = pickle.loads(_read_exactly(stream, HEAD.unpack(head)[0]) or b"")  # noqa: S301  - our parent's
    logging.getLogger().setLevel(setup["logLevel"])
    audit = AuditLog(Database(setup["database"]))
    access_log = logging.getLogger("lakegate.access")
    while (head := _read_exactly(stream, HEAD.size)) is not None:
        message = _read_exactly(stream, HEAD.unpack(head)[0])
        if message is None:
            break
        number, batch = pickle.loads(message)  # noqa: S301  - our parent's
        lines: list[str] = []
        events = []
        for entry in batch:
            if entry[0] == ACCESS:
                text, fields = access_line(*entry[2:])
                lines.append(json_line(access_log.name, text, "http", fields, entry[1]))
            else:
                access = from_entry(entry)
                if entry[1]:
                    text, event = audit_line(access)
                    lines.append(json_line(log.name, text, "audit", event, access.at.timestamp()))
                if entry[2]:
                    events.append(access)
        if lines:
            write_lines(lines)
        failed = 0
        if events:
            failed = 0 if audit.store(events) else len(events)
        os.write(acks_fd, ACK.pack(number, failed))


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
