"""Catalog changes made by other processes on a PostgreSQL database, announced with LISTEN/NOTIFY.

Every write transaction that may change what requests authenticate or look up sends `NOTIFY lakegate_catalog`
(PostgreSQL delivers it when the transaction commits, never for one rolled back). Each server process listens on
one connection of its own and counts the notifications; the count is part of `Database.change_mark`, so what
a replica remembers of the catalog (`lakegate.catalog.recent`) is forgotten a moment after another replica or
the CLI changed it, not after `catalogCacheSeconds`. While the listening connection is down (a database restart),
the cache time still bounds how stale an answer can be; each reconnection counts as a change.
"""

from __future__ import annotations

import logging
import os
import threading

from sqlalchemy.engine import URL

from lakegate.inline import must_not_block

log = logging.getLogger("lakegate.db")
CHANNEL = "lakegate_catalog"
NOTIFY = f"NOTIFY {CHANNEL}"
RECONNECT_SECONDS = 1.0
POLL_SECONDS = 1.0  # how often the listener looks whether it should stop
# How long the first look at the mark waits for LISTEN to be in place: once per process, so the mark does not
# move under the answers remembered in its first moment (and no change goes unannounced in that moment).
LISTEN_WAIT_SECONDS = 2.0


class ChangeListener:
    def __init__(self, url: URL) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.count = 0  # notifications and reconnections seen by this process
        self._pid = 0
        self._starting = threading.Lock()
        self._stopped = threading.Event()
        self._listening = threading.Event()

    def mark(self) -> int:
        """The changes seen so far; the first call in a process (a forked worker too) starts its listener."""
        if self._pid != os.getpid():
            must_not_block()  # the listener's start waits for LISTEN
            self._start()
        return self.count

    def stop(self) -> None:
        self._stopped.set()

    def _start(self) -> None:
        with self._starting:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self.count += 1  # a new process: whatever it inherited is not known to be current
            self._listening = threading.Event()  # a forked worker's own, not the parent's (already set)
            threading.Thread(target=self._listen, name="lakegate-catalog-changes", daemon=True).start()
            self._listening.wait(LISTEN_WAIT_SECONDS)

    def _listen(self) -> None:
        try:
            import psycopg
        except ImportError:  # the postgres extra: without it no PostgreSQL database is reached at all
            self._listening.set()
            return

        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.count += 1  # changes made while this process was not listening
                    self._listening.set()
                    while not self._stopped.is_set():
                        for _ in conn.notifies(timeout=POLL_SECONDS):
                            self.count += 1
            except psycopg.Error as exc:
                log.warning(
                    "not listening for catalog changes (%s): other replicas' changes take effect within "
                    "catalogCacheSeconds until it reconnects",
                    exc.__class__.__name__,
                )
                self.count += 1
                self._listening.set()  # nobody waits longer for a database that is down
                self._stopped.wait(RECONNECT_SECONDS)
