"""Table use cases: version, metadata and snapshot queries (protocol.md §2.6–2.8). Streaming queries, the
change data feed and async queries are in `lakegate.service.history`.

Everything that can fail — authorisation, table lookup, parameter checks, version resolution, format
negotiation — happens before an answer is returned; the body generator only signs and encodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from lakegate.catalog.base import Catalog, Principal, TableInfo
from lakegate.cloud.base import SignRequest
from lakegate.cloud.locations import Location
from lakegate.cloud.registry import StoreRegistry
from lakegate.config import ServerConfig
from lakegate.delta.cache import SnapshotCache
from lakegate.delta.actions import file_stats
from lakegate.delta.timeline import Timeline, TimelineCache
from lakegate.delta.predicates import FileFilter, combine, json_predicate_filter, sql_predicate_filter
from lakegate.delta.snapshot import Snapshot
from lakegate.exceptions import InvalidParameterError
from lakegate.keys import KeyRing
from lakegate.protocol import lines, tokens
from lakegate.protocol.capabilities import DELTA, HEADER, PARQUET, Capabilities, response_header
from lakegate.protocol.requests import QueryRequest, parse_timestamp
from lakegate.service.async_queries import Prepared
from lakegate.service.files import FileEntry, Signers, entries, file_lines
from lakegate.service.formats import check_readable, choose_format, response_protocol
from lakegate.service.history import QUERY_PAGE, HistoryService, Page, query_checksum
from lakegate.service.responses import NDJSON, NdjsonAnswer

REFRESH = "refresh"


@dataclass(frozen=True)
class ResolvedTable:
    info: TableInfo
    root: Location
    auxiliary: tuple[Location, ...]

    def history_required(self, what: str = "Reading table by version or timestamp") -> None:
        if not self.info.history_shared:
            raise InvalidParameterError(
                f"{what} is not supported because history sharing is not enabled on table: {self.info.full_name}"
            )

    def check_start_version(self, version: int, what: str = "table data") -> None:
        if version < self.info.start_version:
            raise InvalidParameterError(f"You can only query {what} since version {self.info.start_version}.")


class TableService:
    def __init__(
        self,
        config: ServerConfig,
        catalog: Catalog,
        snapshots: SnapshotCache,
        stores: StoreRegistry,
        keys: KeyRing,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.snapshots = snapshots
        self.stores = stores
        self.keys = keys
        self.timelines = TimelineCache(max_tables=max(64, config.delta_table_cache_size))
        self.changes = HistoryService(self)

    # -- lookups ---------------------------------------------------------------------------------------------

    def resolve(self, principal: Principal | None, share: str, schema: str, table: str) -> ResolvedTable:
        info = self.catalog.get_table(principal, share, schema, table)
        return ResolvedTable(
            info, Location.parse(info.location), tuple(Location.parse(a) for a in info.auxiliary_locations)
        )

    def history(
        self, table: ResolvedTable, snapshot: Snapshot | None = None, at_least: int | None = None
    ) -> Timeline:
        """Commit timestamps up to at least `snapshot`'s version (the latest if not given) and `at_least`."""
        snapshot = snapshot or self.snapshots.latest(table.root)
        ict = snapshot.configuration.get("delta.enableInCommitTimestamps", "").lower() == "true"
        start = (
            int(snapshot.configuration.get("delta.inCommitTimestampEnablementVersion", 0)) if ict else None
        )
        return self.timelines.get(self.snapshots.log(table.root), start, max(snapshot.version, at_least or 0))

    # Set by server.py to CredentialService.has_dir_access when directory access is wired in.
    dir_access: Callable[[ResolvedTable], bool] | None = None

    def access_modes(self, table: ResolvedTable) -> list[str]:
        """`url` always; `dir` where temporary credentials can be vended for every location of the table."""
        return ["url", "dir"] if self.dir_access is not None and self.dir_access(table) else ["url"]

    def describe(
        self, table: ResolvedTable, snapshot: Snapshot, version: int | None
    ) -> lines.TableDescription:
        modes = self.access_modes(table)
        dir_access = "dir" in modes
        return lines.TableDescription(
            version=version,
            size=snapshot.size_bytes,
            num_files=len(snapshot.files),
            location=table.root.display if dir_access else None,
            auxiliary_locations=[a.display for a in table.auxiliary] if dir_access else [],
            access_modes=modes,
        )

    # -- /version --------------------------------------------------------------------------------------------

    def table_version(
        self, principal: Principal, share: str, schema: str, table: str, starting_timestamp: str | None
    ) -> int:
        resolved = self.resolve(principal, share, schema, table)
        snapshot = self.snapshots.latest(resolved.root)
        if starting_timestamp is None:
            return snapshot.version
        resolved.history_required()
        ts = parse_timestamp(starting_timestamp, "startingTimestamp")
        history = self.history(resolved, snapshot)
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
            return self.snapshots.latest(table.root), False
        table.history_required()
        if timestamp is not None:
            ts = parse_timestamp(timestamp, "timestamp")
            version = self.history(table).version_as_of(ts, timestamp)
        assert version is not None
        table.check_start_version(version)
        return self.snapshots.at_version(table.root, version), True

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
        resolved = self.resolve(principal, share, schema, table)
        snapshot, travelled = self.snapshot_for(resolved, version, timestamp)
        fmt = choose_format(caps, snapshot)
        check_readable(snapshot, fmt, caps)
        body = [
            lines.protocol_line(response_protocol(snapshot, caps), fmt),
            lines.metadata_line(
                snapshot.metadata,
                fmt,
                self.describe(resolved, snapshot, snapshot.version if travelled else None),
                history_shared=resolved.info.history_shared,
            ),
        ]
        return NdjsonAnswer(self.headers(snapshot.version, fmt), body, {"version": snapshot.version})

    # -- /query (snapshot) -----------------------------------------------------------------------------------

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
        resolved = self.resolve(principal, share, schema, table)
        self._check_query(resolved, request, caps)
        if request.starting_version is not None:
            return self.changes.stream_query(principal, resolved, request, caps, file_id_hash, base_url)
        version, timestamp = request.version, request.timestamp
        page_start = 0
        page = None
        if request.page_token:
            page = tokens.decode(self.keys, QUERY_PAGE, request.page_token, "Error decoding the page token.")
            self.check_token(page, resolved, "page token")
            version, timestamp, page_start = int(page["v"]), None, int(page["i"])
        if request.refresh_token:
            refresh = tokens.decode(
                self.keys, REFRESH, request.refresh_token, "Error decoding refresh token."
            )
            self.check_token(refresh, resolved, "refresh token")
            version = int(refresh["v"])
        if request.page_token or request.refresh_token:
            assert version is not None  # set from the token
            snapshot = self.snapshots.at_version(resolved.root, version)
            travelled = request.version is not None or request.timestamp is not None
        else:
            snapshot, travelled = self.snapshot_for(resolved, version, timestamp)

        fmt = choose_format(caps, snapshot)
        check_readable(snapshot, fmt, caps)
        checksum = query_checksum(request, caps, file_id_hash)
        if page is not None and (page.get("q") != checksum or "m" in page):
            raise InvalidParameterError(
                "Query parameter mismatch detected for the next page query. The query parameter cannot "
                "change when querying the next page results."
            )
        id_scheme = file_id_hash or fmt
        refresh_token = None
        if request.include_refresh_token:
            refresh_token = tokens.encode(
                self.keys,
                REFRESH,
                {**self.token_base(resolved, self.config.refresh_token_ttl_ms), "v": snapshot.version},
            )
        end_stream = (
            caps.include_end_stream_action or request.max_files is not None or request.include_refresh_token
        )
        extra = None
        if travelled:  # time travel: each file says which version it was read at, and when that was committed
            fields = lines.extra_fields(
                version=snapshot.version, timestamp=self.history(resolved).timestamp_of(snapshot.version)
            )
            extra = lambda _entry: fields  # noqa: E731
        description = self.describe(resolved, snapshot, snapshot.version if travelled else None)
        head = [
            lines.protocol_line(response_protocol(snapshot, caps), fmt),
            lines.metadata_line(
                snapshot.metadata, fmt, description, history_shared=resolved.info.history_shared
            ),
        ]
        root, aux = resolved.root, resolved.auxiliary

        def render(files: Sequence[FileEntry], signers: Signers) -> Iterator[bytes]:
            return file_lines(files, fmt, signers, root, aux, extra=extra)

        if caps.async_query and page is None and len(snapshot.files) >= self.config.async_query_min_files:

            def work() -> Prepared:  # the file selection (predicates, limit) runs in the background
                selected = self._select(snapshot, resolved, request, fmt, id_scheme, ordered=True)
                return Prepared(
                    resolved,
                    fmt,
                    snapshot.version,
                    head,
                    selected,
                    render,
                    file_id_hash,
                    base_url,
                    request.max_files,
                    end_stream,
                    refresh_token,
                )

            return self.changes.submit(
                principal,
                resolved,
                request.idempotency_key or "",
                checksum,
                fmt,
                snapshot.version,
                file_id_hash,
                work,
            )

        # Pages index into the files sorted by path: the order of a snapshot's files depends on how it was
        # rebuilt (checkpoint or incremental), and each page may be served from a different rebuild.
        paged = request.max_files is not None or page is not None
        selected = self._select(snapshot, resolved, request, fmt, id_scheme, ordered=paged)
        limit = min(request.max_files, self.config.query_table_page_size_limit) if request.max_files else None
        next_token = None
        if limit is not None:
            if page_start + limit < len(selected):
                next_token = tokens.encode(
                    self.keys,
                    QUERY_PAGE,
                    {
                        **self.token_base(resolved, self.config.query_table_page_token_ttl_ms),
                        "v": snapshot.version,
                        "i": page_start + limit,
                        "q": checksum,
                    },
                )
            selected = selected[page_start : page_start + limit]
        elif page_start:
            selected = selected[page_start:]
        answer_page = Page(
            self.headers(snapshot.version, fmt, end_stream, file_id_hash),
            head,
            lambda signers: render(selected, signers),
            len(selected),
            end_stream,
            next_token,
            refresh_token,
        )
        return answer_page.answer(
            self.signers(resolved, base_url), {"version": snapshot.version, "files": len(selected)}
        )

    def _check_query(self, table: ResolvedTable, request: QueryRequest, caps: Capabilities) -> None:
        given = [
            n
            for n, v in (
                ("version", request.version),
                ("timestamp", request.timestamp),
                ("startingVersion", request.starting_version),
            )
            if v is not None
        ]
        if len(given) > 1:
            raise InvalidParameterError("Please only provide one of: version,timestamp,startingVersion")
        if request.version is not None or request.timestamp is not None:
            table.history_required()
        if request.version is not None:
            table.check_start_version(request.version)
        if request.ending_version is not None and request.starting_version is None:
            raise InvalidParameterError("endingVersion can only be used together with startingVersion.")
        if caps.async_query and not request.idempotency_key:
            raise InvalidParameterError("idempotency_key is required for async query.")
        if request.refresh_token or request.include_refresh_token:
            name = "refreshToken" if request.refresh_token else "includeRefreshToken"
            if given:
                raise InvalidParameterError(f"{name} cannot be used when querying a specific version.")
            if request.page_token:
                raise InvalidParameterError(f"{name} must be used in the first page request.")

    def token_base(self, table: ResolvedTable, ttl_ms: int) -> dict:
        """The fields binding a page or refresh token to its table and giving its expiry."""
        return {"t": table.info.id or table.info.full_name.lower(), "e": tokens.now_ms() + ttl_ms}

    def check_token(self, payload: dict, table: ResolvedTable, what: str) -> None:
        if payload.get("t") != (table.info.id or table.info.full_name.lower()):
            raise InvalidParameterError(
                f"The table specified in the {what} does not match the table being queried."
            )
        if int(payload.get("e", 0)) < tokens.now_ms():
            raise InvalidParameterError(f"The {what} has expired. Please restart the query.")

    def file_filter(self, request: QueryRequest, snapshot: Snapshot) -> FileFilter | None:
        """The request's predicate hints as one filter over partition values and stats (None: keep all)."""
        columns, types = snapshot.partition_columns, snapshot.column_types
        return combine(
            json_predicate_filter(
                request.json_predicate_hints, partition_columns=columns, column_types=types
            ),
            sql_predicate_filter(request.predicate_hints, partition_columns=columns, column_types=types)
            if self.config.evaluate_predicate_hints
            else None,
        )

    def _select(
        self,
        snapshot: Snapshot,
        table: ResolvedTable,
        request: QueryRequest,
        fmt: str,
        id_scheme: str,
        ordered: bool = False,
    ) -> list[FileEntry]:
        found = entries(snapshot, table.root, table.auxiliary, fmt, id_scheme)
        if ordered:
            key = f"sorted:{fmt}:{id_scheme}"
            all_entries = snapshot.fragments.get(key)
            if all_entries is None:
                all_entries = snapshot.fragments[key] = [found[k] for k in sorted(found)]
        else:
            all_entries = list(found.values())
        keep = self.file_filter(request, snapshot)
        if keep is not None:
            all_entries = [
                e for e in all_entries if keep(e.add.get("partitionValues") or {}, file_stats(e.add))
            ]
        elif request.limit_hint is not None:
            # Without predicates, stop once the files hold enough rows (a file without stats counts 0).
            chosen, rows = [], 0
            for e in all_entries:
                if rows >= request.limit_hint:
                    break
                chosen.append(e)
                stats = file_stats(e.add) or {}
                rows += int(stats.get("numRecords") or 0) - int(
                    (e.add.get("deletionVector") or {}).get("cardinality", 0)
                )
            all_entries = chosen
        return all_entries

    def signers(self, table: ResolvedTable, base_url: str) -> Signers:
        now = int(time.time())
        return Signers(
            self.stores,
            SignRequest(
                expires_at_s=now + self.config.pre_signed_url_timeout_seconds,
                now_s=now,
                base_url=self.config.public_url or base_url,
                table_path=table.info.path,
                root=table.root,
            ),
        )

    def headers(
        self, version: int, fmt: str, end_stream: bool = False, file_id_hash: str | None = None
    ) -> dict:
        headers = {
            "Content-Type": NDJSON,
            "Delta-Table-Version": str(version),
            HEADER: response_header(fmt, end_stream),
        }
        if file_id_hash:
            headers["fileidhash"] = file_id_hash
        return headers


def parse_file_id_hash(value: str | None) -> str | None:
    if value is None:
        return None
    normalized = value.strip().lower()
    if normalized not in (PARQUET, DELTA):
        raise InvalidParameterError(f"Unsupported fileidhash: '{value}'. Supported: parquet, delta")
    return normalized
