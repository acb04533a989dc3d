"""A 100k-file Delta table written by hand (one commit + a checkpoint made by deltalake): the log is real, the
data files need not exist for a server-side benchmark."""

from __future__ import annotations

import json
import os
import uuid

import orjson

from tests.services.rgw import RgwService

SCHEMA = {
    "type": "struct",
    "fields": [
        {"name": "id", "type": "long", "nullable": True, "metadata": {}},
        {"name": "value", "type": "double", "nullable": True, "metadata": {}},
        {"name": "date", "type": "string", "nullable": True, "metadata": {}},
    ],
}


def commit_lines(n_files: int) -> bytes:
    lines = [
        {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
        {
            "metaData": {
                "id": str(uuid.uuid4()),
                "format": {"provider": "parquet", "options": {}},
                "schemaString": json.dumps(SCHEMA),
                "partitionColumns": ["date"],
                "configuration": {},
                "createdTime": 1700000000000,
            }
        },
        {"commitInfo": {"timestamp": 1700000000000, "operation": "WRITE"}},
    ]
    for i in range(n_files):
        day = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}"
        stats = {
            "numRecords": 1000,
            "minValues": {"id": i * 1000, "value": 0.5},
            "maxValues": {"id": i * 1000 + 999, "value": 99.5},
            "nullCount": {"id": 0, "value": 3},
        }
        lines.append(
            {
                "add": {
                    "path": f"date={day}/part-{i:05d}-{uuid.uuid4()}-c000.snappy.parquet",
                    "partitionValues": {"date": day},
                    "size": 100_000 + i,
                    "modificationTime": 1700000000000,
                    "dataChange": True,
                    "stats": json.dumps(stats),
                }
            }
        )
    return b"\n".join(orjson.dumps(line) for line in lines) + b"\n"


def put_on_rgw(rgw: RgwService, bucket: str, n_files: int) -> str:
    """The table at s3://BUCKET/big on RGW (the bucket made here), its checkpoint written by deltalake; the
    process's AWS variables name the RGW owner from then on (deltalake reads them). Its URI."""
    rgw.create_bucket(bucket)
    rgw.boto3_client("s3").put_object(
        Bucket=bucket, Key="big/_delta_log/00000000000000000000.json", Body=commit_lines(n_files)
    )
    os.environ.update(rgw.env(rgw.owner))
    from deltalake import DeltaTable

    DeltaTable(f"s3://{bucket}/big").create_checkpoint()
    return f"s3://{bucket}/big"
