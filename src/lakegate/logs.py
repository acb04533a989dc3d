"""Logging: one JSON object per line (the default for `serve`), or plain text for people at a terminal.

Extra fields passed with `extra={...}` become keys of the JSON object, so the audit trail and the access log
are machine-readable as they are. No credential is ever logged: tokens are not passed to loggers at all, and
the access log has the path without its query string (signed file URLs carry signatures there).

The access and audit lines (one or two per request) are written by `info_line` straight to the JSON handler's
stream when nothing else would see their records: the same JSON object, without a `LogRecord`, a handler walk
and a formatter per line (that was a third of a small request's time). With any other handler or filter
installed (a test's log capture, an embedding application's) they go through `logging` as every other line.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any

import orjson

from lakegate.timestamps import second_text

FORMATS = ("json", "text")
# LogRecord's own attributes, and uvicorn's terminal-coloured copy of its message: not extra fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": line_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(
            (key, value)
            for key, value in record.__dict__.items()
            if key not in _STANDARD and not key.startswith("_")
        )
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    """One line per event for people at a terminal. Control characters in a message (a `%0A` in a request path
    decodes to a newline) are escaped, so no input can forge a log or audit line; traceback lines are indented."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802  - logging's name
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        # The message has no line breaks left: any that remain start a traceback's lines, indented.
        return super().format(record).replace("\n", "\n    ")


def escape_controls(text: str) -> str:
    """`text` with every non-printable character (C0/C1 controls, line and paragraph separators) escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


_LAST_MILLISECOND: list[tuple[int, str]] = [(-1, "")]  # the last millisecond formatted, and its text


def line_time(created: float) -> str:
    """A line's time: `2026-11-30T20:21:10.123+00:00` (UTC, milliseconds), formatted once per millisecond (a busy
    server writes dozens of lines in one)."""
    millisecond = int(created * 1000)
    known = _LAST_MILLISECOND[0]
    if known[0] != millisecond:
        second, rest = divmod(millisecond, 1000)
        known = _LAST_MILLISECOND[0] = (millisecond, f"{second_text(second)}.{rest:03d}+00:00")
    return known[1]


class JsonLines(logging.StreamHandler):  # type: ignore[type-arg]  # of a text stream
    """configure_logging's handler of JSON lines, which also writes the lines of `info_line`: those of a request
    answered among others may wait for the end of the event loop's turn, to go out in one write with the other
    lines of that turn. Any line written otherwise goes after them, so the order is kept."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self._waiting:
            self.write_waiting()
        super().emit(record)

    def flush(self) -> None:
        """Also what logging.shutdown() calls at exit (and a forked worker before it ends): no waiting line is lost
        when the event loop stops before its next turn."""
        self.write_waiting()
        super().flush()

    def write_line(self, text: str, soon: bool) -> None:
        with self.lock:  # type: ignore[union-attr]  # made by Handler's constructor; other threads log too
            if not soon:
                self.write_waiting()
                self._write(text)
                return
            if not self._waiting:
                asyncio.get_running_loop().call_soon(self.write_waiting)
            self._waiting.append(text)

    def write_waiting(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._waiting:
                waiting, self._waiting = self._waiting, []
                self._write("".join(waiting))

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed or gone: like logging, never fail the caller
            pass


# configure_logging's handler when its format is JSON; info_line writes to it while it is the only one.
_JSON_HANDLER: list[JsonLines | None] = [None]


def info_line(
    logger: logging.Logger,
    message: str,
    key: str,
    fields: dict[str, Any],
    soon: bool = False,
    created: float | None = None,
) -> None:
    """`logger.info(message, extra={key: fields})`: written as the JSON formatter writes it, without logging's
    per-record machinery, when configure_logging's JSON handler is the only one that would see the record.
    `soon` (only from the event loop's thread): the line may wait for the end of the loop's turn. `created`: the
    line's time when not now (a record written late)."""
    handler = _JSON_HANDLER[0]
    if handler is None or not _only_to(handler, logger):
        logger.info("%s", message, extra={key: fields})
        return
    handler.write_line(json_line(logger.name, message, key, fields, line_time(created or time.time())), soon)


def json_line(logger: str, message: str, key: str, fields: dict[str, Any], time_text: str) -> str:
    """The line `info_line` writes: what JsonFormatter makes of such a record (`time_text`: its `line_time`)."""
    line = {"time": time_text, "level": "info", "logger": logger, "message": message, key: fields}
    return orjson.dumps(line, default=str).decode() + "\n"


def json_only(logger: logging.Logger) -> bool:
    """Whether an INFO line of `logger` goes to configure_logging's JSON handler alone (so it may be written by
    anything that writes the same bytes to the same stream, `lakegate.recordwriter`)."""
    handler = _JSON_HANDLER[0]
    return handler is not None and _only_to(handler, logger)


def _only_to(handler: logging.Handler, logger: logging.Logger) -> bool:
    """Whether an INFO record of `logger` would reach `handler` and no other handler or filter (the walk of
    logging's Logger.callHandlers: the logger and its ancestors, up to the first that does not propagate)."""
    if not logger.isEnabledFor(logging.INFO) or handler.filters or handler.level > logging.INFO:
        return False
    node: logging.Logger | None = logger
    while node is not None:
        if node.filters:
            return False
        if node.handlers or not node.propagate:
            return node.handlers == [handler]
        node = node.parent
    return False


def configure_logging(fmt: str = "json", level: str = "info") -> None:
    handler: logging.Handler
    if fmt == "json":
        handler = _JSON_HANDLER[0] = JsonLines(sys.stderr)
        handler.setFormatter(JsonFormatter())
    else:
        _JSON_HANDLER[0] = None
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(TextFormatter())
    # No format shows the caller's file and line, the thread or the process: not looked up for every line (the
    # optimisations of Python's logging HOWTO; the access log writes one line per request).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic announces its context on every schema check; only its warnings matter to an operator.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
