"""How GCS locations are written: `gs://bucket/path`. Imports no SDK: parsing a location never loads google-*."""

from __future__ import annotations

from lakegate.cloud.backends import LocationSyntax
from lakegate.cloud.locations import bucket_path, bucket_uri

SYNTAX = LocationSyntax(bucket_path, bucket_uri("gs"))
