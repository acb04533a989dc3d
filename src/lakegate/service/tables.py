"""Table use cases: version, metadata and snapshot queries (protocol.md §2.6–2.8). Streaming queries and the
change data feed are in `lakegate.service.history`, async queries in `lakegate.service.async_queries`.

Everything that can fail — authorisation, table lookup, parameter checks, version resolution, format
negotiation — happens before an answer is returned; the body generator only signs and encodes.
"""

from __future__ import annotations

import dataclasses
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakegate.catalog.base import Principal
from lakegate.delta.predicates import FileFilter
from lakegate.delta.predicates.columns import record_counts, select_columns
from lakegate.delta.snapshot import Snapshot
from lakegate.exceptions import InvalidParameterError, LakegateError
from lakegate.inline import MAX_INLINE_FILES, active, must_not_block
from lakegate.protocol import lines
from lakegate.protocol.capabilities import Capabilities
from lakegate.protocol.requests import QueryRequest, parse_timestamp
from lakegate.protocol.tokens import now_ms
from lakegate.service.async_queries import AsyncQueries, Prepared, describe_request, request_of
from lakegate.service.context import ResolvedTable, TableContext, check_query
from lakegate.service.files import SMALL_ANSWER_FILES, Signers, parts_lines
from lakegate.service.formats import check_readable, choose_format, response_protocol
from lakegate.service.paging import (
    MISMATCH,
    ON_LOOP_FILES,
    QUERY_PAGE,
    REFRESH,
    Ahead,
    Page,
    PagesAhead,
    Selections,
    Walk,
    check_unexpired,
    decode_token,
    encode_token,
    encode_token_until,
    query_checksum,
)
from lakegate.service.parts import FileParts, StreamedParts
from lakegate.service.responses import Lines, NdjsonAnswer
from lakegate.validity import depends_on, not_reusable

Render = Callable[[FileParts | StreamedParts, Signers], Iterator[Lines]]
SNAPSHOT = "snapshot"  # the kind of async query this module builds


MAX_HEADS_PER_SNAPSHOT = 32  # bounds the cache: keys are formats x capabilities x tables sharing the snapshot


@dataclass(frozen=True)
class _Position:
    """Where a snapshot query reads: the snapshot, whether it was asked by version or timestamp (time travel),
    and, for a later page, the page token's fields and the index of its first file."""

    snapshot: Snapshot
    travelled: bool
    page: dict[str, Any] | None = None
    first: int = 0


@dataclass(frozen=True)
class _Plan:
    """Everything that defines a snapshot query's lines, decided before the first byte."""

    table: ResolvedTable
    request: QueryRequest
    caps: Capabilities
    snapshot: Snapshot
    fmt: str
    id_scheme: str
    checksum: str
    head: list[bytes]  # protocol and metaData lines
    end_stream: bool  # an EndStreamAction ends the answer (capability, maxFiles or includeRefreshToken)
    end_stream_asked: bool  # the capability asked for it: only then does the response header confirm it
    refresh_token: str | None
    render: Render


@dataclass(frozen=True)
class _Kept:
    """A small answer as rendered, and what it was rendered for (checked by identity)."""

    table: ResolvedTable
    snapshot: Snapshot
    headers: dict[str, str]
    body: bytes
    stats: dict[str, int]


MAX_KEPT_ANSWERS = 256  # small answers kept for the current second (each at most ~64 file lines)


def _in_second(second: int) -> bool:
    return int(time.time()) == second


def _repeatable(request: QueryRequest, caps: Capabilities) -> bool:
    """Whether the answer depends only on the latest snapshot, the table and the second it is signed in: no
    version or timestamp (resolved through the commit timeline), no page or refresh token (whose expiry is in
    milliseconds), no pages, no async query."""
    return (
        request.version is None
        and request.timestamp is None
        and request.starting_version is None
        and not request.page_token
        and not request.refresh_token
        and not request.include_refresh_token
        and request.max_files is None
        and not caps.async_query
    )


class TableService:
    def __init__(self, context: TableContext, async_queries: AsyncQueries) -> None:
        # Encoded head lines per snapshot (dropped with it) and format/capabilities/description.
        self._heads: weakref.WeakKeyDictionary[Snapshot, dict[tuple[Any, ...], tuple[bytes, bytes]]] = (
            weakref.WeakKeyDictionary()
        )
        self.context = context
        self.async_queries = async_queries
        # /metadata answers per snapshot (dropped with it): (table, headers, lines) by table, capabilities and
        # time travel.
        self._metadata: weakref.WeakKeyDictionary[
            Snapshot, dict[tuple[Any, ...], tuple[ResolvedTable, dict[str, str], list[Lines]]]
        ] = weakref.WeakKeyDictionary()
        # Small answers of repeatable queries, for the second they were signed in (`_repeated`).
        self._answers: dict[tuple[Any, ...], _Kept] = {}
        self._answers_second = 0
        self._selections: Selections[FileParts] = Selections()
        self._ahead = PagesAhead()  # the next pages of walks, rendered while the client reads the page before
        async_queries.builders[SNAPSHOT] = self._async_result

    # -- /version --------------------------------------------------------------------------------------------

    def table_version(
        self, principal: Principal, share: str, schema: str, table: str, starting_timestamp: str | None
    ) -> int:
        resolved = self.context.resolve(principal, share, schema, table)
        snapshot = self.context.snapshots.latest(resolved.root)
        if starting_timestamp is None:
            return snapshot.version
        resolved.history_required()
        ts = parse_timestamp(starting_timestamp, "startingTimestamp")
        history = self.context.history(resolved, snapshot)
        version = (
            history.earliest
            if ts <= history.timestamps[0]
            else history.version_at_or_after(ts, starting_timestamp)
        )
        if version < resolved.info.start_version:
            raise InvalidParameterError(
                f"You can only query table data since version {resolved.info.start_version}."
                f"The provided timestamp({starting_timestamp}) corresponds to {version}."
            )
        return version

    # -- snapshots at a version or a timestamp ---------------------------------------------------------------

    def snapshot_for(
        self, table: ResolvedTable, version: int | None, timestamp: str | None
    ) -> tuple[Snapshot, bool]:
        """The snapshot asked for, and whether it was asked by version/timestamp (time travel)."""
        if version is not None and timestamp is not None:
            raise InvalidParameterError("Please only provide one of: version,timestamp")
        if version is None and timestamp is None:
            return self.context.snapshots.latest(table.root), False
        table.history_required()
        if timestamp is not None:
            ts = parse_timestamp(timestamp, "timestamp")
            version = self.context.history(table).version_as_of(ts, timestamp)
        assert version is not None
        table.check_start_version(version)
        return self.context.snapshots.at_version(table.root, version), True

    # -- /metadata -------------------------------------------------------------------------------------------

    def table_metadata(
        self,
        principal: Principal,
        share: str,
        schema: str,
        table: str,
        caps: Capabilities,
        version: int | None = None,
        timestamp: str | None = None,
    ) -> NdjsonAnswer:
        resolved = self.context.resolve(principal, share, schema, table)
        snapshot, travelled = self.snapshot_for(resolved, version, timestamp)
        # The answer depends on the snapshot, the table and the capabilities only: kept with the snapshot.
        kept = self._metadata.get(snapshot)
        if kept is None:
            kept = self._metadata.setdefault(snapshot, {})
        key = (id(resolved), caps, travelled)
        found = kept.get(key)
        if found is None or found[0] is not resolved:
            fmt = choose_format(caps, snapshot)
            check_readable(snapshot, fmt, caps)
            # One piece that says it holds no file line (nobody counts line starts in it).
            body = [Lines(b"".join(self._head(resolved, snapshot, fmt, caps, travelled)), 0)]
            found = (resolved, self.context.headers(snapshot.version, fmt), body)
            if len(kept) < MAX_HEADS_PER_SNAPSHOT:
                kept[key] = found
        return NdjsonAnswer(dict(found[1]), found[2], {"version": snapshot.version})

    # -- /query (snapshot; with startingVersion it is `HistoryService.stream_query`) -------------------------

    def query(
        self,
        principal: Principal,
        share: str,
        schema: str,
        table: str,
        request: QueryRequest,
        caps: Capabilities,
        file_id_hash: str | None,
        base_url: str,
    ) -> NdjsonAnswer:
        resolved = self.context.resolve(principal, share, schema, table)
        if _repeatable(request, caps):
            return self._repeated(resolved, request, caps, file_id_hash, base_url)
        not_reusable()  # pages, versions, async queries: made again each time (lakegate.validity)
        if request.page_token:
            ahead = self._rendered_ahead(resolved, request, caps, file_id_hash, base_url)
            if ahead is not None:
                return ahead
        if active():
            self._big_in_a_thread(resolved)
        check_query(resolved, request, caps)
        position = self._position(resolved, request)
        if len(position.snapshot.files) > MAX_INLINE_FILES:
            must_not_block()  # selecting, signing and encoding many files: in a worker thread
        plan = self._plan(resolved, request, caps, file_id_hash, position)
        snapshot = position.snapshot
        if (
            caps.async_query
            and position.page is None
            and len(snapshot.files) >= self.context.config.async_query_min_files
        ):
            return self._submit(principal, plan, position.travelled, caps, file_id_hash, base_url)
        return self._page(plan, position, file_id_hash, base_url)

    def _repeated(
        self,
        table: ResolvedTable,
        request: QueryRequest,
        caps: Capabilities,
        file_id_hash: str | None,
        base_url: str,
    ) -> NdjsonAnswer:
        """A query of the latest snapshot that names no page, token or version: a small answer is rendered at
        most once per second for the same table, query and capabilities. Its URLs are signed at that second,
        so a second render in it would make the same bytes (`SignRequest.now_s` is whole seconds)."""
        snapshot = self.context.snapshots.latest(table.root)
        second = int(time.time())
        depends_on(_in_second, second)  # what this method itself keeps for (lakegate.validity)
        key = (id(table), id(snapshot), request, caps, file_id_hash, base_url)
        kept = self._answers.get(key) if self._answers_second == second else None
        if kept is not None and kept.table is table and kept.snapshot is snapshot:
            return NdjsonAnswer(
                dict(kept.headers), (Lines(kept.body, kept.stats["files"]),), dict(kept.stats)
            )
        check_query(table, request, caps)
        if len(snapshot.files) > MAX_INLINE_FILES:
            must_not_block()  # selecting, signing and encoding many files: in a worker thread
        position = _Position(snapshot, travelled=False)
        plan = self._plan(table, request, caps, file_id_hash, position)
        answer = self._page(plan, position, file_id_hash, base_url, now=second)
        if answer.stats["files"] > SMALL_ANSWER_FILES:
            return answer  # streamed as usual: a big answer is not kept
        body = b"".join(answer.chunks())
        if self._answers_second != second or len(self._answers) >= MAX_KEPT_ANSWERS:
            self._answers, self._answers_second = {}, second
        self._answers[key] = _Kept(table, snapshot, answer.headers, body, answer.stats)
        return NdjsonAnswer(dict(answer.headers), (Lines(body, answer.stats["files"]),), dict(answer.stats))

    def _big_in_a_thread(self, table: ResolvedTable) -> None:
        """On the event loop: a query of a big table goes to a worker thread before its tokens are verified and
        its plan is made (all of which the thread would do again: ~0.2 ms of a page request's event loop time).
        Errors are left for the thread to report, in their usual order."""
        try:
            files = len(self.context.snapshots.latest(table.root).files)
        except LakegateError:
            files = MAX_INLINE_FILES + 1
        if files > MAX_INLINE_FILES:
            must_not_block()

    def _position(self, table: ResolvedTable, request: QueryRequest) -> _Position:
        """The snapshot to read: as the page or refresh token pins it, else as asked."""
        keys = self.context.keys
        if not (request.page_token or request.refresh_token):
            return _Position(*self.snapshot_for(table, request.version, request.timestamp))
        page, first, version = None, 0, request.version
        if request.page_token:
            page = decode_token(keys, QUERY_PAGE, request.page_token, table, "page token")
            version, first = int(page["v"]), int(page["i"])
        if request.refresh_token:
            version = int(decode_token(keys, REFRESH, request.refresh_token, table, "refresh token")["v"])
        assert version is not None  # set from the token
        travelled = request.version is not None or request.timestamp is not None
        return _Position(self.context.snapshots.at_version(table.root, version), travelled, page, first)

    def _plan(
        self,
        table: ResolvedTable,
        request: QueryRequest,
        caps: Capabilities,
        file_id_hash: str | None,
        position: _Position,
    ) -> _Plan:
        snapshot = position.snapshot
        fmt = choose_format(caps, snapshot)
        check_readable(snapshot, fmt, caps)
        checksum = query_checksum(request, caps, file_id_hash)
        if position.page is not None and (position.page.get("q") != checksum or "m" in position.page):
            raise InvalidParameterError(MISMATCH)
        return _Plan(
            table,
            request,
            caps,
            snapshot,
            fmt,
            file_id_hash or fmt,
            checksum,
            self._head(table, snapshot, fmt, caps, position.travelled),
            caps.include_end_stream_action or request.max_files is not None or request.include_refresh_token,
            caps.include_end_stream_action,
            self._refresh_token(table, request, snapshot),
            self._renderer(table, snapshot, fmt, position.travelled),
        )

    def _head(
        self, table: ResolvedTable, snapshot: Snapshot, fmt: str, caps: Capabilities, travelled: bool
    ) -> list[bytes]:
        """The protocol and metaData lines opening the answer, encoded once per snapshot and everything else
        they depend on (small answers are mostly these two lines)."""
        description = self.context.describe(table, snapshot, snapshot.version if travelled else None)
        history_shared = table.info.history_shared
        key = (
            fmt,
            bool(caps.reader_features),  # all `response_protocol` reads of the capabilities
            history_shared,
            description.version,
            description.location,
            tuple(description.auxiliary_locations),
            tuple(description.access_modes),
        )
        heads = self._heads.get(snapshot)
        if heads is None:
            heads = self._heads.setdefault(snapshot, {})
        head = heads.get(key)
        if head is None:
            head = (
                lines.protocol_line(response_protocol(snapshot, caps), fmt),
                lines.metadata_line(snapshot.metadata, fmt, description, history_shared=history_shared),
            )
            if len(heads) < MAX_HEADS_PER_SNAPSHOT:
                heads[key] = head
        return list(head)

    def _refresh_token(self, table: ResolvedTable, request: QueryRequest, snapshot: Snapshot) -> str | None:
        if not request.include_refresh_token:
            return None
        ttl = self.context.config.refresh_token_ttl_ms
        return encode_token(self.context.keys, REFRESH, table, ttl, {"v": snapshot.version})

    def _renderer(self, table: ResolvedTable, snapshot: Snapshot, fmt: str, travelled: bool) -> Render:
        extra = b""
        if travelled:  # time travel: each file says which version it was read at, and when that was committed
            extra = lines.extra_fields(
                version=snapshot.version, timestamp=self.context.history(table).timestamp_of(snapshot.version)
            )
        root, aux = table.root, table.auxiliary

        def render(files: FileParts | StreamedParts, signers: Signers) -> Iterator[Lines]:
            return parts_lines(files, fmt, signers, root, aux, extra=extra)

        return render

    def _submit(
        self,
        principal: Principal,
        plan: _Plan,
        travelled: bool,
        caps: Capabilities,
        file_id_hash: str | None,
        base_url: str,
    ) -> NdjsonAnswer:
        """An async query: the file selection (predicates, limit) runs in the background, at the version
        found now (pinned in the description, so any replica computes the same files)."""
        request, snapshot = plan.request, plan.snapshot
        spec = {
            "kind": SNAPSHOT,
            "version": snapshot.version,
            "travelled": travelled,
            "fileidhash": file_id_hash,
            "base_url": base_url,
            **describe_request(request, caps),
        }
        return self.async_queries.submit(
            principal,
            plan.table,
            request.idempotency_key or "",
            plan.checksum,
            plan.fmt,
            snapshot.version,
            file_id_hash,
            spec,
        )

    def _async_result(self, table: ResolvedTable, spec: dict[str, Any]) -> Prepared:
        request, caps = request_of(spec)
        snapshot = self.context.snapshots.at_version(table.root, spec["version"])
        plan = self._plan(table, request, caps, spec["fileidhash"], _Position(snapshot, spec["travelled"]))
        return Prepared(
            plan.table,
            plan.fmt,
            snapshot.version,
            plan.head,
            self._select(plan),
            plan.render,
            spec["fileidhash"],
            spec["base_url"],
            request.max_files,
            plan.end_stream,
            plan.refresh_token,
        )

    def _page(
        self,
        plan: _Plan,
        position: _Position,
        file_id_hash: str | None,
        base_url: str,
        now: int | None = None,
    ) -> NdjsonAnswer:
        page, signers, stats, follow = self._page_of(plan, position, file_id_hash, base_url, now)
        if follow is not None:  # once sent, a walk starts here: the next pages render ahead
            walk = Walk()
            page.after = lambda: walk.rendered(lambda: follow(walk))
        return page.answer(signers, stats)

    def _page_of(
        self,
        plan: _Plan,
        position: _Position,
        file_id_hash: str | None,
        base_url: str,
        now: int | None = None,
        signers: Signers | None = None,
    ) -> tuple[Page, Signers, dict[str, int], Callable[[Walk], bool] | None]:
        """The page, its signers (`signers`: ones made for `now` already), its audit figures, and when it has a
        next page, what starts rendering that one ahead (`PagesAhead`) in a walk."""
        # Pages index into the files sorted by path: the order of a snapshot's files depends on how it was
        # rebuilt (checkpoint or incremental), and each page may be served from a different rebuild.
        request, version = plan.request, plan.snapshot.version
        first = position.first
        limit = self.context.page_limit(request.max_files) if request.max_files else None
        next_token, token_expires_ms = None, 0
        selected: FileParts | StreamedParts
        if limit is None and not first:  # every file: a cold build's blocks are sent as they are made
            selected = self._select(plan, whole=True)
            size = selected.total_size()
        else:
            every = self._select(plan)
            stop = len(every) if limit is None else first + limit
            if stop < len(every):
                next_token, token_expires_ms = self._next_page_token(plan, stop)
            selected = every[first:stop]
            # Kept parts or selections sum their sizes once for every page; a limit hint's files are new each time.
            size = (
                selected.total_size() if request.limit_hint is not None else every.size_between(first, stop)
            )
        page = Page(
            self.context.headers(version, plan.fmt, plan.end_stream_asked, file_id_hash),
            plan.head,
            lambda signers: plan.render(selected, signers),
            len(selected),
            plan.end_stream,
            next_token,
            plan.refresh_token,
        )
        follow = None
        if next_token is not None and limit is not None and limit <= self._ahead.max_files:
            following = dataclasses.replace(request, page_token=next_token)

            def follow(walk: Walk) -> bool:
                return self._render_ahead(
                    dataclasses.replace(plan, request=following),
                    dataclasses.replace(position, page=None, first=first + limit),
                    file_id_hash,
                    base_url,
                    walk,
                    token_expires_ms,
                    limit <= ON_LOOP_FILES,
                )

        stats = {"version": version, "files": len(selected), "bytes": size}
        return page, signers or self.context.signers(plan.table, base_url, now), stats, follow

    # -- pages rendered ahead ---------------------------------------------------------------------------------

    def _ahead_key(
        self,
        table: ResolvedTable,
        request: QueryRequest,
        caps: Capabilities,
        file_id_hash: str | None,
        base_url: str,
    ) -> tuple[Any, ...]:
        # The table by what it is (the catalog hands out a new object when it reads the table again).
        return (table.info, request, caps, file_id_hash, base_url)

    def _max_ahead_seconds(self) -> float:
        """How long after its URLs were signed a page rendered ahead may be handed out: a few seconds at most,
        and a tenth of the URLs' lifetime (so they keep at least 90% of it)."""
        return min(5.0, self.context.config.pre_signed_url_timeout_seconds / 10)

    def _render_ahead(
        self,
        plan: _Plan,
        position: _Position,
        file_id_hash: str | None,
        base_url: str,
        walk: Walk,
        token_expires_ms: int,
        on_loop: bool,
    ) -> bool:
        """Starts rendering the page `plan.request` (the request of the page before, with its next token)
        asks for, in `PagesAhead`'s thread (`on_loop`: a small page on the event loop, when called there); False
        if it is rendered already."""

        def render() -> Ahead | None:
            now = int(time.time())
            same_second = walk.signers if walk.signers is not None and walk.signers[0] == now else None
            page, signers, stats, follow = self._page_of(
                plan, position, file_id_hash, base_url, now, None if same_second is None else same_second[1]
            )
            walk.signers = (now, signers)
            answer = page.answer(signers, stats)
            body = b"".join(answer.chunks())
            if page.failed:
                walk.rendered(None)
                return None  # the request tries again, and reports the error if it happens again
            walk.rendered(None if follow is None else lambda: follow(walk))
            return Ahead(
                plan.table, answer.headers, body, answer.stats, float(now), token_expires_ms, walk.handed_out
            )

        key = self._ahead_key(plan.table, plan.request, plan.caps, file_id_hash, base_url)
        return self._ahead.render(key, render, on_loop)

    def _rendered_ahead(
        self,
        table: ResolvedTable,
        request: QueryRequest,
        caps: Capabilities,
        file_id_hash: str | None,
        base_url: str,
    ) -> NdjsonAnswer | None:
        """The page rendered ahead for this request, if there is one (and the next one starts rendering)."""
        key = self._ahead_key(table, request, caps, file_id_hash, base_url)
        ahead = self._ahead.get(key, self._max_ahead_seconds())
        if ahead is None or ahead.table != table:
            return None
        # The checks the request passes otherwise (the page was made for the same request, whose token this
        # server made for this table, so its signature and table are known good): the token may have expired.
        check_query(table, request, caps)
        check_unexpired(ahead.token_expires_ms, "page token")
        return NdjsonAnswer(
            dict(ahead.headers), (Lines(ahead.body, ahead.stats["files"]),), dict(ahead.stats), ahead.then
        )

    def _next_page_token(self, plan: _Plan, first: int) -> tuple[str, int]:
        """The token of the page from `first`, and when it expires."""
        expires_ms = now_ms() + self.context.config.query_table_page_token_ttl_ms
        fields = {"v": plan.snapshot.version, "i": first, "q": plan.checksum}
        return encode_token_until(self.context.keys, QUERY_PAGE, plan.table, expires_ms, fields), expires_ms

    # -- choosing the files ----------------------------------------------------------------------------------

    @overload
    def _select(self, plan: _Plan) -> FileParts: ...
    @overload
    def _select(self, plan: _Plan, whole: bool) -> FileParts | StreamedParts: ...

    def _select(self, plan: _Plan, whole: bool = False) -> FileParts | StreamedParts:
        """The files the query returns (sorted by file key, the order pages index into), filtered by the
        predicate hints, or cut short by the limit hint. `whole`: the answer sends all of them in order, so
        parts still being built may be followed (`LineCache.streamed`)."""
        snapshot, table, request = plan.snapshot, plan.table, plan.request
        hinted = request.predicate_hints or request.json_predicate_hints  # (every page of a walk asks)
        keep = self.context.file_filter(request, snapshot) if hinted else None
        lines_ = self.context.lines
        if whole and keep is None and request.limit_hint is None:
            return lines_.streamed(snapshot, table.root, table.auxiliary, plan.fmt, plan.id_scheme)
        all_parts = lines_.parts(snapshot, table.root, table.auxiliary, plan.fmt, plan.id_scheme)
        if keep is not None:

            def select() -> FileParts:
                if len(all_parts) > MAX_INLINE_FILES:
                    must_not_block()  # every file's partition values and stats: not on the event loop
                return _filtered(all_parts, keep)

            key = (table.root, table.auxiliary, plan.fmt, plan.id_scheme, plan.checksum)
            return self._selections.get(snapshot, key, select)
        if request.limit_hint is not None:
            if len(all_parts) > MAX_INLINE_FILES:
                must_not_block()  # stats read until the limit is reached: not on the event loop
            return _enough_rows(all_parts, request.limit_hint)
        return all_parts


_PARTITION_VALUES = pa.map_(pa.string(), pa.string())


def _filtered(parts: FileParts, keep: FileFilter) -> FileParts:
    """The files the predicate keeps, column-wise: once per distinct partition, then (when the predicate reads
    statistics) over the stats of the files left only."""
    rows = select_columns(
        keep,
        parts.column("partitionValues", _PARTITION_VALUES),
        lambda left: parts.column("stats", pa.string(), left),
    )
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):  # one run (every file, a partition's): no copy
        return parts[int(rows[0]) : int(rows[-1]) + 1]
    return parts.take(rows.tolist())


_DELETION_VECTOR = pa.struct([("cardinality", pa.int64())])


def _enough_rows(files: FileParts, rows_wanted: int) -> FileParts:
    """Without predicates, the first files that hold `rows_wanted` rows (a file without stats counts 0). Read
    column-wise a block at a time (growing), so a small limit reads the stats of a few files only."""
    if rows_wanted <= 0 or not len(files):
        return files[:0]
    rows, start, block = 0, 0, 1024
    while start < len(files):
        part = files[start : start + block]
        counts = record_counts(part.column("stats", pa.string())) - _deleted_rows(part)
        reached = np.flatnonzero(np.cumsum(counts) + rows >= rows_wanted)
        if len(reached):
            return files[: start + int(reached[0]) + 1]
        rows += int(counts.sum())
        start, block = start + block, block * 2
    return files


def _deleted_rows(files: FileParts) -> np.ndarray:
    """Rows each file's deletion vector removes (0 without one)."""
    vectors = files.column("deletionVector", _DELETION_VECTOR)
    if "cardinality" not in {field.name for field in vectors.type}:
        return np.zeros(len(files), dtype=np.int64)
    cardinality = pc.fill_null(pc.struct_field(vectors, "cardinality"), 0)
    return np.asarray(cardinality.to_numpy(zero_copy_only=False), dtype=np.int64)
