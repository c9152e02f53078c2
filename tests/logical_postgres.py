"""A PostgreSQL cluster with wal_level=logical in a temporary folder, on a free port: what
change data capture needs and the shared server on 5432 (wal_level=replica) must not be
changed to give. Used by the tests' `logical_postgres` fixture and by benchmarks/cdc.py."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

POSTGRES_BIN = Path(os.environ.get("GRISTMILL_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass(frozen=True)
class LogicalPostgres:
    port: int
    folder: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a database no other test uses."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:10]
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _as_postgres_user(command: list[str]) -> list[str]:
    """initdb and pg_ctl refuse to run as root: as root, they run as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def start_logical_postgres(**settings: str) -> Iterator[LogicalPostgres]:
    """initdb and pg_ctl of the system's PostgreSQL; stopped (immediately) and removed at
    the end. `settings`: more server settings (name=value)."""
    # Not under pytest's root-only temporary folder: the postgres user must reach it.
    folder = Path(tempfile.mkdtemp(prefix="gristmill-logical-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    try:
        subprocess.run(
            _as_postgres_user(
                [
                    str(POSTGRES_BIN / "initdb"),
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        options = {
            "port": str(port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(folder),
            "wal_level": "logical",
            "max_replication_slots": "40",
            "max_wal_senders": "40",
            "fsync": "off",
            "full_page_writes": "off",
            **settings,
        }
        pg_ctl = str(POSTGRES_BIN / "pg_ctl")
        command = [pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-w", "start", "-o"]
        command.append(" ".join(f"-c {k}={v}" for k, v in options.items()))
        subprocess.run(_as_postgres_user(command), check=True, stdout=subprocess.DEVNULL)
        try:
            yield LogicalPostgres(port, folder)
        finally:
            subprocess.run(
                _as_postgres_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
