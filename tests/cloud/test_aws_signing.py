"""The fast S3 presigner must produce the URLs botocore produces, byte for byte where it matters.

botocore is the reference: for the same credentials, endpoint, addressing style, key and (frozen) time, the
path, the query parameters and the signature must be identical. One case checks AWS's own documented example,
which does not depend on botocore at all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.auth
import pytest
from botocore.config import Config

from lakegate.cloud.aws.signing import AwsCredentials, S3UrlSigner

FROZEN = datetime(2024, 5, 6, 7, 8, 9)  # naive UTC, as botocore's clock returns it
AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzE+Hb/token//with=padding=="

KEYS = [
    "part-00000-c1a0e9c2-1f2b-4c3d-9e8f-0a1b2c3d4e5f-c000.snappy.parquet",
    "table/part-00001.parquet",
    "date=2021-01-01/part-0.parquet",
    "date=2021-01-01/part-1.parquet",
    "date=2021-01-01/hour=12/part-0.parquet",
    "a/b/c/d/e.parquet",
    "with space/file name.parquet",
    "percent%20already/100%.parquet",
    "plus+sign/a+b.parquet",
    "eq=sign/x=y=z",
    "tilde~dir/~file~",
    "unicode/Ünïcødé-日本語-😀.parquet",
    "special/!$&'()*,;:@[]#?.bin",
    "trailing/slash/",
    "double//slash",
    "/leading-slash",
    "dots/./and/../kept",
    "x",
]
# One batch memoises encoded directories: mix names and directories that look alike.
KEYS += [
    f"{d}/{n}".lstrip("/")
    for d in ("", "a b", "a b/c=d", "c=d", "p.parquet")
    for n in ("c=d", "a b", "p.parquet")
]
BUCKETS = ["my-bucket", "my.dotted.bucket", "Legacy_Bucket", "ab", "a--b", "192.168.1.1", "b" * 63]

# (signer endpoint, region, path_style, botocore endpoint, botocore s3 config)
SCENARIOS = {
    "aws-virtual": (None, "eu-west-1", None, None, {"addressing_style": "virtual"}),
    "aws-path": (None, "eu-west-1", True, None, {"addressing_style": "path"}),
    "aws-us-east-1": (
        None,
        "us-east-1",
        None,
        None,
        {"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"},
    ),
    "aws-china": (None, "cn-north-1", None, None, {"addressing_style": "virtual"}),
    "rgw-port": (
        "http://127.0.0.1:7480",
        "us-east-1",
        None,
        "http://127.0.0.1:7480",
        {"addressing_style": "path"},
    ),
    "ip-virtual-forced": (  # an IP cannot be virtual-hosted: stays path-style
        "http://127.0.0.1:7480",
        "us-east-1",
        False,
        "http://127.0.0.1:7480",
        {"addressing_style": "path"},
    ),
    "custom-virtual": (
        "http://s3.local:9000",
        "us-east-1",
        False,
        "http://s3.local:9000",
        {"addressing_style": "virtual"},
    ),
    "custom-https-prefix": (
        "https://minio.example.com/s3/",
        "auto",
        None,
        "https://minio.example.com/s3/",
        {"addressing_style": "path"},
    ),
    "ipv6": ("http://[::1]:7480", "us-east-1", None, "http://[::1]:7480", {"addressing_style": "path"}),
}


@cache
def _boto_client(
    endpoint: str | None, region: str, s3_items: tuple[tuple[str, str], ...], token: str | None
) -> Any:
    return boto3.client(
        "s3",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
        config=Config(signature_version="s3v4", s3=dict(s3_items)),  # type: ignore[arg-type]  # from CASES
    )


def boto_url(
    endpoint: str | None,
    region: str,
    s3: dict[str, str],
    token: str | None,
    bucket: str,
    key: str,
    expires: int,
    at: datetime = FROZEN,
) -> str:
    client = _boto_client(endpoint, region, tuple(sorted(s3.items())), token)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at):
        url: str = client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
        )
    # If botocore ever stops using the patched clock, say so instead of failing on a signature.
    assert parse_qs(urlsplit(url).query)["X-Amz-Date"] == [at.strftime("%Y%m%dT%H%M%SZ")]
    return url


def assert_same_url(ours: str, reference: str, *, netloc: str | None = None) -> None:
    a, b = urlsplit(ours), urlsplit(reference)
    assert a.scheme == b.scheme
    assert a.netloc == (netloc if netloc is not None else b.netloc)
    assert a.path == b.path  # exact encoded path: no normalisation, no double encoding
    assert not a.fragment
    qa = parse_qs(a.query, keep_blank_values=True, strict_parsing=True)
    qb = parse_qs(b.query, keep_blank_values=True, strict_parsing=True)
    assert qa == qb
    assert qa["X-Amz-Signature"][0] == qb["X-Amz-Signature"][0]
    assert all(len(v) == 1 for v in qa.values())


@pytest.mark.parametrize("token", [None, TOKEN], ids=["no-token", "session-token"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_matches_botocore(scenario: str, token: str | None) -> None:
    endpoint, region, path_style, boto_endpoint, s3 = SCENARIOS[scenario]
    signer = S3UrlSigner(endpoint, region, path_style=path_style)
    sign = signer.batch(AwsCredentials(AKID, SECRET, token), 3600, FROZEN)
    checked = 0
    for bucket in BUCKETS:
        for key in KEYS:
            ours = sign(bucket, key)
            ref = boto_url(boto_endpoint, region, s3, token, bucket, key, 3600)
            assert_same_url(ours, ref)
            checked += 1
    assert checked == len(BUCKETS) * len(KEYS)


def test_url_shape() -> None:
    sign = S3UrlSigner(None, "eu-west-1").batch(AwsCredentials(AKID, SECRET, TOKEN), 900, FROZEN)
    url = sign("my-bucket", "date=2021-01-01/a b%.parquet")
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.netloc == "my-bucket.s3.eu-west-1.amazonaws.com"
    assert parts.path == "/date%3D2021-01-01/a%20b%25.parquet"
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert q["X-Amz-Credential"] == f"{AKID}/20240506/eu-west-1/s3/aws4_request"
    assert q["X-Amz-Date"] == "20240506T070809Z"
    assert q["X-Amz-Expires"] == "900"
    assert q["X-Amz-SignedHeaders"] == "host"
    assert q["X-Amz-Security-Token"] == TOKEN
    assert len(q["X-Amz-Signature"]) == 64 and int(q["X-Amz-Signature"], 16) >= 0
    assert SECRET not in url

    rgw = S3UrlSigner("http://127.0.0.1:7480", "us-east-1").batch(AwsCredentials(AKID, SECRET), 60, FROZEN)
    url = rgw("bucket", "dir/k")
    assert url.startswith("http://127.0.0.1:7480/bucket/dir/k?")
    assert "X-Amz-Security-Token" not in url


def test_aws_documented_example() -> None:
    # The example of AWS's "Authenticating Requests: Using Query Parameters" page (independent of botocore).
    signer = S3UrlSigner("https://s3.amazonaws.com", "us-east-1", path_style=False)
    sign = signer.batch(
        AwsCredentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        86400,
        datetime(2013, 5, 24, tzinfo=UTC),
    )
    url = sign("examplebucket", "test.txt")
    assert url.startswith("https://examplebucket.s3.amazonaws.com/test.txt?")
    sig = parse_qs(urlsplit(url).query)["X-Amz-Signature"]
    assert sig == ["aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"]


def test_host_is_normalised_like_the_signed_host() -> None:
    # botocore keeps ':443' and the case of the endpoint in the URL but signs the normalised host; we put the
    # signed host in the URL, so a client that sends the URL's netloc as Host matches the signature.
    for endpoint, netloc in [
        ("https://minio.example.com:443", "minio.example.com"),
        ("http://S3.Local:80", "s3.local"),
    ]:
        sign = S3UrlSigner(endpoint, "us-east-1").batch(AwsCredentials(AKID, SECRET), 60, FROZEN)
        for key in KEYS[:6]:
            ref = boto_url(endpoint, "us-east-1", {"addressing_style": "path"}, None, "my-bucket", key, 60)
            assert_same_url(sign("my-bucket", key), ref, netloc=netloc)


def test_batches_with_other_times_regions_and_secrets() -> None:
    # The signing-key cache is keyed on secret, date and region: changing any of them must change the key.
    times = [
        FROZEN,
        FROZEN + timedelta(seconds=1),
        FROZEN + timedelta(days=1),
        datetime(2030, 12, 31, 23, 59, 59),
    ]
    for at in times:
        for region in ("eu-west-1", "us-west-2"):
            for secret in (SECRET, SECRET + "2"):
                sign = S3UrlSigner(None, region).batch(AwsCredentials(AKID, secret), 604800, at)
                client = boto3.client(
                    "s3",
                    region_name=region,
                    aws_access_key_id=AKID,
                    aws_secret_access_key=secret,
                    config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}),
                )
                with mock.patch.object(botocore.auth, "get_current_datetime", lambda *a, at=at, **k: at):
                    ref = client.generate_presigned_url(
                        "get_object",
                        Params={"Bucket": "b-1", "Key": "date=2021-01-01/p.parquet"},
                        ExpiresIn=604800,
                    )
                assert_same_url(sign("b-1", "date=2021-01-01/p.parquet"), ref)


def test_now_timezones() -> None:
    creds = AwsCredentials(AKID, SECRET)
    signer = S3UrlSigner(None, "eu-west-1")
    naive = signer.batch(creds, 60, FROZEN)("b-1", "k")
    aware = signer.batch(creds, 60, FROZEN.replace(tzinfo=UTC))("b-1", "k")
    shifted = signer.batch(creds, 60, FROZEN.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=-5))))
    assert naive == aware == shifted("b-1", "k")
    # Without `now`, the current time is used.
    date = parse_qs(urlsplit(signer.batch(creds, 60)("b-1", "k")).query)["X-Amz-Date"][0]
    stamp = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60


def test_one_batch_shares_date_and_expiry() -> None:
    sign = S3UrlSigner(None, "eu-west-1").batch(AwsCredentials(AKID, SECRET), 123)
    dates = {parse_qs(urlsplit(sign("b-1", f"k{i}")).query)["X-Amz-Date"][0] for i in range(50)}
    assert len(dates) == 1
    assert sign("b-1", "same") == sign("b-1", "same")


@pytest.mark.parametrize("bad", [0, -1, 604801, 10**9])
def test_bad_expires_in(bad: int) -> None:
    signer = S3UrlSigner(None, "eu-west-1")
    with pytest.raises(ValueError, match=rf"^expires_in must be 1\.\.\d+ seconds, not {bad}$"):
        signer.batch(AwsCredentials(AKID, SECRET), bad, FROZEN)


@pytest.mark.parametrize("bad", [1.5, "60", True, None])
def test_expires_in_not_an_int(bad: Any) -> None:
    with pytest.raises(TypeError):
        S3UrlSigner(None, "eu-west-1").batch(AwsCredentials(AKID, SECRET), bad, FROZEN)


@pytest.mark.parametrize("good", [1, 604800])
def test_expires_in_bounds(good: int) -> None:
    url = S3UrlSigner(None, "eu-west-1").batch(AwsCredentials(AKID, SECRET), good, FROZEN)("b-1", "k")
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == [str(good)]


@pytest.mark.parametrize("endpoint", ["ftp://host", "127.0.0.1:7480", "http://", "http://h/?x=1", ""])
def test_bad_endpoint(endpoint: str) -> None:
    with pytest.raises(ValueError, match=r"^invalid S3 endpoint URL"):
        S3UrlSigner(endpoint, "us-east-1")


def test_region_required() -> None:
    with pytest.raises(ValueError, match="an S3 region is required"):
        S3UrlSigner(None, "")


def test_credentials_repr_hides_secrets() -> None:
    creds = AwsCredentials(AKID, SECRET, TOKEN)
    for text in (repr(creds), str(creds), f"{creds}", f"{creds!r}"):
        assert SECRET not in text
        assert TOKEN not in text
        assert AKID in text
    assert creds.secret_access_key == SECRET  # still there, just not shown
