"""Table history over the protocol: streaming queries (/query with startingVersion), the change data feed
(/changes), and async queries (protocol.md §2.8–2.10, §9.4).

A history answer walks the versions of a range: per version, optional historical protocol/metaData lines, then
the files the version contributes (`lakegate.delta.changes`). The first page reads every commit of the range
before answering, because the checks (change data recorded, readable in the chosen format) cover the whole
range; later pages trust their signed page token, which pins the range, the opening snapshot and the format.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Any, cast

from lakegate.catalog.base import Principal
from lakegate.delta.addfiles import AddFiles, file_key
from lakegate.delta.changes import ADD, CDC, REMOVE, Commit, CommitCache, check_cdf_recorded
from lakegate.delta.predicates import FileFilter
from lakegate.delta.snapshot import Snapshot
from lakegate.delta.timeline import Timeline
from lakegate.exceptions import InvalidParameterError
from lakegate.protocol import lines
from lakegate.protocol.capabilities import DELTA, PARQUET, Capabilities
from lakegate.protocol.requests import ChangesRequest, QueryRequest, parse_timestamp
from lakegate.service.async_queries import AsyncQueries, Prepared, describe_request, request_of
from lakegate.service.context import ResolvedTable, TableContext, check_query
from lakegate.service.files import FileEntry, Signers, file_lines, make_entry
from lakegate.service.formats import check_readable, choose_format, response_protocol
from lakegate.service.paging import (
    CHANGES_PAGE,
    MISMATCH,
    QUERY_PAGE,
    Page,
    changes_checksum,
    decode_token,
    encode_token,
    query_checksum,
)
from lakegate.service.responses import NdjsonAnswer

STREAM, CDF = "stream", "cdf"
_WIRE_KIND = {
    PARQUET: {ADD: "add", REMOVE: "remove", CDC: "cdf"},
    DELTA: {ADD: "add", REMOVE: "remove", CDC: "cdc"},
}


# -- items: what one response holds, decided before the first byte ---------------------------------------------


@dataclass(frozen=True)
class FileItem:
    kind: str  # the wire name in the response format
    extra: bytes  # pre-encoded `,"version":v,"timestamp":t`
    entry: FileEntry


Item = bytes | FileItem  # a pre-encoded line (historical metaData/protocol) or a file to sign


def render_items(items: Iterable[Item], fmt: str, signers: Signers, table: ResolvedTable) -> Iterator[bytes]:
    """Lines of mixed items: runs of files sharing kind and version go through the fast `file_lines`."""
    for key, group in groupby(items, key=_run_key):
        if key is None:
            yield from cast(Iterator[bytes], group)
        else:
            kind, extra = key
            entries = (cast(FileItem, it).entry for it in group)
            yield from file_lines(
                entries, fmt, signers, table.root, table.auxiliary, kind=kind, extra=_constant(extra)
            )


def _run_key(item: Item) -> tuple[str, bytes] | None:
    return None if isinstance(item, bytes) else (item.kind, item.extra)


def _constant(value: bytes) -> Callable[[FileEntry], bytes]:
    return lambda _entry: value


# -- walking a range of versions ------------------------------------------------------------------------------


@dataclass
class Walk:
    """Everything that defines the lines of a history answer; pages differ only in where they start."""

    table: ResolvedTable
    mode: str  # STREAM or CDF
    start: int
    end: int
    head: Snapshot  # the protocol and metadata opening every page
    fmt: str
    id_scheme: str
    caps: Capabilities
    history: Timeline
    description: lines.TableDescription
    historical_metadata: bool
    historical_protocol: bool
    keep: FileFilter | None = None  # predicate hints (streaming queries only; best effort)
    # The commits of the range read for the first page's checks, reused for its lines: read once, not evicted
    # from the (bounded) commit cache by a long range before they are used.
    read: dict[int, Commit] = dataclasses.field(default_factory=dict)


class HistoryService:
    def __init__(self, context: TableContext, async_queries: AsyncQueries) -> None:
        self.context = context
        self.async_queries = async_queries
        self.commits = CommitCache()
        async_queries.builders[STREAM] = self._async_result

    # -- /query with startingVersion ---------------------------------------------------------------------------

    def stream_query(
        self,
        principal: Principal,
        share: str,
        schema: str,
        name: str,
        request: QueryRequest,
        caps: Capabilities,
        file_id_hash: str | None,
        base_url: str,
    ) -> NdjsonAnswer:
        table = self.context.resolve(principal, share, schema, name)
        check_query(table, request, caps)
        table.history_required()
        start = request.starting_version
        assert start is not None
        table.check_start_version(start)
        end = request.ending_version
        if end is not None and start > end:
            raise InvalidParameterError(
                f"startingVersion({start}) must be smaller than or equal to endingVersion({end})."
            )
        checksum = query_checksum(request, caps, file_id_hash)
        limit = self.context.page_limit(request.max_files)
        end_stream = caps.include_end_stream_action or request.max_files is not None
        if request.page_token:
            walk, first = self._resume(table, QUERY_PAGE, STREAM, request.page_token, checksum, caps, request)
            return self._page(walk, first, limit, end_stream, QUERY_PAGE, checksum, file_id_hash, base_url)
        latest_snapshot = self.context.snapshots.latest(table.root)
        latest = latest_snapshot.version
        if start > latest:
            raise InvalidParameterError(
                f"Provided startingVersion({start}) is invalid. It cannot be greater than the "
                f"latest version of the table({latest})."
            )
        if end is not None and end > latest:
            raise InvalidParameterError(
                f"Provided end version({end}) is invalid. End version cannot be greater than "
                f"the latest version of the table({latest})."
            )
        end = latest if end is None else end
        if caps.async_query and end - start + 1 >= self.context.config.async_query_min_files:
            # The range is pinned (`end` as found now), so any replica computes the same lines.
            spec = {
                "kind": STREAM,
                "start": start,
                "end": end,
                "fileidhash": file_id_hash,
                "base_url": base_url,
                **describe_request(request, caps),
            }
            fmt = choose_format(caps, self.context.snapshots.at_version(table.root, start))
            return self.async_queries.submit(
                principal, table, request.idempotency_key or "", checksum, fmt, start, file_id_hash, spec
            )
        walk = self._stream_walk(table, request, caps, file_id_hash, start, end, latest_snapshot)
        return self._page(walk, (start, 0), limit, end_stream, QUERY_PAGE, checksum, file_id_hash, base_url)

    def _stream_walk(
        self,
        table: ResolvedTable,
        request: QueryRequest,
        caps: Capabilities,
        file_id_hash: str | None,
        start: int,
        end: int,
        latest: Snapshot | None = None,
    ) -> Walk:
        """The walk of a streaming query over versions start..end, after reading and checking them all."""
        head = self.context.snapshots.at_version(table.root, start)
        commits = self._read(table, start, end)
        fmt = self._check_range(caps, head, commits)
        return Walk(
            table,
            STREAM,
            start,
            end,
            head,
            fmt,
            file_id_hash or fmt,
            caps,
            self.context.history(table, latest, at_least=end),
            self.context.describe(table, head, start),
            historical_metadata=True,
            historical_protocol=request.include_historical_protocol,
            keep=self.context.file_filter(request, head),
            read={c.version: c for c in commits},
        )

    def _async_result(self, table: ResolvedTable, spec: dict[str, Any]) -> Prepared:
        request, caps = request_of(spec)
        start, end, file_id_hash = spec["start"], spec["end"], spec["fileidhash"]
        walk = self._stream_walk(table, request, caps, file_id_hash, start, end)
        end_stream = caps.include_end_stream_action or request.max_files is not None
        return self._prepare(walk, start, request.max_files, end_stream, None, file_id_hash, spec["base_url"])

    # -- /changes ----------------------------------------------------------------------------------------------

    def changes(
        self,
        principal: Principal,
        share: str,
        schema: str,
        name: str,
        params: Mapping[str, str],
        caps: Capabilities,
        file_id_hash: str | None,
        base_url: str,
    ) -> NdjsonAnswer:
        table = self.context.resolve(principal, share, schema, name)
        if not table.info.history_shared:
            raise InvalidParameterError(
                f"cdf is not enabled on table {table.info.full_name}: the table is shared "
                "without its history (historyShared is false)"
            )
        request = ChangesRequest.from_params(params)
        checksum = changes_checksum(request.fingerprint(), caps, file_id_hash)
        limit = self.context.page_limit(request.max_files)
        end_stream = caps.include_end_stream_action or request.max_files is not None
        if request.page_token:
            walk, first = self._resume(table, CHANGES_PAGE, CDF, request.page_token, checksum, caps)
            return self._page(walk, first, limit, end_stream, CHANGES_PAGE, checksum, file_id_hash, base_url)

        latest = self.context.snapshots.latest(table.root)
        history = self.context.history(table, latest)
        start, end = self._cdf_bounds(table, request, history, latest.version)
        at_start = self.context.snapshots.at_version(table.root, start)
        # The opening metadata: as of the start when the client replays metadata changes itself, otherwise the
        # one in force at the end of the range (the schema of every change returned).
        head = (
            at_start
            if request.include_historical_metadata
            else self.context.snapshots.at_version(table.root, end)
        )
        commits = self._read(table, start, end)
        check_cdf_recorded(start, end, at_start.metadata, [c for c in commits if c.version > start])
        fmt = self._check_range(caps, at_start, commits, also=head)
        walk = Walk(
            table,
            CDF,
            start,
            end,
            head,
            fmt,
            file_id_hash or fmt,
            caps,
            history,
            self.context.describe(table, head, head.version),
            historical_metadata=request.include_historical_metadata,
            historical_protocol=request.include_historical_protocol,
            read={c.version: c for c in commits},
        )
        return self._page(walk, (start, 0), limit, end_stream, CHANGES_PAGE, checksum, file_id_hash, base_url)

    def _cdf_bounds(
        self, table: ResolvedTable, request: ChangesRequest, history: Timeline, latest: int
    ) -> tuple[int, int]:
        if request.starting_timestamp is not None:
            start = history.version_at_or_after(
                parse_timestamp(request.starting_timestamp, "startingTimestamp"), request.starting_timestamp
            )
        else:
            assert request.starting_version is not None
            start = request.starting_version
        if request.ending_timestamp is not None:
            end = history.version_as_of(
                parse_timestamp(request.ending_timestamp, "endingTimestamp"),
                request.ending_timestamp,
                after_latest=True,
            )
        else:
            # Like Delta readers, an ending version past the latest reads up to the latest.
            end = latest if request.ending_version is None else min(request.ending_version, latest)
        if start > latest:
            raise InvalidParameterError(
                f"Provided Start version({start}) for reading change data is invalid. Start "
                f"version cannot be greater than the latest version of the table({latest})."
            )
        if end < start:
            raise InvalidParameterError(
                f"CDF range from start {start} to end {end} was invalid. End cannot be before start."
            )
        table.check_start_version(start, "table changes")
        return start, end

    # -- shared machinery --------------------------------------------------------------------------------------

    def _read(self, table: ResolvedTable, start: int, end: int) -> list[Commit]:
        log_ = self.context.snapshots.log(table.root)
        return [self.commits.get(log_, v) for v in range(start, end + 1)]

    def _check_range(
        self, caps: Capabilities, first: Snapshot, commits: list[Commit], also: Snapshot | None = None
    ) -> str:
        """The response format for the range, after checking the client can read every state of the table
        within it (a later version may turn on deletion vectors or column mapping)."""
        states = [first] + ([also] if also is not None else [])
        protocol, metadata = first.protocol, first.metadata
        for c in commits:
            if c.version > first.version and (c.protocol or c.metadata):
                protocol, metadata = c.protocol or protocol, c.metadata or metadata
                states.append(Snapshot(c.version, protocol, metadata, AddFiles(), 0))
        formats = {choose_format(caps, s) for s in states}
        fmt = DELTA if DELTA in formats else PARQUET
        for s in states:
            check_readable(s, fmt, caps)
        return fmt

    def _resume(
        self,
        table: ResolvedTable,
        purpose: str,
        mode: str,
        token: str,
        checksum: str,
        caps: Capabilities,
        request: QueryRequest | None = None,
    ) -> tuple[Walk, tuple[int, int]]:
        page = decode_token(self.context.keys, purpose, token, table, "page token")
        if page.get("q") != checksum or page.get("m") != mode:
            raise InvalidParameterError(MISMATCH)
        start, end, fmt = int(page["s"]), int(page["n"]), str(page["f"])
        head = self.context.snapshots.at_version(table.root, int(page["h"]))
        walk = Walk(
            table,
            mode,
            start,
            end,
            head,
            fmt,
            str(page["ids"]),
            caps,
            self.context.history(table, at_least=end),
            self.context.describe(table, head, head.version),
            historical_metadata=bool(page["hm"]),
            historical_protocol=bool(page["hp"]),
        )
        if request is not None:
            walk.keep = self.context.file_filter(request, head)
        return walk, (int(page["v"]), int(page["i"]))

    def _head_lines(self, walk: Walk) -> list[bytes]:
        protocol_version = walk.head.version if walk.historical_protocol and walk.fmt == DELTA else None
        return [
            lines.protocol_line(response_protocol(walk.head, walk.caps), walk.fmt, version=protocol_version),
            lines.metadata_line(walk.head.metadata, walk.fmt, walk.description, history_shared=True),
        ]

    def _items(self, walk: Walk, version: int) -> list[Item]:
        """The lines version `version` contributes, in order."""
        commit = walk.read.get(version) or self.commits.get(
            self.context.snapshots.log(walk.table.root), version
        )
        items: list[Item] = []
        if version > walk.start:
            if walk.historical_protocol and walk.fmt == DELTA and commit.protocol:
                state = Snapshot(version, commit.protocol, walk.head.metadata, AddFiles(), 0)
                items.append(lines.protocol_line(response_protocol(state, walk.caps), DELTA, version=version))
            if walk.historical_metadata and commit.metadata:
                description = dataclasses.replace(
                    walk.description, version=version, size=None, num_files=None
                )
                items.append(lines.metadata_line(commit.metadata, walk.fmt, description, history_shared=True))
        files = commit.cdf_files() if walk.mode == CDF else commit.streaming_files()
        timestamp = walk.history.timestamp_of(version)
        if walk.mode == CDF:
            timestamp = commit.change_timestamp(timestamp)
        extra = lines.extra_fields(version=version, timestamp=timestamp)
        kinds = _WIRE_KIND[walk.fmt]
        previous: Snapshot | None = None
        for kind, action in files:
            if kind == REMOVE and "partitionValues" not in action:
                # Old writers leave partition values and size out of removes; readers need them.
                previous = previous or self.context.snapshots.at_version(walk.table.root, version - 1)
                action = {**previous.files.get(file_key(action), {}), **action}  # noqa: PLW2901  - completes this remove
                action.setdefault("partitionValues", {})
            if (
                walk.keep is not None
                and kind != CDC
                and not walk.keep.keeps(action.get("partitionValues"), action.get("stats"))
            ):
                continue
            if walk.fmt == DELTA:
                tail = lines.delta_action_tail(action)
            else:
                tail = lines.parquet_tail(action) if kind == ADD else lines.parquet_change_tail(action)
            entry = make_entry(
                action,
                walk.table.root,
                walk.table.auxiliary,
                walk.id_scheme,
                lambda _a: tail,  # noqa: B023  - make_entry calls it at once
            )
            items.append(FileItem(kinds[kind], extra, entry))
        return items

    def _collect(
        self, walk: Walk, first: tuple[int, int], limit: int | None
    ) -> tuple[list[Item], tuple[int, int] | None]:
        """Items from position `first` ((version, index within the version)) until `limit` files; and the
        position of the next file, if any remains."""
        out: list[Item] = []
        files = 0
        for version in range(first[0], walk.end + 1):
            items = self._items(walk, version)
            for i in range(first[1] if version == first[0] else 0, len(items)):
                item = items[i]
                if isinstance(item, FileItem):
                    if limit is not None and files == limit:
                        return out, (version, i)
                    files += 1
                out.append(item)
        return out, None

    def _page(
        self,
        walk: Walk,
        first: tuple[int, int],
        limit: int | None,
        end_stream: bool,
        purpose: str,
        checksum: str,
        file_id_hash: str | None,
        base_url: str,
    ) -> NdjsonAnswer:
        items, following = self._collect(walk, first, limit)
        next_token = None
        if following is not None:
            next_token = encode_token(
                self.context.keys,
                purpose,
                walk.table,
                self.context.config.query_table_page_token_ttl_ms,
                {
                    "q": checksum,
                    "m": walk.mode,
                    "s": walk.start,
                    "n": walk.end,
                    "h": walk.head.version,
                    "f": walk.fmt,
                    "ids": walk.id_scheme,
                    "hm": walk.historical_metadata,
                    "hp": walk.historical_protocol,
                    "v": following[0],
                    "i": following[1],
                },
            )
        file_items = [it for it in items if isinstance(it, FileItem)]
        files, size = len(file_items), sum(int(it.entry.add.get("size") or 0) for it in file_items)
        fmt, table = walk.fmt, walk.table
        page = Page(
            self.context.headers(walk.start, fmt, walk.caps.include_end_stream_action, file_id_hash),
            self._head_lines(walk),
            lambda signers: render_items(items, fmt, signers, table),
            files,
            end_stream,
            next_token,
        )
        stats = {"version": walk.start, "files": files, "bytes": size}
        return page.answer(self.context.signers(table, base_url), stats)

    # -- async queries -----------------------------------------------------------------------------------------

    def _prepare(
        self,
        walk: Walk,
        version: int,
        max_files: int | None,
        end_stream: bool,
        refresh_token: str | None,
        file_id_hash: str | None,
        base_url: str,
    ) -> Prepared:
        items, _ = self._collect(walk, (walk.start, 0), None)
        fmt, table = walk.fmt, walk.table
        return Prepared(
            table,
            fmt,
            version,
            self._head_lines(walk),
            items,
            lambda chunk, signers: render_items(chunk, fmt, signers, table),
            file_id_hash,
            base_url,
            max_files,
            end_stream,
            refresh_token,
        )
