"""Delta tables with a history, written with deltalake, for time travel, streaming and change data feed tests.

Each builder returns the table root. Commits are spaced a few milliseconds apart so that a timestamp strictly
between two commits exists. `align_commit_times` then sets each commit file's modification time to its
commitInfo timestamp: Delta (and lakegate) date a commit by its file's mtime, while deltalake's load_cdf
reports commitInfo.timestamp; on a table where both agree, deltalake's own reads are an exact oracle.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from tests.tables import rows

GAP_S = 0.02


def _pause() -> None:
    time.sleep(GAP_S)


def commit_files(root: str) -> list[Path]:
    log_dir = Path(root) / "_delta_log"
    return sorted(p for p in log_dir.iterdir() if p.name.endswith(".json") and p.name[:20].isdigit())


def commit_actions(root: str, version: int) -> list[dict]:
    path = Path(root) / "_delta_log" / f"{version:020d}.json"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def align_commit_times(root: str) -> None:
    for path in commit_files(root):
        info = next(a["commitInfo"] for a in commit_actions(root, int(path.name[:20])) if "commitInfo" in a)
        ns = int(info["timestamp"]) * 1_000_000
        os.utime(path, ns=(ns, ns))


def commit_times_ms(root: str) -> list[int]:
    """Commit timestamps as Delta defines them without in-commit timestamps: file mtimes, made increasing."""
    out: list[int] = []
    for path in commit_files(root):
        ts = path.stat().st_mtime_ns // 1_000_000
        out.append(ts if not out or ts > out[-1] else out[-1] + 1)
    return out


def build_cdf_history(root: Path | str) -> str:
    """Partitioned by region, change data feed on from the start:
    v0 create, v1 append, v2 delete one row, v3 update, v4 optimize (no data change), v5 merge (update +
    insert), v6 delete a whole partition, v7 append."""
    root = str(root)
    write_deltalake(
        root,
        rows([1, 2, 3, 4]),
        partition_by=["region"],
        configuration={"delta.enableChangeDataFeed": "true"},
    )
    _pause()
    write_deltalake(root, rows([5, 6, 7]), mode="append")
    _pause()
    DeltaTable(root).delete("id = 2")
    _pause()
    DeltaTable(root).update(predicate="id = 5", updates={"amount": "500.0"})
    _pause()
    DeltaTable(root).optimize.compact()
    _pause()
    source = rows([3, 8])
    (
        DeltaTable(root)
        .merge(source, predicate="t.id = s.id", source_alias="s", target_alias="t")
        .when_matched_update(updates={"note": "'merged'"})
        .when_not_matched_insert_all()
        .execute()
    )
    _pause()
    DeltaTable(root).delete("region = 'amer'")
    _pause()
    write_deltalake(root, rows([9, 10]), mode="append")
    align_commit_times(root)
    return root


def build_late_cdf(root: Path | str) -> str:
    """Change data feed turned on only at v2: v0 create, v1 append (no CDF), v2 enable CDF, v3 append,
    v4 delete."""
    root = str(root)
    write_deltalake(root, rows([1, 2]))
    _pause()
    write_deltalake(root, rows([3]), mode="append")
    _pause()
    DeltaTable(root).alter.set_table_properties({"delta.enableChangeDataFeed": "true"})
    _pause()
    write_deltalake(root, rows([4]), mode="append")
    _pause()
    DeltaTable(root).delete("id = 1")
    align_commit_times(root)
    return root


def build_cdf_turned_off(root: Path | str) -> str:
    """CDF on at v0 and v1, turned off at v2; v3 append."""
    root = str(root)
    write_deltalake(root, rows([1]), configuration={"delta.enableChangeDataFeed": "true"})
    write_deltalake(root, rows([2]), mode="append")
    DeltaTable(root).alter.set_table_properties({"delta.enableChangeDataFeed": "false"})
    write_deltalake(root, rows([3]), mode="append")
    return root


def build_log_gap(root: Path | str) -> str:
    """v0..v3 appends with a checkpoint at v2, then commit 1 removed (as log cleanup does): the latest
    snapshot is readable from the checkpoint, the changes of v1 are gone."""
    root = str(root)
    for i in (1, 2, 4):  # ids whose note is not null (an all-null column would have no type)
        write_deltalake(root, rows([i]), mode="append")
    DeltaTable(root).create_checkpoint()
    write_deltalake(root, rows([5]), mode="append")
    (Path(root) / "_delta_log" / f"{1:020d}.json").unlink()
    return root


def build_schema_change(root: Path | str) -> str:
    """Not partitioned, CDF on: v0 create, v1 append, v2 append with a new column (schema evolution),
    v3 delete."""
    root = str(root)
    write_deltalake(root, rows([1, 2]), configuration={"delta.enableChangeDataFeed": "true"})
    _pause()
    write_deltalake(root, rows([3]), mode="append")
    _pause()
    wider = rows([4]).append_column("extra", pa.array(["x"], pa.string()))
    write_deltalake(root, wider, mode="append", schema_mode="merge")
    _pause()
    DeltaTable(root).delete("id = 1")
    align_commit_times(root)
    return root


def build_many_files(root: Path | str, versions: int) -> str:
    """Partitioned by region, CDF on; `versions` appends of two files each (one per region), for paging."""
    root = str(root)
    for v in range(versions):
        ids = [v * 10 + i for i in (1, 2, 4, 5)]  # both regions, no all-null column
        write_deltalake(
            root,
            rows(ids),
            mode="append",
            partition_by=["region"],
            configuration={"delta.enableChangeDataFeed": "true"} if v == 0 else None,
        )
    return root


def cdf_rows(root: str, **kwargs: Any) -> list[dict]:
    """deltalake's change data feed, as plain rows (timestamps as epoch ms), in a stable order."""
    table = pa.table(DeltaTable(root).load_cdf(**kwargs).read_all())
    out = []
    for r in table.to_pylist():
        r["_commit_timestamp"] = int(r["_commit_timestamp"].timestamp() * 1000 + 0.5)
        out.append(r)
    return sorted(out, key=cdf_sort_key)


def cdf_sort_key(r: dict) -> tuple:
    return (r["_commit_version"], r["id"], r["_change_type"], str(r.get("amount")), str(r.get("note")))
