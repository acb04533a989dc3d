"""Log lines cannot be forged: control characters from requests are escaped in text logs. The access and audit
lines written without logging's machinery are the lines logging would write."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from lakegate.logs import JsonFormatter, TextFormatter, configure_logging, info_line, line_time


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


@pytest.fixture
def json_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], io.StringIO]]:
    """Configures JSON logging to a buffer (called by the test: pytest sets its own stderr and log capture up
    after the fixtures have run); the root logger's handlers and level are restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level

    def start() -> io.StringIO:
        stream = io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)
        configure_logging("json", "info")
        return stream

    yield start
    root.handlers[:], level = saved
    root.setLevel(level)


def test_a_direct_line_is_what_the_json_formatter_writes(json_logging: Callable[[], io.StringIO]) -> None:
    stream = json_logging()
    logger = logging.getLogger("lakegate.access")
    fields = {"method": "GET", "path": "/a\nb\u2028", "status": 200, "recipient": None}
    info_line(logger, "GET /a\nb 200 recipient -", "http", fields)
    record = logging.LogRecord(
        logger.name, logging.INFO, __file__, 1, "%s", ("GET /a\nb 200 recipient -",), None
    )
    record.http = fields
    direct, formatted = stream.getvalue(), JsonFormatter().format(record)
    assert direct.endswith("\n") and direct.count("\n") == 1
    written, expected = orjson.loads(direct), orjson.loads(formatted)
    assert list(written) == list(expected)  # the same keys in the same order
    assert abs(datetime.fromisoformat(written.pop("time")) - datetime.fromisoformat(expected.pop("time"))) < (
        timedelta(seconds=5)
    )
    assert written == expected


def test_with_another_handler_a_line_goes_through_logging(json_logging: Callable[[], io.StringIO]) -> None:
    stream = json_logging()
    caught: list[logging.LogRecord] = []

    class Catching(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            caught.append(record)

    other = Catching()
    logging.getLogger().addHandler(other)
    info_line(logging.getLogger("lakegate.audit"), "alice query s.d.t: ok", "audit", {"outcome": "ok"})
    assert [(r.name, r.getMessage(), r.audit) for r in caught] == [  # type: ignore[attr-defined]
        ("lakegate.audit", "alice query s.d.t: ok", {"outcome": "ok"})
    ]
    assert orjson.loads(stream.getvalue())["audit"] == {"outcome": "ok"}  # and the JSON handler's line


def test_a_level_above_info_writes_no_direct_line(json_logging: Callable[[], io.StringIO]) -> None:
    stream = json_logging()
    logging.getLogger().setLevel(logging.WARNING)
    info_line(logging.getLogger("lakegate.access"), "GET / 200", "http", {"status": 200})
    assert stream.getvalue() == ""


def test_lines_of_a_loop_turn_go_out_together_and_in_order(json_logging: Callable[[], io.StringIO]) -> None:
    stream = json_logging()
    access = logging.getLogger("lakegate.access")

    async def answer() -> list[str]:
        info_line(access, "one", "http", {"n": 1}, soon=True)
        info_line(access, "two", "http", {"n": 2}, soon=True)
        before_turn_ends = stream.getvalue()
        await asyncio.sleep(0)  # the loop's turn ends: the waiting lines are written
        after_turn = stream.getvalue()
        info_line(access, "three", "http", {"n": 3}, soon=True)
        logging.getLogger("lakegate").warning("four")  # a line through logging writes the waiting ones first
        return [before_turn_ends, after_turn, stream.getvalue()]

    before_turn_ends, after_turn, at_end = asyncio.run(answer())
    assert before_turn_ends == ""
    assert [orjson.loads(line)["message"] for line in after_turn.splitlines()] == ["one", "two"]
    assert [orjson.loads(line)["message"] for line in at_end.splitlines()] == ["one", "two", "three", "four"]


def test_lines_waiting_when_the_loop_stops_are_written_at_shutdown(
    json_logging: Callable[[], io.StringIO],
) -> None:
    stream = json_logging()

    async def last_answer() -> None:
        info_line(logging.getLogger("lakegate.access"), "last", "http", {"n": 1}, soon=True)
        asyncio.get_running_loop().stop()  # no further turn writes it

    loop = asyncio.new_event_loop()
    task = loop.create_task(last_answer())
    loop.run_forever()
    waiting = stream.getvalue()
    for handler in logging.getLogger().handlers:
        handler.flush()  # what logging.shutdown() does at exit, and in a worker before it ends
    loop.close()
    assert task.done() and waiting == "" and orjson.loads(stream.getvalue())["message"] == "last"


def test_a_lines_time_is_its_millisecond_in_utc() -> None:
    """Formatted once per millisecond (many lines share one): each time still gets its own millisecond."""
    base = 1_782_907_199  # 2026-07-01T11:59:59Z
    for offset in (0.0004, 0.1234, 0.9996, 1.0004, 1.0014, 1.0004, 61.5):
        second, rest = divmod(round((base + offset) * 10_000) // 10, 1000)
        expected = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:03d}+00:00"
        assert line_time(base + offset) == expected
