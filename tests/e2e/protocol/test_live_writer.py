"""A table on local disk written to in a loop while clients query, stream and read changes through lakegate:
no request fails, and every answer holds exactly the files of the version it reports."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.live_writer import Writer, check, create_table, race, share_config
from tests.e2e.server import start_server

SECONDS = 20


def test_live_writer_on_local_disk(tmp_path: Path) -> None:
    root = str(tmp_path / "live")
    create_table(root)
    server = start_server(tmp_path / "srv", {"shares": share_config(root)})
    writer = Writer(root)
    clients, log = race(server, writer, seconds=SECONDS)
    kinds = check(
        clients, writer, root, lambda v: (Path(root) / "_delta_log" / f"{v:020d}.json").read_bytes()
    )
    assert writer.commits >= 20, writer.commits
    assert all(kinds.get(k, 0) >= 5 for k in ("query", "version", "stream", "changes")), kinds
    assert '"level":"error"' not in log, log[-3000:]


def test_live_writer_cleaning_up_its_log(tmp_path: Path) -> None:
    """Each checkpoint is followed by log cleanup: commits a reader listed a moment ago disappear, and the
    server's cached snapshot may be older than the oldest commit left."""
    root = str(tmp_path / "live")
    create_table(root, cleanup=True)
    server = start_server(tmp_path / "srv", {"shares": share_config(root)})
    writer = Writer(root, cleanup=True)
    clients, log = race(server, writer, seconds=SECONDS / 2)
    kinds = check(clients, writer, root, lambda v: b"")
    assert len(list((Path(root) / "_delta_log").glob("*.json"))) < writer.commits / 2  # cleanup did happen
    assert kinds.get("query", 0) >= 20, kinds
    assert '"level":"error"' not in log, log[-3000:]
