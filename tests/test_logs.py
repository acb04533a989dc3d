"""Log lines cannot be forged: control characters from requests are escaped in text logs."""

from __future__ import annotations

import logging
import sys

import orjson

from lakegate.logs import JsonFormatter, TextFormatter


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad\n2026-01-01 00:00:00,000 INFO lakegate.audit: forged")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("lakegate.access", logging.INFO, __file__, 1, message, args, exc_info)


def test_a_newline_in_a_path_stays_on_its_line() -> None:
    path = (
        "/delta-sharing/x\n2026-01-01 00:00:00,000 INFO lakegate.audit: alice query s.d.t: ok\r\x1b[2J\u2028"
    )
    line = TextFormatter().format(_record("%s %s %d", "GET", path, 404))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\u2028" not in line
    assert "/delta-sharing/x\\n2026-01-01" in line and "\\x1b" in line and line.endswith("\\u2028 404")


def test_plain_messages_are_unchanged() -> None:
    assert (
        TextFormatter().format(_record("GET /shares 200 %s", "ünïcode")).endswith(": GET /shares 200 ünïcode")
    )


def test_traceback_lines_are_indented() -> None:
    text = TextFormatter().format(_record("failed", exc=True))
    lines = text.split("\n")
    assert "failed" in lines[0]
    assert all(line.startswith("    ") for line in lines[1:])  # no continuation line looks like a new event


def test_json_lines_escape_by_construction() -> None:
    line = JsonFormatter().format(_record("%s", "a\nb"))
    assert "\n" not in line and orjson.loads(line)["message"] == "a\nb"
