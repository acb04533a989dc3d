"""Async queries of this process (protocol.md §2.8 `asyncquery`, §2.10 Get Query Info): submitted work runs on a
small thread pool and its result is kept for an hour, to be served in pages.

The snapshot and streaming use cases submit work here (`AsyncQueries.submit`); Get Query Info is answered here
(`AsyncQueries.query_info`)."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from lakegate.catalog.base import Principal
from lakegate.exceptions import (
    InvalidParameterError,
    LakegateError,
    NotFoundError,
    TooManyRequestsError,
    public_message,
)
from lakegate.protocol import lines, tokens
from lakegate.protocol.capabilities import HEADER, Capabilities
from lakegate.protocol.requests import QueryInfoRequest
from lakegate.service.context import ResolvedTable, TableContext
from lakegate.service.files import Signers
from lakegate.service.paging import ASYNC_PAGE, Page
from lakegate.service.responses import NDJSON, NdjsonAnswer

log = logging.getLogger("lakegate.async")


@dataclass
class Prepared:
    """The result of an async query, computed in the background and served in pages by Get Query Info."""

    table: ResolvedTable
    fmt: str
    version: int  # Delta-Table-Version
    head: list[bytes]
    items: Sequence[Any]  # FileEntry (snapshot) or Item (streaming)
    render: Callable[[Sequence[Any], Signers], Iterable[bytes]]
    file_id_hash: str | None
    base_url: str
    max_files: int | None  # page size asked at submission
    end_stream: bool  # an EndStreamAction was asked at submission
    refresh_token: str | None = None


@dataclass
class AsyncQuery:
    id: str
    owner: tuple[str, str]
    key: str
    checksum: str
    status: str = "pending"  # pending | succeeded | failed
    result: Prepared | None = None
    error: str | None = None
    done_at: float | None = None


class QueryRegistry:
    """Async queries of this process: submitted work runs on a small thread pool; results are kept for
    `ttl_s` after they are ready. A retried submission (same recipient, table and idempotency key) finds the
    query it started instead of starting another."""

    def __init__(
        self, ttl_s: float = 3600, max_queries: int = 64, workers: int = 4, max_pending_per_recipient: int = 8
    ) -> None:
        self.ttl_s = ttl_s
        self._max = max_queries
        self._max_pending = max_pending_per_recipient
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lakegate-async")
        self._by_id: dict[str, AsyncQuery] = {}
        self._by_key: dict[tuple[tuple[str, str], str], AsyncQuery] = {}
        self._lock = threading.Lock()

    def submit(
        self, owner: tuple[str, str], key: str, checksum: str, work: Callable[[], Prepared]
    ) -> AsyncQuery:
        with self._lock:
            self._purge()
            found = self._by_key.get((owner, key))
            if found is not None and found.status != "failed":
                if found.checksum != checksum:
                    raise InvalidParameterError(
                        f"idempotencyKey '{key}' was already used for a different query "
                        "on this table; use a new key for a new query."
                    )
                return found
            self._check_pending(owner[0])
            query = AsyncQuery(secrets.token_urlsafe(18), owner, key, checksum)
            self._by_id[query.id] = self._by_key[(owner, key)] = query
        self._pool.submit(self._run, query, work)
        return query

    def _check_pending(self, recipient: str) -> None:
        """One recipient may not fill the pool (and memory) with queries: 429 past the bound."""
        pending = sum(1 for q in self._by_id.values() if q.owner[0] == recipient and q.status == "pending")
        if pending >= self._max_pending:
            raise TooManyRequestsError(
                f"{pending} async queries of this recipient are still running, the most this server runs at "
                "once; poll them, or retry when one has finished"
            )

    def _run(self, query: AsyncQuery, work: Callable[[], Prepared]) -> None:
        try:
            result = work()
        except Exception as exc:  # the client polls for the outcome; nothing else would see the exception
            if not (isinstance(exc, LakegateError) and exc.public):
                log.error("async query %s failed", query.id, exc_info=exc)
            query.error, query.status = public_message(exc), "failed"
        else:
            query.result, query.status = result, "succeeded"
        query.done_at = time.monotonic()

    def get(self, query_id: str, owner: tuple[str, str]) -> AsyncQuery:
        with self._lock:
            self._purge()
            query = self._by_id.get(query_id)
        if query is None or query.owner != owner:
            raise NotFoundError(f"query '{query_id}' does not exist or has expired")
        return query

    def _purge(self) -> None:
        now = time.monotonic()
        done = sorted(
            (q for q in self._by_id.values() if q.done_at is not None), key=lambda q: q.done_at or 0
        )
        excess = max(0, len(self._by_id) - self._max)
        for i, q in enumerate(done):
            if i < excess or now - (q.done_at or now) > self.ttl_s:
                self._by_id.pop(q.id, None)
                if self._by_key.get((q.owner, q.key)) is q:
                    del self._by_key[(q.owner, q.key)]


class AsyncQueries:
    """The async query use case: start a query (for the snapshot and streaming use cases) and serve its result
    in pages (Get Query Info)."""

    def __init__(self, context: TableContext, registry: QueryRegistry | None = None) -> None:
        self.context = context
        self.registry = registry or QueryRegistry(
            max_pending_per_recipient=context.config.async_query_max_pending_per_recipient
        )

    def submit(
        self,
        principal: Principal,
        table: ResolvedTable,
        key: str,
        checksum: str,
        fmt: str,
        version: int,
        file_id_hash: str | None,
        work: Callable[[], Prepared],
    ) -> NdjsonAnswer:
        """Start (or find, for a retried submission) an async query; the answer names it."""
        query = self.registry.submit(_owner(principal, table), key, checksum, work)
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
        query = self.registry.get(query_id, _owner(principal, table))
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
        files = sum(1 for it in chunk if not isinstance(it, bytes))
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
            self.context.signers(result.table, result.base_url), {"version": result.version, "files": files}
        )


def _owner(principal: Principal, table: ResolvedTable) -> tuple[str, str]:
    return principal.recipient, table.info.full_name.lower()
