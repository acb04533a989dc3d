"""A throw-away PostgreSQL server (Debian's binaries) on loopback, for the catalog's SQL backend tests."""

from __future__ import annotations

import glob
import os
import signal
import time
from pathlib import Path

from tests.services._proc import INSTALL_HINT, Daemon, as_user, free_port, run

SUPERUSER = "lakegate"
DEFAULT_DB = "lakegate"


def _bin_dir() -> Path:
    # Debian keeps the server binaries off PATH, one directory per major version; take the newest.
    dirs = [
        Path(d)
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if os.access(Path(d) / "initdb", os.X_OK) and os.access(Path(d) / "postgres", os.X_OK)
    ]
    if not dirs:
        raise RuntimeError(f"PostgreSQL server binaries (initdb, postgres) not found: {INSTALL_HINT}")
    return max(dirs, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)


class PostgresService:
    def __init__(self, workdir: Path, port: int, daemon: Daemon):
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = port
        self.user = SUPERUSER
        self.database = DEFAULT_DB
        self.url = self.url_for(DEFAULT_DB)
        self._daemon = daemon

    @classmethod
    def start(cls, workdir: Path) -> PostgresService:
        """Start a server whose data, socket and log live in ``workdir``.

        As root the server runs as the ``postgres`` system user (postgres refuses root), so ``workdir`` and
        every parent must be searchable by that user: pytest's own tmp dirs (mode 0700) are not.
        """
        bindir = _bin_dir()
        workdir = workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        user = None
        if os.geteuid() == 0:
            user = "postgres"
            ids = as_user(user)
            os.chown(workdir, ids["user"], ids["group"])
            probe = workdir / ".writable"
            try:
                run(["touch", str(probe)], user=user)
            except RuntimeError as e:
                raise RuntimeError(
                    f"user postgres cannot write {workdir} (check its parents' modes): {e}"
                ) from e
            probe.unlink()
        data = workdir / "data"
        # trust auth: loopback only, throw-away data. --no-sync and fsync=off: durability is not under test.
        initdb_flags = f"-U {SUPERUSER} -A trust -E UTF8 --no-locale --no-sync"
        run([str(bindir / "initdb"), "-D", str(data), *initdb_flags.split()], user=user)
        port = free_port()
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(workdir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        options = [arg for k, v in settings.items() for arg in ("-c", f"{k}={v}")]
        daemon = Daemon(
            "postgres",
            [str(bindir / "postgres"), "-D", str(data), "-p", str(port), *options],
            workdir,
            user=user,
            # SIGINT is postgres' "fast" shutdown: it does not wait for clients (pools) to disconnect.
            stop_signal=signal.SIGINT,
        )
        try:
            daemon.wait_for_port(port, 60)
            service = cls(workdir, port, daemon)
            service._wait_ready(30)
            service.create_database(DEFAULT_DB)
        except BaseException:
            daemon.stop()
            raise
        return service

    def stop(self) -> None:
        self._daemon.stop()

    def start_again(self, timeout: float = 60) -> None:
        """Start the server again on its data and port after `stop()`; returns once it accepts logins."""
        self._daemon.start_again()
        self._daemon.wait_for_port(self.port, timeout)
        self._wait_ready(timeout)

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def _dsn(self, database: str) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={database}"

    def _wait_ready(self, timeout: float) -> None:
        # The port opens before recovery ends ("the database system is starting up"): wait for a real login.
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self._dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                self._daemon.check_alive()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
