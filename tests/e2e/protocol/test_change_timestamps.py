"""`_commit_timestamp` in the change feed is the commit's own timestamp, as deltalake's load_cdf reports it,
even when the commit files' modification times say otherwise (a copied table, a slow write)."""

from __future__ import annotations

import os
from pathlib import Path

import delta_sharing
import pyarrow as pa
from deltalake import DeltaTable

from tests.e2e.server import start_server
from tests.tables import build_partitioned


def test_change_feed_timestamps_follow_the_commits(tmp_path: Path) -> None:
    root = build_partitioned(tmp_path / "t")
    for name in os.listdir(f"{root}/_delta_log"):  # as if the table had been copied 1 h 0.5 s later
        path = f"{root}/_delta_log/{name}"
        st = os.stat(path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 3_600_500_000_000))
    expected = pa.table(DeltaTable(root).load_cdf(starting_version=0).read_all())
    want = sorted(
        {
            (v, int(t.timestamp() * 1000))
            for v, t in zip(
                expected["_commit_version"].to_pylist(), expected["_commit_timestamp"].to_pylist()
            )
        }
    )
    server = start_server(
        tmp_path / "srv",
        {
            "shares": [
                {
                    "name": "s",
                    "schemas": [
                        {"name": "d", "tables": [{"name": "t", "location": root, "historyShared": True}]}
                    ],
                }
            ]
        },
    )
    try:
        frame = delta_sharing.load_table_changes_as_pandas(
            f"{server.profile()}#s.d.t", starting_version=0, use_delta_format=False
        )
        got = sorted(
            {
                (int(v), int(t.value // 1_000_000) if hasattr(t, "value") else int(t))
                for v, t in zip(frame["_commit_version"], frame["_commit_timestamp"])
            }
        )
        assert got == want
        assert len(frame) == expected.num_rows
    finally:
        server.stop()
