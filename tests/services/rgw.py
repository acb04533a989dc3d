"""A single-node Ceph cluster (memstore) with RGW on loopback: the only real S3 + STS we can run here.

RGW enforces SigV4, STS AssumeRole, role and inline session policies, ``s3:prefix`` conditions and credential
expiry, which is what lakegate's credential vending must be tested against. Where it differs from AWS:
- policies must be sent as compact JSON (see ``compact_json``);
- botocore cannot parse RGW's STS error bodies: STS/IAM errors surface as code "Unknown" (HTTP 400/403);
- with ListBucket granted only under an ``s3:prefix`` condition, a missing key answers 404 where AWS may say 403.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import struct
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.services._proc import Daemon, free_port, require_binary, run

REGION = "us-east-1"

# The role's own policy when a test gives none: read everything, so the session policy is what scopes.
DEFAULT_ROLE_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:GetObjectVersion",
                "s3:ListBucket",
                "s3:ListBucketVersions",
                "s3:GetBucketLocation",
            ],
            "Resource": ["*"],
        }
    ],
}


def compact_json(doc: dict[str, Any]) -> str:
    # RGW 16 does not decode "+" as a space in form bodies, so a policy with spaces fails to parse (HTTP 400).
    return json.dumps(doc, separators=(",", ":"))


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    expiration: datetime | None = None

    @classmethod
    def from_sts(cls, creds: dict[str, Any]) -> Credentials:
        """From the ``Credentials`` member of a boto3 ``assume_role`` answer."""
        return cls(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"], creds["Expiration"])


def _ceph_key() -> str:
    # A cephx secret as ceph-authtool writes it: type AES (1), creation time, length, 16 random bytes.
    return base64.b64encode(struct.pack("<HIIH", 1, int(time.time()), 0, 16) + os.urandom(16)).decode()


_KEYS: dict[str, dict[str, str]] = {
    "mon.": {"mon": "allow *"},
    "client.admin": {"mon": "allow *", "osd": "allow *", "mgr": "allow *", "mds": "allow *"},
    "osd.0": {"mon": "allow profile osd", "mgr": "allow profile osd", "osd": "allow *"},
    "client.rgw.gw": {"mon": "allow rw", "osd": "allow rwx"},
}


def _keyring_entry(name: str, caps: dict[str, str]) -> str:
    return f"[{name}]\n\tkey = {_ceph_key()}\n" + "".join(f'\tcaps {k} = "{v}"\n' for k, v in caps.items())


def _user_create_args(uid: str, creds: Credentials) -> list[str]:
    return [
        "-n",
        "client.admin",
        "user",
        "create",
        f"--uid={uid}",
        f"--display-name={uid}",
        f"--access-key={creds.access_key_id}",
        f"--secret={creds.secret_access_key}",
    ]


class RgwService:
    def __init__(
        self, workdir: Path, endpoint: str, owner: Credentials, broker: Credentials, daemons: list[Daemon]
    ):
        self.workdir = workdir
        self.endpoint = endpoint
        self.region = REGION
        self.owner = owner
        self.broker = broker
        self._daemons = daemons

    @classmethod
    def start(cls, workdir: Path) -> RgwService:
        names = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "monmaptool")
        binaries = {name: require_binary(name) for name in names}
        workdir = workdir.resolve()
        for sub in ("run", "log", "mon", "osd/osd.0"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        mon_port, rgw_port = free_port(), free_port()
        fsid = str(uuid.uuid4())
        conf = workdir / "ceph.conf"
        conf.write_text(_ceph_conf(workdir, fsid, mon_port, rgw_port))
        # One keyring for every daemon: ceph-mon --mkfs imports all of its keys with their caps, which saves
        # the "ceph auth add" round trips.
        (workdir / "keyring").write_text("".join(_keyring_entry(name, caps) for name, caps in _KEYS.items()))

        def cmd(binary: str, *args: str) -> list[str]:
            return [binaries[binary], "-c", str(conf), *args]

        owner = Credentials("OWNER" + secrets.token_hex(6).upper(), secrets.token_urlsafe(30))
        broker = Credentials("BROKER" + secrets.token_hex(6).upper(), secrets.token_urlsafe(30))
        daemons: list[Daemon] = []
        try:
            monmap = str(workdir / "monmap")
            mon_addr = f"[v2:127.0.0.1:{mon_port}]"
            run([binaries["monmaptool"], "--create", "--fsid", fsid, "--addv", "a", mon_addr, monmap])
            run(cmd("ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap))
            daemons.append(Daemon("ceph-mon", cmd("ceph-mon", "-f", "-i", "a"), workdir))
            osd_uuid = str(uuid.uuid4())
            with ThreadPoolExecutor(2) as pool:
                # The OSD's mkfs is local (--no-mon-config), so it runs while the monitor starts.
                mkfs = pool.submit(
                    run, cmd("ceph-osd", "-i", "0", "--mkfs", "--no-mon-config", "--osd-uuid", osd_uuid)
                )
                daemons[0].wait_for_port(mon_port, 60)
                run(cmd("ceph", "osd", "create", osd_uuid))
                mkfs.result()
            # "osd crush update on start" (the default) places the OSD in the CRUSH map itself.
            daemons.append(Daemon("ceph-osd", cmd("ceph-osd", "-f", "-i", "0"), workdir))
            daemons.append(Daemon("radosgw", cmd("radosgw", "-f", "-n", "client.rgw.gw"), workdir))
            # radosgw opens its port only after it has created its pools, i.e. once the OSD serves them.
            daemons[2].wait_for_port(rgw_port, 180)
            with ThreadPoolExecutor(2) as pool:
                users = [
                    pool.submit(run, cmd("radosgw-admin", *_user_create_args("owner", owner))),
                    # roles=* lets the broker call the IAM role APIs (RGW checks this cap for them).
                    pool.submit(
                        run, cmd("radosgw-admin", *_user_create_args("broker", broker), "--caps=roles=*")
                    ),
                ]
                for future in users:
                    future.result()
        except BaseException:
            for d in reversed(daemons):
                d.stop()
            raise
        return cls(workdir, f"http://127.0.0.1:{rgw_port}", owner, broker, daemons)

    def stop_gateway(self) -> None:
        """Stop radosgw alone: S3 and STS go away (connections refused), the cluster keeps every object."""
        self._daemons[-1].stop()

    def start_gateway(self, timeout: float = 120) -> None:
        """Start radosgw again after `stop_gateway`; returns once it listens on the same endpoint."""
        gateway = self._daemons[-1]
        gateway.start_again()
        gateway.wait_for_port(int(self.endpoint.rsplit(":", 1)[1]), timeout)

    def stop(self) -> None:
        # RGW first, then the OSD it talks to, then the monitor.
        for d in reversed(self._daemons):
            d.stop()

    def boto3_client(self, service: str, creds: Credentials | None = None) -> Any:
        import boto3
        from botocore.config import Config

        creds = creds or self.owner
        # types-boto3 types client() per service name literal; `service` is any of them here.
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            aws_session_token=creds.session_token,
            config=Config(
                # Path-style: "bucket.127.0.0.1" is no host name.
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                # botocore would refuse DurationSeconds < 900, but tests vend 2-second credentials.
                parameter_validation=False,
            ),
        )

    def env(self, creds: Credentials | None = None) -> dict[str, str]:
        creds = creds or self.owner
        env = {
            "AWS_ACCESS_KEY_ID": creds.access_key_id,
            "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
            # object_store (deltalake) refuses plain-HTTP endpoints unless told otherwise.
            "AWS_ALLOW_HTTP": "true",
        }
        if creds.session_token:
            env["AWS_SESSION_TOKEN"] = creds.session_token
        return env

    def aws_settings(self) -> dict[str, str]:
        """The owner's keys and this gateway's endpoint, as a `storage:` entry's `aws` block spells them."""
        return {
            "endpoint": self.endpoint,
            "region": self.region,
            "accessKeyId": self.owner.access_key_id,
            "secretAccessKey": self.owner.secret_access_key,
        }

    def create_bucket(self, name: str) -> None:
        self.boto3_client("s3", self.owner).create_bucket(Bucket=name)

    def create_role(self, name: str, permissions_policy: dict[str, Any] | None = None) -> str:
        """A role the broker may assume, with ``permissions_policy`` (default: read everything); its ARN."""
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": ["arn:aws:iam:::user/broker"]},
                    "Action": ["sts:AssumeRole"],
                }
            ],
        }
        iam = self.boto3_client("iam", self.broker)
        arn: str = iam.create_role(RoleName=name, Path="/", AssumeRolePolicyDocument=compact_json(trust))[
            "Role"
        ]["Arn"]
        iam.put_role_policy(
            RoleName=name,
            PolicyName=f"{name}-policy",
            PolicyDocument=compact_json(permissions_policy or DEFAULT_ROLE_POLICY),
        )
        return arn

    def assume_role(
        self, role_arn: str, session_policy: dict[str, Any] | None = None, duration_seconds: int = 900
    ) -> Credentials:
        """The broker assumes ``role_arn``, optionally narrowed by an inline session policy."""
        kwargs: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": "test-" + secrets.token_hex(4),
            "DurationSeconds": duration_seconds,
        }
        if session_policy is not None:
            kwargs["Policy"] = compact_json(session_policy)
        return Credentials.from_sts(
            self.boto3_client("sts", self.broker).assume_role(**kwargs)["Credentials"]
        )


def _ceph_conf(d: Path, fsid: str, mon_port: int, rgw_port: int) -> str:
    return f"""[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}
public network = 127.0.0.0/8
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = {d}/keyring
run dir = {d}/run
admin socket = {d}/run/$name.asok
log file = {d}/log/$name.log
mon data = {d}/mon/$name
osd data = {d}/osd/$name
ms bind ipv6 = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
# Each pool RGW creates needs two osdmap epochs; proposing them every second made start-up ~8 s slower.
paxos propose interval = 0.05
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0

[osd]
osd objectstore = memstore
memstore device bytes = 2147483648
osd max object name len = 256
osd max object namespace len = 64

[client.rgw.gw]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw sts key = {secrets.token_hex(8)}
rgw s3 auth use sts = true
rgw enable apis = s3, s3website, admin, sts, iam
rgw sts min session duration = 1
# Lifecycle workers run between 00:00 and 06:00 and sleep 5 s at a time, which delays shutdown; no test needs them.
rgw enable lc threads = false
"""
