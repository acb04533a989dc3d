"""Files that hold secrets (recipient profiles, the demo's configuration and profile, TLS private keys)."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, content: str | bytes) -> None:
    """Write a file only its owner can read or write, from its first byte (no window in which the umask's
    permissions apply), replacing what it held."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(content.encode() if isinstance(content, str) else content)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to a file that already existed
