"""A long-lived Delta table written by hand: `n_commits` commit files and no checkpoint, each commit appending one
file (every tenth also removes an older one), change data feed on. The log is real (deltalake reads it); the data
files need not exist for a server-side benchmark. Writing the JSON directly takes a second where deltalake would
take minutes for 10k commits."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import orjson

from benchmarks.bigtable import SCHEMA

START_MS = 1_700_000_000_000


def _add(version: int) -> dict:
    day = f"2024-{1 + version % 12:02d}-{1 + version % 28:02d}"
    stats = {"numRecords": 10, "minValues": {"id": version * 10}, "maxValues": {"id": version * 10 + 9}}
    return {
        "path": f"date={day}/part-{version:05d}-{uuid.uuid4()}-c000.snappy.parquet",
        "partitionValues": {"date": day},
        "size": 1000 + version,
        "modificationTime": START_MS + version * 1000,
        "dataChange": True,
        "stats": json.dumps(stats),
    }


def write_long_log(root: Path, n_commits: int) -> None:
    """Commits 0..n_commits-1 under `root`/_delta_log, one second apart (file times set to match)."""
    log = root / "_delta_log"
    log.mkdir(parents=True)
    adds: list[dict] = []
    for version in range(n_commits):
        ts = START_MS + version * 1000
        actions: list[dict] = []
        if version == 0:
            actions += [
                {"protocol": {"minReaderVersion": 1, "minWriterVersion": 4}},
                {
                    "metaData": {
                        "id": str(uuid.uuid4()),
                        "format": {"provider": "parquet", "options": {}},
                        "schemaString": json.dumps(SCHEMA),
                        "partitionColumns": ["date"],
                        "configuration": {"delta.enableChangeDataFeed": "true"},
                        "createdTime": START_MS,
                    }
                },
            ]
        actions.append({"commitInfo": {"timestamp": ts, "operation": "WRITE"}})
        add = _add(version)
        actions.append({"add": add})
        if version % 10 == 9:  # a delete of an earlier file now and then: removes in the history too
            old = adds.pop(0)
            actions.append(
                {
                    "remove": {
                        "path": old["path"],
                        "deletionTimestamp": ts,
                        "dataChange": True,
                        "extendedFileMetadata": True,
                        "partitionValues": old["partitionValues"],
                        "size": old["size"],
                    }
                }
            )
        adds.append(add)
        path = log / f"{version:020d}.json"
        path.write_bytes(b"\n".join(orjson.dumps(a) for a in actions) + b"\n")
        os.utime(path, ns=(ts * 1_000_000, ts * 1_000_000))
