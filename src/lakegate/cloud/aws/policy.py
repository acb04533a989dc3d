"""Inline session policies that narrow an assumed role to reading given S3 directories.

A session policy can only narrow the role's own rights, so this is the whole scope a recipient gets. Per
directory `s3://BUCKET/PATH` it allows (credential-vending checklist, docs/directory-access.md):

* `s3:GetObject`, `s3:GetObjectVersion` on `BUCKET/PATH/*` and `BUCKET/PATH`;
* `s3:ListBucket` on the bucket, only with `s3:prefix` in {PATH, PATH/, PATH/*} — a listing of `PATH_old/`
  matches none of them (RGW answers 404 instead of 403 for a missing key unless PATH and PATH/ are listable);
* `s3:GetBucketLocation` on the bucket (clients ask for the region);
* with `kmsKeyArns`, `kms:Decrypt` on those keys only when S3 asks on behalf of these objects.

The document is built as data and serialized with json.dumps, never by string formatting, so a path holding
`"` or `}` stays a string. IAM treats `*`, `?` and `$` in resources and StringLike values as wildcards or
variables, so they are escaped as `${*}`, `${?}`, `${$}`. Nothing granted ⇒ an explicit Deny of everything:
an empty session policy would leave the role's full rights.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from lakegate.cloud.locations import Location

VERSION = "2012-10-17"
MAX_PLAINTEXT = 2048  # STS limit on an inline session policy (characters)
DENY_ALL: dict[str, Any] = {"Effect": "Deny", "Action": "*", "Resource": "*"}


def iam_escape(text: str) -> str:
    """Escape IAM wildcard and variable characters so `text` matches only itself."""
    return "".join("${" + c + "}" if c in "*?$" else c for c in text)


def read_policy(
    locations: Sequence[Location], kms_key_arns: Sequence[str] = (), partition: str = "aws"
) -> dict[str, Any]:
    """The session policy allowing read and list of exactly `locations` (S3 directories)."""
    statements: list[dict[str, Any]] = []
    for location in locations:
        if location.cloud != "s3":
            raise ValueError(f"not an S3 location: {location.uri}")
        statements += _read_statements(location, list(kms_key_arns), partition)
    return {"Version": VERSION, "Statement": statements or [DENY_ALL]}


def _read_statements(location: Location, kms_key_arns: list[str], partition: str) -> list[dict[str, Any]]:
    bucket_arn = f"arn:{partition}:s3:::{iam_escape(location.bucket)}"
    path = iam_escape(location.path)
    if path:
        objects = [f"{bucket_arn}/{path}/*", f"{bucket_arn}/{path}"]
        listing: dict[str, Any] = {
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [bucket_arn],
            "Condition": {"StringLike": {"s3:prefix": [path, f"{path}/", f"{path}/*"]}},
        }
    else:  # the bucket root: every object and every listing of this bucket, nothing in other buckets
        objects = [f"{bucket_arn}/*"]
        listing = {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket_arn]}
    statements = [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": objects},
        listing,
        {"Effect": "Allow", "Action": ["s3:GetBucketLocation"], "Resource": [bucket_arn]},
    ]
    if kms_key_arns:
        # SSE-KMS objects need the key; only through S3 and only for these objects (or the bucket, when S3
        # Bucket Keys put the bucket ARN in the encryption context).
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": kms_key_arns,
                "Condition": {
                    "StringLike": {
                        "kms:ViaService": "s3.*.amazonaws.com",
                        "kms:EncryptionContext:aws:s3:arn": [bucket_arn, *objects],
                    }
                },
            }
        )
    return statements


def to_json(policy: dict[str, Any]) -> str:
    """Compact JSON: shorter (the 2,048-character limit) and what RGW can parse (it does not decode '+' in
    form bodies as a space, so a policy with spaces fails there)."""
    return json.dumps(policy, separators=(",", ":"), ensure_ascii=False)


def partition_of(arn: str | None) -> str:
    """`aws`, `aws-cn`, `aws-us-gov`… from an ARN; `aws` when there is none."""
    parts = (arn or "").split(":")
    return parts[1] if len(parts) > 2 and parts[0] == "arn" and parts[1] else "aws"
