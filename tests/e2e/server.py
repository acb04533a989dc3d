"""Run `lakegate serve` as a separate process for a test, exactly as a provider would."""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.services._proc import Daemon, free_port


@dataclass
class RunningServer:
    daemon: Daemon
    base_url: str  # http://127.0.0.1:PORT
    endpoint: str  # base_url + prefix
    token: str | None
    workdir: Path

    def profile(self, token: str | None = None, name: str = "profile.share") -> str:
        path = self.workdir / name
        path.write_text(
            json.dumps(
                {
                    "shareCredentialsVersion": 1,
                    "endpoint": self.endpoint,
                    "bearerToken": token or self.token or "none",
                }
            )
        )
        return str(path)

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}", **extra}

    def query_files(self, table: str) -> list[dict[str, Any]]:
        """The `file` actions of a 200 answer to an empty POST …/query of `table` ("share.schema.table")."""
        share, schema, name = table.split(".")
        answer = httpx.post(
            f"{self.endpoint}/shares/{share}/schemas/{schema}/tables/{name}/query",
            json={},
            headers=self.headers(),
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        return [json.loads(line)["file"] for line in answer.text.splitlines()[2:]]

    def statuses_of(self, url: str, requests: int, clients: int) -> list[int]:
        """The statuses of `requests` GETs of `url`, sent by `clients` threads over keep-alive connections."""
        limits = httpx.Limits(max_connections=clients)
        with (
            httpx.Client(headers=self.headers(), timeout=30, limits=limits) as http,
            ThreadPoolExecutor(clients) as pool,
        ):
            return list(pool.map(lambda _: http.get(url).status_code, range(requests)))

    def log(self) -> str:
        return self.daemon.log_tail(200)

    def stop(self) -> None:
        self.daemon.stop()


def start_server(
    workdir: Path,
    config: dict[str, Any],
    env: dict[str, str] | None = None,
    token: str | None = "auto",
    name: str = "lakegate",
    workers: int | None = 1,
) -> RunningServer:
    """Write `config` (a reference-style YAML mapping; host/port/token filled in) and start the server. One
    worker process unless the configuration says otherwise (tests start many servers on a small machine);
    `workers=None` serves with the default (one per core)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {"version": 1, "host": "127.0.0.1", "port": port, **config}
    if workers is not None:
        config.setdefault("workers", workers)
    config["port"] = port
    if token == "auto":
        token = secrets.token_urlsafe(24)
    if token is not None:
        config.setdefault("authorization", {"bearerToken": token})
    config.setdefault("tokenSigningKey", secrets.token_urlsafe(32))
    config_path = workdir / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(config))
    daemon = Daemon(
        name,
        [sys.executable, "-m", "lakegate", "serve", "--config", str(config_path)],
        workdir,
        env={**os.environ, **(env or {})},
    )
    daemon.wait_for_port(port, timeout=30)
    base = f"http://127.0.0.1:{port}"
    return RunningServer(daemon, base, base + config.get("endpoint", "/delta-sharing"), token, workdir)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
