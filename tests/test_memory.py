"""lakegate._memory: one glibc arena for every thread, and freed memory handed back after a render ends. Each
case runs in a fresh interpreter: the arena setting only takes before threads start."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    return done.stdout + done.stderr


THREADS_THEN_STATS = """
    import ctypes, threading
    import pyarrow  # starts threads of its own

    def allocate():
        kept = [bytes(100_000) for _ in range(50)]

    threads = [threading.Thread(target=allocate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ctypes.CDLL(None).malloc_stats()
"""


def test_one_arena_has_every_thread_allocate_from_the_main_arena() -> None:
    alone = _run(
        "from lakegate._memory import one_arena\nassert one_arena()\n" + textwrap.dedent(THREADS_THEN_STATS)
    )
    assert alone.count("Arena ") == 1
    usual = _run(THREADS_THEN_STATS)
    assert (
        usual.count("Arena ") > 1
    )  # glibc's default: the threads' own arenas (what the count above rules out)


def test_an_arena_limit_chosen_by_the_environment_is_left_alone() -> None:
    out = _run("from lakegate._memory import one_arena\nprint(one_arena())", MALLOC_ARENA_MAX="4")
    assert out.strip() == "False"
    out = _run(
        "from lakegate._memory import one_arena\nprint(one_arena())",
        GLIBC_TUNABLES="glibc.malloc.arena_max=2",
    )
    assert out.strip() == "False"


def test_memory_freed_after_a_release_is_handed_back_shortly_after() -> None:
    # 60 MB in 100 kB blocks (below glibc's mmap threshold: in the arena), every tenth kept: the freed blocks are
    # holes that free() itself never returns; the release armed while they were alive returns them later.
    out = _run(
        """
        import time
        from lakegate._memory import RELEASE_AGAIN_SECONDS, one_arena, release_unused

        one_arena()

        def rss_mb():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024

        blocks = [bytearray(100_000) for _ in range(600)]
        kept = blocks[::10]
        release_unused()  # the end of a render: its last pieces still referenced
        del blocks
        held = rss_mb()
        time.sleep(RELEASE_AGAIN_SECONDS + 0.5)
        print(held - rss_mb(), len(kept))
        """
    )
    returned_mb, _ = out.split()
    assert float(returned_mb) > 40
