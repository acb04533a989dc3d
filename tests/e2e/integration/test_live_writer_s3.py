"""A table on Ceph RGW (real S3) written to in a loop by deltalake while clients query, stream and read changes
through lakegate: no request fails, and every answer holds exactly the files of the version it reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.live_writer import Writer, check, create_table, race, share_config
from tests.e2e.server import start_server
from tests.services.rgw import RgwService

pytestmark = pytest.mark.rgw
BUCKET = "lakegate-live"
SECONDS = 20


def test_live_writer_on_s3(rgw: RgwService, tmp_path: Path) -> None:
    rgw.create_bucket(BUCKET)
    uri = f"s3://{BUCKET}/tables/live"
    options = rgw.env(rgw.owner)  # deltalake (object_store) takes the standard AWS variables as options
    create_table(uri, options)
    server = start_server(tmp_path / "srv", {"shares": share_config(uri)}, env=rgw.env(rgw.owner))
    writer = Writer(uri, options)
    clients, log = race(server, writer, seconds=SECONDS)
    s3 = rgw.boto3_client("s3")

    def read_commit(version: int) -> bytes:
        key = f"tables/live/_delta_log/{version:020d}.json"
        return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    kinds = check(clients, writer, uri, read_commit, options)
    assert writer.commits >= 5, writer.commits  # RGW commits take ~1 s each on this machine
    assert all(kinds.get(k, 0) >= 5 for k in ("query", "version", "stream", "changes")), kinds
    assert '"level":"error"' not in log, log[-3000:]
