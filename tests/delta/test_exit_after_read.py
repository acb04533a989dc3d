"""A process that reads a table from its parquet checkpoint exits 0 when it is done.

pyarrow's threaded parquet read frees its reader (and the Python buffer under it, which takes the GIL) on a
pool thread after read() has returned; when the interpreter was already finalizing, that thread was killed
inside a destructor and the process aborted at exit with "terminate called without an active exception"
(exit 134), in about one run of two to four. Only a fresh interpreter's exit shows it: a subprocess per run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from deltalake import DeltaTable

from tests.tables import build_plain

RUNS = 20  # an abort in one run of four is missed by all 20 with probability 0.75**20 < 0.4 %
READ_AND_EXIT = """
import sys
from lakegate.cloud.local import LocalStore
from lakegate.cloud.locations import Location
from lakegate.delta.log import DeltaLog
from lakegate.delta.snapshot import load_snapshot
from lakegate.keys import KeyRing

print(load_snapshot(DeltaLog(LocalStore(KeyRing.random()), Location.parse(sys.argv[1]))).version)
"""


def _checkpointed_table(root: Path) -> str:
    """Three commits and a checkpoint at the last; the earlier commits removed, so only the checkpoint has
    the table's files."""
    build_plain(root, batches=3)
    DeltaTable(str(root)).create_checkpoint()
    for old in ("00000000000000000000.json", "00000000000000000001.json"):
        (root / "_delta_log" / old).unlink()
    return str(root)


def test_reading_a_checkpoint_then_exiting_exits_0(tmp_path: Path) -> None:
    root = _checkpointed_table(tmp_path / "t")
    # Not measured by coverage (`make test`): saving its data at exit gives the pool threads time to finish,
    # which hid the abort.
    env = {
        k: v for k, v in os.environ.items() if k not in ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG")
    }
    # One after the other: runs overlapping on a busy machine hit the abort far less often.
    for run in range(1, RUNS + 1):
        command = [sys.executable, "-c", READ_AND_EXIT, root]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)
        assert done.stdout.strip() == "2", done.stdout + done.stderr  # the snapshot, read from the checkpoint
        assert done.returncode == 0 and "terminate called" not in done.stderr, (
            f"run {run}: exit {done.returncode}\n{done.stderr}"
        )
