"""A table written to while a running lakegate serves it: one writer thread appends in a loop (with occasional
overwrites, compactions and checkpoints, as deltalake does them), several client threads query it in both
formats, ask its version, stream it and read its change feed. Every answer must be a 200 whose files are
exactly those of the version it reports.

The expected file counts are computed after the writer stops: for snapshot queries deltalake's own file list
at the reported version; for streaming and change-feed answers, the data-changing actions of each commit
(`cdc` actions where a commit wrote them), read from the commit files by the test itself.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from deltalake import DeltaTable, write_deltalake

from tests.e2e.server import RunningServer
from tests.tables import rows

SHARE, SCHEMA, TABLE = "live", "default", "t"


def share_config(location: str) -> list[dict[str, Any]]:
    table = {"name": TABLE, "location": location, "historyShared": True}
    return [{"name": SHARE, "schemas": [{"name": SCHEMA, "tables": [table]}]}]


def create_table(uri: str, options: dict[str, str] | None = None, *, cleanup: bool = False) -> None:
    """A table with the change data feed on; with `cleanup`, one whose log deltalake may clean up at once."""
    configuration = {"delta.enableChangeDataFeed": "true"}
    if cleanup:
        configuration |= {
            "delta.logRetentionDuration": "interval 0 seconds",
            "delta.enableExpiredLogCleanup": "true",
        }
    write_deltalake(uri, rows([0, 1]), configuration=configuration, storage_options=options)


class Writer(threading.Thread):
    """Commits until stopped: mostly appends; every 9th an overwrite, every 7th a compaction (dataChange
    false), a checkpoint after every 5th. With `cleanup`, each checkpoint is followed by log cleanup (the
    commits before it are deleted), and deltalake's file count is noted after every commit, since older
    versions cannot be loaded afterwards."""

    def __init__(self, uri: str, options: dict[str, str] | None = None, *, cleanup: bool = False) -> None:
        super().__init__(name="writer", daemon=True)
        self.uri, self.options, self.cleanup = uri, options, cleanup
        self.stop = threading.Event()
        self.commits = 0
        self.errors: list[BaseException] = []
        self.files_at: dict[int, int] = {}

    def run(self) -> None:
        step = 0
        try:
            if self.cleanup:
                table = DeltaTable(self.uri, storage_options=self.options)
                self.files_at[table.version()] = len(table.file_uris())
            while not self.stop.is_set():
                step += 1
                batch = rows([step * 10 + i for i in range(3)])
                if step % 9 == 0:
                    write_deltalake(self.uri, batch, mode="overwrite", storage_options=self.options)
                elif step % 7 == 0:
                    DeltaTable(self.uri, storage_options=self.options).optimize.compact()
                else:
                    write_deltalake(self.uri, batch, mode="append", storage_options=self.options)
                self.commits += 1
                table = DeltaTable(self.uri, storage_options=self.options)
                if self.cleanup:  # only this thread writes: the latest version is the one just committed
                    self.files_at[table.version()] = len(table.file_uris())
                if step % 5 == 0:
                    table.create_checkpoint()
                    if self.cleanup:
                        table.cleanup_metadata()
        except BaseException as exc:  # noqa: BLE001 - reported by the test, which fails on it
            self.errors.append(exc)


@dataclass
class Answer:
    kind: str
    version: int  # the version a snapshot answer reports; the ending version of a history answer
    start: int | None = None  # the starting version of a history answer
    files: int = 0
    per_version: Counter[int] = field(default_factory=Counter)


@dataclass
class Clients:
    server: RunningServer
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return f"{self.server.endpoint}/shares/{SHARE}/schemas/{SCHEMA}/tables/{TABLE}"

    def run(self, writer: Writer, threads: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        workers = [
            threading.Thread(target=self._loop, args=(writer, deadline, random.Random(i)), name=f"client{i}")
            for i in range(threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    def _loop(self, writer: Writer, deadline: float, rng: random.Random) -> None:
        kinds: list[Callable[[httpx.Client, random.Random], Answer]] = [
            self.query_parquet,
            self.query_delta,
            self.version,
        ]
        if not writer.cleanup:  # with cleanup, a history range may start before the log does (a clean 400)
            kinds += [self.stream, self.changes]
        with httpx.Client(headers=self.server.headers(), timeout=60) as client:
            while time.monotonic() < deadline and writer.is_alive():
                ask = rng.choice(kinds)
                try:
                    answer = ask(client, rng)
                except Exception as exc:  # noqa: BLE001 - every failure is collected and fails the test
                    with self._lock:
                        self.errors.append(f"{ask.__name__}: {exc}")
                    continue
                with self._lock:
                    self.answers.append(answer)

    # -- the requests ------------------------------------------------------------------------------------------

    def _check(self, response: httpx.Response) -> list[dict[str, Any]]:
        if response.status_code != 200:
            raise AssertionError(f"{response.request.url.path}: {response.status_code} {response.text[:300]}")
        return [orjson.loads(line) for line in response.text.splitlines() if line.strip()]

    def version(self, client: httpx.Client, _rng: random.Random) -> Answer:
        response = client.get(f"{self.base}/version")
        self._check(response)
        return Answer("version", int(response.headers["delta-table-version"]))

    def query_parquet(self, client: httpx.Client, _rng: random.Random) -> Answer:
        response = client.post(f"{self.base}/query", json={})
        lines = self._check(response)
        return Answer("query", int(response.headers["delta-table-version"]), files=_count(lines, "file"))

    def query_delta(self, client: httpx.Client, _rng: random.Random) -> Answer:
        response = client.post(
            f"{self.base}/query", json={}, headers={"delta-sharing-capabilities": "responseformat=delta"}
        )
        lines = self._check(response)
        assert "deltaProtocol" in lines[0]["protocol"], lines[0]
        return Answer("query", int(response.headers["delta-table-version"]), files=_count(lines, "file"))

    def _range(self, client: httpx.Client, rng: random.Random) -> tuple[int, int]:
        end = self.version(client, rng).version
        return rng.randint(max(0, end - 12), end), end

    def stream(self, client: httpx.Client, rng: random.Random) -> Answer:
        start, end = self._range(client, rng)
        body: dict[str, int] = {"startingVersion": start}
        if rng.random() < 0.5:
            body["endingVersion"] = end
        lines = self._check(client.post(f"{self.base}/query", json=body))
        actions = [line[k] for line in lines for k in ("add", "remove") if k in line]
        return Answer(
            "stream", -1 if "endingVersion" not in body else end, start, len(actions), _per_version(actions)
        )

    def changes(self, client: httpx.Client, rng: random.Random) -> Answer:
        start, end = self._range(client, rng)
        params = {"startingVersion": start, "endingVersion": end}
        lines = self._check(client.get(f"{self.base}/changes", params=params))
        actions = [line[k] for line in lines for k in ("add", "remove", "cdf") if k in line]
        return Answer("changes", end, start, len(actions), _per_version(actions))


def race(server: RunningServer, writer: Writer, *, seconds: float, threads: int = 4) -> tuple[Clients, str]:
    """Run `writer` against `threads` clients of `server` for `seconds`, then stop both; the clients and the
    server's log."""
    clients = Clients(server)
    try:
        writer.start()
        clients.run(writer, threads=threads, seconds=seconds)
    finally:
        writer.stop.set()
        writer.join()
        log = server.daemon.log_path.read_text()
        server.stop()
    return clients, log


def _count(lines: list[dict[str, Any]], key: str) -> int:
    return sum(1 for line in lines if key in line)


def _per_version(actions: list[dict[str, Any]]) -> Counter[int]:
    return Counter(int(a["version"]) for a in actions)


# -- what the answers should have been ------------------------------------------------------------------------


def commit_changes(actions: list[dict[str, Any]]) -> tuple[int, int]:
    """(streaming files, change-feed files) of one commit, from its raw actions."""
    data = [
        a[k]
        for a in actions
        for k in ("add", "remove")
        if k in a and a[k].get("dataChange", True) is not False
    ]
    cdc = [a["cdc"] for a in actions if "cdc" in a]
    return len(data), len(cdc) or len(data)


def check(
    clients: Clients,
    writer: Writer,
    uri: str,
    read_commit: Callable[[int], bytes],
    options: dict[str, str] | None = None,
) -> dict[str, int]:
    """Fail on any error; compare every answer with the table's truth. Returns counts per kind of answer."""
    assert not writer.errors, writer.errors
    assert not clients.errors, clients.errors[:10]
    latest = DeltaTable(uri, storage_options=options).version()
    snapshot_files: dict[int, int] = {}
    changes: dict[int, tuple[int, int]] = {}

    def files_at(version: int) -> int:
        if writer.cleanup:
            return writer.files_at[version]
        if version not in snapshot_files:
            snapshot_files[version] = len(
                DeltaTable(uri, version=version, storage_options=options).file_uris()
            )
        return snapshot_files[version]

    def commit(version: int) -> tuple[int, int]:
        if version not in changes:
            raw = read_commit(version)
            changes[version] = commit_changes([orjson.loads(x) for x in raw.splitlines() if x.strip()])
        return changes[version]

    kinds: Counter[str] = Counter()
    for answer in clients.answers:
        kinds[answer.kind] += 1
        assert 0 <= answer.version <= latest or (answer.kind == "stream" and answer.version == -1), answer
        if answer.kind == "query":
            assert answer.files == files_at(answer.version), answer
        elif answer.kind in ("stream", "changes"):
            which = 0 if answer.kind == "stream" else 1
            assert answer.start is not None
            # An open-ended stream ends at a version the test did not see: check each version it returned,
            # and that no version between the start and its last is left out.
            end = answer.version if answer.version >= 0 else max(answer.per_version, default=answer.start)
            expected = Counter(
                {v: commit(v)[which] for v in range(answer.start, end + 1) if commit(v)[which]}
            )
            assert answer.per_version == expected, answer
    return dict(kinds)
