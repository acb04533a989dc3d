"""Helpers for tests that administer a running lakegate with its CLI, as an operator would."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def lakegate(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `lakegate ARGS --config CONFIG` as a separate process."""
    proc = subprocess.run(
        [sys.executable, "-m", "lakegate", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"lakegate {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def lakegate_json(config: Path, *args: str) -> Any:
    return json.loads(lakegate(config, *args, "--output", "json").stdout)


def profile_token(path: Path | str) -> str:
    return str(json.loads(Path(path).read_text())["bearerToken"])


def status(url: str, token: str | None, method: str = "GET") -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, url, headers=headers, timeout=30).status_code


def wait_until(moment_iso: str, margin: float = 0.3) -> None:
    """Sleep until an ISO time (`…Z`) has passed, plus a margin."""
    from datetime import datetime

    deadline = datetime.fromisoformat(moment_iso).timestamp() + margin
    time.sleep(max(0.0, deadline - time.time()))


def files_containing(
    root: Path, secrets: list[str], skip_suffixes: tuple[str, ...] = (".share",)
) -> list[str]:
    """Every file under `root` (but profiles, which must hold their token) that contains one of `secrets`."""
    found = []
    needles = [s.encode() for s in secrets]
    for path in root.rglob("*"):
        if path.is_file() and path.suffix not in skip_suffixes:
            data = path.read_bytes()
            found += [f"{path}: {s[:8]}…" for s, n in zip(secrets, needles, strict=True) if n in data]
    return found
