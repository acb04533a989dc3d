"""The record writer's child process (`lakegate.recordwriter` starts it): `python -m lakegate.recordchild DATA ACKS`
reads batches from the pipe DATA until it ends, writes each batch's log lines to its standard error (its serving
process's), stores its audit events in one transaction, and acknowledges the batch's number on the pipe ACKS."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import signal
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from lakegate.logs import configure_logging, json_line, line_time
from lakegate.recordwriter import ACCESS, ACK, HEAD, access_line, access_line_of, decode
from lakegate.timestamps import epoch_parts, second_text

log = logging.getLogger("lakegate.audit")
_ACCESS_LOG = logging.getLogger("lakegate.access")
CHILD_NICENESS = 10


def write_lines(lines: list[str], fd: int = 2) -> None:
    """`lines` on standard error in writes of whole lines of at most PIPE_BUF bytes each: a pipe (a container's or
    systemd's log) keeps such a write whole, so no line its serving process writes meanwhile lands inside one of
    these (a line longer than that goes alone)."""
    sys.stderr.flush()  # (its own log lines, if any, first)
    data = "".join(lines).encode()
    view = memoryview(data)
    start, size = 0, len(data)
    while start < size:
        end = start + select.PIPE_BUF
        if end < size:  # up to the last whole line that fits, or to the end of a longer line
            cut = data.rfind(b"\n", start, end)
            if cut < 0:
                cut = data.find(b"\n", end)
            end = size if cut < 0 else cut + 1
        _write_all(fd, view[start:end])
        start = end


def _write_all(fd: int, view: memoryview) -> None:
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
    from lakegate.audit import AuditLog  # (after os.nice: see main)
    from lakegate.catalog.db import Database

    head = _read_exactly(stream, HEAD.size)
    if head is None:
        return
    setup = decode(_read_exactly(stream, HEAD.unpack(head)[0]) or b"")
    logging.getLogger().setLevel(setup["logLevel"])
    audit = AuditLog(Database(setup["database"]))
    lines_of = Lines()
    while (head := _read_exactly(stream, HEAD.size)) is not None:
        message = _read_exactly(stream, HEAD.unpack(head)[0])
        if message is None:
            break
        number, batch = decode(message)
        lines: list[str] = []
        events = []
        for entry in batch:
            if entry[0] == ACCESS:
                lines.append(lines_of.access(entry))
            else:
                if entry[1]:
                    lines.append(lines_of.audit(entry))
                if entry[2]:
                    events.append((entry[3], *entry[4]))  # an event's row with its time as a number
        if lines:
            write_lines(lines)
        failed = 0
        if events:
            failed = 0 if audit.store(events) else len(events)
        os.write(acks_fd, ACK.pack(number, failed))


# Where a line's values vary from one request to the next (its times, a duration) while it is being made into a
# template: a private-use character, which JSON writes as it is.
_MARK = "\ue000"
_TIME, _EVENT_TIME, _MS, _DURATION = (f"{_MARK}{name}{_MARK}" for name in "TEMD")
_MARKS = re.compile(f'({_MARK}[TEM]{_MARK}|"{_MARK}D{_MARK}")')  # (a number's mark is a string in JSON)
_ACCESS_MARKS = [_TIME, _MS, f'"{_DURATION}"']  # the marks of each line, in their order
_AUDIT_MARKS = [_TIME, _EVENT_TIME]
MAX_TEMPLATES = 10_000


class Lines:
    """The lines of entries, the same text as `lakegate.logs.json_line` makes, from a template per distinct entry
    but for its times and duration: a busy server's requests repeat them (a recipient reading the same table
    again), and making each line (dicts, JSON, datetimes) was half of this process's time per request. An entry
    whose text holds a mark gets its line made in full."""

    def __init__(self) -> None:
        from lakegate.audit import Access, audit_line  # (imported by _serve: see main)

        self._event, self._audit_line = Access._make, audit_line
        # An entry's template: its line's text between its marks, () when its line is made in full.
        self._access: dict[tuple[Any, ...], tuple[str, ...]] = {}
        self._audit: dict[tuple[Any, ...], tuple[str, ...]] = {}

    def access(self, entry: tuple[Any, ...]) -> str:
        """(ACCESS, unix time, method, path, route, status, seconds, client, recipient)"""
        key = entry[2:6] + entry[7:]
        template = self._access.get(key)
        if template is None:
            message, fields = access_line_of(
                entry[2], entry[3], entry[4], entry[5], _MS, _DURATION, entry[7], entry[8]
            )
            template = self._remember(self._access, key, _ACCESS_LOG.name, message, fields, "http")
        if not template:
            message, fields = access_line(*entry[2:])
            return json_line(_ACCESS_LOG.name, message, "http", fields, line_time(entry[1]))
        ms = entry[6] * 1000
        start, message, duration, end = template
        return f"{start}{line_time(entry[1])}{message}{ms:.1f}{duration}{orjson.dumps(round(ms, 2)).decode()}{end}"

    def audit(self, entry: tuple[Any, ...]) -> str:
        """(AUDIT, write its line, store its row, unix time, the Access's other values)"""
        key = entry[4]
        template = self._audit.get(key)
        if template is None:
            message, event = self._audit_line(self._event((datetime.now(UTC), *key)))
            event["time"] = _EVENT_TIME
            template = self._remember(self._audit, key, log.name, message, event, "audit")
        line_at = line_time(entry[3])  # (as the serving process writes a line of an entry)
        if not template:
            message, event = self._audit_line(self._event((datetime.fromtimestamp(entry[3], UTC), *key)))
            return json_line(log.name, message, "audit", event, line_at)
        second, micro = epoch_parts(entry[3])  # the event's time: `iso` of its datetime
        start, event_at, end = template
        return f"{start}{line_at}{event_at}{second_text(second)}.{micro // 1000:03d}Z{end}"

    @staticmethod
    def _remember(
        templates: dict[tuple[Any, ...], tuple[str, ...]],
        key: tuple[Any, ...],
        logger: str,
        message: str,
        fields: dict[str, Any],
        name: str,
    ) -> tuple[str, ...]:
        parts = _MARKS.split(json_line(logger, message, name, fields, _TIME))
        # Empty when the entry's own text holds a mark (more marks than the line's): its line is made in full.
        expected = _ACCESS_MARKS if name == "http" else _AUDIT_MARKS
        template = tuple(parts[::2]) if parts[1::2] == expected else ()
        if len(templates) >= MAX_TEMPLATES:
            templates.clear()
        templates[key] = template
        return template


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
