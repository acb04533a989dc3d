"""A revocation takes effect within `catalogCacheSeconds` (1 s) on every worker of a server on SQLite, while
clients keep every worker busy with the revoked token: remembered answers are refreshed in the background but
never older than the cache time, and one worker's audit writes do not make the others forget theirs.

Two revocations: one through lakegate (announced to every worker, so seen at once) and one made beside it with
SQL (nothing announced: the cache time alone bounds it)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx

from lakegate.catalog.db import Database
from lakegate.catalog.recipients import Recipients
from tests.e2e.server import RunningServer, start_server, wait_for
from tests.e2e.test_workers import _established, _workers
from tests.tables import build_plain

TABLE = "/shares/s/schemas/d/tables/t"
CLIENTS = 4  # keep-alive connections, spread over the two workers (least connections)
WITHIN_S = 1.0
SLACK_S = 0.5  # a request's own time on a busy 2-core machine


class Client(threading.Thread):
    """Over one keep-alive connection, with each token in turn: the version (authenticated in the handler) and
    a query (authenticated before its body is read); records who asked, when the request started, its status."""

    def __init__(self, server: RunningServer, tokens: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.server, self.tokens = server, tokens
        self.answers: list[tuple[str, float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.server.endpoint, timeout=30) as http:
            while not self.stop.is_set():
                for who, token in self.tokens.items():
                    headers = {"Authorization": f"Bearer {token}"}
                    for path, method in ((TABLE + "/version", "GET"), (TABLE + "/query", "POST")):
                        started = time.monotonic()
                        answer = http.request(
                            method, path, headers=headers, json={} if method == "POST" else None
                        )
                        self.answers.append((who, started, answer.status_code))
                time.sleep(0.01)


def _delete_tokens_with_sql(database: Path, recipient: str) -> None:
    """As an operator with an SQL shell: nothing tells the server."""
    with sqlite3.connect(database, timeout=30) as conn:
        conn.execute(
            "DELETE FROM recipient_tokens WHERE recipient_id = (SELECT id FROM recipients WHERE name = ?)",
            (recipient,),
        )
    conn.close()


def _check_revoked(clients: list[Client], who: str, revoked: float) -> None:
    for client in clients:
        after = [(t - revoked, status) for name, t, status in client.answers if name == who and t >= revoked]
        assert after, "the client stopped asking"
        late_successes = [t for t, status in after if status == 200]
        assert not late_successes or max(late_successes) <= WITHIN_S + SLACK_S, late_successes
        assert {status for t, status in after if t > WITHIN_S + SLACK_S} == {401}


def test_revocations_count_within_a_second_on_every_busy_worker(tmp_path: Path) -> None:
    table = {"name": "t", "location": build_plain(tmp_path / "t")}
    shares = [{"name": "s", "schemas": [{"name": "d", "tables": [table]}]}]
    server = start_server(tmp_path / "server", {"shares": shares, "workers": 2}, token=None)
    database = server.workdir / "lakegate.db"
    db = Database(f"sqlite:///{database}")
    clients: list[Client] = []
    try:
        wait_for(lambda: len(_workers(server)) == 2, "two workers")
        tokens = {name: Recipients(db).create(name, ["s"]).token for name in ("alice", "bob")}
        clients = [Client(server, tokens) for _ in range(CLIENTS)]
        for client in clients:
            client.start()
        port = int(server.base_url.rsplit(":", 1)[1])
        wait_for(lambda: all(_established(pid, port) for pid in _workers(server)), "both workers answering")
        time.sleep(1.5 * WITHIN_S)  # past the cache time: answers now come from background refreshes
        assert all(client.answers and {s for *_, s in client.answers} == {200} for client in clients)

        Recipients(db).revoke("alice")
        alice_revoked = time.monotonic()
        _delete_tokens_with_sql(database, "bob")
        bob_revoked = time.monotonic()
        wait_for(
            lambda: all(
                sum(t > bob_revoked + WITHIN_S + SLACK_S for _, t, _ in client.answers) >= 8
                for client in clients
            ),
            "answers after the revocations",
            timeout=30,
        )
    finally:
        for client in clients:
            client.stop.set()
        for client in clients:
            client.join(timeout=30)
        db.close()
        server.stop()
    _check_revoked(clients, "alice", alice_revoked)
    _check_revoked(clients, "bob", bob_revoked)
