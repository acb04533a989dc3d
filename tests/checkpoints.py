"""Checkpoints deltalake does not write, made from one it does (Delta PROTOCOL.md, "Checkpoints").

deltalake 1.x writes classic single-file checkpoints only (it ignores `delta.checkpointPolicy=v2` and never
splits a checkpoint). These builders rewrite its classic checkpoint at version v, row for row, as
- a multi-part checkpoint: `v.checkpoint.<part>.<parts>.parquet`, the rows split across the parts;
- a V2 checkpoint: `v.checkpoint.<uuid>.json` or `.parquet` holding `checkpointMetadata`, protocol and
  metadata (and optionally some adds), and `sidecar` actions naming parquet files in `_delta_log/_sidecars/`
  that hold the adds and removes.
The protocol of a V2 checkpoint declares the `v2Checkpoint` reader and writer feature, as the spec requires.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable


def classic_checkpoint(root: str, version: int) -> Path:
    """deltalake's checkpoint of `root` at `version` (written now), its path."""
    DeltaTable(root, version=version).create_checkpoint()
    path = Path(root) / "_delta_log" / f"{version:020d}.checkpoint.parquet"
    assert path.exists()
    return path


def drop_commits_through(root: str, version: int) -> None:
    """Delete commits 0..version, as log cleanup does, so a reader must start from the checkpoint."""
    for v in range(version + 1):
        (Path(root) / "_delta_log" / f"{v:020d}.json").unlink()


def make_multipart(root: str, version: int, parts: int) -> list[Path]:
    classic = classic_checkpoint(root, version)
    table = pq.read_table(classic)
    classic.unlink()
    size = -(-table.num_rows // parts)
    out = []
    for i in range(parts):
        path = classic.with_name(f"{version:020d}.checkpoint.{i + 1:010d}.{parts:010d}.parquet")
        pq.write_table(table.slice(i * size, size), path)
        out.append(path)
    return out


def _v2_protocol(protocol: dict) -> dict:
    return {
        "minReaderVersion": 3,
        "minWriterVersion": 7,
        "readerFeatures": sorted({*(protocol.get("readerFeatures") or []), "v2Checkpoint"}),
        "writerFeatures": sorted({*(protocol.get("writerFeatures") or []), "v2Checkpoint"}),
    }


def _json_rows(column: pa.ChunkedArray) -> list[dict]:
    """Non-null struct rows as the JSON actions they stand for (map columns as objects, nulls dropped)."""

    def clean(value: object) -> object:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, list) and value and isinstance(value[0], tuple):
            return dict(value)
        return value

    return [clean(v) for v in column.to_pylist() if v is not None]  # type: ignore[misc]


def make_v2(root: str, version: int, *, top_level: str, sidecars: int, inline_adds: int = 0) -> Path:
    """Rewrite the checkpoint at `version` as a V2 checkpoint (`top_level` "json" or "parquet") whose adds
    and removes live in `sidecars` sidecar files, except the first `inline_adds` adds, kept in the top-level
    file. Returns the top-level file."""
    classic = classic_checkpoint(root, version)
    table = pq.read_table(classic)
    classic.unlink()
    log_dir = Path(root) / "_delta_log"
    (log_dir / "_sidecars").mkdir(exist_ok=True)
    adds = table.filter(table.column("add").is_valid())
    removes = table.filter(table.column("remove").is_valid())
    inline = adds.slice(0, inline_adds)
    rest = pa.concat_tables([adds.slice(inline_adds), removes])
    sidecar_actions = []
    size = max(1, -(-rest.num_rows // max(sidecars, 1)))
    for i in range(sidecars):
        name = f"{uuid.uuid4()}.parquet"
        path = log_dir / "_sidecars" / name
        pq.write_table(rest.select(["add", "remove"]).slice(i * size, size), path)
        sidecar_actions.append(
            {
                "path": name,
                "sizeInBytes": path.stat().st_size,
                "modificationTime": int(path.stat().st_mtime * 1000),
            }
        )
    protocol = _v2_protocol(_json_rows(table.column("protocol"))[0])
    (metadata,) = _json_rows(table.column("metaData"))
    top = log_dir / f"{version:020d}.checkpoint.{uuid.uuid4()}.{top_level}"
    if top_level == "json":
        actions = [
            {"checkpointMetadata": {"version": version}},
            {"protocol": protocol},
            {"metaData": metadata},
            *({"sidecar": s} for s in sidecar_actions),
            *({"add": a} for a in _json_rows(inline.column("add"))),
        ]
        top.write_text("".join(json.dumps(a) + "\n" for a in actions))
    else:
        add_type = table.schema.field("add").type
        rows: list[dict] = [
            {"checkpointMetadata": {"version": version}},
            {"protocol": protocol},
            {"metaData": table.column("metaData").filter(table.column("metaData").is_valid()).to_pylist()[0]},
            *({"sidecar": s} for s in sidecar_actions),
            *({"add": a} for a in inline.column("add").to_pylist()),
        ]
        schema = pa.schema(
            [
                pa.field("checkpointMetadata", pa.struct([pa.field("version", pa.int64())])),
                pa.field(
                    "protocol",
                    pa.struct(
                        [
                            pa.field("minReaderVersion", pa.int32()),
                            pa.field("minWriterVersion", pa.int32()),
                            pa.field("readerFeatures", pa.list_(pa.string())),
                            pa.field("writerFeatures", pa.list_(pa.string())),
                        ]
                    ),
                ),
                table.schema.field("metaData"),
                pa.field(
                    "sidecar",
                    pa.struct(
                        [
                            pa.field("path", pa.string()),
                            pa.field("sizeInBytes", pa.int64()),
                            pa.field("modificationTime", pa.int64()),
                        ]
                    ),
                ),
                pa.field("add", add_type),
            ]
        )
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), top)
    _point_last_checkpoint(root, version)
    return top


def _point_last_checkpoint(root: str, version: int) -> None:
    (Path(root) / "_delta_log" / "_last_checkpoint").write_text(json.dumps({"version": version, "size": 1}))
