"""What a provider sees of a table before and after sharing it: its latest version, size and file count, and
whether it offers directory access (and if not, why not). The console shows it; adding a table there checks
with it that the location holds a Delta table the server can read."""

from __future__ import annotations

from dataclasses import dataclass

from lakegate.catalog.base import TableInfo
from lakegate.exceptions import InvalidLocationError, LakegateError
from lakegate.service.context import ResolvedTable, TableContext
from lakegate.service.credentials import DirectoryAccess


@dataclass(frozen=True)
class TableSummary:
    version: int | None = None
    size: int | None = None
    files: int | None = None
    directory_access: bool = False
    why_not: str | None = None  # why there is no directory access
    error: str | None = None  # why the table cannot be read (then nothing else is known)


class TableInspector:
    def __init__(self, context: TableContext, access: DirectoryAccess) -> None:
        self.context = context
        self.access = access

    def inspect(self, info: TableInfo) -> TableSummary:
        """The table's summary; LakegateError when its location holds no Delta table this server can read."""
        try:
            table = ResolvedTable.of(info)
        except InvalidLocationError as exc:
            raise InvalidLocationError(f"location: {exc.message}") from None
        snapshot = self.context.snapshots.latest(table.root)
        described = self.context.describe(table, snapshot, snapshot.version)
        problem = self.access.problem(table)
        return TableSummary(snapshot.version, described.size, described.num_files, problem is None, problem)

    def summary(self, info: TableInfo) -> TableSummary:
        """`inspect`, with a failure described rather than raised (a table listing shows every table)."""
        try:
            return self.inspect(info)
        except LakegateError as exc:
            return TableSummary(error=exc.message)
