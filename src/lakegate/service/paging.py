"""Pages of NDJSON answers and the signed tokens that continue them (protocol.md §2.8–2.10, §4.3).

A page is decided before its first byte (headers, protocol and metaData lines, how many files); its body signs
lazily. Page and refresh tokens are signed per purpose, bound to their table and to a checksum of the query they
continue, and expire.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar
from weakref import WeakKeyDictionary

import orjson

from lakegate._lru import Lru
from lakegate.delta.snapshot import Snapshot
from lakegate.exceptions import InvalidParameterError, LakegateError, public_message
from lakegate.inline import MAX_INLINE_FILES, must_not_block, run_inline
from lakegate.keys import KeyRing
from lakegate.protocol import lines, tokens
from lakegate.protocol.capabilities import Capabilities
from lakegate.protocol.requests import QueryRequest
from lakegate.service.context import ResolvedTable
from lakegate.service.files import Signers
from lakegate.service.responses import NdjsonAnswer, Piece

log = logging.getLogger("lakegate.paging")

# Token purposes: a token signed for one cannot be replayed as another.
QUERY_PAGE = (
    "query-page"  # snapshot and streaming /query pages: a token of one mode fails the other's checksum
)
CHANGES_PAGE = "changes-page"
ASYNC_PAGE = "async-page"
REFRESH = "refresh"

MISMATCH = (
    "Query parameter mismatch detected for the next page query. The query parameter cannot change when "
    "querying the next page results."
)


@dataclass
class Page:
    headers: dict[str, str]
    head: list[bytes]  # protocol and metaData lines
    body: Callable[[Signers], Iterable[Piece]]  # the signed file (and historical) lines
    files: int
    end_stream: bool
    next_page_token: str | None = None
    refresh_token: str | None = None
    after: Callable[[], None] | None = None  # called once the answer was sent, unless its body failed
    failed: bool = False  # the body ended in an error (reported in its EndStreamAction)

    def answer(self, signers: Signers, stats: dict[str, int]) -> NdjsonAnswer:
        after = self.after
        return NdjsonAnswer(
            self.headers,
            self._lines(signers),
            stats,
            None if after is None else lambda: None if self.failed else after(),
        )

    def _lines(self, signers: Signers) -> Iterator[Piece]:
        yield from self.head
        try:
            yield from self.body(signers)
        except Exception as exc:
            # The 200 status is already on the wire; a client that asked for an EndStreamAction learns of the
            # failure from it, any other client from the broken stream.
            if not self.end_stream:
                raise
            log.error("error after streaming began: %s", exc, exc_info=exc)
            self.failed = True
            status = exc.status if isinstance(exc, LakegateError) else 500
            yield lines.end_stream_line(error_message=public_message(exc), http_status=status)
            return
        if self.end_stream:
            yield lines.end_stream_line(
                next_page_token=self.next_page_token,
                refresh_token=self.refresh_token,
                min_url_expiration=signers.expires_ms if self.files else None,
            )


# -- tokens -----------------------------------------------------------------------------------------------------


def encode_token(
    keys: KeyRing, purpose: str, table: ResolvedTable, ttl_ms: int, fields: dict[str, Any]
) -> str:
    """A token bound to `table`, expiring in `ttl_ms`, carrying `fields`."""
    return encode_token_until(keys, purpose, table, tokens.now_ms() + ttl_ms, fields)


def encode_token_until(
    keys: KeyRing, purpose: str, table: ResolvedTable, expires_ms: int, fields: dict[str, Any]
) -> str:
    """`encode_token` with its expiry (epoch milliseconds) given."""
    return tokens.encode(keys, purpose, {"t": table.token_id, "e": expires_ms, **fields})


def decode_token(keys: KeyRing, purpose: str, token: str, table: ResolvedTable, what: str) -> dict[str, Any]:
    """The fields of a token made by `encode_token`, after checking its signature, table and expiry."""
    error = "Error decoding refresh token." if purpose == REFRESH else "Error decoding the page token."
    payload = tokens.decode(keys, purpose, token, error)
    if payload.get("t") != table.token_id:
        raise InvalidParameterError(
            f"The table specified in the {what} does not match the table being queried."
        )
    check_unexpired(int(payload.get("e", 0)), what)
    return payload


def check_unexpired(expires_ms: int, what: str) -> None:
    if expires_ms < tokens.now_ms():
        raise InvalidParameterError(f"The {what} has expired. Please restart the query.")


# -- checksums: what a page token continues ---------------------------------------------------------------------


def query_checksum(request: QueryRequest, caps: Capabilities, file_id_hash: str | None) -> str:
    """Binds a /query page token to what defines the file set and its lines: the query parameters (not the
    paging ones, nor the refresh token options, which only the first page carries), the formats asked for and
    the file id scheme."""
    fields = {
        k: v
        for k, v in request.__dict__.items()
        if k not in ("page_token", "max_files", "idempotency_key", "include_refresh_token", "refresh_token")
    }
    return _checksum({**fields, **_caps_fingerprint(caps, file_id_hash)})


def changes_checksum(fingerprint: Any, caps: Capabilities, file_id_hash: str | None) -> str:
    """Binds a /changes page token to the range asked for, the formats and the file id scheme."""
    return _checksum({"changes": fingerprint, **_caps_fingerprint(caps, file_id_hash)})


def _caps_fingerprint(caps: Capabilities, file_id_hash: str | None) -> dict[str, Any]:
    return {
        "formats": list(caps.response_formats),
        "features": sorted(caps.reader_features),
        "ids": file_id_hash,
    }


def _checksum(fields: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


# -- selections: the files a filtered query pages through -------------------------------------------------------

Selected = TypeVar("Selected")


class Selections(Generic[Selected]):
    """The files a query with predicate hints selected, per snapshot and query, kept while the snapshot is: each
    page of a filtered walk slices the same list instead of filtering the whole table again (which made a walk
    cost pages × table). Weakly keyed by the snapshot, a few queries per snapshot (LRU)."""

    def __init__(self, per_snapshot: int = 8) -> None:
        self._per_snapshot = per_snapshot
        self._lock = threading.Lock()
        self._by_snapshot: WeakKeyDictionary[Snapshot, Lru[Hashable, Selected]] = WeakKeyDictionary()

    def get(self, snapshot: Snapshot, key: Hashable, select: Callable[[], Selected]) -> Selected:
        with self._lock:
            found = self._by_snapshot.get(snapshot)
            selected = found.get(key) if found is not None else None
        if selected is not None:
            return selected
        selected = select()
        with self._lock:
            lru = self._by_snapshot.get(snapshot)
            if lru is None:
                lru = self._by_snapshot[snapshot] = Lru(self._per_snapshot)
            lru.put(key, selected)
        return selected


# -- pages rendered ahead: the next page of a walk is made while the client reads this one ----------------------


@dataclass(frozen=True)
class Ahead:
    """A page rendered before it was asked for, and the table it was rendered for."""

    table: ResolvedTable
    headers: dict[str, str]
    body: bytes
    stats: dict[str, int]
    signed_at: float  # the second its URLs were signed in
    token_expires_ms: int  # when the page token that asks for it expires (made with it: no need to decode it)
    then: Callable[[], None] | None = field(default=None, compare=False)  # called once it was handed out


AHEAD_PAGES = 2  # pages of one walk rendered ahead and not handed out yet, at most
# Pages of at most this many files are rendered ahead on the event loop, right after the page before was sent
# (~1.5-2 ms of signing and encoding; a longer one in the thread). In a thread the render, Python work under the
# GIL nearly all of it, would keep the loop waiting just as long (up to the interpreter's 5 ms switch interval at
# a time), and the GIL handed back and forth between the two cost ~20-40 % more CPU per page than the render
# itself (issue 12 goal 8: measured per thread on the server).
ON_LOOP_FILES = 2 * MAX_INLINE_FILES


class Walk:
    """The pages of one walk rendered ahead: the next render starts when one was rendered or handed out, while
    fewer than `AHEAD_PAGES` wait. Two, so that the page asked for is usually done (served from memory, on the
    event loop) while the one after it renders."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting = 0  # pages rendering or rendered, not handed out
        self._next: Callable[[], bool] | None = None  # starts rendering the page after the last one started
        # The second the walk's last render signed at and its signers: a render in the same second signs with
        # them (the same URLs, without a signer and its Arrow scalars made per page).
        self.signers: tuple[int, Signers] | None = None

    def rendered(self, start_next: Callable[[], bool] | None) -> None:
        """A page was rendered (or, at the start, handed out by its request); `start_next` starts rendering the
        page after it (None: the walk ends there, or its render failed)."""
        with self._lock:
            self._next = start_next
        self._start()

    def handed_out(self) -> None:
        with self._lock:
            self._waiting -= 1
        self._start()

    def _start(self) -> None:
        with self._lock:
            if self._next is None or self._waiting >= AHEAD_PAGES:
                return
            start, self._next = self._next, None
            self._waiting += 1
        if not start():  # rendered already (another walk asked for the same page): this one ends here
            with self._lock:
                self._waiting -= 1


class _Slot(NamedTuple):
    future: Future[Ahead | None]
    started: float  # time.monotonic() when its render was asked for


class PagesAhead:
    """The next pages of walks, rendered while the client reads the page before: a small page on the event loop
    right after the page before was sent (`ON_LOOP_FILES`), a larger one in a thread of its own. A walk asks for
    its pages one after the other, so without this the server and the client take turns, each idle while the
    other works, where a full answer streams and both work at once. Bounded: at most `max_pages` pages (the
    least recently rendered are dropped), each of at most `max_files` files, handed out at most `max_age_s`
    after their URLs were signed; a page asked for before its render started is rendered by the request
    itself, and one whose render failed too (its error is the request's to report)."""

    def __init__(self, max_pages: int = 16, max_files: int = 10_000, keep_s: float = 30.0) -> None:
        self.max_files = max_files
        self._keep_s = keep_s  # pages never asked for (walks given up) are dropped after this
        self._lock = threading.Lock()
        self._pages: Lru[Hashable, _Slot] = Lru(max_pages)

    def render(self, key: Hashable, render: Callable[[], Ahead | None], on_loop: bool = False) -> bool:
        """Starts rendering the page asked for by `key` (None from `render`: nothing to hand out); False when it
        is rendered already (or cannot be). `on_loop`: a page small enough to render on the event loop, when
        called there, unless it would block (then in the thread, as any other)."""
        future: Future[Ahead | None] = Future()
        now = time.monotonic()
        with self._lock:
            if self._pages.get(key) is not None:
                return False
            for old_key, old in self._pages.items():
                if old.future.done() and now - old.started > self._keep_s:
                    self._pages.pop(old_key)
            self._pages.put(key, _Slot(future, now))
        if on_loop and _on_the_event_loop() and _run_inline(future, render):
            return True
        try:
            _executor().submit(_run, future, render)
        except RuntimeError:  # the interpreter is shutting down: nothing is rendered ahead any more
            future.cancel()
            self._forget(key, future)
            return False
        return True

    def get(self, key: Hashable, max_age_s: float) -> Ahead | None:
        """The page rendered ahead for `key` if it is recent enough (waiting for a render under way, in a worker
        thread). One whose render has not started is cancelled: rendering it here is sooner than waiting behind
        other walks' pages."""
        with self._lock:
            slot = self._pages.get(key)
            if slot is not None and slot.future.done():
                self._pages.pop(key)  # handed out once
        if slot is None:
            return None
        future = slot.future
        if not future.done():
            must_not_block()  # on the event loop: waited for (or rendered) in a worker thread
            if future.cancel():
                self._forget(key, future)
                return None
            ahead = future.result()
            self._forget(key, future)
        else:
            ahead = future.result()
        if ahead is None or time.time() - ahead.signed_at > max_age_s:
            return None
        return ahead

    def _forget(self, key: Hashable, future: Future[Ahead | None]) -> None:
        with self._lock:
            slot = self._pages.get(key)
            if slot is not None and slot.future is future:
                self._pages.pop(key)


def _on_the_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _run_inline(future: Future[Ahead | None], render: Callable[[], Ahead | None]) -> bool:
    """Renders on the event loop (`lakegate.inline`: what would block raises there); False when it would block
    (the future is left pending, for the thread)."""
    try:
        done = run_inline(render)
    except Exception as exc:  # noqa: BLE001  - the request renders the page itself and reports the error
        log.debug("rendering a page ahead failed: %s", exc)
        done = (None,)
    if done is None:
        return False
    future.set_running_or_notify_cancel()
    future.set_result(done[0])
    return True


def _run(future: Future[Ahead | None], render: Callable[[], Ahead | None]) -> None:
    if not future.set_running_or_notify_cancel():
        return  # asked for before it started: the request renders it
    try:
        future.set_result(render())
    except Exception as exc:  # noqa: BLE001  - the request renders the page itself and reports the error
        log.debug("rendering a page ahead failed: %s", exc)
        future.set_result(None)


_EXECUTOR: tuple[int, ThreadPoolExecutor] | None = None
_EXECUTOR_LOCK = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """One thread per process renders pages ahead (made in the process that uses it: a forked worker makes its
    own, threads do not survive a fork)."""
    global _EXECUTOR  # noqa: PLW0603  - one per process
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None or _EXECUTOR[0] != os.getpid():
            _EXECUTOR = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="lakegate-page-ahead"))
        return _EXECUTOR[1]
