"""File URLs signed with temporary AWS credentials (an instance role, IRSA, `credential_process`, SSO: the
standard chain's usual case in production) stop working when those credentials expire, whatever expiry the URL
names. The answer's `expirationTimestamp` must not promise more: clients plan their URL refreshes by it.
Checked against Ceph RGW, which verifies SigV4 and STS session tokens, with credentials from a real
`credential_process` that assumes a role for a short session. The same holds for files in an auxiliary location
signed by another store than the table root's: one expiry for the whole answer, no later than any signer's."""

from __future__ import annotations

import calendar
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.e2e.server import start_server
from tests.services.rgw import RgwService
from tests.tables import build_plain

pytestmark = pytest.mark.rgw
BUCKET = "lakegate-url-expiry"  # signed with the temporary credentials
STATIC_BUCKET = "lakegate-url-expiry-static"  # signed with static keys: no deadline of their own
SESSION_SECONDS = 120  # far less than preSignedUrlTimeoutSeconds (3600 by default)

# A credential_process (https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-sourcing-external.html):
# assumes the role and prints the session, noting each session's expiry where the test reads it.
PROCESS = """
import json, sys
import boto3
from botocore.config import Config

spec = json.load(open(sys.argv[1]))
sts = boto3.client(
    "sts", endpoint_url=spec["endpoint"], region_name=spec["region"], aws_access_key_id=spec["key"],
    aws_secret_access_key=spec["secret"], config=Config(parameter_validation=False),
)
c = sts.assume_role(RoleArn=spec["role"], RoleSessionName="lakegate-signer", DurationSeconds=spec["seconds"])
c = c["Credentials"]
with open(spec["expirations"], "a") as f:
    f.write(c["Expiration"].isoformat() + "\\n")
print(json.dumps({"Version": 1, "AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                  "SessionToken": c["SessionToken"], "Expiration": c["Expiration"].isoformat()}))
"""


def _move_to_auxiliary(rgw: RgwService, table: str, auxiliary: str) -> None:
    """Rewrite the table's first commit so its data file lies in `auxiliary` (absolute path) instead."""
    s3 = rgw.boto3_client("s3", rgw.owner)
    bucket, prefix = urlsplit(table).netloc, urlsplit(table).path.strip("/")
    commit_key = f"{prefix}/_delta_log/{0:020d}.json"
    actions = [
        json.loads(line) for line in s3.get_object(Bucket=bucket, Key=commit_key)["Body"].read().splitlines()
    ]
    for action in actions:
        if "add" in action:
            name = action["add"]["path"]
            s3.copy_object(
                Bucket=urlsplit(auxiliary).netloc,
                Key=f"{urlsplit(auxiliary).path.strip('/')}/{name}",
                CopySource={"Bucket": bucket, "Key": f"{prefix}/{name}"},
            )
            action["add"]["path"] = f"{auxiliary}/{name}"
    s3.put_object(Bucket=bucket, Key=commit_key, Body="".join(json.dumps(a) + "\n" for a in actions).encode())


@pytest.mark.parametrize("files_in", ["root", "auxiliary"])
def test_urls_signed_with_temporary_credentials_promise_no_more_than_the_session(
    rgw: RgwService, tmp_path: Path, files_in: str
) -> None:
    """`auxiliary`: the table root is signed with static keys, its files lie in an auxiliary location signed
    with the temporary credentials."""
    root_bucket = BUCKET if files_in == "root" else STATIC_BUCKET
    for bucket in {BUCKET, root_bucket}:
        rgw.create_bucket(bucket)
    saved = dict(os.environ)
    os.environ.update(rgw.env(rgw.owner))  # deltalake (object_store) reads the standard AWS variables
    try:
        location = build_plain(f"s3://{root_bucket}/tables/t")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    auxiliary = f"s3://{BUCKET}/auxiliary/t"
    if files_in == "auxiliary":
        _move_to_auxiliary(rgw, location, auxiliary)
    expirations = tmp_path / "expirations"
    spec = {
        "endpoint": rgw.endpoint,
        "region": rgw.region,
        "key": rgw.broker.access_key_id,
        "secret": rgw.broker.secret_access_key,
        "role": rgw.create_role(f"lakegate-url-signer-{files_in}"),
        "seconds": SESSION_SECONDS,
        "expirations": str(expirations),
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "process.py").write_text(PROCESS)
    aws_config = tmp_path / "aws-config"
    aws_config.write_text(
        f"[profile signer]\ncredential_process = {sys.executable} {tmp_path / 'process.py'} {tmp_path / 'spec.json'}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_CONFIG_FILE": str(aws_config), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    table = {"name": "t", "location": location, "auxiliaryLocations": [auxiliary]}
    storage = [
        {
            "location": f"s3://{BUCKET}/",
            "aws": {"endpoint": rgw.endpoint, "region": rgw.region, "profile": "signer"},
        }
    ]
    if files_in == "auxiliary":
        storage.append({"location": f"s3://{STATIC_BUCKET}/", "aws": rgw.aws_settings()})
    server = start_server(
        tmp_path / "srv",
        {"shares": [{"name": "s", "schemas": [{"name": "d", "tables": [table]}]}], "storage": storage},
        env=env,
    )
    try:
        files = server.query_files("s.d.t")
        assert files
        # The latest session lakegate may have signed with: no URL of the answer outlives it.
        session_end = max(datetime.fromisoformat(x).timestamp() for x in expirations.read_text().split())
        for file in files:
            assert file["url"].startswith(f"{rgw.endpoint}/{BUCKET}/")  # signed with the session
            assert file["expirationTimestamp"] / 1000 <= session_end, (
                file["expirationTimestamp"],
                session_end,
            )
            query = parse_qs(urlsplit(file["url"]).query)
            signed = calendar.timegm(time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ"))
            assert signed + int(query["X-Amz-Expires"][0]) == file["expirationTimestamp"] / 1000
            assert httpx.get(file["url"], timeout=30).status_code == 200  # and the URL works
    finally:
        server.stop()
