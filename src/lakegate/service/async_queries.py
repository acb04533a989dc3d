"""Async queries (protocol.md §2.8 `asyncquery`, §2.10 Get Query Info), shared by the replicas through the
database: submitted work runs on a small thread pool and its result is kept for an hour, to be served in pages.

The snapshot and streaming use cases submit work here (`AsyncQueries.submit`); Get Query Info is answered here
(`AsyncQueries.query_info`)."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from lakegate.catalog.async_queries import QueryStore, dedupe_key
from lakegate.catalog.base import Principal
from lakegate.catalog.db import Database
from lakegate.exceptions import (
    InvalidParameterError,
    LakegateError,
    NotFoundError,
    TooManyRequestsError,
    public_message,
)
from lakegate.protocol import lines, tokens
from lakegate.protocol.capabilities import HEADER, Capabilities
from lakegate.protocol.requests import QueryInfoRequest, QueryRequest
from lakegate.service.context import ResolvedTable, TableContext
from lakegate.service.files import Signers
from lakegate.service.paging import ASYNC_PAGE, Page
from lakegate.service.parts import FileParts
from lakegate.service.responses import NDJSON, NdjsonAnswer, Piece

log = logging.getLogger("lakegate.async")


@dataclass
class Prepared:
    """The result of an async query, computed in the background and served in pages by Get Query Info."""

    table: ResolvedTable
    fmt: str
    version: int  # Delta-Table-Version
    head: list[bytes]
    items: Any  # FileParts (snapshot) or a list of Items (streaming): both sliced and measured
    render: Callable[[Any, Signers], Iterable[Piece]]
    file_id_hash: str | None
    base_url: str
    max_files: int | None  # page size asked at submission
    end_stream: bool  # an EndStreamAction was asked at submission
    refresh_token: str | None = None


@dataclass
class AsyncQuery:
    id: str
    owner: tuple[str, str]  # (recipient, share.schema.table in lower case)
    status: str = "pending"  # pending | succeeded | failed
    result: Prepared | None = None
    error: str | None = None


# Builds a query's result from its description (`spec`, JSON): the submission's own work, and the same work
# on a replica that is polled for a query another replica ran.
Builder = Callable[[ResolvedTable, dict[str, Any]], Prepared]


class QueryRegistry:
    """Async queries of every replica: each is a row in the database (owner, idempotency key, status and a
    description of its result); the results themselves are computed on a small thread pool and kept in this
    process for `ttl_s`. A poll landing on a replica that has not computed the result starts computing it there
    from the description (the version or range is pinned, so every replica computes the same files) and
    answers "pending" meanwhile. A retried submission (same recipient, table and idempotency key) finds the
    query it started, on any replica."""

    def __init__(
        self,
        db: Database,
        ttl_s: float = 3600,
        max_results: int = 64,
        workers: int = 4,
        max_pending_per_recipient: int = 8,
    ) -> None:
        self.ttl_s = ttl_s
        self.store = QueryStore(db, timedelta(seconds=ttl_s))
        self._max_results = max_results
        self._max_pending = max_pending_per_recipient
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lakegate-async")
        self._results: OrderedDict[str, tuple[Prepared, float]] = OrderedDict()
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def submit(
        self,
        owner: tuple[str, str],
        key: str,
        checksum: str,
        spec: dict[str, Any],
        work: Callable[[], Prepared],
    ) -> AsyncQuery:
        dedupe = dedupe_key(*owner, key)
        for _ in range(3):  # lost a race with another replica's submission: read what it recorded
            found = self.store.find(dedupe)
            if found is not None and found.status != "failed":
                if found.checksum != checksum:
                    raise InvalidParameterError(
                        f"idempotencyKey '{key}' was already used for a different query "
                        "on this table; use a new key for a new query."
                    )
                return AsyncQuery(found.id, owner, found.status, error=found.error)
            self._check_pending(owner[0])
            query_id = secrets.token_urlsafe(24)
            if self.store.insert(query_id, *owner, dedupe, checksum, spec):
                self._start(query_id, work)
                return AsyncQuery(query_id, owner)
        raise TooManyRequestsError("the async query could not be recorded; retry it")

    def _check_pending(self, recipient: str) -> None:
        """One recipient may not fill the pools (and memory) with queries: 429 past the bound."""
        pending = self.store.pending(recipient)
        if pending >= self._max_pending:
            raise TooManyRequestsError(
                f"{pending} async queries of this recipient are still running, the most this server runs at "
                "once; poll them, or retry when one has finished"
            )

    def _start(self, query_id: str, work: Callable[[], Prepared]) -> None:
        with self._lock:
            if query_id in self._running or query_id in self._results:
                return
            self._running.add(query_id)
        self._pool.submit(self._run, query_id, work)

    def _run(self, query_id: str, work: Callable[[], Prepared]) -> None:
        try:
            result = work()
        except Exception as exc:  # the client polls for the outcome; nothing else would see the exception
            if not (isinstance(exc, LakegateError) and exc.public):
                log.error("async query %s failed", query_id, exc_info=exc)
            self._finish(query_id, "failed", public_message(exc))
        else:
            with self._lock:
                self._results[query_id] = (result, time.monotonic())
                while len(self._results) > self._max_results:
                    self._results.popitem(last=False)
            self._finish(query_id, "succeeded", None)
        finally:
            with self._lock:
                self._running.discard(query_id)

    def _finish(self, query_id: str, status: str, error: str | None) -> None:
        try:
            self.store.finish(query_id, status, error)
        except Exception as exc:  # the database is down: a later poll recomputes, nothing is lost
            log.error("could not record the outcome of async query %s", query_id, exc_info=exc)

    def get(
        self, query_id: str, owner: tuple[str, str], build: Callable[[dict[str, Any]], Prepared]
    ) -> AsyncQuery:
        """The query as this replica can answer it now; `build` recomputes its result from its description
        when this process does not hold it."""
        row = self.store.get(query_id)
        if row is None or (row.recipient, row.table_key) != owner:
            raise NotFoundError(f"query '{query_id}' does not exist or has expired")
        if row.status == "failed":
            return AsyncQuery(row.id, owner, "failed", error=row.error)
        with self._lock:
            held = self._results.get(query_id)
        if held is not None and time.monotonic() - held[1] <= self.ttl_s:
            return AsyncQuery(row.id, owner, "succeeded", held[0])
        spec = row.spec
        self._start(query_id, lambda: build(spec))
        return AsyncQuery(row.id, owner)


class AsyncQueries:
    """The async query use case: start a query (for the snapshot and streaming use cases) and serve its result
    in pages (Get Query Info). Each use case registers the `Builder` of its kind of query."""

    def __init__(self, context: TableContext, db: Database, registry: QueryRegistry | None = None) -> None:
        self.context = context
        self.registry = registry or QueryRegistry(
            db, max_pending_per_recipient=context.config.async_query_max_pending_per_recipient
        )
        self.builders: dict[str, Builder] = {}

    def submit(
        self,
        principal: Principal,
        table: ResolvedTable,
        key: str,
        checksum: str,
        fmt: str,
        version: int,
        file_id_hash: str | None,
        spec: dict[str, Any],
    ) -> NdjsonAnswer:
        """Start (or find, for a retried submission) an async query; the answer names it. `spec` describes
        the result (JSON, with the builder's name under "kind"); the work builds it from that description."""
        build = self.builders[spec["kind"]]
        query = self.registry.submit(
            _owner(principal, table), key, checksum, spec, lambda: build(table, spec)
        )
        headers = self.context.headers(version, fmt, False, file_id_hash)
        headers[HEADER] += ";asyncquery=true"
        return NdjsonAnswer(headers, [lines.query_status_line(query.id, "pending")], {"version": version})

    def query_info(
        self,
        principal: Principal,
        share: str,
        schema: str,
        name: str,
        query_id: str,
        request: QueryInfoRequest,
        caps: Capabilities,
    ) -> NdjsonAnswer:
        table = self.context.resolve(principal, share, schema, name)
        build = self.builders
        query = self.registry.get(
            query_id, _owner(principal, table), lambda spec: build[spec["kind"]](table, spec)
        )
        result = query.result
        if result is None:
            headers = {"Content-Type": NDJSON, HEADER: "asyncquery=true"}
            return NdjsonAnswer(headers, [lines.query_status_line(query.id, query.status, query.error)], {})
        first = 0
        if request.page_token:
            page = tokens.decode(
                self.context.keys, ASYNC_PAGE, request.page_token, "Error decoding the page token."
            )
            if page.get("query") != query.id:
                raise InvalidParameterError("The page token belongs to another query.")
            if int(page.get("e", 0)) < tokens.now_ms():
                raise InvalidParameterError("The page token has expired. Please restart the query.")
            first = int(page["i"])
        limit = self.context.page_limit(request.max_files or result.max_files)
        chunk = result.items[first:] if limit is None else result.items[first : first + limit]
        following = first + len(chunk)
        next_token = None
        if following < len(result.items):
            # Valid as long as the result is kept: the token is of no use once the registry has dropped it.
            next_token = tokens.encode(
                self.context.keys,
                ASYNC_PAGE,
                {"query": query.id, "i": following, "e": tokens.now_ms() + int(self.registry.ttl_s * 1000)},
            )
        end_stream = result.end_stream or caps.include_end_stream_action or request.max_files is not None
        if isinstance(chunk, FileParts):
            files, size = len(chunk), chunk.total_size()
        else:
            # A streaming result's items wrap their FileEntry (history.FileItem.entry).
            entries = [getattr(it, "entry", it) for it in chunk if not isinstance(it, bytes)]
            files, size = len(entries), sum(int(e.add.get("size") or 0) for e in entries)
        page_ = Page(
            self.context.headers(
                result.version, result.fmt, caps.include_end_stream_action, result.file_id_hash
            ),
            result.head,
            lambda signers: result.render(chunk, signers),
            files,
            end_stream,
            next_token,
            result.refresh_token if first == 0 else None,
        )
        return page_.answer(
            self.context.signers(result.table, result.base_url),
            {"version": result.version, "files": files, "bytes": size},
        )


def _owner(principal: Principal, table: ResolvedTable) -> tuple[str, str]:
    return principal.recipient, table.info.full_name.lower()


def describe_request(request: QueryRequest, caps: Capabilities) -> dict[str, Any]:
    """The request and capabilities as JSON, for a query's `spec`."""
    return {
        "request": asdict(request),
        "caps": {**asdict(caps), "reader_features": sorted(caps.reader_features)},
    }


def request_of(spec: dict[str, Any]) -> tuple[QueryRequest, Capabilities]:
    request, caps = spec["request"], spec["caps"]
    return (
        QueryRequest(**{**request, "predicate_hints": tuple(request["predicate_hints"])}),
        Capabilities(
            **{
                **caps,
                "response_formats": tuple(caps["response_formats"]),
                "reader_features": frozenset(caps["reader_features"]),
            }
        ),
    )
