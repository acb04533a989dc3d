"""How S3 locations are written: `s3://bucket/path`; `s3a://` and `s3n://` (Hadoop's names) are the same store.
Imports no SDK: parsing a location never loads boto3."""

from __future__ import annotations

from lakegate.cloud.backends import LocationSyntax
from lakegate.cloud.locations import bucket_path, bucket_uri

SYNTAX = LocationSyntax(bucket_path, bucket_uri("s3"))
