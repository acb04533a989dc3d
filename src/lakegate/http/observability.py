"""What a server tells its operators: request metrics, the access log, the audit trail, /metrics and /readyz.

One ASGI middleware sees every request from its first to its last byte. Handlers report who the caller is and
what a table answer held, and the error renderer which error it was, into the request's record
(`lakegate.http.record`). When a data endpoint's answer ends, its audit event is queued before the last
byte goes out; the record writer process stores it within ~250 ms, off the request path (`lakegate.audit`,
`lakegate.recordwriter`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lakegate.audit import Access, AuditLog
from lakegate.catalog.db import Database
from lakegate.exceptions import NotReadyError
from lakegate.http.connection import requests_answering
from lakegate.http.errors import error_response
from lakegate.http.record import RequestRecord, end_record, start_record
from lakegate.logs import info_line
from lakegate.metrics import (
    CONTENT_TYPE,
    CREDENTIALS_VENDED,
    FILES_SIGNED,
    LATENCY,
    REQUESTS,
    TALLY,
    UNAUTHENTICATED,
    Metrics,
)
from lakegate.recordwriter import ACCESS as ACCESS_ENTRY
from lakegate.recordwriter import access_line

log = logging.getLogger("lakegate.access")
# The last path segment of an audited table endpoint -> (operation, access mode).
AUDITED = {
    "metadata": ("metadata", "url"),
    "query": ("query", "url"),
    "changes": ("changes", "url"),
    "queries": ("query-info", "url"),
    "temporary-table-credentials": ("temporary-credentials", "dir"),
}
# The Iceberg catalog's table endpoints (http/iceberg.py): loadTable and loadCredentials.
ICEBERG_AUDITED = {"": "iceberg-load-table", "credentials": "iceberg-credentials"}
_REMEMBERED_PATHS = 4096  # route labels of this many recent paths, each at most _REMEMBERED_PATH_CHARS long
_REMEMBERED_PATH_CHARS = 200
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# A segment after one of these is a name, shown as a placeholder in route labels (bounded metric labels).
_NAMED = {
    "shares": "{share}",
    "schemas": "{schema}",
    "tables": "{table}",
    "recipients": "{recipient}",
    "grants": "{share}",
    "admin-tokens": "{name}",
    "queries": "{queryId}",
    "namespaces": "{namespace}",
    "activate": "{code}",  # one-time activation codes: never in a metric label or a log line
}


def route_label(path: str) -> str:
    """`/delta-sharing/shares/s/schemas/d/tables/t/query` -> `/delta-sharing/shares/{share}/…/tables/{table}/query`."""
    parts = path.strip("/").split("/")
    out: list[str] = []
    i = 0
    while i < len(parts):
        out.append(parts[i])
        if parts[i] == "files":  # {prefix}/files/<anything>: signed file URLs
            return "/" + "/".join(out) + "/{path}"
        if parts[i] in _NAMED and i + 1 < len(parts):
            out.append(_NAMED[parts[i]])
            i += 1
        elif parts[i] == "v1" and i + 1 < len(parts) and parts[i + 1] not in ("config", "oauth"):
            out.append("{prefix}")  # an Iceberg catalog path: /v1/<warehouse prefix>/…
            i += 1
        i += 1
    return "/" + "/".join(out)


def route_labels(routes: Sequence[BaseRoute], prefix: str = "") -> set[str]:
    """The label of every route template of an app: the only route labels metrics may carry."""
    labels: set[str] = set()
    for route in routes:
        if isinstance(route, Mount):
            labels |= route_labels(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            labels.add(route_label(prefix + route.path))
    return labels


class SentFiles:
    """Counts the bytes of an answer as they go out, so an answer cut short (client gone, shutdown) is audited
    with the file lines it really delivered, not the files it was going to: the answer knows how many file lines
    each of its chunks holds (`NdjsonAnswer.files_within`), so no byte is scanned here."""

    def __init__(self, record: RequestRecord) -> None:
        self._record = record
        self._bytes = 0

    def sent(self, chunk: bytes) -> None:
        self._bytes += len(chunk)

    @property
    def complete(self) -> int:
        """File lines sent whole: those of the answer's chunks that went out."""
        answer = self._record.answer
        return answer.files_within(self._bytes) if answer is not None else 0


# (route label, method label, path to log, audited (operation, mode, share, schema, table) or None)
_PathInfo = tuple[str, str, str, tuple[str, str, str, str, str] | None]


class Observer:
    """Metrics, the access line and the audit event of each request, from its first to its last byte: used by
    the middleware for every request Starlette answers and by the lean front of the hot routes
    (`lakegate.http.hot`)."""

    def __init__(self, audit: AuditLog, prefix: str) -> None:
        self.audit = audit
        self.labels: set[str] | None = None  # from the app's routes, at the first request
        # Per request these were most of the observer's time: what a path means, and the labelled series.
        self._paths: dict[tuple[str, str], _PathInfo] = {}  # (method, path) -> _path_info
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # bounded: labels x methods x statuses
        self.table_path = re.compile(
            re.escape(prefix) + r"/shares/([^/]+)/schemas/([^/]+)/tables/([^/]+)/([^/]+)(?:/[^/]+)?$"
        )
        self.iceberg_table_path = re.compile(
            re.escape(prefix) + r"/iceberg/v1/([^/]+)/namespaces/([^/]+)/tables/([^/]+)/?([^/]*)$"
        )

    async def serve(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """`app`'s answer to an HTTP request, observed."""
        record, token = start_record()
        start = time.perf_counter()
        status, started, done = 500, False, False
        sent = SentFiles(record)

        async def send_observed(message: Message) -> None:
            nonlocal status, started, done
            if message["type"] == "http.response.start":
                status, started = int(message["status"]), True
            elif message["type"] == "http.response.body" and not done and not message.get("more_body", False):
                done = True
                await self._finish(scope, record, status, start, "")
            await send(message)
            if message["type"] == "http.response.body" and not done:
                sent.sent(message.get("body", b""))

        try:
            await app(scope, receive, send_observed)
        except Exception:
            if started and not done:
                # Failed after its status went out (a store gone mid-answer): the client got that status and the
                # file lines sent whole, then a cut connection.
                await self._finish(scope, record, status, start, "FAILED_MID_ANSWER", sent.complete)
            elif not done:
                await self._finish(scope, record, 500, start, "INTERNAL_ERROR")
            raise
        except BaseException:  # cancelled: the server is shutting down with this answer unfinished
            if not done:
                # Written without awaiting anything, so a second cancellation cannot lose the event.
                await self._finish(scope, record, status, start, "ABORTED", sent.complete, blocking=True)
            raise
        else:
            if not done:  # the client went away before the answer ended
                await self._finish(scope, record, status, start, "ABORTED", sent.complete)
        finally:
            end_record(token)

    async def _finish(
        self,
        scope: Scope,
        record: RequestRecord,
        status: int,
        start: float,
        outcome: str,
        files_sent: int | None = None,
        blocking: bool = False,
    ) -> None:
        """Metrics, the access line and (table endpoints) the audit event; `files_sent` for an answer cut
        short."""
        unqueued = self.finish(scope, record, status, start, outcome, files_sent, blocking)
        if unqueued is not None:
            await run_in_threadpool(self.audit.store, [unqueued])

    def finish(
        self,
        scope: Scope,
        record: RequestRecord,
        status: int,
        start: float,
        outcome: str = "",
        files_sent: int | None = None,
        blocking: bool = False,
        soon: bool | None = None,
    ) -> Access | None:
        """`_finish` without waiting for anything: the audit event it could not queue (the writer's queue is
        full), which the caller must store, else None. `soon`: whether the log lines may wait for the end of the
        event loop's turn (by default when other requests wait behind this one)."""
        elapsed = time.perf_counter() - start
        method = scope["method"]
        known = self._paths.get((method, scope["path"]))
        if known is None:
            known = self._path_info(method, scope["path"], scope["app"])
        route, method_label, path, audited = known
        series = self._series.get((route, method_label, status))
        if series is None:
            series = (REQUESTS.labels(route, method_label, str(status)), LATENCY.labels(route, method_label))
            self._series[(route, method_label, status)] = series
        TALLY.add(series, elapsed)
        if status == 401:
            TALLY.count(UNAUTHENTICATED)
        client = scope["client"][0] if scope.get("client") else None
        recipient = record.recipient
        # With other requests waiting, this one's log lines wait for the end of the event loop's turn and go out
        # with theirs (one write); a lone request's lines are written before its answer ends.
        if soon is None:
            soon = requests_answering() > 1 and not blocking
        # A busy process's lines are written by its record writer process (`lakegate.recordwriter`).
        records = self.audit.records
        lines_there = soon and records is not None and records.takes_lines()
        if not (
            lines_there
            and records is not None
            and records.add(
                (ACCESS_ENTRY, time.time(), method, path, route, status, elapsed, client, recipient)
            )
        ):
            message, fields = access_line(method, path, route, status, elapsed, client, recipient)
            info_line(log, message, "http", fields, soon)
        if audited is None:
            return None
        operation, mode, share, schema_name, table_name = audited
        outcome = outcome or ("ok" if status < 400 else (record.error_code or f"HTTP_{status}"))
        stats = record.stats
        listed = stats.get("files")
        files = listed if files_sent is None or listed is None else files_sent
        if outcome == "ok" and mode == "url" and files:
            TALLY.count(FILES_SIGNED, files)
        if outcome == "ok" and (operation == "temporary-credentials" or stats.get("credentials")):
            TALLY.count(CREDENTIALS_VENDED)
        # The last User-Agent header, as a dict of the headers keeps it.
        agent = b""
        for name, value in scope["headers"]:
            if name == b"user-agent":
                agent = value
        access = Access(
            recipient,
            operation,
            share,
            schema_name,
            table_name,
            mode,
            status,
            outcome,
            stats.get("version"),
            files,
            client,
            agent.decode("latin-1") or None,
            # Cut short, the answer listed fewer files than it meant to: their sizes are then unknown.
            data_bytes=stats.get("bytes") if files == listed else None,
        )
        # Queued for the audit writer; written by the caller (in a thread) only when its queue is full, or here
        # (blocking: the request is being cancelled) at once, without awaiting anything.
        return (
            None if self.audit.record(access, wait=blocking, soon=soon, lines_there=lines_there) else access
        )

    def _path_info(self, method: str, path: str, app: Any) -> _PathInfo:
        """What the end of a request needs of its method and path, remembered (paths are the callers': short ones,
        bounded): the route label and method label (label values are chosen by strangers: only route templates,
        or one catch-all), the path to log (one carrying a one-time activation code is logged as its route: the
        code is a secret), and (operation, mode, share, schema, table) of an audited table request."""
        if self.labels is None:
            self.labels = route_labels(app.routes)
        route = route_label(path)
        route = route if route in self.labels else "unmatched"
        info = (
            route,
            method if method in _METHODS else "OTHER",
            route if "/activate/" in path else path,
            self._audited(method, path),
        )
        if len(path) <= _REMEMBERED_PATH_CHARS:
            if len(self._paths) >= _REMEMBERED_PATHS:
                self._paths.clear()
            self._paths[(method, path)] = info
        return info

    def _audited(self, method: str, path: str) -> tuple[str, str, str, str, str] | None:
        """(operation, mode, share, schema, table) of an audited table request, else None."""
        match = self.table_path.match(path)
        if match is not None and match.group(4) in AUDITED:
            return (*AUDITED[match.group(4)], match.group(1), match.group(2), match.group(3))
        match = self.iceberg_table_path.match(path)
        # Reads only: HEAD (does it exist?) reads nothing, POST and DELETE of a table are refused writes.
        read = method == "GET" or (method == "POST" and match and match.group(4))
        if match is not None and match.group(4) in ICEBERG_AUDITED and read:
            return ICEBERG_AUDITED[match.group(4)], "dir", match.group(1), match.group(2), match.group(3)
        return None


def operational_routes(db: Database, metrics: Metrics) -> list[BaseRoute]:
    """/metrics (Prometheus text format) and /readyz (ready when the database answers); /healthz is the app's."""

    def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    def ready(request: Request) -> Response:
        if not db.ping():
            return error_response(NotReadyError("the database is unreachable"), request.method == "HEAD")
        return JSONResponse({"status": "ready"}, media_type="application/json; charset=utf-8")

    return [Route("/metrics", metrics_endpoint), Route("/readyz", ready, methods=["GET", "HEAD"])]


class ObservabilityMiddleware:
    """The observer around every request Starlette answers (`observer`, or one made of `audit` and `prefix`)."""

    def __init__(
        self, app: ASGIApp, audit: AuditLog | None = None, prefix: str = "", observer: Observer | None = None
    ) -> None:
        self.app = app
        if observer is None:
            assert audit is not None, "an observer or the audit log to make one with"
            observer = Observer(audit, prefix)
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.observer.serve(self.app, scope, receive, send)
