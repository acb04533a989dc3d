"""Iceberg metadata generated from the Delta log, so Iceberg clients read shared Delta tables
(`tables.IcebergTables`)."""

from lakegate.iceberg.tables import IcebergSource, IcebergTables, LoadedTable

__all__ = ["IcebergSource", "IcebergTables", "LoadedTable"]
