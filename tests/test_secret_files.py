"""Files holding secrets are the owner's alone from their first byte, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from lakegate.secret_files import write_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_and_existing_files_end_up_private_with_the_new_content(tmp_path: Path) -> None:
    old_umask = os.umask(0)  # the most permissive umask: a plain write would make the file 0o666
    try:
        fresh = tmp_path / "profile.share"
        write_private(fresh, "token")
        assert _mode(fresh) == 0o600 and fresh.read_text() == "token"

        shared = tmp_path / "key.pem"
        shared.write_text("a much longer old content")
        shared.chmod(0o644)
        write_private(shared, b"new")
        assert _mode(shared) == 0o600 and shared.read_bytes() == b"new"
    finally:
        os.umask(old_umask)
