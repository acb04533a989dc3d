"""Tables whose log is broken on the provider's side, served by a running lakegate: a lost commit, a truncated
commit, a corrupt checkpoint. Recipients get a 5xx that says what is wrong without any storage path; the
provider's log names the table and the file; a repaired table is served again without a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from deltalake import DeltaTable, write_deltalake

from tests.e2e.server import RunningServer, start_server
from tests.tables import build_plain, rows

NAMES = ("lost", "truncated", "checkpoint", "checkpoint_alone")
EXPECTED: dict[
    str, int
] = {}  # deltalake's file count, taken before the damage (it cannot read the table after)
SAVED: dict[str, bytes] = {}


def _log_file(root: Path, version: int, suffix: str = ".json") -> Path:
    return root / "_delta_log" / f"{version:020d}{suffix}"


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Broken before the server starts (a server that already holds a table's snapshot keeps answering it
    correctly from memory until new commits appear)."""
    base = tmp_path_factory.mktemp("broken")
    roots = {name: Path(build_plain(base / name, batches=4)) for name in NAMES}
    _log_file(roots["lost"], 2).unlink()
    for name in ("checkpoint", "checkpoint_alone"):
        DeltaTable(str(roots[name]), version=2).create_checkpoint()
    EXPECTED["checkpoint"] = len(DeltaTable(str(roots["checkpoint"])).file_uris())
    checkpoint = _log_file(roots["checkpoint"], 2, ".checkpoint.parquet")
    checkpoint.write_bytes(checkpoint.read_bytes()[:64])
    alone = roots["checkpoint_alone"]
    for version in range(2):
        _log_file(alone, version).unlink()  # cleaned up: only the checkpoint holds versions 0-2
    checkpoint = _log_file(alone, 2, ".checkpoint.parquet")
    SAVED["checkpoint_alone"] = checkpoint.read_bytes()
    checkpoint.write_bytes(SAVED["checkpoint_alone"][:100])
    return roots


@pytest.fixture(scope="module")
def server(tables: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    listed = [{"name": name, "location": str(root), "historyShared": True} for name, root in tables.items()]
    running = start_server(
        tmp_path_factory.mktemp("srv"),
        {"shares": [{"name": "b", "schemas": [{"name": "d", "tables": listed}]}]},
    )
    yield running
    running.stop()


def _query(server: RunningServer, table: str) -> httpx.Response:
    url = f"{server.endpoint}/shares/b/schemas/d/tables/{table}/query"
    return httpx.post(url, headers=server.headers(), json={}, timeout=30)


def _files(response: httpx.Response) -> int:
    return sum(1 for line in response.text.splitlines() if line.startswith('{"file"'))


def _assert_provider_error(response: httpx.Response, base: Path, *said: str) -> None:
    assert response.status_code == 500, response.text
    body = response.json()
    assert body["errorCode"] == "INTERNAL_ERROR" and "provider must repair" in body["message"], body
    assert str(base) not in response.text and "_delta_log" not in response.text, body
    for text in said:
        assert text in body["message"], body


def _error_lines(server: RunningServer) -> list[str]:
    return [line for line in server.daemon.log_path.read_text().splitlines() if '"level":"error"' in line]


def _assert_logged(server: RunningServer, table: str, file: Path) -> None:
    assert any(f"/tables/{table}/" in line and str(file) in line for line in _error_lines(server)), (
        _error_lines(server)[-3:]
    )


def test_a_lost_commit(server: RunningServer, tables: dict[str, Path]) -> None:
    """Conformance with the reference server's intent: a table whose log lost a commit is the provider's
    problem (a 5xx), not a malformed request (it used to answer 400 MALFORMED_REQUEST)."""
    for response in (
        _query(server, "lost"),
        httpx.get(
            f"{server.endpoint}/shares/b/schemas/d/tables/lost/metadata", headers=server.headers(), timeout=30
        ),
    ):
        _assert_provider_error(response, tables["lost"].parent, "commit 2")
    _assert_logged(server, "lost", _log_file(tables["lost"], 2))


def test_a_truncated_commit_and_its_repair(server: RunningServer, tables: dict[str, Path]) -> None:
    """A new commit that is cut short (a writer that does not write atomically, a damaged disk)."""
    root = tables["truncated"]
    before = _query(server, "truncated")
    assert before.status_code == 200
    write_deltalake(str(root), rows([90, 91]), mode="append")
    expected = len(DeltaTable(str(root)).file_uris())
    commit = _log_file(root, 4)
    whole = commit.read_bytes()
    commit.write_bytes(whole[: len(whole) // 2])
    _assert_provider_error(_query(server, "truncated"), root.parent, "commit 4")
    _assert_logged(server, "truncated", commit)
    commit.write_bytes(whole)  # the provider repairs the table: served again, no restart
    after = _query(server, "truncated")
    assert after.status_code == 200 and _files(after) == expected


def test_a_corrupt_checkpoint_with_its_commits(server: RunningServer, tables: dict[str, Path]) -> None:
    response = _query(server, "checkpoint")
    # The commits before the checkpoint are still there: the answer is whole, and the provider is told.
    assert response.status_code == 200 and _files(response) == EXPECTED["checkpoint"]
    checkpoint = _log_file(tables["checkpoint"], 2, ".checkpoint.parquet")
    assert any(str(checkpoint) in line for line in _error_lines(server))


def test_a_corrupt_checkpoint_alone(server: RunningServer, tables: dict[str, Path]) -> None:
    root = tables["checkpoint_alone"]
    checkpoint = _log_file(root, 2, ".checkpoint.parquet")
    _assert_provider_error(_query(server, "checkpoint_alone"), root.parent, "checkpoint")
    _assert_logged(server, "checkpoint_alone", checkpoint)
    checkpoint.write_bytes(SAVED["checkpoint_alone"])
    assert _query(server, "checkpoint_alone").status_code == 200
