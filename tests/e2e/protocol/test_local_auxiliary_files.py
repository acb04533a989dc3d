"""A local table whose log names files in one of its auxiliary locations: the file route serves only files below
the table root, so such files cannot be handed out by URL. The recipient gets a clear 400
UNSUPPORTED_OPERATION without any server path (was a 500 from the URL signer), in both formats, whether the
answer is small (joined in Python) or large (column-wise); a paged answer, already streaming, ends with the same
error in its EndStreamAction (docs/protocol-notes.md)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import RunningServer, start_server
from tests.tables import build_plain

SMALL, LARGE = 3, 70  # files at the auxiliary location (more than the 64 joined in Python)


def _move_to_auxiliary(root: Path, auxiliary: Path, count: int) -> None:
    """Rewrite the table's first commit with `count` more adds whose absolute paths are in `auxiliary`."""
    commit = root / "_delta_log" / f"{0:020d}.json"
    actions = [json.loads(line) for line in commit.read_text().splitlines()]
    template = next(a for a in actions if "add" in a)["add"]
    auxiliary.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        name = f"outside-{i}.parquet"
        shutil.copy(root / template["path"], auxiliary / name)
        actions.append({"add": {**template, "path": (auxiliary / name).as_uri()}})
    commit.write_text("".join(json.dumps(a) + "\n" for a in actions))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("aux")
    tables = []
    for name, count in (("small", SMALL), ("large", LARGE)):
        root = Path(build_plain(base / name))
        _move_to_auxiliary(root, base / f"{name}-extra", count)
        tables.append(
            {"name": name, "location": str(root), "auxiliaryLocations": [str(base / f"{name}-extra")]}
        )
    running = start_server(
        tmp_path_factory.mktemp("srv"),
        {"shares": [{"name": "a", "schemas": [{"name": "d", "tables": tables}]}]},
    )
    yield running
    running.stop()


@pytest.mark.parametrize("table", ["small", "large"])
@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("body", [{}, {"maxFiles": 2}])
def test_files_in_a_local_auxiliary_location_are_refused_clearly(
    server: RunningServer, table: str, fmt: str, body: dict
) -> None:
    response = httpx.post(
        f"{server.endpoint}/shares/a/schemas/d/tables/{table}/query",
        json=body,
        headers=server.headers(**{"delta-sharing-capabilities": f"responseformat={fmt}"}),
        timeout=60,
    )
    if "maxFiles" in body:
        assert response.status_code == 200, response.text
        end = json.loads(response.text.splitlines()[-1])["endStreamAction"]
        assert end["httpStatusErrorCode"] == 400
        assert "auxiliary" in end["errorMessage"]
    else:
        assert response.status_code == 400, response.text
        error = response.json()
        assert error["errorCode"] == "UNSUPPORTED_OPERATION"
        assert "auxiliary" in error["message"]
    assert str(server.workdir.parent) not in response.text and "/tmp" not in response.text
