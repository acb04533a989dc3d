"""Micro-benchmark: pre-signed S3 GET URLs, lakegate's signer vs boto3's generate_presigned_url.

    .venv/bin/python benchmarks/bench_signing.py [N_KEYS] [N_BOTO3_KEYS]

Signs N_KEYS (default 100k) Delta-like keys, half of them in partition directories that need encoding
(`date=2021-01-01/...`). boto3 is timed on N_BOTO3_KEYS (default 5k) and extrapolated to N_KEYS.
No network access: signing is local.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable

import boto3
from botocore.config import Config

from lakegate.cloud.aws.signing import AwsCredentials, S3UrlSigner

REGION = "eu-west-1"
BUCKET = "lakegate-bench"
AKID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjE" + "x" * 700 + "=="  # STS tokens are ~700-1000 characters


def delta_keys(n: int) -> list[str]:
    keys = []
    for i in range(n):
        name = f"part-{i:05d}-{uuid.UUID(int=i * 7919)}-c000.snappy.parquet"
        keys.append(f"sales/{name}" if i % 2 else f"sales/date=2021-01-{i % 28 + 1:02d}/{name}")
    return keys


def time_per_url(sign_all: Callable[[list[str]], object], keys: list[str], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        sign_all(keys)
        best = min(best, time.perf_counter() - start)
    return best / len(keys) * 1e6


def ours(token: str | None) -> Callable[[list[str]], object]:
    signer = S3UrlSigner(None, REGION)
    creds = AwsCredentials(AKID, SECRET, token)

    def sign_all(keys: list[str]) -> list[str]:
        sign = signer.batch(creds, 3600)  # one batch per response, as the server does
        return [sign(BUCKET, k) for k in keys]

    return sign_all


def boto(token: str | None) -> Callable[[list[str]], object]:
    client = boto3.client(
        "s3",
        region_name=REGION,
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
        config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}),
    )
    client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "warm-up"})

    def sign_all(keys: list[str]) -> list[str]:
        return [
            client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": k}, ExpiresIn=3600)
            for k in keys
        ]

    return sign_all


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    n_boto = int(sys.argv[2]) if len(sys.argv) > 2 else 5_000
    keys = delta_keys(n)
    print(f"{n:,} keys (boto3 timed on {n_boto:,}, extrapolated); best of 3 runs (boto3: 1)\n")
    print(f"{'signer':<10} {'session token':<14} {'µs/URL':>8} {f's per {n:,}':>14} {'speedup':>8}")
    for token in (None, TOKEN):
        ours_us = time_per_url(ours(token), keys)
        boto_us = time_per_url(boto(token), keys[:n_boto], repeat=1)
        label = "yes" if token else "no"
        print(
            f"{'lakegate':<10} {label:<14} {ours_us:>8.2f} {ours_us * n / 1e6:>14.2f} {boto_us / ours_us:>7.0f}x"
        )
        print(f"{'boto3':<10} {label:<14} {boto_us:>8.1f} {boto_us * n / 1e6:>14.2f} {'1x':>8}")


if __name__ == "__main__":
    main()
