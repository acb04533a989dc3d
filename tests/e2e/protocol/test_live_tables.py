"""A running server follows its tables as they move, and the demo that `make run` serves is readable."""

from __future__ import annotations

import json
from pathlib import Path

import delta_sharing
import httpx
import yaml
from deltalake import write_deltalake

from lakegate.demo import build_demo
from tests.e2e.server import start_server
from tests.tables import build_plain, read_expected, rows


def _query(server, table: str) -> tuple[int, set[str]]:
    response = httpx.post(
        f"{server.endpoint}/shares/s/schemas/d/tables/{table}/query", headers=server.headers(), json={}
    )
    ids = {json.loads(line)["file"]["id"] for line in response.text.splitlines()[2:]}
    return int(response.headers["delta-table-version"]), ids


def test_server_sees_new_commits(tmp_path: Path) -> None:
    root = build_plain(tmp_path / "t", batches=2)
    server = start_server(
        tmp_path / "srv",
        {"shares": [{"name": "s", "schemas": [{"name": "d", "tables": [{"name": "t", "location": root}]}]}]},
    )
    try:
        version, ids = _query(server, "t")
        write_deltalake(root, rows([100, 101]), mode="append")
        new_version, new_ids = _query(server, "t")
        assert new_version == version + 1 and ids < new_ids and len(new_ids) == len(ids) + 1
        write_deltalake(root, rows([7]), mode="overwrite")
        last_version, last_ids = _query(server, "t")
        assert last_version == version + 2 and len(last_ids) == 1 and not (last_ids & new_ids)
        frame = delta_sharing.load_as_pandas(f"{server.profile()}#s.d.t")
        assert sorted(frame["id"]) == [r["id"] for r in read_expected(root)]
    finally:
        server.stop()


def test_demo_is_readable(tmp_path: Path) -> None:
    config_path, profile_path, tables = build_demo(tmp_path / "demo", port=0)
    config = yaml.safe_load(config_path.read_text())
    assert oct(config_path.stat().st_mode & 0o777) == "0o600"
    server = start_server(
        tmp_path / "srv", {k: v for k, v in config.items() if k not in ("host", "port")}, token=None
    )
    try:
        profile = json.loads(Path(profile_path).read_text())
        profile["endpoint"] = server.endpoint
        Path(profile_path).write_text(json.dumps(profile))
        for table in tables:
            frame = delta_sharing.load_as_pandas(f"{profile_path}#{table}")
            assert len(frame) > 0
        changes_version = httpx.get(
            f"{server.endpoint}/shares/demo/schemas/default/tables/sales/version",
            headers={"Authorization": f"Bearer {profile['bearerToken']}"},
        )
        assert changes_version.headers["delta-table-version"] == "3"
    finally:
        server.stop()


def test_anonymous_access_as_the_reference_server_without_a_token(tmp_path: Path) -> None:
    root = build_plain(tmp_path / "t")
    server = start_server(
        tmp_path / "srv",
        {
            "authorization": {"allowAnonymous": True},
            "shares": [
                {"name": "s", "schemas": [{"name": "d", "tables": [{"name": "t", "location": root}]}]}
            ],
        },
        token=None,
    )
    try:
        profile = server.profile(token="anything-the-profile-says")
        assert [t.name for t in delta_sharing.SharingClient(profile).list_all_tables()] == ["t"]
        assert len(delta_sharing.load_as_pandas(f"{profile}#s.d.t")) == 3
        assert httpx.get(server.endpoint + "/shares").status_code == 200
    finally:
        server.stop()
