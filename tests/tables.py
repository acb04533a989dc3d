"""Real Delta tables for tests, written with deltalake (and the DV builder for deletion vectors)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake


def rows(ids: list[int], region: str | None = None) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "region": [region or ("emea" if i % 2 else "amer") for i in ids],
            "amount": [float(i) * 1.5 for i in ids],
            "day": [date(2026, 1, 1 + i % 28) for i in ids],
            "note": [None if i % 3 == 0 else f"n{i}" for i in ids],
        }
    )


def build_partitioned(root: Path | str) -> str:
    """Partitioned by region, change data feed on; v0 create, v1 append, v2 delete, v3 update."""
    root = str(root)
    write_deltalake(
        root,
        rows([1, 2, 3, 4]),
        partition_by=["region"],
        configuration={"delta.enableChangeDataFeed": "true"},
    )
    write_deltalake(root, rows([5, 6, 7]), mode="append")
    table = DeltaTable(root)
    table.delete("id = 2")
    table.update(predicate="id = 5", updates={"amount": "500.0"})
    return root


def build_plain(root: Path | str, batches: int = 1) -> str:
    """Not partitioned; one file per batch (for paging tests)."""
    root = str(root)
    for b in range(batches):
        write_deltalake(root, rows([b * 10 + i for i in range(3)]), mode="append")
    return root


def build_column_mapped(root: Path | str) -> str:
    """Column mapping by name (Parquet columns carry physical names and field ids, not the table's names);
    two files, and a column name with a space."""
    root = str(root)
    mapping = {
        "delta.columnMapping.mode": "name",
        "delta.minReaderVersion": "2",
        "delta.minWriterVersion": "5",
    }
    first = rows([1, 2, 3]).rename_columns(["id", "region", "amount", "day", "the note"])
    write_deltalake(root, first, configuration=mapping)
    second = rows([4, 5]).rename_columns(["id", "region", "amount", "day", "the note"])
    write_deltalake(root, second, mode="append")
    return root


def read_expected(root: str, version: int | None = None) -> list[dict]:
    table = DeltaTable(root, version=version) if version is not None else DeltaTable(root)
    return sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: r["id"])
