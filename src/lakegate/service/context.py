"""What every table use case shares: the resolved table, and the per-table plumbing around it (snapshots, commit
timestamps, access modes, the table description, URL signers, answer headers, predicate filters).

The snapshot (`tables`), history (`history`) and async query (`async_queries`) use cases depend on this module;
it depends on none of them. Policies (who gets directory access) come in through the constructor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lakegate.catalog.base import Catalog, Principal, TableInfo
from lakegate.cloud.base import SignRequest
from lakegate.cloud.locations import Location
from lakegate.cloud.registry import StoreRegistry
from lakegate.config import ServerConfig
from lakegate.delta.cache import SnapshotCache
from lakegate.delta.predicates import (
    FileFilter,
    PredicateLimits,
    combine,
    json_predicate_filter,
    physical_names,
    sql_predicate_filter,
)
from lakegate.delta.snapshot import Snapshot
from lakegate.delta.timeline import Timeline, TimelineCache
from lakegate.exceptions import InvalidLocationError, InvalidParameterError
from lakegate.keys import KeyRing
from lakegate.protocol import lines
from lakegate.protocol.capabilities import DELTA, HEADER, PARQUET, Capabilities, response_header
from lakegate.protocol.requests import QueryRequest
from lakegate.service.files import LineCache, Signers
from lakegate.service.responses import NDJSON


@dataclass(frozen=True)
class ResolvedTable:
    info: TableInfo
    root: Location
    auxiliary: tuple[Location, ...]

    @classmethod
    def of(cls, info: TableInfo) -> ResolvedTable:
        return cls(
            info, Location.parse(info.location), tuple(Location.parse(a) for a in info.auxiliary_locations)
        )

    @property
    def token_id(self) -> str:
        """What page and refresh tokens name the table by (its id, which survives a rename, else its name)."""
        return self.info.id or self.info.full_name.lower()

    def history_required(self, what: str = "Reading table by version or timestamp") -> None:
        if not self.info.history_shared:
            raise InvalidParameterError(
                f"{what} is not supported because history sharing is not enabled on table: {self.info.full_name}"
            )

    def check_start_version(self, version: int, what: str = "table data") -> None:
        if version < self.info.start_version:
            raise InvalidParameterError(f"You can only query {what} since version {self.info.start_version}.")


_MAX_RESOLVED = 4096  # tables remembered by the two memos above (cleared whole past it)

# Whether a table offers directory access (`lakegate.service.credentials.DirectoryAccess.allows`).
DirAccessPolicy = Callable[[ResolvedTable], bool]


class TableContext:
    def __init__(
        self,
        config: ServerConfig,
        catalog: Catalog,
        snapshots: SnapshotCache,
        stores: StoreRegistry,
        keys: KeyRing,
        dir_access: DirAccessPolicy | None = None,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.snapshots = snapshots
        self.stores = stores
        self.keys = keys
        self.timelines = TimelineCache(max_tables=max(64, config.delta_table_cache_size))
        snapshots.on_replaced.append(self.timelines.forget)
        self.lines = LineCache(max_tables=max(64, config.delta_table_cache_size), shared=snapshots.shared)
        # The byte bound of the snapshot cache covers the file parts built from each snapshot too.
        lines_ = self.lines
        snapshots.sizer = lambda snapshot: snapshot.files.nbytes() + lines_.nbytes(snapshot)
        self.lines.on_built = snapshots.trim
        self._dir_access = dir_access
        # By id of what the catalog handed out, checked by identity (an id is reused only after its object
        # is gone); hashing a TableInfo costs more than these lookups save.
        self._resolved: dict[int, ResolvedTable] = {}
        self._modes: dict[int, tuple[ResolvedTable, list[str]]] = {}

    def resolve(self, principal: Principal | None, share: str, schema: str, table: str) -> ResolvedTable:
        info = self.catalog.get_table(principal, share, schema, table)
        # The catalog hands out one TableInfo object while it remembers the table: parse its locations once.
        known = self._resolved.get(id(info))
        if known is not None and known.info is info:
            return known
        try:
            resolved = ResolvedTable.of(info)
        except InvalidLocationError as exc:
            # Checked at start (lakegate.preflight): only a database changed behind the server's back gets here.
            # The provider's problem, so a 500 whose details (the path) go to the log only.
            raise InvalidLocationError(f"table {info.full_name}: {exc.message}") from None
        if len(self._resolved) >= _MAX_RESOLVED:
            self._resolved.clear()
        self._resolved[id(info)] = resolved
        return resolved

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

    # -- what a table offers ---------------------------------------------------------------------------------

    def access_modes(self, table: ResolvedTable) -> list[str]:
        """`url` always; `dir` where temporary credentials can be vended for every location of the table
        (decided by the configuration alone: once per resolved table)."""
        known = self._modes.get(id(table))
        if known is not None and known[0] is table:
            return known[1]
        modes = ["url", "dir"] if self._dir_access is not None and self._dir_access(table) else ["url"]
        if len(self._modes) >= _MAX_RESOLVED:
            self._modes.clear()
        self._modes[id(table)] = (table, modes)
        return modes

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

    def table_extras(self, info: TableInfo) -> dict[str, Any]:
        """`location`, `auxiliaryLocations` (dir tables only) and `accessModes` of a table list item."""
        try:
            table = ResolvedTable.of(info)
        except InvalidLocationError:  # the table's requests report it (logged); its listing stays usable
            return {"accessModes": ["url"]}
        modes = self.access_modes(table)
        if "dir" not in modes:
            return {"accessModes": modes}
        return {
            "location": table.root.display,
            "auxiliaryLocations": [a.display for a in table.auxiliary],
            "accessModes": modes,
        }

    # -- what every answer needs -----------------------------------------------------------------------------

    def file_filter(self, request: QueryRequest, snapshot: Snapshot) -> FileFilter | None:
        """The request's predicate hints as one filter over partition values and stats (None: keep all)."""
        columns, types = snapshot.partition_columns, snapshot.column_types
        physical = physical_names(snapshot.schema, snapshot.configuration)
        limits = PredicateLimits(
            max_chars=self.config.predicate_hints_max_length,
            max_depth=self.config.predicate_hints_max_depth,
            max_count=self.config.predicate_hints_max_count,
        )
        return combine(
            json_predicate_filter(
                request.json_predicate_hints,
                partition_columns=columns,
                column_types=types,
                physical_names=physical,
                limits=limits,
            ),
            sql_predicate_filter(
                request.predicate_hints,
                partition_columns=columns,
                column_types=types,
                physical_names=physical,
                limits=limits,
            )
            if self.config.evaluate_predicate_hints
            else None,
        )

    def page_limit(self, max_files: int | None) -> int | None:
        """The files one page holds: what the client asked, capped by the server's limit."""
        return None if max_files is None else min(max_files, self.config.query_table_page_size_limit)

    def signers(self, table: ResolvedTable, base_url: str, now: int | None = None) -> Signers:
        """`now`: the second the URLs are signed at (default: this one)."""
        now = int(time.time()) if now is None else now
        return Signers(
            self.stores,
            SignRequest(
                expires_at_s=now + self.config.pre_signed_url_timeout_seconds,
                now_s=now,
                base_url=self.config.public_url or base_url,
                table_path=table.info.path,
                root=table.root,
                auxiliary=table.auxiliary,
            ),
        )

    def headers(
        self, version: int, fmt: str, end_stream_asked: bool = False, file_id_hash: str | None = None
    ) -> dict[str, str]:
        """`end_stream_asked`: the request's capabilities asked for an EndStreamAction. Only then does the
        response header confirm it, as the reference server does; maxFiles or includeRefreshToken add the
        action to the body without a word in the header."""
        headers = {
            "Content-Type": NDJSON,
            "Delta-Table-Version": str(version),
            HEADER: response_header(fmt, end_stream_asked),
        }
        if file_id_hash:
            headers["fileidhash"] = file_id_hash
        return headers


def check_query(table: ResolvedTable, request: QueryRequest, caps: Capabilities) -> None:
    """The checks of a /query request common to snapshot and streaming queries."""
    given = [
        n
        for n, v in (
            ("version", request.version),
            ("timestamp", request.timestamp),
            ("startingVersion", request.starting_version),
        )
        if v is not None
    ]
    # At most one of them: checked by QueryRequest, before their values.
    if request.version is not None or request.timestamp is not None:
        table.history_required()
    if request.version is not None:
        table.check_start_version(request.version)
    # endingVersion without startingVersion is ignored, as the reference server does (docs/protocol-notes.md).
    if caps.async_query and not request.idempotency_key:
        raise InvalidParameterError("idempotency_key is required for async query.")
    if request.refresh_token or request.include_refresh_token:
        name = "refreshToken" if request.refresh_token else "includeRefreshToken"
        if given:
            raise InvalidParameterError(f"{name} cannot be used when querying a specific version.")
        if request.page_token:
            raise InvalidParameterError(f"{name} must be used in the first page request.")


def parse_file_id_hash(value: str | None) -> str | None:
    if value is None:
        return None
    normalized = value.strip().lower()
    if normalized not in (PARQUET, DELTA):
        raise InvalidParameterError(f"Unsupported fileidhash: '{value}'. Supported: parquet, delta")
    return normalized
